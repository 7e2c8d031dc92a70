/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <errno.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "nft-run.h"

struct Nftables {
        void *dl;
        struct nft_ctx *ctx;
        __typeof__(nft_ctx_new) *ctx_new;
        __typeof__(nft_ctx_free) *ctx_free;
        __typeof__(nft_ctx_buffer_output) *buffer_output;
        __typeof__(nft_ctx_buffer_error) *buffer_error;
        __typeof__(nft_run_cmd_from_buffer) *run_cmd_from_buffer;
        __typeof__(nft_ctx_get_output_buffer) *get_output_buffer;
        __typeof__(nft_ctx_get_error_buffer) *get_error_buffer;
};

/* libnftables reports errors as text only: the errno of the first
 * "Error:" line when it names one we know, else -EIO. */
static int nft_error_to_errno(const char *line) {
        static const int known[] = { EPERM,  EACCES, EOPNOTSUPP, EPROTONOSUPPORT, EAFNOSUPPORT,
                                     ENOENT, ENOMEM, EEXIST,     EBUSY,           ENOSPC };

        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                if (strstr(line, strerror(known[i])))
                        return -known[i];
        return -EIO;
}

int nftables_run(Nftables *n, const char *script, char *error, size_t error_size) {
        const char *e, *line;
        size_t len;
        int r;

        r = n->run_cmd_from_buffer(n->ctx, script);
        (void) n->get_output_buffer(n->ctx); /* reading rewinds the buffers */
        e = n->get_error_buffer(n->ctx);
        if (r == 0)
                return 0;

        line = e ? strstr(e, "Error: ") : NULL;
        line = line ? line + 7 : e ? e : "";
        len = strcspn(line, "\n");
        (void) snprintf(error, error_size, "%.*s", (int) MIN(len, (size_t) 200), line);
        if (!*error)
                (void) snprintf(error, error_size, "libnftables failed");
        return nft_error_to_errno(error);
}

int nftables_available(void) {
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);

        if (fd < 0)
                return -errno;
        (void) close(fd);
        return 0;
}

Nftables *nftables_close(Nftables *n) {
        if (!n)
                return NULL;
        if (n->ctx)
                n->ctx_free(n->ctx);
        if (n->dl)
                (void) dlclose(n->dl);
        free(n);
        return NULL;
}

/* dlsym() hands out functions as void *: copied, as POSIX allows. */
#define LOAD(n, field, name)                                  \
        ({                                                    \
                void *_p = dlsym((n)->dl, name);              \
                if (_p)                                       \
                        memcpy(&(n)->field, &_p, sizeof(_p)); \
                _p != NULL;                                   \
        })

static int nftables_load(Nftables *n) {
        /* never unloaded once loaded: libnftables points libgmp's memory
         * functions at its own (mp_set_memory_functions()), and libgmp
         * stays, for GnuTLS: after an unload, the next TLS handshake would
         * call into nothing */
        n->dl = dlopen(NFTABLES_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!n->dl)
                return -ENOPKG;
        if (!LOAD(n, ctx_new, "nft_ctx_new") || !LOAD(n, ctx_free, "nft_ctx_free") ||
            !LOAD(n, buffer_output, "nft_ctx_buffer_output") ||
            !LOAD(n, buffer_error, "nft_ctx_buffer_error") ||
            !LOAD(n, run_cmd_from_buffer, "nft_run_cmd_from_buffer") ||
            !LOAD(n, get_output_buffer, "nft_ctx_get_output_buffer") ||
            !LOAD(n, get_error_buffer, "nft_ctx_get_error_buffer"))
                return -ENOPKG;
        return 0;
}

int nftables_open(Nftables **ret) {
        _cleanup_(nftables_closep) Nftables *n = NULL;
        int r;

        r = nftables_available();
        if (r < 0)
                return r;
        n = calloc(1, sizeof(Nftables));
        if (!n)
                return -ENOMEM;
        r = nftables_load(n);
        if (r < 0)
                return r;
        n->ctx = n->ctx_new(NFT_CTX_DEFAULT);
        if (!n->ctx)
                return -ENOMEM;
        if (n->buffer_output(n->ctx) != 0 || n->buffer_error(n->ctx) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(n);
        return 0;
}
