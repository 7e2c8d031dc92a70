/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The TSIG key that signs the RFC 2136 updates of _acme-challenge records,
 * in the syntax of the tools that make one: BIND's tsig-keygen and Knot's
 * keymgr -t. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acme.h"
#include "fileio.h"

static const char *const algorithms[] = {
        "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512",
};

/* The value after KEY in line (`KEY "v";`, `KEY v;`, `KEY: v`), or 0 when
 * line is not about KEY. -EINVAL for a value that does not fit. */
static int field(const char *line, const char *key, char *buf, size_t size) {
        size_t n = strlen(key), len;
        const char *v;

        if (strncmp(line, key, n) != 0 || !(line[n] == ':' || line[n] == ' ' || line[n] == '\t'))
                return 0;
        v = line + n + (line[n] == ':');
        v += strspn(v, " \t\"");
        len = strcspn(v, "\";{ \t\r");
        if (len == 0) /* Knot's "key:" opens the list */
                return 0;
        if (len >= size)
                return -EINVAL;
        memcpy(buf, v, len);
        buf[len] = 0;
        return 1;
}

static bool token_ok(const char *s, const char *extra) {
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && !strchr(extra, *s))
                        return false;
        return true;
}

static int check(const AcmeTsig *t, char *error, size_t error_size) {
        bool known = false;

        if (!t->name[0] || !t->algorithm[0] || !t->secret[0]) {
                snprintf(error, error_size, "no key %s",
                         !t->name[0]        ? "name"
                         : !t->algorithm[0] ? "algorithm"
                                            : "secret");
                return -EINVAL;
        }
        if (!token_ok(t->name, ".-_")) {
                snprintf(error, error_size, "key name '%.64s' is not a DNS name", t->name);
                return -EINVAL;
        }
        for (size_t i = 0; i < ELEMENTSOF(algorithms); i++)
                known = known || strcasecmp(t->algorithm, algorithms[i]) == 0;
        if (!known) {
                snprintf(error, error_size, "algorithm '%.32s' is not one of hmac-sha1 … hmac-sha512",
                         t->algorithm);
                return -EINVAL;
        }
        if (!token_ok(t->secret, "+/=")) {
                snprintf(error, error_size, "secret is not base64");
                return -EINVAL;
        }
        return 0;
}

int acme_tsig_parse(const char *text, AcmeTsig *ret, char *error, size_t error_size) {
        AcmeTsig t = {};

        for (const char *p = text; p && *p;) {
                size_t len = strcspn(p, "\n");
                char line[512];
                const char *l;
                int r = 0;

                if (len < sizeof(line)) {
                        memcpy(line, p, len);
                        line[len] = 0;
                        l = line + strspn(line, " \t-");
                        if (*l != '#' && *l != ';') {
                                r = field(l, "key", t.name, sizeof(t.name));
                                if (r == 0)
                                        r = field(l, "id", t.name, sizeof(t.name));
                                if (r == 0)
                                        r = field(l, "algorithm", t.algorithm, sizeof(t.algorithm));
                                if (r == 0)
                                        r = field(l, "secret", t.secret, sizeof(t.secret));
                        }
                }
                if (r < 0 || len >= sizeof(line)) {
                        snprintf(error, error_size, "line '%.40s' unreadable", p);
                        return -EINVAL;
                }
                p += len + (p[len] == '\n');
        }
        if (check(&t, error, error_size) < 0)
                return -EINVAL;
        *ret = t;
        return 0;
}

int acme_tsig_load(const char *path, AcmeTsig *ret, char *error, size_t error_size) {
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0) {
                snprintf(error, error_size, "cannot open: %s", strerror(errno));
                return -errno;
        }
        if (!S_ISREG(st.st_mode) || (st.st_mode & 0077) != 0) {
                snprintf(error, error_size, "must be a regular file readable only by its owner (mode 0600)");
                return -EPERM;
        }
        r = read_full_file(path, 64 * 1024, &text, NULL);
        if (r < 0) {
                snprintf(error, error_size, "cannot read: %s", strerror(-r));
                return r;
        }
        return acme_tsig_parse(text, ret, error, error_size);
}
