/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The node's TLS certificate for its mesh name and addresses (docs/api.md,
 * GetCertificate; docs/protocol.md, POST /v1/cert). A CertKeeper exists
 * while the node is joined. It makes a new ECDSA P-256 key and CSR for each
 * request (cert-x509.h), keeps the result in its directory (STATE_DIR/certs,
 * cert-dir.h), renews it when less than a third of its lifetime is left, and
 * then runs [Certificate] ReloadCommand= (cert-reload.h). Nothing happens
 * until a certificate was asked for once: renewal starts from the
 * certificate in the directory. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include <cjson/cJSON.h>

#include "api.h"
#include "macro.h"

/* Retries after a failed renewal: exponential from the minimum, never
 * longer than the maximum, and (while the certificate is valid) never
 * longer than half of what is left of it, so that several tries fit in
 * even when lifetimes are seconds (tests) rather than 30 days. */
#define CERT_RETRY_MIN_USEC (1 * USEC_PER_SEC)
#define CERT_RETRY_MAX_USEC (3600 * USEC_PER_SEC)

/* When to renew a certificate valid from not_before to not_after (REALTIME
 * µs) that we obtained at `obtained` (0: unknown): once less than a third of
 * its lifetime is left. The lifetime counts from when we got it, not from
 * not_before: the CA backdates that by minutes for clock skew, which would
 * otherwise eat up a short lifetime. 0 for nonsense times (renew now). */
uint64_t cert_renewal_time(uint64_t not_before, uint64_t not_after, uint64_t obtained);
/* The wait before the next try after `failures` (≥ 1) failures in a row, at
 * now, of a certificate valid until not_after (0: none). */
uint64_t cert_retry_delay(uint64_t now, uint64_t not_after, unsigned failures);

typedef struct CertKeeper CertKeeper;

typedef struct CertKeeperOptions {
        const char *directory; /* STATE_DIR/certs */
        const char *control_url;
        const char *control_pin;
        const char *token;          /* the node token */
        const char *reload_command; /* may be NULL */
        uint32_t fwmark;            /* SO_MARK of its control connections (exit-route.h), 0: none */
        /* Called when a CA was accepted while none was pinned (first fetch):
         * the caller stores the fingerprint, and passes it back with
         * cert_keeper_set_pins() from then on. */
        void (*ca_pinned)(const char *sha256_hex, void *userdata);
        void *userdata;
} CertKeeperOptions;

/* Loads the certificate in the directory, if any, and schedules its renewal.
 * curl_global_init() must have been called (it has its own control client). */
int cert_keeper_new(sd_event *event, const CertKeeperOptions *options, CertKeeper **ret);
/* Calls still waiting get io.meshd.NotJoined. */
CertKeeper *cert_keeper_free(CertKeeper *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(CertKeeper *, cert_keeper_free);

/* The node's own names from the netmap; a renewal that waited for them
 * starts, and a certificate without one of them is renewed. ipv6 may be NULL. */
int cert_keeper_set_names(CertKeeper *k, const char *name, const char *domain, const char *ipv4,
                          const char *ipv6);
int cert_keeper_set_reload_command(CertKeeper *k, const char *command);
/* What a CA must be confined to (critical name constraints permitting exactly
 * domain, ipv4_range and ipv6_range, which may be NULL) and, once known, its
 * pinned SHA-256 (hex). Until domain is known no CA is accepted. */
int cert_keeper_set_pins(CertKeeper *k, const char *domain, const char *ipv4_range, const char *ipv6_range,
                         const char *ca_sha256);

/* GetCertificate: replies with the Certificate object, at once when a valid
 * one is there and renew is false, else after asking the control server. */
int cert_keeper_get_certificate(CertKeeper *k, bool renew, ApiCall *call);
/* GetCertificateAuthority: {"ca", "domain", "ipv4_range", "ipv6_range"}, from
 * the cache or GET /v1/ca; a CA that fails the pins is an error. */
int cert_keeper_get_ca(CertKeeper *k, ApiCall *call);
