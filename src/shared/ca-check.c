/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ca-check.h"
#include "endpoint.h"
#include "error-message.h"
#include "gnutls-util.h"

#define fail(ret_error, ...) error_setf(ret_error, -EBADMSG, __VA_ARGS__)

static int crt_import(gnutls_x509_crt_t *crt, const char *pem) {
        gnutls_datum_t d = { .data = (unsigned char *) pem, .size = pem ? (unsigned) strlen(pem) : 0 };
        int rc = gnutls_x509_crt_init(crt);

        return rc < 0 ? rc : gnutls_x509_crt_import(*crt, &d, GNUTLS_X509_FMT_PEM);
}

int ca_fingerprint_sha256(const char *pem, char *buf) {
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        unsigned char md[32];
        size_t size = sizeof(md);

        if (crt_import(&crt, pem) < 0 ||
            gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, md, &size) < 0 || size != sizeof(md))
                return -EBADMSG;
        for (size_t i = 0; i < size; i++)
                sprintf(buf + 2 * i, "%02x", md[i]);
        return 0;
}

/* RFC 5280 4.2.1.10: address then mask, 8 bytes for IPv4, 32 for IPv6. */
static int range_to_subtree(const char *range, unsigned char buf[32], unsigned *ret_len) {
        union in_addr_union a;
        uint8_t prefixlen;
        size_t len;
        int family;

        if (!range || in_addr_prefix_parse(range, &family, &a, &prefixlen) < 0)
                return -EINVAL;
        len = family == AF_INET ? 4 : 16;
        memset(buf, 0, 32);
        for (size_t i = 0; i < len; i++) {
                unsigned bits = prefixlen > i * 8 ? MIN(prefixlen - i * 8, 8u) : 0;
                buf[len + i] = (unsigned char) (0xff00 >> bits);
                buf[i] = a.bytes[i] & buf[len + i];
        }
        *ret_len = (unsigned) (2 * len);
        return 0;
}

/* Which of the wanted subtrees (DNS domain, IPv4, IPv6) this one is; -1 for none. */
static int subtree_index(unsigned type, const gnutls_datum_t *name, const char *domain,
                         const unsigned char want[2][32], const unsigned want_len[2]) {
        if (type == GNUTLS_SAN_DNSNAME)
                return name->size == strlen(domain) &&
                                       strncasecmp((const char *) name->data, domain, name->size) == 0
                               ? 0
                               : -1;
        if (type != GNUTLS_SAN_IPADDRESS)
                return -1;
        for (int i = 0; i < 2; i++)
                if (want_len[i] > 0 && name->size == want_len[i] &&
                    memcmp(name->data, want[i], want_len[i]) == 0)
                        return i + 1;
        return -1;
}

int ca_check_constraints(const char *pem, const char *domain, const char *ipv4_range, const char *ipv6_range,
                         char **ret_error) {
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        _cleanup_(gnutls_x509_name_constraints_deinitp) gnutls_x509_name_constraints_t nc = NULL;
        unsigned char want[2][32];
        unsigned want_len[2] = {}, critical = 0;
        bool seen[3] = {};
        int rc;

        if (!domain || range_to_subtree(ipv4_range, want[0], &want_len[0]) < 0 ||
            (ipv6_range && range_to_subtree(ipv6_range, want[1], &want_len[1]) < 0))
                return fail(ret_error, "the mesh's domain and ranges are not known");
        if (crt_import(&crt, pem) < 0)
                return fail(ret_error, "the CA is not a PEM certificate");
        if (gnutls_x509_crt_get_ca_status(crt, &critical) <= 0)
                return fail(ret_error, "the certificate is not a CA (no CA:TRUE)");

        rc = gnutls_x509_name_constraints_init(&nc);
        if (rc < 0)
                return rc == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EIO;
        critical = 0;
        rc = gnutls_x509_crt_get_name_constraints(crt, nc, 0, &critical);
        if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                return fail(ret_error, "the CA has no name constraints: it could vouch for any name");
        if (rc < 0)
                return fail(ret_error, "the CA's name constraints are unreadable: %s", gnutls_strerror(rc));
        if (!critical)
                return fail(ret_error, "the CA's name constraints are not critical");

        for (unsigned i = 0;; i++) {
                gnutls_datum_t name = {};
                unsigned type = 0;
                int k;

                rc = gnutls_x509_name_constraints_get_permitted(nc, i, &type, &name);
                if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                        break;
                if (rc < 0)
                        return fail(ret_error, "the CA's name constraints are unreadable: %s",
                                    gnutls_strerror(rc));
                k = subtree_index(type, &name, domain, (const unsigned char(*)[32]) want, want_len);
                if (k < 0)
                        return fail(ret_error, "the CA permits names outside the mesh %s", domain);
                seen[k] = true;
        }
        if (!seen[0] || !seen[1] || (ipv6_range && !seen[2]))
                return fail(ret_error, "the CA's name constraints do not confine it to %s, %s%s%s", domain,
                            ipv4_range, ipv6_range ? " and " : "", ipv6_range ?: "");
        return 0;
}
