/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The requests of meshd-control's API (docs/protocol.md) that meshd
 * makes; their transfers are control-transfer.c's. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "control-client-internal.h"
#include "log.h"
#include "macro.h"
#include "msg-cert.h"
#include "msg-endpoints.h"
#include "msg-register.h"
#include "msg-routes.h"
#include "register-proof.h"
#include "strv.h"
#include "varlink.h" /* _cleanup_json_ */

/* ---- public API */

int control_client_new(sd_event *event, const char *url, const char *pin, ControlClient **ret) {
        _cleanup_(control_client_freep) ControlClient *c = NULL;
        const char *reason = NULL;
        int r;

        if (!event || !url || !pin || !ret)
                return -EINVAL;
        if (strncmp(pin, "sha256//", 8) != 0 || !pin[8])
                return log_debug_errno(-EINVAL, "Control pin must be sha256//BASE64: %s", pin);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);

        /* replicas of one mesh: every URL is checked against the one pin */
        r = control_urls_parse(url, &c->urls, &reason, NULL);
        if (r == -EINVAL)
                return log_debug_errno(r, "Control URL %s: %s", url, strna(reason));
        if (r < 0)
                return r;
        c->urls_text = strdup(url);
        c->pin = strdup(pin);
        if (!c->urls_text || !c->pin)
                return -ENOMEM;
        for (char **u = c->urls; *u; u++) {
                size_t n = strlen(*u);
                while (n > 8 && (*u)[n - 1] == '/')
                        (*u)[--n] = 0;
        }
        c->choice = (ControlUrlChoice) { .n = strv_length(c->urls) };

        r = curl_event_new(event, "control-client-curl", on_curl_done, c, &c->curl);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

static void join_done(ControlClient *c) {
        erase_string(&c->join.authkey);
        explicit_bzero(&c->join.private_key, sizeof(c->join.private_key));
        c->join.hostname = mfree(c->join.hostname);
        c->join.endpoints = strv_free(c->join.endpoints);
        c->join.callback = NULL;
        c->join.userdata = NULL;
}

void client_free_now(ControlClient *c) {
        transfer_free(c->register_transfer);
        join_done(c);
        transfer_free(c->endpoints_transfer);
        transfer_free(c->routes_transfer);
        transfer_free(c->ca_transfer);
        transfer_free(c->cert_transfer);
        transfer_free(c->poll_transfer);
        /* deferred by curl-event.c when called from its dispatch */
        curl_event_free(c->curl);
        sd_event_source_disable_unref(c->poll_timer);
        sd_event_source_disable_unref(c->failback_timer);
        sd_event_unref(c->event);
        erase_string(&c->token);
        strv_free(c->urls);
        free(c->urls_text);
        free(c->pin);
        free(c);
}

ControlClient *control_client_free(ControlClient *c) {
        if (!c)
                return NULL;
        if (c->dispatching > 0) {
                /* Called from one of our callbacks: no more callbacks from
                 * now on, the memory goes when the dispatch loop unwinds. */
                c->free_requested = true;
                c->polling = false;
                return NULL;
        }
        client_free_now(c);
        return NULL;
}

const char *control_client_get_url(const ControlClient *c) {
        return c ? c->urls[c->choice.current] : NULL;
}

const char *control_client_get_urls(const ControlClient *c) {
        return c ? c->urls_text : NULL;
}

/* The register itself, once the challenge is answered: the proof binds
 * challenge, key, hostname and auth key (docs/protocol.md, "Joining"). */
static int join_send_register(ControlClient *c, const char *challenge, const WgKey *server_key) {
        char proof[REGISTER_PROOF_B64_LEN + 1];
        char *body;
        Transfer *t;
        int r;

        r = register_proof_compute(&c->join.private_key, server_key,
                                   &(RegisterProofFields) {
                                           .challenge = challenge,
                                           .public_key = c->join.public_key,
                                           .hostname = c->join.hostname,
                                           .authkey = c->join.authkey,
                                   },
                                   proof);
        if (r < 0)
                return r;

        r = register_request_render(
                &(RegisterRequest) {
                        .authkey = c->join.authkey,
                        .public_key = c->join.public_key,
                        .hostname = c->join.hostname,
                        .challenge = challenge,
                        .proof = proof,
                        .endpoints = c->join.endpoints,
                        /* the peers come with the first long-poll: a
                         * registration stays small in a mesh of any size */
                        .netmap_self = true,
                },
                &body);
        if (r < 0)
                return r;
        r = transfer_new(c, TRANSFER_REGISTER, "/v1/register", NULL, body, REQUEST_TIMEOUT_MS, &t);
        if (r < 0)
                return r;
        t->callback = c->join.callback;
        t->userdata = c->join.userdata;
        c->register_transfer = t;
        return 0;
}

static void on_challenge_reply(ControlClient *c, int error, const char *message, const char *body, size_t len,
                               void *userdata) {
        ControlReplyCallback callback = c->join.callback;
        void *cb_userdata = c->join.userdata;
        _cleanup_free_ char *challenge = NULL;
        WgKey key;
        int r;

        if (error < 0) {
                join_done(c);
                callback(c, error, message, NULL, 0, cb_userdata);
                return;
        }
        r = challenge_reply_parse(body, len, &challenge, &key);
        if (r == -ENOMEM) {
                join_done(c);
                callback(c, r, "out of memory", NULL, 0, cb_userdata);
                return;
        }
        if (r < 0) {
                join_done(c);
                callback(c, -EBADMSG, "malformed challenge from the control server", NULL, 0, cb_userdata);
                return;
        }
        r = join_send_register(c, challenge, &key);
        join_done(c);
        if (r == -EINVAL)
                callback(c, -EBADMSG, "the control server's challenge key is of low order", NULL, 0,
                         cb_userdata);
        else if (r < 0)
                callback(c, r, r == -ENOMEM ? "out of memory" : "cannot answer the challenge", NULL, 0,
                         cb_userdata);
}

int control_client_register(ControlClient *c, const char *authkey, const WgKey *private_key,
                            const char *hostname, char *const *endpoints, ControlReplyCallback callback,
                            void *userdata) {
        WgKey public_key;
        Transfer *t;
        char *body;
        int r;

        if (!c || !authkey || !private_key || !hostname || !callback)
                return -EINVAL;
        if (c->free_requested)
                return -ESTALE;
        if (c->register_transfer)
                return -EBUSY;
        r = key_public_from_private(private_key, &public_key);
        if (r < 0)
                return r;

        /* first a challenge; on_challenge_reply() then sends the register */
        c->join.authkey = strdup(authkey);
        c->join.hostname = strdup(hostname);
        c->join.private_key = *private_key;
        key_to_base64(&public_key, c->join.public_key);
        c->join.callback = callback;
        c->join.userdata = userdata;
        body = strdup("{}");
        if (!c->join.authkey || !c->join.hostname || !body || strv_copy(endpoints, &c->join.endpoints) < 0) {
                free(body);
                join_done(c);
                return -ENOMEM;
        }
        r = transfer_new(c, TRANSFER_CHALLENGE, "/v1/challenge", NULL, body, REQUEST_TIMEOUT_MS, &t);
        if (r < 0) {
                join_done(c);
                return r;
        }
        t->callback = on_challenge_reply;
        t->userdata = c;
        c->register_transfer = t;
        return 0;
}

static void poll_reset(ControlClient *c);

int control_client_start_polling(ControlClient *c, const char *token, uint64_t since_version,
                                 ControlReplyCallback callback, void *userdata) {
        char *t;

        if (!c || !token || !token[0] || !callback)
                return -EINVAL;
        if (c->free_requested)
                return -ESTALE;

        t = strdup(token);
        if (!t)
                return -ENOMEM;

        /* Starting again replaces the running loop (new token after a login). */
        poll_reset(c);

        c->token = t;
        c->netmap_version = since_version;
        c->poll_callback = callback;
        c->poll_userdata = userdata;
        c->polling = true;
        c->backoff_usec = 0;
        c->poll_generation++;
        /* Started from the event loop rather than here, so the callback never
         * runs before this function returned. */
        poll_schedule(c, 0);
        return 0;
}

void control_client_set_netmap_version(ControlClient *c, uint64_t version) {
        if (!c)
                return;
        c->netmap_version = version;
        c->replica_changed = false;
}

bool control_client_replica_changed(const ControlClient *c) {
        return c && c->replica_changed;
}

static void poll_reset(ControlClient *c) {
        c->polling = false;
        c->poll_generation++;
        c->poll_transfer = transfer_free(c->poll_transfer);
        if (c->poll_timer)
                (void) sd_event_source_set_enabled(c->poll_timer, SD_EVENT_OFF);
        erase_string(&c->token);
}

void control_client_set_fwmark(ControlClient *c, uint32_t mark) {
        if (c)
                c->fwmark = mark;
}

int control_client_reconnect(ControlClient *c) {
        if (!c)
                return -EINVAL;
        if (!c->polling)
                return 0;
        /* The running poll's connection may be bound to an address we no
         * longer have; it would only notice after its keepalive gives up. */
        c->poll_generation++;
        c->poll_transfer = transfer_free(c->poll_transfer);
        c->backoff_usec = 0;
        c->fresh_connect = true;
        poll_schedule(c, 0);
        return 0;
}

void control_client_stop_polling(ControlClient *c) {
        if (!c)
                return;
        poll_reset(c);
        c->connected = false;
}

bool control_client_is_connected(const ControlClient *c) {
        return c && c->connected;
}

/* Fire and forget: only the newest body of a kind matters, so it replaces
 * one still in flight in *slot. */
static int client_post(ControlClient *c, TransferKind kind, const char *path, Transfer **slot, char *body) {
        Transfer *t;
        int r;

        *slot = transfer_free(*slot);
        r = transfer_new(c, kind, path, c->token, body, REQUEST_TIMEOUT_MS, &t);
        if (r < 0)
                return r;
        *slot = t;
        return 0;
}

static int client_check_authenticated(const ControlClient *c) {
        if (!c)
                return -EINVAL;
        if (c->free_requested)
                return -ESTALE;
        if (!c->token)
                return -ENOTCONN;
        return 0;
}

int control_client_post_endpoints(ControlClient *c, char *const *endpoints) {
        char *body;
        int r;

        r = client_check_authenticated(c);
        if (r < 0)
                return r;
        r = endpoints_request_render(endpoints, &body);
        if (r < 0)
                return r;
        return client_post(c, TRANSFER_ENDPOINTS, "/v1/endpoints", &c->endpoints_transfer, body);
}

int control_client_post_routes(ControlClient *c, const InAddrPrefix *routes, size_t n,
                               ControlReplyCallback callback, void *userdata) {
        char *body;
        int r;

        r = client_check_authenticated(c);
        if (r < 0)
                return r;
        r = routes_request_render(routes, n, &body);
        if (r < 0)
                return r;
        /* the newest set is the one that counts: it replaces one in flight */
        r = client_post(c, TRANSFER_ROUTES, "/v1/routes", &c->routes_transfer, body);
        if (r < 0)
                return r;
        c->routes_transfer->callback = callback;
        c->routes_transfer->userdata = userdata;
        return 0;
}

/* One request of a kind at a time, answered through callback like a register. */
static int client_request(ControlClient *c, TransferKind kind, const char *path, const char *token, char *body,
                          Transfer **slot, ControlReplyCallback callback, void *userdata) {
        Transfer *t;
        int r;

        if (*slot) {
                erase_string(&body);
                return -EBUSY;
        }
        r = transfer_new(c, kind, path, token, body, REQUEST_TIMEOUT_MS, &t);
        if (r < 0)
                return r;
        t->callback = callback;
        t->userdata = userdata;
        *slot = t;
        return 0;
}

int control_client_get_ca(ControlClient *c, ControlReplyCallback callback, void *userdata) {
        if (!c || !callback)
                return -EINVAL;
        if (c->free_requested)
                return -ESTALE;
        return client_request(c, TRANSFER_CA, "/v1/ca", NULL, NULL, &c->ca_transfer, callback, userdata);
}

int control_client_post_cert(ControlClient *c, const char *token, const char *csr_pem,
                             ControlReplyCallback callback, void *userdata) {
        char *body;
        int r;

        if (!c || !token || !token[0] || !csr_pem || !callback)
                return -EINVAL;
        if (c->free_requested)
                return -ESTALE;
        if (c->cert_transfer)
                return -EBUSY;

        r = cert_request_render(csr_pem, &body);
        if (r < 0)
                return r;
        return client_request(c, TRANSFER_CERT, "/v1/cert", token, body, &c->cert_transfer, callback, userdata);
}
