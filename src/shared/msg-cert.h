/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The certificate messages between meshd and meshd-control
 * (docs/protocol.md): the POST /v1/cert request and reply and the GET /v1/ca
 * reply. Each is rendered and parsed here only, so both sides and the
 * fuzzer (fuzz-msg-cert) agree on one definition. Parsing checks the shape;
 * the PEM inside is the business of ca_sign_request() and cert_check(). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

struct cJSON;

/* a PEM CSR for one P-256 or RSA-4096 key with a few names fits in 8 KiB */
#define CERT_REQUEST_CSR_MAX 16384

/* POST /v1/cert body: {"csr": "-----BEGIN CERTIFICATE REQUEST-----…"}. */
int cert_request_render(const char *csr_pem, char **ret_body);
/* body: a JSON object. *ret_csr points into body. -EINVAL with a one-line
 * error (for the 400 reply) when csr is missing, empty, longer than
 * CERT_REQUEST_CSR_MAX or not PEM-armoured as a request. */
int cert_request_parse(const struct cJSON *body, const char **ret_csr, char *error, size_t error_size);

/* POST /v1/cert reply: {"certificate": PEM, "ca": PEM, "not_before": s,
 * "not_after": s} (seconds since the epoch), and "issuer": "acme" when a
 * public ACME CA issued it (then "ca" is the chain of intermediates, not the
 * mesh CA).
 *
 * Or, with 202, an order still running at an ACME CA: {"status": "pending",
 * "retry_after": s, "names": ["n1.mesh.example.org"], "detail": text}. The
 * node asks again after retry_after with the same CSR; "names" says which
 * DNS names the issuer will certify, so a CSR that asks for others (the
 * node's IP addresses, which public CAs do not certify) is made again for
 * exactly those. */
#define CERT_PENDING_NAMES_MAX 4
#define CERT_RETRY_AFTER_MAX_SEC 3600

typedef struct CertReply {
        char *certificate;
        char *ca;
        int64_t not_before, not_after; /* 0 when absent: meshd reads the certificate's own */
        char *issuer;                  /* NULL: the mesh CA */

        bool pending;
        uint64_t retry_after_sec; /* capped at CERT_RETRY_AFTER_MAX_SEC */
        char **names;             /* NULL when absent */
        char *detail;
} CertReply;

void cert_reply_done(CertReply *r);
int cert_reply_render(const char *certificate, const char *ca, int64_t not_before, int64_t not_after,
                      char **ret_body);
/* issuer may be NULL (the mesh CA). */
int cert_reply_render_issued(const char *certificate, const char *ca, int64_t not_before, int64_t not_after,
                             const char *issuer, char **ret_body);
/* names: NULL-terminated, at most CERT_PENDING_NAMES_MAX; detail may be NULL. */
int cert_pending_render(uint64_t retry_after_sec, char *const *names, const char *detail, char **ret_body);
/* -EBADMSG when certificate or ca is missing or not a string (unless
 * pending), or a pending reply's names are not an array of at most
 * CERT_PENDING_NAMES_MAX strings. */
int cert_reply_parse(const char *body, size_t len, CertReply *ret);

/* GET /v1/ca reply: {"ca": PEM, "domain": "mesh.internal"}. */
typedef struct CaReply {
        char *ca;
        char *domain; /* NULL when absent or null */
} CaReply;

void ca_reply_done(CaReply *r);
/* domain must be set. */
int ca_reply_render(const char *ca, const char *domain, char **ret_body);
/* -EBADMSG when ca is missing or not a string, or domain is neither a
 * string nor null. */
int ca_reply_parse(const char *body, size_t len, CaReply *ret);
