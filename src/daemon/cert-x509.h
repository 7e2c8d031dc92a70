/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The X.509 side of the node's certificate (GnuTLS): a new key and PKCS#10
 * request for the node's names, the check of a set the control server sent
 * or the directory holds, and the check of a mesh CA against what was pinned
 * at join. No state: the CertKeeper (cert.h) decides what to do with it. */

#include <stdint.h>

#include <string.h>

#include "ca-check.h"
#include "macro.h"

/* The key and PKCS#10 request (both PEM, NUL-terminated, the key PKCS#8)
 * for the names: CN = dns[0], subjectAltNames = every DNS name, then every
 * IP address (text form). dns must hold at least one name. */
int cert_make_request(char *const *dns, char *const *ips, char **ret_key_pem, char **ret_csr_pem);

typedef struct CertInfo {
        uint64_t not_before_usec, not_after_usec; /* REALTIME */
        char **names;                             /* subjectAltNames: DNS, IP as text */
        char *serial;                             /* hex */
} CertInfo;

void cert_info_done(CertInfo *i);

/* Checks a set: the certificate parses, carries key_pem's public key and is
 * signed by ca_pem (validity times are the caller's business). -EBADMSG
 * with a one-line *ret_error otherwise. */
int cert_check(const char *cert_pem, const char *key_pem, const char *ca_pem, CertInfo *ret, char **ret_error);

/* What a mesh CA must be: confined by critical name constraints to exactly
 * domain, ipv4_range and ipv6_range (ca_check_constraints()), and, when
 * sha256 is set, the CA pinned at join. domain NULL (no netmap yet) refuses
 * every CA. */
typedef struct CertPins {
        const char *domain;
        const char *ipv4_range;
        const char *ipv6_range; /* may be NULL */
        const char *sha256;     /* hex; NULL until the first CA was accepted */
} CertPins;

/* 0 and the CA's fingerprint in sha when pem passes the pins; -EBADMSG
 * (or another -errno) with a one-line *ret_error otherwise. */
int cert_check_ca(const char *pem, const CertPins *pins, char sha[static CA_SHA256_HEX_LEN + 1],
                  char **ret_error);

/* For _cleanup_ of a PEM key: overwritten before it is freed. */
static inline void cert_erase_key(char **pem) {
        if (*pem) {
                erase_and_free(*pem, strlen(*pem));
                *pem = NULL;
        }
}
