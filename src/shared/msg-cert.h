/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The certificate messages between meshd and meshd-control
 * (docs/protocol.md): the POST /v1/cert request and reply and the GET /v1/ca
 * reply. Each is rendered and parsed here only, so both sides and the
 * fuzzer (fuzz-msg-cert) agree on one definition. Parsing checks the shape;
 * the PEM inside is the business of ca_sign_request() and cert_check(). */

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
 * "not_after": s} (seconds since the epoch). */
typedef struct CertReply {
        char *certificate;
        char *ca;
        int64_t not_before, not_after; /* 0 when absent: meshd reads the certificate's own */
} CertReply;

void cert_reply_done(CertReply *r);
int cert_reply_render(const char *certificate, const char *ca, int64_t not_before, int64_t not_after,
                      char **ret_body);
/* -EBADMSG when certificate or ca is missing or not a string. */
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
