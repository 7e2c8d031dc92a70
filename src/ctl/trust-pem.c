/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The mesh CA's text as meshctl trust handles it: checks on what meshd
 * sends, and the base64 DER that browser policies want. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "trust.h"

/* A DNS name fit to be a file name: what the daemon sends is still checked. */
bool dns_name_is_safe(const char *s) {
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char) *c) && *c != '.' && *c != '-')
                        return false;
        return !strstr(s, "..");
}

bool is_pem_certificate(const char *s) {
        return s && strncmp(s, "-----BEGIN CERTIFICATE-----", 27) == 0;
}

int pem_to_base64_der(const char *pem, char **ret) {
        const char *begin, *end;
        _cleanup_free_ char *b = NULL;
        size_t n = 0;

        if (!is_pem_certificate(pem))
                return -EBADMSG;
        begin = strchr(pem, '\n');
        end = strstr(pem, "-----END CERTIFICATE-----");
        if (!begin || !end || end < begin)
                return -EBADMSG;
        b = malloc((size_t) (end - begin) + 1);
        if (!b)
                return -ENOMEM;
        for (const char *c = begin; c < end; c++) {
                if (isspace((unsigned char) *c))
                        continue;
                if (!isalnum((unsigned char) *c) && *c != '+' && *c != '/' && *c != '=')
                        return -EBADMSG;
                b[n++] = *c;
        }
        if (n == 0)
                return -EBADMSG;
        b[n] = 0;
        *ret = TAKE_PTR(b);
        return 0;
}
