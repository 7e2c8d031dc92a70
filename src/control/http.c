/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "ca.h"
#include "challenge.h"
#include "dns-label.h"
#include "endpoint.h"
#include "http.h"
#include "key.h"
#include "log.h"
#include "msg-cert.h"
#include "paths.h"
#include "register-proof.h"
#include "relay-admit.h"
#include "relay-frame.h"
#include "relay-listener.h"
#include "relay-server.h"
#include "request.h"
#include "time-util.h"
#include "tls.h"
#include "udp-echo.h"

#define BODY_MAX (1024 * 1024)
#define LONG_POLL_MAX_SEC 60
/* longer than a long-poll, so MHD never cuts one that is being answered */
#define CONNECTION_TIMEOUT_SEC 90
#define CONNECTION_LIMIT_MAX 16384
#define CONNECTION_MEMORY_LIMIT (8 * 1024)
/* how often we look whether another process (meshd-control nodes remove)
 * committed: store_changed() is one cheap read */
#define DB_POLL_USEC (250 * USEC_PER_MSEC)
#define DB_POLL_ACCURACY_USEC (10 * USEC_PER_MSEC)
/* A connection must deliver a complete request (headers and body) within
 * this long of being accepted or of its previous request's end, or it is
 * cut: the idle timeout alone would let a slow-loris client that sends a
 * byte every few seconds hold a connection forever. */
#define REQUEST_DEADLINE_USEC (10 * USEC_PER_SEC)
#define SWEEP_USEC USEC_PER_SEC
#define UNFINISHED_POLL_MSEC 10
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

typedef struct Request Request;
typedef struct Connection Connection;

/* One accepted socket, from MHD's connection notifications. */
struct Connection {
        Server *server;
        int fd;
        uint64_t since;   /* CLOCK_MONOTONIC µs: accepted, or its last request ended */
        bool in_request;  /* a complete request is being answered (a long-poll too) */
        bool cut;
        Connection *prev, *next;
};

struct Server {
        sd_event *event;
        Store *store;
        char *state_dir;
        union sockaddr_union listen;
        char listen_text[ENDPOINT_STRLEN];

        struct MHD_Daemon *daemon;
        char *key_pem, *cert_pem;
        sd_event_source *mhd_io, *mhd_timer, *db_poll, *sigterm, *sigint;

        uint64_t version;       /* highest netmap version seen */
        StoreWatch store_watch;
        NetmapSnapshot *snapshot;
        NetmapSnapshot *previous; /* the one before: the base of deltas */

        Request *waiters;       /* suspended GET /v1/netmap */
        size_t n_waiters;
        Connection *connections;
        sd_event_source *sweep;

        /* POST /v1/challenge, /v1/register */
        ChallengeSecret challenge_secret;
        ChallengeSet *used_challenges;
        bool expired_needs_admin;
        InAddrPrefix mesh_ranges[2]; /* no endpoint inside */

        /* POST /v1/cert */
        CertAuthority *ca;
        char *domain;
        uint64_t cert_lifetime_sec;
        bool running, stopping;

        /* the hub: options until server_run() starts it */
        bool hub_enabled;
        HubOptions hub_options;
        char *hub_ifname, *hub_public_key, *hub_endpoint;
        HubAllow *hub_allow;
        NetmapHub netmap_hub;
        Hub *hub;

        /* GET /v1/relay and the UDP echo: with the hub only */
        bool relay_disabled, udp_echo_disabled;
        unsigned relay_max_streams;
        RelayServer *relay;
        uint16_t relay_port;     /* the relay's own TLS port, 0: none */
        RelayListener *relay_listener;
        UdpEcho *echo;
        /* upgraded connections let go during MHD_run(), handed back after it */
        bool in_mhd_run;
        struct MHD_UpgradeResponseHandle **closing;
        size_t n_closing, n_closing_allocated;
        size_t n_unfinished; /* let go, but MHD has not closed the connection yet */
};

struct Request {
        Server *server;
        struct MHD_Connection *connection;
        Connection *conn;       /* NULL if MHD gave none */
        char *method, *path;
        unsigned status;        /* of the queued response, 0 before */

        char *body;
        size_t body_size;
        bool too_large;

        /* GET /v1/relay: whose stream the upgrade starts */
        char *relay_name;
        WgKey relay_key;

        /* GET /v1/netmap */
        bool authenticated;
        int64_t node_id;
        uint64_t since;
        bool delta;             /* &delta=1: a NETMAP DELTA is welcome */
        uint64_t deadline;      /* CLOCK_MONOTONIC, µs */
        bool waiting;
        sd_event_source *timeout_source;
        Request *waiters_prev, *waiters_next;
};

static void server_wake_waiters(Server *s);
static void server_schedule_mhd(Server *s);

static void request_unlink(Request *req) {
        Server *s = req->server;

        if (!req->waiting)
                return;
        if (req->waiters_prev)
                req->waiters_prev->waiters_next = req->waiters_next;
        else
                s->waiters = req->waiters_next;
        if (req->waiters_next)
                req->waiters_next->waiters_prev = req->waiters_prev;
        req->waiters_prev = req->waiters_next = NULL;
        req->waiting = false;
        s->n_waiters--;
        req->timeout_source = sd_event_source_disable_unref(req->timeout_source);
}

static Request *request_free(Request *req) {
        if (!req)
                return NULL;
        request_unlink(req);
        free(req->method);
        free(req->path);
        free(req->body);
        free(req->relay_name);
        free(req);
        return NULL;
}

/* Hands a waiter back to MHD, which calls the access handler again. */
static void request_resume(Request *req) {
        request_unlink(req);
        MHD_resume_connection(req->connection);
        server_schedule_mhd(req->server);
}

static enum MHD_Result request_reply(Request *req, unsigned status, char *body, size_t len) {
        struct MHD_Response *response;
        enum MHD_Result ret;

        if (body)
                response = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        else
                response = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!response) {
                free(body);
                return MHD_NO;
        }
        if (body)
                (void) MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        (void) MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                (void) MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW,
                                               streq(req->path, "/v1/netmap") || streq(req->path, "/v1/relay") ? "GET" : "POST");

        ret = MHD_queue_response(req->connection, status, response);
        MHD_destroy_response(response);
        if (ret == MHD_YES)
                req->status = status;
        return ret;
}

_printf_(3, 4)
static enum MHD_Result request_reply_error(Request *req, unsigned status, const char *format, ...) {
        _cleanup_(cJSON_Deletep) cJSON *o = NULL;
        char message[256];
        char *body;
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);

        o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "error", message))
                return MHD_NO;
        body = cJSON_PrintUnformatted(o);
        if (!body)
                return MHD_NO;
        return request_reply(req, status, body, strlen(body));
}

static enum MHD_Result request_reply_oom(Request *req) {
        (void) log_oom();
        return request_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
}

static enum MHD_Result request_reply_internal(Request *req) {
        return request_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error, see the server log");
}

/* ---- the netmap version and its snapshot ---- */

/* Called after our own commits and when another process committed. */
static void server_check_version(Server *s) {
        uint64_t v;
        int r;

        r = store_get_version(s->store, &v);
        if (r < 0)
                return; /* logged; the next poll tries again */
        if (v == s->version)
                return;

        log_debug("Netmap version %" PRIu64 " → %" PRIu64 ", waking %zu long-poll(s).", s->version, v,
                  s->n_waiters);
        s->version = v;
        /* a node that just registered handshakes with the hub at once */
        if (s->hub)
                (void) hub_sync(s->hub);
        server_wake_waiters(s);
}

static void on_hub_changed(Hub *h, void *userdata) {
        server_check_version(userdata);
}

static int server_get_snapshot(Server *s, NetmapSnapshot **ret) {
        NetmapSnapshot *snap;
        int r;

        if (!s->snapshot || netmap_snapshot_version(s->snapshot) < s->version) {
                r = netmap_snapshot_load(s->store, s->hub_enabled ? &s->netmap_hub : NULL, &snap);
                if (r < 0)
                        return r;
                netmap_snapshot_free(s->previous);
                s->previous = s->snapshot;
                s->snapshot = snap;
                /* the snapshot may be newer than what the poll saw so far */
                if (netmap_snapshot_version(snap) > s->version) {
                        s->version = netmap_snapshot_version(snap);
                        server_wake_waiters(s);
                }
        }
        *ret = s->snapshot;
        return 0;
}

static void server_wake_waiters(Server *s) {
        /* everyone sees every node, so every change concerns every waiter */
        while (s->waiters)
                request_resume(s->waiters);
}

/* ---- request parsing helpers ---- */

static int parse_uint64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end != 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

static const char *request_bearer_token_of(Request *req) {
        return request_bearer_token(MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND,
                                                                MHD_HTTP_HEADER_AUTHORIZATION));
}

/* Returns MHD_YES with *ret_id (and *ret_node, when not NULL) set when the
 * token belongs to a valid member; otherwise the error reply is queued and
 * *ret_id is -1. */
static enum MHD_Result request_authenticate_node(Request *req, int64_t *ret_id, StoreNode *ret_node) {
        _cleanup_(store_node_done) StoreNode node = {};
        const char *token;
        int r;

        *ret_id = -1;
        token = request_bearer_token_of(req);
        if (!token)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "missing node token");
        r = store_node_by_token(req->server->store, token, &node);
        if (r == -ENOENT)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "unknown node token");
        if (r < 0)
                return request_reply_internal(req);
        if (node.removed)
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node removed");
        if (node.expired)
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node %s expired, join again", node.name);

        req->node_id = *ret_id = node.id;
        if (ret_node) {
                *ret_node = node;
                node = (StoreNode) {};
        }
        return MHD_YES;
}

static enum MHD_Result request_authenticate(Request *req, int64_t *ret_id) {
        return request_authenticate_node(req, ret_id, NULL);
}

static cJSON *request_parse_body(Request *req) {
        return request_body_parse(req->body, req->body_size);
}

/* ---- handlers ---- */

static enum MHD_Result handle_challenge(Request *req) {
        Server *s = req->server;
        _cleanup_(cJSON_Deletep) cJSON *reply = NULL;
        _cleanup_free_ char *challenge = NULL;
        char server_key[WG_KEY_B64_LEN + 1];
        WgKey key;
        int64_t expires;
        char *text;
        int r;

        r = challenge_new(&s->challenge_secret, time(NULL), &challenge, &key, &expires);
        if (r == -ENOMEM)
                return request_reply_oom(req);
        if (r < 0)
                return request_reply_internal(req);
        key_to_base64(&key, server_key);

        reply = cJSON_CreateObject();
        if (!reply || !cJSON_AddStringToObject(reply, "challenge", challenge) ||
            !cJSON_AddStringToObject(reply, "server_key", server_key) ||
            !cJSON_AddNumberToObject(reply, "expires", (double) expires))
                return request_reply_oom(req);
        text = cJSON_PrintUnformatted(reply);
        if (!text)
                return request_reply_oom(req);
        return request_reply(req, MHD_HTTP_OK, text, strlen(text));
}

/* Proof of key possession (docs/protocol.md, "Joining"): MHD_YES with
 * *ret_ok set when the request proves it holds the private key of its
 * public_key; otherwise the 401 is queued. Each challenge is good once. */
static enum MHD_Result request_check_proof(Request *req, const RegisterRequest *parsed, int64_t *ret_expires,
                                           bool *ret_ok) {
        Server *s = req->server;
        WgKey server_private, node_public;
        int64_t expires, now = time(NULL);
        int r;

        *ret_ok = false;
        if (!parsed->challenge)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED,
                                           "challenge: missing, get one with POST /v1/challenge");
        if (!parsed->proof)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "proof: missing");
        r = challenge_check(&s->challenge_secret, parsed->challenge, now, &server_private, &expires);
        if (r == -ETIME)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "challenge: expired");
        if (r < 0)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "challenge: not issued by this server");

        r = key_from_base64(parsed->public_key, &node_public);
        if (r >= 0)
                r = register_proof_verify(&server_private, &node_public,
                                          &(RegisterProofFields) {
                                                  .challenge = parsed->challenge,
                                                  .public_key = parsed->public_key,
                                                  .hostname = parsed->hostname,
                                                  .authkey = parsed->authkey,
                                          },
                                          parsed->proof);
        explicit_bzero(&server_private, sizeof(server_private));
        if (r == -EINVAL)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "public_key: of low order, proves nothing");
        if (r < 0) {
                log_notice("Refused a registration for key %s: invalid proof of key possession.",
                           parsed->public_key);
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED,
                                           "proof: invalid, the private key of public_key did not sign this request");
        }

        r = challenge_set_check(s->used_challenges, parsed->challenge, now);
        if (r == -EALREADY)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "challenge: already used");
        if (r == -ENOSPC)
                return request_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "too many registrations, try again later");
        if (r < 0)
                return request_reply_oom(req);
        *ret_expires = expires;
        *ret_ok = true;
        return MHD_YES;
}

static enum MHD_Result handle_register(Request *req) {
        Server *s = req->server;
        _cleanup_(cJSON_Deletep) cJSON *body = NULL, *reply = NULL;
        _cleanup_(store_node_done) StoreNode node = {};
        _cleanup_(register_request_done) RegisterRequest parsed = {};
        _cleanup_free_ char *label = NULL, *token = NULL, *netmap = NULL;
        NetmapSnapshot *snap;
        enum MHD_Result ret;
        int64_t challenge_expires = 0;
        bool proven;
        char error[128];
        size_t netmap_len;
        char *text;
        int r;

        body = request_parse_body(req);
        if (!body)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "body: not a JSON object");

        r = register_request_parse(body, &parsed, error, sizeof(error));
        if (r == -ENOMEM)
                return request_reply_oom(req);
        if (r < 0)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", error);

        r = endpoints_check_announceable(parsed.endpoints, s->mesh_ranges, ELEMENTSOF(s->mesh_ranges), error,
                                         sizeof(error));
        if (r < 0)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", error);

        ret = request_check_proof(req, &parsed, &challenge_expires, &proven);
        if (!proven)
                return ret;

        r = dns_label_from_hostname(parsed.hostname, &label);
        if (r == -ENOMEM)
                return request_reply_oom(req);
        if (r < 0) {
                label = strdup("node");
                if (!label)
                        return request_reply_oom(req);
        }

        r = store_secret_new(NULL, &token);
        if (r < 0)
                return request_reply_internal(req);

        r = store_register_node(s->store,
                                &(StoreRegistration) {
                                        .authkey = parsed.authkey,
                                        .public_key = parsed.public_key,
                                        .name = label,
                                        .endpoints = parsed.endpoints,
                                        .token = token,
                                        .expired_needs_admin = s->expired_needs_admin,
                                },
                                time(NULL), &node);
        switch (r) {
        case 0:
                break;
        case -ENOKEY:
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "invalid auth key");
        case -EKEYEXPIRED:
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "auth key expired");
        case -EKEYREJECTED:
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "auth key already used");
        case -EEXIST:
                return request_reply_error(req, MHD_HTTP_CONFLICT, "public key is the hub's");
        case -ESTALE:
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node expired: an admin must renew it");
        case -ENOSPC:
                log_warning("Address range exhausted, refusing to register '%s'.", label);
                return request_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "address range exhausted");
        default:
                return request_reply_internal(req);
        }

        /* checked by request_check_proof(), nothing ran in between */
        r = challenge_set_use(s->used_challenges, parsed.challenge, challenge_expires, time(NULL));
        if (r < 0)
                log_warning_errno(r, "Failed to mark the challenge of node %s used: %m", node.name);

        log_info("Registered node %s (id %" PRId64 ", %s, %s).", node.name, node.id, node.ipv4, node.ipv6);
        server_check_version(s);

        r = server_get_snapshot(s, &snap);
        if (r < 0)
                return request_reply_internal(req);
        r = netmap_snapshot_render(snap, node.id, &netmap, &netmap_len);
        if (r == -ENOENT) /* removed in the meantime */
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node removed");
        if (r < 0)
                return request_reply_oom(req);

        reply = cJSON_CreateObject();
        if (!reply ||
            !cJSON_AddNumberToObject(reply, "node_id", (double) node.id) ||
            !cJSON_AddStringToObject(reply, "name", node.name) ||
            !cJSON_AddStringToObject(reply, "token", token) ||
            !cJSON_AddRawToObject(reply, "netmap", netmap))
                return request_reply_oom(req);
        text = cJSON_PrintUnformatted(reply);
        if (!text)
                return request_reply_oom(req);
        return request_reply(req, MHD_HTTP_OK, text, strlen(text));
}

static int waiter_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        request_resume(userdata);
        return 0;
}

static enum MHD_Result request_wait(Request *req) {
        Server *s = req->server;
        int r;

        r = sd_event_add_time(s->event, &req->timeout_source, CLOCK_MONOTONIC, req->deadline,
                              50 * USEC_PER_MSEC, waiter_timeout, req);
        if (r < 0) {
                (void) log_error_errno(r, "Failed to add long-poll timer: %m");
                return request_reply_internal(req);
        }

        req->waiters_prev = NULL;
        req->waiters_next = s->waiters;
        if (s->waiters)
                s->waiters->waiters_prev = req;
        s->waiters = req;
        s->n_waiters++;
        req->waiting = true;

        MHD_suspend_connection(req->connection);
        /* what a test waits for before it changes the netmap */
        log_debug("Node %" PRId64 ": long-poll waits for a netmap version past %" PRIu64 " (%zu waiting).",
                  req->node_id, req->since, s->n_waiters);
        return MHD_YES;
}

/* Entered once per request, and again each time a waiter is resumed. */
static enum MHD_Result handle_netmap(Request *req) {
        Server *s = req->server;
        NetmapSnapshot *snap;
        _cleanup_free_ char *netmap = NULL;
        size_t len;
        uint64_t now;
        int r;

        if (!req->authenticated) {
                const char *since, *timeout, *delta;
                uint64_t t = LONG_POLL_MAX_SEC;

                if (request_authenticate(req, &req->node_id) != MHD_YES || req->node_id < 0)
                        return req->status != 0 ? MHD_YES : MHD_NO;

                since = MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, "since");
                if (since && parse_uint64(since, &req->since) < 0)
                        return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "since: not a version number");
                timeout = MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, "timeout");
                if (timeout && parse_uint64(timeout, &t) < 0)
                        return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "timeout: not a number of seconds");
                delta = MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, "delta");
                if (delta && !streq(delta, "0") && !streq(delta, "1"))
                        return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "delta: not 0 or 1");
                req->delta = delta && streq(delta, "1");

                (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
                req->deadline = now + MIN(t, (uint64_t) LONG_POLL_MAX_SEC) * USEC_PER_SEC;
                req->authenticated = true;
        }

        if (s->stopping)
                return request_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "server shutting down");

        if (s->version <= req->since) {
                (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
                if (now >= req->deadline)
                        return request_reply(req, MHD_HTTP_NOT_MODIFIED, NULL, 0);
                return request_wait(req);
        }

        r = server_get_snapshot(s, &snap);
        if (r < 0)
                return request_reply_internal(req);
        r = -ESTALE;
        if (req->delta && s->previous && req->since == netmap_snapshot_version(s->previous))
                r = netmap_snapshot_render_delta(snap, s->previous, req->node_id, &netmap, &len);
        if (r == -ESTALE)
                r = netmap_snapshot_render(snap, req->node_id, &netmap, &len);
        if (r == -ENOENT)
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node removed or expired");
        if (r < 0)
                return request_reply_oom(req);
        return request_reply(req, MHD_HTTP_OK, TAKE_PTR(netmap), len);
}

static enum MHD_Result handle_endpoints(Request *req) {
        Server *s = req->server;
        _cleanup_(cJSON_Deletep) cJSON *body = NULL;
        _cleanup_strv_free_ char **endpoints = NULL;
        char error[128];
        int64_t id;
        int r;

        if (request_authenticate(req, &id) != MHD_YES || id < 0)
                return req->status != 0 ? MHD_YES : MHD_NO;

        body = request_parse_body(req);
        if (!body)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "body: not a JSON object");
        r = endpoints_request_parse(body, true, &endpoints, error, sizeof(error));
        if (r == -ENOMEM)
                return request_reply_oom(req);
        if (r >= 0)
                r = endpoints_check_announceable(endpoints, s->mesh_ranges, ELEMENTSOF(s->mesh_ranges), error,
                                                 sizeof(error));
        if (r < 0) {
                log_debug("Node %" PRId64 ": refused endpoints: %s", id, error);
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", error);
        }

        r = store_set_endpoints(s->store, id, endpoints);
        if (r == -ENOENT)
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node removed");
        if (r < 0)
                return request_reply_internal(req);
        if (r > 0)
                server_check_version(s);

        return request_reply(req, MHD_HTTP_NO_CONTENT, NULL, 0);
}

static enum MHD_Result handle_paths(Request *req) {
        Server *s = req->server;
        _cleanup_(cJSON_Deletep) cJSON *body = NULL;
        _cleanup_free_ StorePathReport *reports = NULL;
        char error[128];
        size_t n = 0;
        int64_t id;
        int r;

        if (request_authenticate(req, &id) != MHD_YES || id < 0)
                return req->status != 0 ? MHD_YES : MHD_NO;

        body = request_parse_body(req);
        if (!body)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "body: not a JSON object");
        r = paths_request_parse(body, &reports, &n, error, sizeof(error));
        if (r == -ENOMEM)
                return request_reply_oom(req);
        if (r < 0)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", error);

        r = store_report_paths(s->store, id, reports, n, time(NULL));
        if (r == -ENOENT)
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node removed");
        if (r < 0)
                return request_reply_internal(req);
        if (r > 0) {
                log_debug("Node %" PRId64 ": %i pair(s) changed between direct and relay.", id, r);
                server_check_version(s);
        }

        return request_reply(req, MHD_HTTP_NO_CONTENT, NULL, 0);
}

static enum MHD_Result handle_ca(Request *req) {
        Server *s = req->server;
        char *text;

        if (!s->ca)
                return request_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no certificate authority");
        if (ca_reply_render(ca_certificate_pem(s->ca), s->domain, &text) < 0)
                return request_reply_oom(req);
        return request_reply(req, MHD_HTTP_OK, text, strlen(text));
}

static enum MHD_Result handle_cert(Request *req) {
        Server *s = req->server;
        _cleanup_(cJSON_Deletep) cJSON *body = NULL;
        _cleanup_(store_node_done) StoreNode node = {};
        _cleanup_(issued_cert_done) IssuedCert cert = {};
        const char *csr;
        char error[256];
        int64_t id;
        char *text;
        int r;

        if (request_authenticate_node(req, &id, &node) != MHD_YES || id < 0)
                return req->status != 0 ? MHD_YES : MHD_NO;
        if (!s->ca)
                return request_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no certificate authority");

        body = request_parse_body(req);
        if (!body)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "body: not a JSON object");
        r = cert_request_parse(body, &csr, error, sizeof(error));
        if (r < 0)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", error);

        r = ca_sign_request(s->ca, csr,
                            &(CertIdentity) {
                                    .name = node.name,
                                    .domain = s->domain,
                                    .ipv4 = node.ipv4,
                                    .ipv6 = node.ipv6,
                            },
                            time(NULL), s->cert_lifetime_sec, &cert, error, sizeof(error));
        if (r == -EBADMSG)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", error);
        if (r == -EPERM) {
                (void) log_full_errno_fields(LOG_NOTICE, 0, &(LogFields) { .peer = node.name },
                                "Refused a certificate request of node %s: %s", node.name, error);
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "%s", error);
        }
        if (r == -ENOMEM)
                return request_reply_oom(req);
        if (r < 0)
                return request_reply_internal(req);
        /* before the certificate leaves: the name is held back until it expires */
        r = store_note_certificate(s->store, node.id, cert.not_after);
        if (r < 0)
                return request_reply_internal(req);

        (void) log_full_errno_fields(LOG_INFO, 0, &(LogFields) { .peer = node.name },
                        "Issued a certificate for %s.%s, valid for %" PRIu64 " s.", node.name, s->domain,
                        s->cert_lifetime_sec);
        if (cert_reply_render(cert.pem, ca_certificate_pem(s->ca), cert.not_before, cert.not_after, &text) < 0)
                return request_reply_oom(req);
        return request_reply(req, MHD_HTTP_OK, text, strlen(text));
}

/* ---- GET /v1/relay: the HTTP side; the streams are relay-server.c's ---- */

static void on_relay_upgrade(void *cls, struct MHD_Connection *connection, void *con_cls, const char *extra_in,
                             size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
        Server *s = cls;
        Request *req = con_cls;

        if (!s->relay || !req || !req->relay_name) {
                (void) MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
                server_schedule_mhd(s);
                return;
        }
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection,
                                                                        MHD_CONNECTION_INFO_CONNECTION_FD);

        /* MHD forwards between the TLS socket and sock inside MHD_run().
         * It never shuts sock down when the node hangs up (0.9.75), so the
         * stream watches the TLS socket itself (edge-triggered, never
         * reading it): for the hang-up, and to have MHD run whenever either
         * side moved rather than rely on MHD's nested epoll sets alone. */
        (void) relay_server_add(s->relay, sock, info ? info->connect_fd : -1, urh, req->node_id,
                                req->relay_name, &req->relay_key, (const uint8_t *) extra_in, extra_in_size);
}

static enum MHD_Result handle_relay(Request *req) {
        _cleanup_(relay_admission_done) RelayAdmission a = {};
        Server *s = req->server;
        struct MHD_Response *response;
        enum MHD_Result ret;

        if (relay_admit(s->store, s->relay, s->relay_disabled,
                        MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                        MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE),
                        &a) < 0)
                return request_reply_oom(req);
        if (a.status != 0)
                return request_reply_error(req, a.status, "%s", a.error);
        req->node_id = a.id;
        req->relay_key = a.key;
        req->relay_name = TAKE_PTR(a.name);

        response = MHD_create_response_for_upgrade(on_relay_upgrade, s);
        if (!response)
                return MHD_NO;
        (void) MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
        (void) MHD_add_response_header(response, MHD_HTTP_HEADER_UPGRADE, RELAY_UPGRADE_TOKEN);
        ret = MHD_queue_response(req->connection, MHD_HTTP_SWITCHING_PROTOCOLS, response);
        MHD_destroy_response(response);
        if (ret == MHD_YES)
                req->status = MHD_HTTP_SWITCHING_PROTOCOLS;
        return ret;
}

/* Inside MHD_run() (a stream replaced from the upgrade handler of its
 * successor) MHD 0.9.75 never finishes a connection closed there: its TLS
 * connection stays open. So such closes wait for the end of MHD_run(). */
static void on_relay_closed(void *connection, void *userdata) {
        Server *s = userdata;

        s->n_unfinished++;
        if (s->in_mhd_run) {
                if (s->n_closing == s->n_closing_allocated) {
                        size_t n = MAX(s->n_closing_allocated * 2, (size_t) 8);
                        void *p = reallocarray(s->closing, n, sizeof(*s->closing));
                        if (p) {
                                s->closing = p;
                                s->n_closing_allocated = n;
                        }
                }
                if (s->n_closing < s->n_closing_allocated) {
                        s->closing[s->n_closing++] = connection;
                        return;
                }
        }
        (void) MHD_upgrade_action(connection, MHD_UPGRADE_ACTION_CLOSE);
        server_schedule_mhd(s);
}

static void on_relay_kick(void *userdata) {
        server_schedule_mhd(userdata);
}

static void on_relay_handshake(void *userdata) {
        Server *s = userdata;
        (void) hub_read_soon(s->hub);
}

static bool on_relay_is_member(int64_t id, const WgKey *key, void *userdata) {
        Server *s = userdata;
        return hub_has_member(s->hub, key, id);
}

static int on_relay_restore(const WgKey *key, union sockaddr_union *endpoint, void *userdata) {
        Server *s = userdata;
        return hub_restore_endpoint(s->hub, key, endpoint);
}

static void on_hub_peers(Hub *h, const WgDevice *d, void *userdata) {
        Server *s = userdata;
        if (s->relay)
                relay_server_check_peers(s->relay, d);
}

/* The relay's own port: nodes that see "relay_port" in the netmap use it.
 * Without it (a port taken, no privilege for 443) serving goes on, and
 * nodes use the upgrade on the API port. */
static void server_start_relay_listener(Server *s) {
        int r;

        if (s->relay_port == 0)
                return;
        r = relay_listener_new(s->event, &s->listen, s->relay_port, s->key_pem, s->cert_pem, TLS_PRIORITIES,
                               s->store, s->relay, &s->relay_listener);
        if (r < 0) {
                char text[ENDPOINT_STRLEN] = "?";
                union sockaddr_union sa = s->listen;

                if (sa.sa.sa_family == AF_INET6)
                        sa.in6.sin6_port = htons(s->relay_port);
                else
                        sa.in.sin_port = htons(s->relay_port);
                (void) endpoint_format(&sa, text, sizeof(text));
                log_warning_errno(r, "Failed to listen for the TLS relay on %s (--relay-port=%u): %m; "
                                  "serving without it, nodes relay through the API port.", text,
                                  (unsigned) s->relay_port);
                return;
        }
        log_info("TLS relay listening on %s.", relay_listener_address(s->relay_listener));
        s->netmap_hub.relay_port = s->relay_port;
        /* a netmap rendered before this must not be served without it */
        s->snapshot = netmap_snapshot_free(s->snapshot);
        s->previous = netmap_snapshot_free(s->previous);
}

/* After the hub: the streams' sockets talk to its port. */
static int server_start_relay(Server *s) {
        const RelayServerHooks hooks = {
                .closed = on_relay_closed,
                .kick = on_relay_kick,
                .handshake_forwarded = on_relay_handshake,
                .is_member = on_relay_is_member,
                .restore_endpoint = on_relay_restore,
                .userdata = s,
        };
        int r;

        if (!s->hub)
                return 0;
        if (!s->relay_disabled) {
                r = relay_server_new(s->event, s->hub_options.listen_port,
                                     s->relay_max_streams ?: RELAY_MAX_STREAMS_DEFAULT, &hooks, &s->relay);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up the TLS relay: %m");
                hub_set_peers_handler(s->hub, on_hub_peers, s);
        }
        if (!s->udp_echo_disabled) {
                r = udp_echo_new(s->event, &s->listen, &s->echo);
                if (r < 0)
                        return r;
        }
        return 0;
}

static enum MHD_Result request_dispatch(Request *req) {
        static const struct {
                const char *path;
                const char *method;
                enum MHD_Result (*handler)(Request *req);
        } routes[] = {
                { "/v1/challenge", MHD_HTTP_METHOD_POST, handle_challenge },
                { "/v1/register", MHD_HTTP_METHOD_POST, handle_register },
                { "/v1/netmap", MHD_HTTP_METHOD_GET, handle_netmap },
                { "/v1/endpoints", MHD_HTTP_METHOD_POST, handle_endpoints },
                { "/v1/paths", MHD_HTTP_METHOD_POST, handle_paths },
                { "/v1/cert", MHD_HTTP_METHOD_POST, handle_cert },
                { "/v1/ca", MHD_HTTP_METHOD_GET, handle_ca },
                { "/v1/relay", MHD_HTTP_METHOD_GET, handle_relay },
        };

        if (req->conn)
                req->conn->in_request = true;

        if (req->too_large)
                return request_reply_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "body larger than 1 MiB");

        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                if (!streq(req->path, routes[i].path))
                        continue;
                if (!streq(req->method, routes[i].method))
                        return request_reply_error(req, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
                return routes[i].handler(req);
        }
        return request_reply_error(req, MHD_HTTP_NOT_FOUND, "no such endpoint");
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *connection, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
        Server *s = cls;
        Request *req = *con_cls;

        if (!req) {
                const union MHD_ConnectionInfo *info;
                const char *length;
                uint64_t n;

                req = calloc(1, sizeof(*req));
                if (!req)
                        return MHD_NO;
                req->server = s;
                req->connection = connection;
                req->node_id = -1;
                info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
                req->conn = info ? info->socket_context : NULL;
                req->method = strdup(method);
                req->path = strdup(url);
                *con_cls = req;
                if (!req->method || !req->path)
                        return MHD_NO;

                /* refuse a declared large body before reading any of it */
                length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (length && parse_uint64(length, &n) >= 0 && n > BODY_MAX) {
                        req->too_large = true;
                        return request_dispatch(req);
                }
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;

                *upload_data_size = 0;
                if (req->status != 0 || req->too_large)
                        return MHD_YES;
                /* A body without Content-Length that grows past the limit:
                 * reading the rest only to answer 413 would let a client
                 * stream at full speed until the request deadline, so
                 * the connection goes now. */
                if (req->body_size + n > BODY_MAX) {
                        log_debug("%s %s: body larger than 1 MiB, closing the connection.", req->method, req->path);
                        return MHD_NO;
                }
                char *b = realloc(req->body, req->body_size + n + 1);
                if (!b)
                        return MHD_NO;
                memcpy(b + req->body_size, upload_data, n);
                req->body_size += n;
                b[req->body_size] = 0;
                req->body = b;
                return MHD_YES;
        }

        if (req->status != 0)
                return MHD_YES;
        return request_dispatch(req);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
        Server *s = cls;
        Request *req = *con_cls;
        const union MHD_ConnectionInfo *info;
        char peer[ENDPOINT_STRLEN] = "?";

        if (!req)
                return;
        *con_cls = NULL;
        if (req->status == MHD_HTTP_SWITCHING_PROTOCOLS && req->relay_name && s->n_unfinished > 0)
                s->n_unfinished--;
        if (req->conn) {
                req->conn->in_request = false;
                req->conn->since = clock_usec(CLOCK_MONOTONIC);
        }

        if (log_get_max_level() >= LOG_DEBUG) {
                info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
                if (info && info->client_addr)
                        (void) endpoint_format((const union sockaddr_union *) info->client_addr, peer,
                                               sizeof(peer));
                if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
                        log_debug("%s %s %s → %u", peer, strna(req->method), strna(req->path), req->status);
                else
                        log_debug("%s %s %s → %u, terminated (%i)", peer, strna(req->method),
                                  strna(req->path), req->status, (int) toe);
        }
        request_free(req);
}

_printf_(2, 0)
static void on_mhd_log(void *cls, const char *format, va_list ap) {
        Server *s = cls;
        char buf[512];
        size_t n;

        (void) vsnprintf(buf, sizeof(buf), format, ap);
        n = strlen(buf);
        while (n > 0 && buf[n - 1] == '\n')
                buf[--n] = 0;
        /* once serving, MHD mostly reports clients that failed a handshake */
        log_full(s->running ? LOG_DEBUG : LOG_WARNING, "libmicrohttpd: %s", buf);
}

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
        Server *s = cls;
        Connection *c = *socket_context;

        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *info =
                        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);

                c = calloc(1, sizeof(*c));
                if (!c) /* then this connection is simply never swept */
                        return;
                *c = (Connection) {
                        .server = s,
                        .fd = info ? info->connect_fd : -EBADF,
                        .since = clock_usec(CLOCK_MONOTONIC),
                        .next = s->connections,
                };
                if (s->connections)
                        s->connections->prev = c;
                s->connections = c;
                *socket_context = c;
                return;
        }

        if (code == MHD_CONNECTION_NOTIFY_CLOSED && c) {
                if (c->prev)
                        c->prev->next = c->next;
                else
                        s->connections = c->next;
                if (c->next)
                        c->next->prev = c->prev;
                free(c);
                *socket_context = NULL;
        }
}

/* Cuts connections that did not complete a request in time (slow-loris,
 * or idle keep-alive). shutdown() rather than close(): the fd stays MHD's,
 * which sees end-of-file and closes the connection itself. */
static int on_sweep(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        uint64_t t = clock_usec(CLOCK_MONOTONIC);
        unsigned cut = 0;
        int r;

        for (Connection *c = s->connections; c; c = c->next) {
                if (c->in_request || c->cut || c->fd < 0 || t - c->since < REQUEST_DEADLINE_USEC)
                        continue;
                (void) shutdown(c->fd, SHUT_RDWR);
                c->cut = true;
                cut++;
        }
        if (cut > 0) {
                log_debug("Cut %u connection(s) without a complete request for %u s.", cut,
                          (unsigned) (REQUEST_DEADLINE_USEC / USEC_PER_SEC));
                server_schedule_mhd(s);
        }

        r = sd_event_source_set_time_relative(source, SWEEP_USEC);
        if (r < 0)
                return log_error_errno(r, "Failed to re-arm connection sweep: %m");
        return sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
}

/* ---- event loop glue ---- */

static void server_run_mhd(Server *s) {
        MHD_UNSIGNED_LONG_LONG timeout_ms;
        int r;

        if (!s->daemon)
                return;
        s->in_mhd_run = true;
        (void) MHD_run(s->daemon);
        s->in_mhd_run = false;
        if (s->n_closing > 0) {
                for (size_t i = 0; i < s->n_closing; i++)
                        (void) MHD_upgrade_action(s->closing[i], MHD_UPGRADE_ACTION_CLOSE);
                s->n_closing = 0;
                (void) MHD_run(s->daemon);
        }

        /* MHD 0.9.75 with TLS and epoll finishes an upgraded connection that
         * the application let go only in a later MHD_run(), and nothing in
         * its epoll set wakes us for it: the TLS connection would stay open
         * until some other connection's traffic. So while one is pending,
         * MHD runs again soon. */
        if (MHD_get_timeout(s->daemon, &timeout_ms) != MHD_YES)
                timeout_ms = UINT64_MAX;
        if (s->n_unfinished > 0)
                timeout_ms = MIN(timeout_ms, (MHD_UNSIGNED_LONG_LONG) UNFINISHED_POLL_MSEC);
        if (timeout_ms != UINT64_MAX) {
                r = sd_event_source_set_time_relative(s->mhd_timer, (uint64_t) timeout_ms * USEC_PER_MSEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->mhd_timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_source_set_enabled(s->mhd_timer, SD_EVENT_OFF);
        if (r < 0)
                (void) log_warning_errno(r, "Failed to arm libmicrohttpd timer: %m");
}

/* MHD processes resumed connections in its next MHD_run(). */
static void server_schedule_mhd(Server *s) {
        int r;

        r = sd_event_source_set_time_relative(s->mhd_timer, 0);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->mhd_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                (void) log_warning_errno(r, "Failed to arm libmicrohttpd timer: %m");
}

static int on_mhd_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        server_run_mhd(userdata);
        return 0;
}

static int on_mhd_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        server_run_mhd(userdata);
        return 0;
}

static int on_db_poll(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        int r;

        r = store_changed(s->store, &s->store_watch);
        if (r > 0) {
                server_check_version(s);
                /* the version may have been seen already by a snapshot load */
                if (s->hub)
                        (void) hub_sync(s->hub);
                /* a removed or expired node's stream goes with its peer */
                if (s->relay)
                        relay_server_check_members(s->relay);
        }

        r = sd_event_source_set_time_relative(source, DB_POLL_USEC);
        if (r < 0)
                return log_error_errno(r, "Failed to re-arm database poll: %m");
        return sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
}

static int on_signal(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata) {
        Server *s = userdata;

        log_info("Received SIG%s, shutting down.", sigabbrev_np(si->ssi_signo) ?: "?");
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down.");
        s->stopping = true;
        /* MHD must not be stopped with suspended connections: answer them */
        server_wake_waiters(s);
        server_run_mhd(s);
        return sd_event_exit(sd_event_source_get_event(source), 0);
}

static unsigned connection_limit(void) {
        struct rlimit rl;

        /* like systemd: raise the soft limit to the hard one, we need an fd per node */
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 1024;
        if (rl.rlim_cur < rl.rlim_max) {
                struct rlimit raised = { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };
                if (setrlimit(RLIMIT_NOFILE, &raised) >= 0)
                        rl = raised;
        }
        if (rl.rlim_cur <= 128)
                return 64;
        return (unsigned) MIN(rl.rlim_cur - 64, (rlim_t) CONNECTION_LIMIT_MAX);
}

static int server_start_mhd(Server *s) {
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_TLS |
                         MHD_USE_TURBO | MHD_USE_ERROR_LOG;
        int r;

        if (s->listen.sa.sa_family == AF_INET6)
                flags |= MHD_USE_IPv6;

        s->daemon = MHD_start_daemon(
                flags, 0, NULL, NULL, on_access, s,
                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, /* first, or MHD logs some to stderr */
                MHD_OPTION_SOCK_ADDR, &s->listen.sa,
                MHD_OPTION_HTTPS_MEM_KEY, s->key_pem,
                MHD_OPTION_HTTPS_MEM_CERT, s->cert_pem,
                MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) CONNECTION_TIMEOUT_SEC,
                MHD_OPTION_CONNECTION_LIMIT, connection_limit(),
                /* per connection; MHD's 32 KiB default costs 300 MiB with
                 * 10,000 long-polls, and our requests are a few hundred
                 * bytes of headers (bodies are streamed to on_access()) */
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONNECTION_MEMORY_LIMIT,
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                MHD_OPTION_END);
        if (!s->daemon)
                return log_error_errno(-EADDRNOTAVAIL, "Failed to start HTTPS server on %s.", s->listen_text);

        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info || info->epoll_fd < 0)
                return log_error_errno(-EIO, "libmicrohttpd has no epoll fd.");

        r = sd_event_add_io(s->event, &s->mhd_io, info->epoll_fd, EPOLLIN, on_mhd_io, s);
        if (r < 0)
                return log_error_errno(r, "Failed to watch libmicrohttpd: %m");
        /* accuracy 1 µs: sd-event's default slack (250 ms) would delay every
         * request MHD wants to continue without a new socket event */
        r = sd_event_add_time_relative(s->event, &s->mhd_timer, CLOCK_MONOTONIC, 0, 1, on_mhd_timer, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add libmicrohttpd timer: %m");
        return 0;
}

static int server_load_ranges(Server *s) {
        static const char *const keys[] = { "ipv4_range", "ipv6_range" };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *v = NULL;
                InAddrPrefix *p = s->mesh_ranges + i;
                int r;

                r = store_get_setting(s->store, keys[i], &v);
                if (r < 0)
                        return log_error_errno(r, "Database has no %s: %m", keys[i]);
                r = in_addr_prefix_parse(v, &p->family, &p->address, &p->prefixlen);
                if (r < 0)
                        return log_error_errno(r, "Database has an invalid %s '%s'.", keys[i], v);
        }
        return 0;
}

int server_new(Store *store, const char *state_dir, const char *listen, Server **ret) {
        _cleanup_(server_freep) Server *s = NULL;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s) {
                store_free(store);
                return log_oom();
        }
        s->store = store;
        s->state_dir = strdup(state_dir);
        if (!s->state_dir)
                return log_oom();

        r = endpoint_parse(listen, &s->listen);
        if (r < 0)
                return log_error_errno(r, "Invalid listen address '%s', expected ADDR:PORT or [ADDR6]:PORT.",
                                       listen);
        if (!endpoint_format(&s->listen, s->listen_text, sizeof(s->listen_text)))
                return log_error_errno(-EINVAL, "Invalid listen address '%s'.", listen);

        r = tls_read_credentials(state_dir, &s->key_pem, &s->cert_pem);
        if (r < 0)
                return r;
        r = store_get_version(s->store, &s->version);
        if (r < 0)
                return r;
        r = store_watch_init(s->store, &s->store_watch);
        if (r < 0)
                return r;

        r = server_load_ranges(s);
        if (r < 0)
                return r;
        r = challenge_secret_load(s->store, &s->challenge_secret);
        if (r < 0)
                return r;
        s->used_challenges = challenge_set_new();
        if (!s->used_challenges)
                return log_oom();

        r = sd_event_new(&s->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate event loop: %m");

        *ret = TAKE_PTR(s);
        return 0;
}

int server_set_hub(Server *s, const HubOptions *opts, const char *public_key, const char *endpoint) {
        s->hub_ifname = strdup(opts->ifname);
        s->hub_public_key = strdup(public_key);
        s->hub_endpoint = strdup(endpoint);
        if (opts->n_allow > 0) {
                s->hub_allow = calloc(opts->n_allow, sizeof(HubAllow));
                if (s->hub_allow)
                        memcpy(s->hub_allow, opts->allow, opts->n_allow * sizeof(HubAllow));
        }
        if (!s->hub_ifname || !s->hub_public_key || !s->hub_endpoint || (opts->n_allow > 0 && !s->hub_allow))
                return log_oom();
        s->hub_options = *opts;
        s->hub_options.ifname = s->hub_ifname;
        s->hub_options.allow = s->hub_allow;
        s->netmap_hub = (NetmapHub) { .public_key = s->hub_public_key, .endpoint = s->hub_endpoint };
        s->hub_enabled = true;
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;

        /* no suspended connection may be left when MHD stops */
        while (s->waiters) {
                Request *req = s->waiters;
                request_unlink(req);
                MHD_resume_connection(req->connection);
        }
        /* before MHD stops: every upgraded connection let go; before the
         * hub, which the streams' hooks use */
        relay_server_free(s->relay);
        /* after the streams, which closed its connections through their hook */
        relay_listener_free(s->relay_listener);
        udp_echo_free(s->echo);
        if (s->daemon)
                MHD_stop_daemon(s->daemon); /* notifies every connection's close */
        hub_free(s->hub);
        sd_event_source_disable_unref(s->sweep);
        ca_free(s->ca);
        free(s->domain);

        sd_event_source_disable_unref(s->mhd_io);
        sd_event_source_disable_unref(s->mhd_timer);
        sd_event_source_disable_unref(s->db_poll);
        sd_event_source_disable_unref(s->sigterm);
        sd_event_source_disable_unref(s->sigint);
        sd_event_unref(s->event);

        netmap_snapshot_free(s->snapshot);
        netmap_snapshot_free(s->previous);
        store_free(s->store);
        challenge_set_free(s->used_challenges);
        explicit_bzero(&s->challenge_secret, sizeof(s->challenge_secret));
        if (s->key_pem)
                erase_and_free(s->key_pem, strlen(s->key_pem));
        free(s->cert_pem);
        free(s->state_dir);
        free(s->hub_ifname);
        free(s->hub_public_key);
        free(s->hub_endpoint);
        free(s->hub_allow);
        free(s->closing);
        explicit_bzero(&s->hub_options.private_key, sizeof(s->hub_options.private_key));
        free(s);
        return NULL;
}

void server_set_relay(Server *s, bool relay, unsigned max_streams, bool udp_echo) {
        s->relay_disabled = !relay;
        s->relay_max_streams = max_streams;
        s->udp_echo_disabled = !udp_echo;
}

void server_set_relay_port(Server *s, uint16_t port) {
        s->relay_port = port;
}

void server_set_expired_needs_admin(Server *s, bool b) {
        s->expired_needs_admin = b;
}

int server_set_ca(Server *s, CertAuthority *ca, const char *domain, uint64_t lifetime_sec) {
        _cleanup_(ca_freep) CertAuthority *owned = ca;
        char *d = strdup(domain);

        if (!d)
                return log_oom();
        ca_free(s->ca);
        free(s->domain);
        s->ca = TAKE_PTR(owned);
        s->domain = d;
        s->cert_lifetime_sec = lifetime_sec;
        return 0;
}

int server_run(Server *s) {
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        /* the hub's wireguard-go child, watched by sd-event */
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(negative_errno(), "Failed to block signals: %m");
        r = sd_event_add_signal(s->event, &s->sigterm, SIGTERM, on_signal, s);
        if (r >= 0)
                r = sd_event_add_signal(s->event, &s->sigint, SIGINT, on_signal, s);
        if (r < 0)
                return log_error_errno(r, "Failed to watch signals: %m");

        r = sd_event_add_time_relative(s->event, &s->db_poll, CLOCK_MONOTONIC, DB_POLL_USEC,
                                       DB_POLL_ACCURACY_USEC, on_db_poll, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add database poll: %m");
        r = sd_event_add_time_relative(s->event, &s->sweep, CLOCK_MONOTONIC, SWEEP_USEC,
                                       100 * USEC_PER_MSEC, on_sweep, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add connection sweep: %m");

        if (s->hub_enabled) {
                r = hub_new(s->event, s->store, &s->hub_options, on_hub_changed, s, &s->hub);
                explicit_bzero(&s->hub_options.private_key, sizeof(s->hub_options.private_key));
                if (r < 0)
                        return r;
        }
        r = server_start_relay(s);
        if (r < 0)
                return r;

        r = server_start_mhd(s);
        if (r < 0)
                return r;
        /* after the API's port is ours: a --relay-port that names it only
         * costs the relay port, never the server */
        if (s->relay)
                server_start_relay_listener(s);

        s->running = true;
        log_info("Listening on https://%s (netmap version %" PRIu64 ").", s->listen_text, s->version);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Listening on %s.", s->listen_text);

        r = sd_event_loop(s->event);
        s->running = false;
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}
