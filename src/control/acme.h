/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Node certificates from a public ACME CA (RFC 8555) with the DNS-01
 * challenge, instead of the mesh CA (docs/acme.md). The node's CSR comes
 * through POST /v1/cert as before; the order runs in lego (Debian's lego
 * package), one child process at a time, which publishes the
 * _acme-challenge TXT record by RFC 2136 dynamic update with TSIG at the
 * user's authoritative server and removes it afterwards. The HTTP handler
 * never waits: the first request queues the order and is told "pending",
 * later requests with the same key get the certificate, or the failure
 * until the backoff after it has passed. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

#define ACME_PROGRAM_DEFAULT "lego"
#define ACME_RETRY_MIN_DEFAULT_SEC 60
#define ACME_RETRY_MAX_SEC (6 * 3600)
/* the longest wait a CA's rate limit may ask for: Let's Encrypt's longest
 * window is a week */
#define ACME_RETRY_AFTER_MAX_SEC (8 * 24 * 3600)
/* an order that takes longer is killed: lego's own timeouts are shorter */
#define ACME_TIMEOUT_SEC 300
#define ACME_JOBS_MAX 4096

typedef struct AcmeConfig {
        const char *directory_url; /* the CA's directory */
        const char *email;         /* account contact; may be NULL */
        const char *ca_bundle;     /* PEM roots for the CA's HTTPS (a test CA); may be NULL */
        const char *dns_server;    /* the authoritative server: ADDR[:PORT] */
        const char *tsig_file;     /* its TSIG key: BIND or Knot syntax, mode 0600 */
        bool wildcard;             /* every node gets *.DOMAIN */
        uint64_t retry_min_sec;    /* first wait after a failed order; doubles */
        const char *program;       /* lego; NULL: ACME_PROGRAM_DEFAULT */
} AcmeConfig;

/* ---- acme-tsig.c: the TSIG key file ---- */

typedef struct AcmeTsig {
        char name[256];
        char algorithm[32]; /* "hmac-sha256" */
        char secret[256];   /* base64 */
} AcmeTsig;

/* BIND's `key "NAME" { algorithm ALG; secret "B64"; };` (tsig-keygen) or
 * Knot's `key: - id: NAME algorithm: ALG secret: B64` (keymgr -t). -EINVAL
 * with a one-line error naming what is missing or wrong. */
int acme_tsig_parse(const char *text, AcmeTsig *ret, char *error, size_t error_size);
/* Reads path, which must be a regular file not readable by group or others. */
int acme_tsig_load(const char *path, AcmeTsig *ret, char *error, size_t error_size);

/* ---- acme-error.c: what went wrong, from lego's output ---- */

/* One line naming the cause (TSIG refused, DNS server unreachable, rate
 * limit, order refused by the CA, CA unreachable) and lego's own words,
 * printable and bounded, from the output of a failed run. */
void acme_error_summary(const char *output, char *buf, size_t size);
/* Seconds from now_sec until the time a rate-limit line of the output says
 * to retry after ("retry after 2026-02-04 15:12:13 UTC", as Let's Encrypt
 * writes it), at most ACME_RETRY_AFTER_MAX_SEC; 0 when none, or past. */
uint64_t acme_error_retry_after(const char *output, uint64_t now_sec);

/* ---- acme.c: orders ---- */

typedef struct AcmeIssuer AcmeIssuer;

/* state_dir/acme (0700) holds the ACME account and, briefly, the CSR and
 * the certificate of the order that runs. Checks the configuration: the
 * TSIG file, the CA bundle. */
int acme_issuer_new(sd_event *event, const char *state_dir, const AcmeConfig *config, AcmeIssuer **ret);
AcmeIssuer *acme_issuer_free(AcmeIssuer *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(AcmeIssuer *, acme_issuer_free);

typedef enum AcmeState {
        ACME_PENDING,
        ACME_ISSUED,
        ACME_FAILED,
} AcmeState;

typedef struct AcmeResult {
        AcmeState state;
        uint64_t retry_after_sec; /* PENDING, FAILED */
        const char *leaf_pem;     /* ISSUED: owned by the issuer, valid until the next call */
        const char *chain_pem;    /* ISSUED: the intermediates */
        int64_t not_before, not_after;
        const char *error; /* FAILED: one line */
} AcmeResult;

/* The one name an ACME certificate of node carries: NAME.DOMAIN, or
 * *.DOMAIN in wildcard mode. */
int acme_issuer_name(const AcmeIssuer *a, const char *node, const char *domain, char **ret);

/* A checked CSR of node_id for name, with key_id the SHA-256 of its key:
 * the certificate when an order for this key is done, else the order's
 * state, queuing a new order when none runs for the node and the backoff
 * after a failure has passed. */
int acme_issuer_request(AcmeIssuer *a, int64_t node_id, const char *node, const char *name, const char *csr_pem,
                        const char *key_id, uint64_t now_sec, AcmeResult *ret);
