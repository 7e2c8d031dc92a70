/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

#include "cert-dir.h"
#include "cert-internal.h"
#include "cert-reload.h"
#include "cert-x509.h"
#include "cert.h"
#include "control-client.h"
#include "log.h"
#include "messages.h"
#include "msg-cert.h"
#include "strv.h"
#include "time-util.h"
#include "varlink.h"

/* ---- policy ------------------------------------------------------------------------------- */

uint64_t cert_renewal_time(uint64_t not_before, uint64_t not_after, uint64_t obtained) {
        uint64_t start = not_before;

        if (obtained > start && obtained < not_after)
                start = obtained;
        if (not_after <= start)
                return 0;
        return not_after - (not_after - start) / 3;
}

uint64_t cert_retry_delay(uint64_t now, uint64_t not_after, unsigned failures) {
        uint64_t delay = CERT_RETRY_MIN_USEC;

        for (unsigned i = 1; i < failures && delay < CERT_RETRY_MAX_USEC; i++)
                delay *= 2;
        delay = MIN(delay, CERT_RETRY_MAX_USEC);
        /* Still valid: try again well before it runs out. Expired: it is
         * useless anyway, plain backoff. */
        if (not_after > now)
                delay = MIN(delay, MAX((not_after - now) / 2, CERT_RETRY_MIN_USEC));
        return delay;
}

/* ---- the set we hold ---------------------------------------------------------------------- */

static void cert_keeper_drop_set(CertKeeper *k) {
        free(k->cert_pem);
        free(k->ca_pem);
        cert_erase_key(&k->key_pem);
        k->cert_pem = k->ca_pem = NULL;
        cert_info_done(&k->info);
}

static bool names_have_address(char *const *names) {
        unsigned char buf[sizeof(struct in6_addr)];

        for (char *const *n = names; n && *n; n++)
                if (inet_pton(AF_INET, *n, buf) == 1 || inet_pton(AF_INET6, *n, buf) == 1)
                        return true;
        return false;
}

static int cert_keeper_load(CertKeeper *k) {
        _cleanup_free_ char *cert = NULL, *ca = NULL, *error = NULL;
        _cleanup_(cert_erase_key) char *key = NULL;
        CertInfo info = {};
        uint64_t mtime;
        int r;

        r = cert_dir_read(k->directory, &cert, &key, &ca, &mtime);
        if (r >= 0 && !cert)
                return 0; /* never asked for */
        k->exists = true;
        if (r < 0)
                return log_warning_errno(r, "Cannot read the certificate in %s, requesting a new one: %m",
                                         k->directory);
        r = cert_check(cert, key, ca, &info, &error);
        if (r < 0)
                return log_warning_errno(r, "Certificate in %s is unusable (%s), requesting a new one.",
                                         k->directory, strna(error));

        k->cert_pem = TAKE_PTR(cert);
        k->key_pem = TAKE_PTR(key);
        k->ca_pem = TAKE_PTR(ca);
        k->info = info;
        k->obtained_usec = mtime;
        /* The mesh CA always certifies the node's addresses; a set without
         * any is an ACME CA's, whose names are what we ask for again (else
         * every restart would order a new one). */
        if (!names_have_address(k->info.names) && strv_copy(k->info.names, &k->issuer_names) < 0)
                return log_oom();
        log_info("Loaded certificate for %s (serial %s) from %s.", strna(info.names ? info.names[0] : NULL),
                 info.serial, k->directory);
        return 0;
}

/* ---- API replies -------------------------------------------------------------------------- */

static int calls_add(ApiCall ***l, size_t *n, ApiCall *call) {
        ApiCall **t = realloc(*l, (*n + 1) * sizeof(ApiCall *));

        if (!t)
                return -ENOMEM;
        *l = t;
        t[(*n)++] = api_call_ref(call);
        return 0;
}

/* Detaches the list first: a reply may run code that adds new calls. */
static void calls_reply_error(ApiCall ***l, size_t *n, const char *error, const char *message) {
        ApiCall **calls = TAKE_PTR(*l);
        size_t count = *n;

        *n = 0;
        for (size_t i = 0; i < count; i++) {
                (void) api_call_reply_errorf(calls[i], error, "%s", message);
                api_call_unref(calls[i]);
        }
        free(calls);
}

/* Each call gets its own reply object from make(k) (NULL: out of memory). */
static void calls_reply(ApiCall ***l, size_t *n, cJSON *(*make)(CertKeeper *k), CertKeeper *k) {
        ApiCall **calls = TAKE_PTR(*l);
        size_t count = *n;

        *n = 0;
        for (size_t i = 0; i < count; i++) {
                cJSON *o = make(k);
                if (o)
                        (void) api_call_reply(calls[i], o);
                else
                        (void) api_call_reply_errorf(calls[i], "org.varlink.service.InternalError",
                                                     "out of memory");
                api_call_unref(calls[i]);
        }
        free(calls);
}

static cJSON *cert_keeper_certificate_json(CertKeeper *k) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        cJSON *names;

        if (!o || !k->cert_pem || !cJSON_AddStringToObject(o, "certificate", k->cert_pem) ||
            !cJSON_AddStringToObject(o, "key", k->key_pem) || !cJSON_AddStringToObject(o, "ca", k->ca_pem) ||
            !cJSON_AddNumberToObject(o, "not_before_usec", (double) k->info.not_before_usec) ||
            !cJSON_AddNumberToObject(o, "not_after_usec", (double) k->info.not_after_usec) ||
            !cJSON_AddStringToObject(o, "directory", k->directory) ||
            !(names = cJSON_AddArrayToObject(o, "names")))
                return NULL;
        for (char **n = k->info.names; n && *n; n++) {
                cJSON *s = cJSON_CreateString(*n);
                if (!s || !cJSON_AddItemToArray(names, s)) {
                        cJSON_Delete(s);
                        return NULL;
                }
        }
        return TAKE_PTR(o);
}

/* The mesh CA: the set's ca.pem when that is the pinned CA; a set from an
 * ACME CA holds a public chain there instead. */
static const char *cert_keeper_ca(const CertKeeper *k) {
        char sha[CA_SHA256_HEX_LEN + 1];

        if (k->ca_pem && k->pin_ca_sha256 && ca_fingerprint_sha256(k->ca_pem, sha) >= 0 &&
            streq(sha, k->pin_ca_sha256))
                return k->ca_pem;
        return k->ca_cache;
}

/* The domain and ranges are the pinned ones: what `meshctl trust install`
 * checks the CA's name constraints against. */
static cJSON *cert_keeper_ca_json(CertKeeper *k) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();

        if (!o || !cert_keeper_ca(k) || !cJSON_AddStringToObject(o, "ca", cert_keeper_ca(k)) ||
            !cJSON_AddStringToObject(o, "domain", k->pin_domain ?: k->domain ?: k->ca_domain ?: "mesh.internal") ||
            (k->pin_ipv4_range && !cJSON_AddStringToObject(o, "ipv4_range", k->pin_ipv4_range)) ||
            (k->pin_ipv6_range && !cJSON_AddStringToObject(o, "ipv6_range", k->pin_ipv6_range)))
                return NULL;
        return TAKE_PTR(o);
}

static const char *error_name_from_control(int error) {
        switch (error) {
        case -EPERM:
        case -EACCES:
                return "io.meshd.CertificateRefused";
        case -EKEYREJECTED:
                return "io.meshd.PinMismatch";
        case -EBADMSG:
                return "io.meshd.ProtocolError";
        case -EHOSTUNREACH:
        case -ETIMEDOUT:
                return "io.meshd.ControlUnreachable";
        default:
                return "org.varlink.service.InternalError";
        }
}

/* ---- the mesh CA -------------------------------------------------------------------------- */

/* A CA confined to the pinned mesh by critical name constraints, and the
 * pinned one; the first that passes is pinned. Refusals are logged. */
static bool ca_is_usable(CertKeeper *k, const char *pem, char **ret_error) {
        _cleanup_free_ char *error = NULL;
        char sha[CA_SHA256_HEX_LEN + 1];
        CertPins pins = {
                .domain = k->pin_domain,
                .ipv4_range = k->pin_ipv4_range,
                .ipv6_range = k->pin_ipv6_range,
                .sha256 = k->pin_ca_sha256,
        };

        if (cert_check_ca(pem, &pins, sha, &error) < 0) {
                log_full_errno_fields(LOG_WARNING, 0, &((LogFields) { .message_id = MESSAGE_CA_REFUSED }),
                                      "Refusing the mesh CA from the control server: %s.", strna(error));
                if (ret_error)
                        *ret_error = TAKE_PTR(error);
                return false;
        }
        if (!k->pin_ca_sha256) {
                k->pin_ca_sha256 = strdup(sha);
                if (k->pin_ca_sha256 && k->ca_pinned)
                        k->ca_pinned(sha, k->userdata);
        }
        return true;
}

static void on_ca_reply(ControlClient *c, int error, const char *message, const char *body, size_t len,
                        void *userdata) {
        CertKeeper *k = userdata;
        _cleanup_(ca_reply_done) CaReply reply = {};
        _cleanup_free_ char *refusal = NULL, *text = NULL;

        k->ca_requesting = false;
        if (error < 0) {
                log_warning_errno(error, "Fetching the mesh CA failed: %s", strna(message));
                calls_reply_error(&k->ca_waiters, &k->n_ca_waiters, error_name_from_control(error),
                                  strna(message));
                return;
        }
        if (ca_reply_parse(body, len, &reply) < 0) {
                log_warning("Control server sent no usable CA certificate.");
                calls_reply_error(&k->ca_waiters, &k->n_ca_waiters, "io.meshd.ProtocolError",
                                  "no usable CA certificate in the reply");
                return;
        }
        if (!ca_is_usable(k, reply.ca, &refusal)) {
                if (asprintf(&text, "refusing the control server's CA: %s", strna(refusal)) < 0)
                        text = NULL;
                calls_reply_error(&k->ca_waiters, &k->n_ca_waiters, "io.meshd.ProtocolError", strna(text));
                return;
        }
        free(k->ca_cache);
        k->ca_cache = TAKE_PTR(reply.ca);
        if (reply.domain) {
                free(k->ca_domain);
                k->ca_domain = TAKE_PTR(reply.domain);
        }
        calls_reply(&k->ca_waiters, &k->n_ca_waiters, cert_keeper_ca_json, k);
}

int cert_keeper_get_ca(CertKeeper *k, ApiCall *call) {
        _cleanup_free_ char *error = NULL;
        int r;

        /* What we hold may predate the pins, or the set on disk may have
         * been swapped: checked on every use, it is cheap. */
        if (cert_keeper_ca(k) && !ca_is_usable(k, cert_keeper_ca(k), &error))
                return api_call_reply_errorf(call, "io.meshd.ProtocolError", "refusing the mesh CA: %s",
                                             strna(error));
        if (cert_keeper_ca(k)) {
                cJSON *o = cert_keeper_ca_json(k);
                return o ? api_call_reply(call, o) : -ENOMEM;
        }
        r = calls_add(&k->ca_waiters, &k->n_ca_waiters, call);
        if (r < 0)
                return r;
        if (k->ca_requesting)
                return 0;
        r = control_client_get_ca(k->control, on_ca_reply, k);
        if (r < 0) {
                log_error_errno(r, "Failed to ask for the mesh CA: %m");
                calls_reply_error(&k->ca_waiters, &k->n_ca_waiters, "org.varlink.service.InternalError",
                                  "cannot ask the control server");
                return 0;
        }
        k->ca_requesting = true;
        return 0;
}

/* ---- renewal ------------------------------------------------------------------------------ */

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void format_realtime(uint64_t usec, char *buf, size_t size) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, size, "@%" PRIu64, usec / USEC_PER_SEC);
}

static void cert_keeper_schedule(CertKeeper *k) {
        uint64_t now = clock_usec(CLOCK_REALTIME), not_after = k->cert_pem ? k->info.not_after_usec : 0, at;
        int r;

        if (!k->exists) {
                if (k->timer)
                        (void) sd_event_source_set_enabled(k->timer, SD_EVENT_OFF);
                return;
        }
        if (k->failures > 0)
                at = now + cert_retry_delay(now, not_after, k->failures);
        else if (k->cert_pem)
                at = cert_renewal_time(k->info.not_before_usec, not_after, k->obtained_usec);
        else
                at = now; /* unusable set: at once */
        at = MAX(at, now);

        if (k->timer) {
                r = sd_event_source_set_time(k->timer, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(k->timer, SD_EVENT_ONESHOT);
        } else {
                /* REALTIME: certificate times are wall-clock times, and a
                 * machine that slept past the renewal time renews on waking. */
                r = sd_event_add_time(k->event, &k->timer, CLOCK_REALTIME, at, 0, on_timer, k);
                if (r >= 0)
                        (void) sd_event_source_set_description(k->timer, "cert-renewal");
        }
        if (r < 0) {
                log_error_errno(r, "Failed to schedule certificate renewal, it will not be renewed: %m");
                return;
        }
        log_debug("Certificate renewal in %.1fs.", (double) (at - now) / (double) USEC_PER_SEC);
}

void cert_keeper_request_failed(CertKeeper *k, const char *error_name, const char *message) {
        calls_reply_error(&k->waiters, &k->n_waiters, error_name, message);
        /* Renewal goes on only for a certificate once obtained; a first
         * request is the caller's to repeat. */
        k->failures++;
        cert_keeper_schedule(k);
}

static int cert_keeper_renew(CertKeeper *k) {
        _cleanup_strv_free_ char **dns = NULL, **ips = NULL, **names = NULL;
        _cleanup_free_ char *csr = NULL;
        char *key = NULL;
        int r;

        if (k->requesting)
                return 0;
        if (!k->fqdn) {
                k->renew_when_named = true;
                log_debug("Certificate renewal waits for the netmap.");
                return 0;
        }

        if (k->issuer_names) {
                /* a public CA: its DNS names only, no mesh addresses */
                if (strv_copy(k->issuer_names, &dns) < 0 || strv_copy(k->issuer_names, &names) < 0)
                        return -ENOMEM;
        } else if (strv_consume(&dns, strdup(k->fqdn)) < 0 || strv_consume(&ips, strdup(k->ipv4)) < 0 ||
                   (k->ipv6 && strv_consume(&ips, strdup(k->ipv6)) < 0) ||
                   strv_consume(&names, strdup(k->fqdn)) < 0 || strv_consume(&names, strdup(k->ipv4)) < 0 ||
                   (k->ipv6 && strv_consume(&names, strdup(k->ipv6)) < 0))
                return -ENOMEM;

        r = cert_make_request(dns, ips, &key, &csr);
        if (r < 0)
                return log_error_errno(r, "Failed to make a key and certificate request: %m");
        r = control_client_post_cert(k->control, k->token, csr, on_cert_reply, k);
        if (r < 0) {
                erase_and_free(key, strlen(key));
                return log_error_errno(r, "Failed to send the certificate request: %m");
        }

        k->requesting = true;
        cert_erase_key(&k->pending_key_pem);
        k->pending_key_pem = key;
        free(k->pending_csr);
        k->pending_csr = TAKE_PTR(csr);
        strv_free(k->pending_names);
        k->pending_names = TAKE_PTR(names);
        log_info("Requesting a certificate for %s from %s.", k->fqdn, control_client_get_url(k->control));
        return 0;
}

void cert_keeper_renew_or_fail(CertKeeper *k) {
        if (cert_keeper_renew(k) < 0)
                cert_keeper_request_failed(k, "org.varlink.service.InternalError",
                                           "cannot make a certificate request");
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        cert_keeper_renew_or_fail(userdata);
        return 0;
}

static void cert_keeper_control_failed(CertKeeper *k, int error, const char *message) {
        char valid[128] = "", until[64];

        if (k->cert_pem) {
                format_realtime(k->info.not_after_usec, until, sizeof(until));
                snprintf(valid, sizeof(valid), " (valid until %s)", until);
        }
        if (error == -EPERM || error == -EACCES)
                log_full_errno_fields(LOG_WARNING, error, &((LogFields) { .message_id = MESSAGE_CERT_REFUSED }),
                                      "Control server refused a certificate for %s: %s. Keeping the "
                                      "files in %s%s.",
                                      strna(k->fqdn), strna(message), k->directory, k->cert_pem ? valid : "");
        else
                log_warning_errno(error, "Requesting a certificate for %s failed: %s", strna(k->fqdn),
                                  strna(message));
        cert_keeper_request_failed(k, error_name_from_control(error), strna(message));
}

/* The CA passes the pins, the certificate is for key and signed by the CA,
 * and it has not expired yet. */
static bool names_covered(char *const *have, char *const *want);

/* An ACME CA's certificate is checked against its chain, not the pinned
 * mesh CA, and may carry only names we asked for. */
static int cert_keeper_check_reply(CertKeeper *k, const CertReply *reply, const char *key, char *const *asked,
                                   uint64_t now, CertInfo *ret_info) {
        _cleanup_free_ char *check_error = NULL, *text = NULL;
        _cleanup_(cert_info_done) CertInfo info = {};
        bool acme = reply->issuer && streq(reply->issuer, "acme");
        int r;

        if (!acme && !ca_is_usable(k, reply->ca, &check_error))
                r = -EBADMSG;
        else
                r = cert_check(reply->certificate, key, reply->ca, &info, &check_error);
        if (r >= 0 && acme && !names_covered(asked, info.names)) {
                r = -EBADMSG;
                check_error = strdup("the ACME certificate names more than was asked for");
        }
        if (r >= 0 && info.not_after_usec <= now) {
                r = -EBADMSG;
                free(check_error);
                check_error = strdup("the certificate has already expired (clock skew?)");
        }
        if (r < 0) {
                if (asprintf(&text, "unusable certificate from the control server: %s", strna(check_error)) < 0)
                        text = NULL;
                log_warning("Control server sent an unusable certificate: %s", strna(check_error));
                cert_keeper_request_failed(k, "io.meshd.ProtocolError", strna(text));
                return r;
        }
        *ret_info = info;
        info = (CertInfo) {};
        return 0;
}

/* The new set, written and checked, becomes ours. */
static void cert_keeper_take_set(CertKeeper *k, CertReply *reply, char **key, CertInfo *info, uint64_t now) {
        char until[64];

        cert_keeper_drop_set(k);
        k->cert_pem = TAKE_PTR(reply->certificate);
        k->ca_pem = TAKE_PTR(reply->ca);
        k->key_pem = TAKE_PTR(*key);
        k->info = *info;
        *info = (CertInfo) {};
        k->obtained_usec = now;
        k->exists = true;

        /* A certificate that is due again at once would have us ask in a
         * tight loop: pace it like a failure. */
        k->failures = cert_renewal_time(k->info.not_before_usec, k->info.not_after_usec, now) <= now ? 1 : 0;
        if (k->failures > 0)
                log_warning("New certificate is already due for renewal; is the clock right?");

        format_realtime(k->info.not_after_usec, until, sizeof(until));
        log_full_errno_fields(LOG_NOTICE, 0, &((LogFields) { .message_id = MESSAGE_CERT_ISSUED }),
                              "New certificate for %s (serial %s), valid until %s, in %s.", strna(k->fqdn),
                              k->info.serial, until, k->directory);
}

void on_cert_reply(ControlClient *c, int error, const char *message, const char *body, size_t len,
                   void *userdata) {
        CertKeeper *k = userdata;
        _cleanup_(cert_erase_key) char *key = TAKE_PTR(k->pending_key_pem);
        _cleanup_strv_free_ char **names = TAKE_PTR(k->pending_names);
        _cleanup_(cert_reply_done) CertReply reply = {};
        _cleanup_(cert_info_done) CertInfo info = {};
        uint64_t now = clock_usec(CLOCK_REALTIME);
        int r;

        k->requesting = false;

        if (error >= 0 && cert_reply_parse(body, len, &reply) >= 0 && reply.pending) {
                cert_keeper_pending(k, &reply, &key, &names);
                return;
        }
        k->pending_csr = mfree(k->pending_csr);
        k->pending_noted = false;
        if (error < 0) {
                cert_keeper_control_failed(k, error, message);
                return;
        }
        if (!reply.certificate) {
                log_warning("Control server's certificate reply lacks certificate or ca.");
                cert_keeper_request_failed(k, "io.meshd.ProtocolError", "reply lacks certificate or ca");
                return;
        }
        if (cert_keeper_check_reply(k, &reply, key, names, now, &info) < 0)
                return;
        if (!reply.issuer) /* the mesh CA again */
                k->issuer_names = strv_free(k->issuer_names);

        r = cert_dir_store(k->directory, k->parent, reply.certificate, key, reply.ca);
        if (r < 0) {
                log_error_errno(r, "Failed to write the new certificate to %s, keeping the old one: %m",
                                k->directory);
                cert_keeper_request_failed(k, "org.varlink.service.InternalError",
                                           "cannot write the certificate directory");
                return;
        }

        cert_keeper_take_set(k, &reply, &key, &info, now);
        strv_free(k->requested_names);
        k->requested_names = TAKE_PTR(names);
        cert_keeper_schedule(k);
        cert_dir_write_stamp(k->directory, k->info.serial, k->info.not_after_usec);
        cert_reload_run(k->reload);
        calls_reply(&k->waiters, &k->n_waiters, cert_keeper_certificate_json, k);
}

/* ---- life cycle --------------------------------------------------------------------------- */

int cert_keeper_new(sd_event *event, const CertKeeperOptions *o, CertKeeper **ret) {
        _cleanup_(cert_keeper_freep) CertKeeper *k = NULL;
        _cleanup_free_ char *copy = NULL;
        int r;

        if (!event || !o || !o->directory || !o->control_url || !o->control_pin || !o->token || !ret)
                return -EINVAL;

        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->event = sd_event_ref(event);
        k->ca_pinned = o->ca_pinned;
        k->userdata = o->userdata;
        k->directory = strdup(o->directory);
        k->token = strdup(o->token);
        copy = strdup(o->directory);
        if (!k->directory || !k->token || !copy)
                return -ENOMEM;
        k->parent = strdup(dirname(copy));
        if (!k->parent)
                return -ENOMEM;
        r = cert_reload_new(event, k->directory, &k->reload);
        if (r < 0)
                return r;
        r = cert_keeper_set_reload_command(k, o->reload_command);
        if (r < 0)
                return r;

        r = control_client_new(event, o->control_url, o->control_pin, &k->control);
        if (r < 0)
                return r;
        control_client_set_fwmark(k->control, o->fwmark);

        cert_dir_remove_stale(k->parent);
        (void) cert_keeper_load(k);
        cert_keeper_schedule(k);

        *ret = TAKE_PTR(k);
        return 0;
}

CertKeeper *cert_keeper_free(CertKeeper *k) {
        if (!k)
                return NULL;
        calls_reply_error(&k->waiters, &k->n_waiters, "io.meshd.NotJoined", "this node left the mesh");
        calls_reply_error(&k->ca_waiters, &k->n_ca_waiters, "io.meshd.NotJoined", "this node left the mesh");
        /* A running ReloadCommand= goes on; we only stop watching it. */
        cert_reload_free(k->reload);
        sd_event_source_disable_unref(k->timer);
        control_client_free(k->control);
        cert_keeper_drop_set(k);
        cert_erase_key(&k->pending_key_pem);
        cert_erase_key(&k->token);
        sd_event_source_disable_unref(k->pending_timer);
        free(k->pending_csr);
        strv_free(k->issuer_names);
        strv_free(k->pending_names);
        strv_free(k->requested_names);
        free(k->ca_cache);
        free(k->ca_domain);
        free(k->pin_domain);
        free(k->pin_ipv4_range);
        free(k->pin_ipv6_range);
        free(k->pin_ca_sha256);
        free(k->fqdn);
        free(k->domain);
        free(k->ipv4);
        free(k->ipv6);
        free(k->directory);
        free(k->parent);
        sd_event_unref(k->event);
        free(k);
        return NULL;
}

static int strdup_or_null(const char *s, char **ret) {
        *ret = s ? strdup(s) : NULL;
        return !s || *ret ? 0 : -ENOMEM;
}

int cert_keeper_set_pins(CertKeeper *k, const char *domain, const char *ipv4_range, const char *ipv6_range,
                         const char *ca_sha256) {
        _cleanup_free_ char *d = NULL, *v4 = NULL, *v6 = NULL, *sha = NULL;

        if (strdup_or_null(domain, &d) < 0 || strdup_or_null(ipv4_range, &v4) < 0 ||
            strdup_or_null(ipv6_range, &v6) < 0 || strdup_or_null(ca_sha256, &sha) < 0)
                return -ENOMEM;
        free(k->pin_domain);
        free(k->pin_ipv4_range);
        free(k->pin_ipv6_range);
        free(k->pin_ca_sha256);
        k->pin_domain = TAKE_PTR(d);
        k->pin_ipv4_range = TAKE_PTR(v4);
        k->pin_ipv6_range = TAKE_PTR(v6);
        k->pin_ca_sha256 = TAKE_PTR(sha);
        return 0;
}

int cert_keeper_set_reload_command(CertKeeper *k, const char *command) {
        return cert_reload_set_command(k->reload, command);
}

static int set_field(char **field, const char *value, bool *changed) {
        char *v = NULL;

        if (streq_ptr(*field, value))
                return 0;
        if (value) {
                v = strdup(value);
                if (!v)
                        return -ENOMEM;
        }
        free(*field);
        *field = v;
        *changed = true;
        return 0;
}

static bool names_covered(char *const *have, char *const *want) {
        for (char *const *w = want; w && *w; w++) {
                bool found = false;
                for (char *const *h = have; h && *h && !found; h++)
                        found = strcasecmp(*h, *w) == 0;
                if (!found)
                        return false;
        }
        return true;
}

int cert_keeper_set_names(CertKeeper *k, const char *name, const char *domain, const char *ipv4,
                          const char *ipv6) {
        _cleanup_free_ char *fqdn = NULL;
        bool changed = false;
        int r;

        if (!k || !name || !domain || !ipv4)
                return -EINVAL;
        if (asprintf(&fqdn, "%s.%s", name, domain) < 0)
                return -ENOMEM;
        if ((r = set_field(&k->fqdn, fqdn, &changed)) < 0 ||
            (r = set_field(&k->domain, domain, &changed)) < 0 ||
            (r = set_field(&k->ipv4, ipv4, &changed)) < 0 || (r = set_field(&k->ipv6, ipv6, &changed)) < 0)
                return r;

        if (k->renew_when_named) {
                k->renew_when_named = false;
                cert_keeper_renew_or_fail(k);
                return 0;
        }

        if (changed && k->cert_pem && !k->requesting) {
                char *mesh[] = { k->fqdn, k->ipv4, k->ipv6, NULL };
                char *const *want = k->issuer_names ?: mesh;

                /* Renamed, or new addresses: once per change, so that a CA
                 * that will not issue a name cannot make us loop. */
                if (!names_covered(k->info.names, want) && !strv_equal(want, k->requested_names)) {
                        log_info("Certificate does not cover all of %s %s%s%s, renewing it.", k->fqdn, k->ipv4,
                                 k->ipv6 ? " " : "", k->ipv6 ?: "");
                        cert_keeper_renew_or_fail(k);
                }
        }
        return 0;
}

int cert_keeper_get_certificate(CertKeeper *k, bool renew, ApiCall *call) {
        int r;

        if (!renew && k->cert_pem && k->info.not_after_usec > clock_usec(CLOCK_REALTIME)) {
                cJSON *o = cert_keeper_certificate_json(k);
                return o ? api_call_reply(call, o) : -ENOMEM;
        }
        if (!k->fqdn)
                return api_call_reply_errorf(call, "io.meshd.ControlUnreachable",
                                             "no netmap from the control server yet, so this node's names "
                                             "are not known; try again in a moment");

        r = calls_add(&k->waiters, &k->n_waiters, call);
        if (r < 0)
                return r;
        cert_keeper_renew_or_fail(k);
        return 0;
}
