/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The mesh's private certificate authority (docs/protocol.md, POST /v1/cert).
 * Its certificate carries a critical nameConstraints extension permitting
 * only the mesh domain and the mesh address ranges, so a system that trusts
 * it (`meshctl trust install`) trusts it for mesh names and nothing else,
 * even if the CA key leaks. It signs a node's CSR only for that node's own
 * names, and always issues all of them. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define CA_KEY_FILE "ca-key.pem"
#define CA_CERT_FILE "ca-cert.pem"
#define CA_LIFETIME_SEC (10ULL * 365 * 24 * 3600)
#define CERT_LIFETIME_DEFAULT_SEC (30ULL * 24 * 3600)
/* clocks of nodes that are a little behind still accept a fresh certificate */
#define CERT_BACKDATE_SEC 300

typedef struct CertAuthority CertAuthority;

/* A new CA: its key and certificate as one PEM text (the key first) into
 * ret_pem, which the store keeps (setting "ca_pem"). ipv4_range,
 * ipv6_range: "ADDR/LEN" (ipv6_range may be NULL). */
int ca_generate(const char *domain, const char *ipv4_range, const char *ipv6_range, char **ret_pem);
/* The CA files of a state directory from before the store kept it, as one
 * PEM text like ca_generate()'s: -ENOENT when dir holds none. */
int ca_read_files(const char *dir, char **ret_pem);
/* The key's length in pem and where its certificate starts; -EBADMSG when
 * pem is not a key followed by a certificate. */
int ca_pem_split(const char *pem, size_t *ret_key_len, const char **ret_crt);
/* From ca_generate()'s text. */
int ca_load(const char *pem, CertAuthority **ret);
CertAuthority *ca_free(CertAuthority *ca);
DEFINE_TRIVIAL_CLEANUP_FUNC(CertAuthority *, ca_free);

const char *ca_certificate_pem(const CertAuthority *ca);

/* Who asks: a member's own names, as the store has them. */
typedef struct CertIdentity {
        const char *name;   /* DNS label, e.g. "nas" */
        const char *domain; /* "mesh.internal" */
        const char *ipv4;
        const char *ipv6; /* may be NULL */
} CertIdentity;

typedef enum CertNameType {
        CERT_NAME_DNS,
        CERT_NAME_IP,
} CertNameType;

/* One name a CSR asks for; IP addresses as text (inet_ntop). */
typedef struct CertName {
        CertNameType type;
        char text[256];
} CertName;

/* 0 when every name belongs to id; -EPERM naming the first that does not
 * (DNS names compare case-insensitively, a trailing dot ignored; IP
 * addresses by value). */
int ca_check_names(const CertIdentity *id, const CertName *names, size_t n, char *error, size_t error_size);

#define CA_CSR_NAMES_MAX 32

/* The checks of ca_sign_request() without signing, for an issuer elsewhere
 * (acme.c): the request parses, its self-signature verifies, its key is
 * strong enough. Its names (subject CNs, subjectAltNames) into names, and
 * the SHA-256 of its public key (hex) into key_id. Errors as
 * ca_sign_request(). */
int ca_read_request(const char *csr_pem, CertName names[static CA_CSR_NAMES_MAX], size_t *ret_n,
                    char key_id[static 65], char *error, size_t error_size);

typedef struct IssuedCert {
        char *pem;
        int64_t not_before, not_after; /* seconds since the epoch */
} IssuedCert;

void issued_cert_done(IssuedCert *c);

/* Checks csr_pem (PEM PKCS#10: parses, self-signature, key strength, the
 * names of its subject CN and subjectAltNames via ca_check_names()) and
 * issues a certificate for all of id's names, valid from now −
 * CERT_BACKDATE_SEC for lifetime_sec. Errors: -EBADMSG a malformed or
 * badly signed request, -EPERM a name that is not id's or a weak key
 * (error says which, one line, for the client), other -errno internal. */
int ca_sign_request(CertAuthority *ca, const char *csr_pem, const CertIdentity *id, int64_t now,
                    uint64_t lifetime_sec, IssuedCert *ret, char *error, size_t error_size);
