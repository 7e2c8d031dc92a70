/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* POST /v1/cert answered 202: the control server's ACME order for us runs
 * (docs/acme.md). The key and request stay here and are sent again. */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "cert-internal.h"
#include "log.h"
#include "strv.h"
#include "time-util.h"

/* Each name a pending reply asks for is ours, or the mesh's wildcard. */
static bool issuer_names_ok(const CertKeeper *k, char *const *names) {
        _cleanup_free_ char *wild = NULL;

        if (!names || !k->fqdn || !k->domain || asprintf(&wild, "*.%s", k->domain) < 0)
                return false;
        for (char *const *n = names; *n; n++)
                if (strcasecmp(*n, k->fqdn) != 0 && strcasecmp(*n, wild) != 0)
                        return false;
        return true;
}

static int on_pending_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        CertKeeper *k = userdata;
        int r;

        k->pending_timer = sd_event_source_disable_unref(k->pending_timer);
        if (!k->pending_csr) { /* a new request, for the issuer's names */
                k->requesting = false;
                cert_keeper_renew_or_fail(k);
                return 0;
        }
        r = control_client_post_cert(k->control, k->token, k->pending_csr, on_cert_reply, k);
        if (r < 0) {
                log_error_errno(r, "Failed to send the certificate request again: %m");
                k->requesting = false;
                k->pending_csr = mfree(k->pending_csr);
                cert_erase_key(&k->pending_key_pem);
                cert_keeper_request_failed(k, "org.varlink.service.InternalError",
                                           "cannot send the certificate request");
        }
        return 0;
}

/* 202: the server's ACME order runs. We ask again after retry_after with
 * the same request (the key stays here), or at once with a new one when the
 * issuer certifies other names than we asked for. The old set stays. */
void cert_keeper_pending(CertKeeper *k, CertReply *reply, char **key, char ***names) {
        uint64_t delay = reply->retry_after_sec * USEC_PER_SEC;
        int r;

        if (reply->names && !issuer_names_ok(k, reply->names)) {
                log_warning("Control server's pending reply asks for names not this node's (%s).",
                            reply->names[0]);
                k->pending_csr = mfree(k->pending_csr);
                cert_keeper_request_failed(k, "io.meshd.ProtocolError", "pending reply names foreign names");
                return;
        }
        if (reply->names && !strv_equal(reply->names, *names)) {
                strv_free(k->issuer_names);
                k->issuer_names = TAKE_PTR(reply->names);
                k->pending_csr = mfree(k->pending_csr);
                log_info("Control server's certificate issuer certifies %s only, asking for that.",
                         k->issuer_names[0]);
        } else {
                k->pending_key_pem = TAKE_PTR(*key);
                k->pending_names = TAKE_PTR(*names);
                delay = MAX(delay, CERT_RETRY_MIN_USEC);
                if (!k->pending_noted)
                        log_info("Certificate for %s is pending at the control server (%s); asking again "
                                 "every few seconds, the current certificate stays.",
                                 strna(k->fqdn), strna(reply->detail));
                k->pending_noted = true;
        }
        k->requesting = true;
        r = sd_event_add_time_relative(k->event, &k->pending_timer, CLOCK_MONOTONIC, delay, 0, on_pending_timer,
                                       k);
        if (r < 0) {
                log_error_errno(r, "Failed to schedule the next certificate request: %m");
                k->requesting = false;
                k->pending_csr = mfree(k->pending_csr);
                cert_erase_key(&k->pending_key_pem);
                cert_keeper_request_failed(k, "org.varlink.service.InternalError", "cannot schedule");
        }
}
