/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "nft-run.h"

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

int nftables_run(struct nft_ctx *nft, const char *script, char *error, size_t error_size) {
        const char *e, *line;
        size_t n;
        int r;

        r = nft_run_cmd_from_buffer(nft, script);
        (void) nft_ctx_get_output_buffer(nft); /* reading rewinds the buffers */
        e = nft_ctx_get_error_buffer(nft);
        if (r == 0)
                return 0;

        line = strstr(e, "Error: ");
        line = line ? line + 7 : e;
        n = strcspn(line, "\n");
        (void) snprintf(error, error_size, "%.*s", (int) MIN(n, (size_t) 200), line);
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

int nftables_open(struct nft_ctx **ret) {
        struct nft_ctx *nft;
        int r;

        r = nftables_available();
        if (r < 0)
                return r;
        nft = nft_ctx_new(NFT_CTX_DEFAULT);
        if (!nft)
                return -ENOMEM;
        if (nft_ctx_buffer_output(nft) != 0 || nft_ctx_buffer_error(nft) != 0) {
                nft_ctx_free(nft);
                return -ENOMEM;
        }
        *ret = nft;
        return 0;
}
