/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control client's transfers: curl easy handles on curl-event.c's
 * multi, their replies mapped to errors, and the long-poll loop with its
 * backoff. */
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

#include "config.h"
#include "control-client-internal.h"
#include "exit-route.h"
#include "log.h"
#include "macro.h"
#include "varlink.h" /* _cleanup_json_ */

/* A 2xx without a body still hands the callback a string. */
const char *strempty(const char *s) {
        return s ? s : "";
}

void erase_string(char **s) {
        if (*s) {
                erase_and_free(*s, strlen(*s));
                *s = NULL;
        }
}

Transfer *transfer_free(Transfer *t) {
        if (!t)
                return NULL;
        if (t->in_multi)
                curl_event_remove(t->client->curl, t->easy);
        if (t->easy)
                curl_easy_cleanup(t->easy);
        /* The Authorization header carries the node token. */
        for (struct curl_slist *l = t->headers; l; l = l->next)
                explicit_bzero(l->data, strlen(l->data));
        curl_slist_free_all(t->headers);
        erase_and_free(t->request_body, t->request_body_size);
        free(t->body);
        free(t);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Transfer *, transfer_free);

static size_t transfer_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Transfer *t = userdata;
        size_t n = size * nmemb;

        if (n > BODY_MAX - t->body_size) {
                t->body_too_large = true;
                return 0; /* makes curl abort with CURLE_WRITE_ERROR */
        }
        if (t->body_size + n + 1 > t->body_allocated) {
                size_t a = MAX(t->body_allocated * 2, t->body_size + n + 1);
                char *p;

                a = MIN(a, (size_t) BODY_MAX + 1);
                p = realloc(t->body, a);
                if (!p)
                        return 0;
                t->body = p;
                t->body_allocated = a;
        }
        memcpy(t->body + t->body_size, ptr, n);
        t->body_size += n;
        t->body[t->body_size] = 0;
        return n;
}

/* ---- requests */

static int slist_add(struct curl_slist **l, const char *s) {
        struct curl_slist *n = curl_slist_append(*l, s);

        if (!n)
                return -ENOMEM;
        *l = n;
        return 0;
}

/* curl before 8.9 cannot set the number of keepalive probes; the kernel's
 * default of 9 would take 45 s to give up on a dead control connection.
 * The mark keeps the connection out of an exit node's table. */
static int transfer_sockopt_cb(void *userdata, curl_socket_t fd, curlsocktype purpose) {
        const Transfer *t = userdata;
        int probes = TCP_KEEPALIVE_PROBES;
        unsigned user_timeout = TCP_USER_TIMEOUT_REPLICAS_MS;

        if (purpose == CURLSOCKTYPE_IPCXN) {
                (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
                if (t->client->choice.n > 1)
                        (void) setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
                                          sizeof(user_timeout));
                (void) exit_route_mark_socket(fd, t->client->fwmark);
        }
        return CURL_SOCKOPT_OK;
}

/* The options of every control request: TLS pinned, keepalives, limits. */
static int transfer_setopt(Transfer *t, const char *url, long timeout_ms) {
        ControlClient *c = t->client;
        bool replicas = c->choice.n > 1;
        long keepalive_idle = replicas ? TCP_KEEPALIVE_REPLICAS_SEC : TCP_KEEPALIVE_IDLE_SEC,
             keepalive_interval = replicas ? TCP_KEEPALIVE_REPLICAS_SEC : TCP_KEEPALIVE_INTERVAL_SEC;

        if (curl_easy_setopt(t->easy, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->error_buffer) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "meshd/" PACKAGE_VERSION) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, transfer_write_cb) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_MAXFILESIZE, (long) BODY_MAX) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS,
                             replicas ? CONNECT_TIMEOUT_REPLICAS_MS : CONNECT_TIMEOUT_MS) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK ||
            /* A long-poll idles for up to a minute behind NATs that may drop
             * its mapping (a router reboot flushes conntrack): then the
             * server's answer never arrives. A keepalive probe every few
             * seconds re-creates the mapping, or finds the connection dead. */
            curl_easy_setopt(t->easy, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_TCP_KEEPIDLE, keepalive_idle) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_TCP_KEEPINTVL, keepalive_interval) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_SOCKOPTFUNCTION, transfer_sockopt_cb) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_SOCKOPTDATA, t) != CURLE_OK ||
            /* The server's certificate is self-signed: the pinned public key
             * is the trust anchor, checked by curl even without VERIFYPEER. */
            curl_easy_setopt(t->easy, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK ||
            /* the chain is not verified, so the system's CA bundle need not
             * be parsed for every connection (megabytes of heap) */
            curl_easy_setopt(t->easy, CURLOPT_CAINFO, NULL) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_CAPATH, NULL) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_PINNEDPUBLICKEY, c->pin) != CURLE_OK)
                return -EINVAL;
        return 0;
}

int transfer_new(ControlClient *c, TransferKind kind, const char *path, const char *token, char *request_body,
                 long timeout_ms, Transfer **ret) {
        _cleanup_(transfer_freep) Transfer *t = NULL;
        _cleanup_free_ char *url = NULL, *auth = NULL;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t) {
                erase_string(&request_body);
                return -ENOMEM;
        }
        t->client = c;
        t->kind = kind;
        if (request_body) {
                t->request_body = request_body;
                t->request_body_size = strlen(request_body);
        }

        t->url_index = c->choice.current;
        if (asprintf(&url, "%s%s", c->urls[t->url_index], path) < 0)
                return -ENOMEM;

        t->easy = curl_easy_init();
        if (!t->easy)
                return -ENOMEM;

        /* "Expect:" (empty) stops curl from waiting for 100-continue on POSTs. */
        if (slist_add(&t->headers, "Content-Type: application/json") < 0 ||
            slist_add(&t->headers, "Accept: application/json") < 0 || slist_add(&t->headers, "Expect:") < 0)
                return -ENOMEM;
        if (token) {
                if (asprintf(&auth, "Authorization: Bearer %s", token) < 0)
                        return -ENOMEM;
                r = slist_add(&t->headers, auth);
                explicit_bzero(auth, strlen(auth));
                if (r < 0)
                        return r;
        }

        r = transfer_setopt(t, url, timeout_ms);
        if (r < 0)
                return log_debug_errno(r, "Failed to set up control request %s", path);

        if (c->fresh_connect) {
                c->fresh_connect = false;
                if (curl_easy_setopt(t->easy, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK)
                        return log_debug_errno(-EINVAL, "Failed to set up control request %s", path);
        }

        if (t->request_body &&
            (curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE, (long) t->request_body_size) != CURLE_OK ||
             curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->request_body) != CURLE_OK))
                return -EINVAL;

        r = curl_event_add(c->curl, t->easy);
        if (r < 0)
                return r;
        t->in_multi = true;

        log_debug("Control request started: %s %s", t->request_body ? "POST" : "GET", path);
        *ret = TAKE_PTR(t);
        return 0;
}

/* One line for people: the server's {"error": ...} when it sent one. */
static char *server_error_message(const Transfer *t) {
        _cleanup_json_ cJSON *j = NULL;
        const cJSON *e;
        char *m;

        if (!t->body)
                return NULL;
        j = cJSON_ParseWithLength(t->body, t->body_size);
        e = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (!cJSON_IsString(e) || !e->valuestring[0])
                return NULL;
        m = strndup(e->valuestring, MESSAGE_MAX);
        if (m)
                m[strcspn(m, "\r\n")] = 0;
        return m;
}

static int error_from_curl(CURLcode code, bool too_large, const char *detail, char **ret_message) {
        const char *what = detail && detail[0] ? detail : curl_easy_strerror(code);
        int r;

        switch (code) {
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
                *ret_message = strdup("the server presented a different public key");
                return -EKEYREJECTED;
        case CURLE_OPERATION_TIMEDOUT:
                *ret_message = strdup("no answer in time");
                return -ETIMEDOUT;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_WRITE_ERROR:
        case CURLE_FILESIZE_EXCEEDED:
                if (too_large || code == CURLE_FILESIZE_EXCEEDED) {
                        *ret_message = strdup("reply too large");
                        return -EBADMSG;
                }
                return -ENOMEM; /* our write callback could not allocate */
        case CURLE_PARTIAL_FILE:
        case CURLE_GOT_NOTHING:
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_BAD_CONTENT_ENCODING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                *ret_message = strdup("truncated reply");
                return -EBADMSG;
        default:
                /* connect, resolve, TLS handshake, send/receive (connection lost) */
                r = asprintf(ret_message, "%s", what);
                if (r < 0)
                        *ret_message = NULL;
                return -EHOSTUNREACH;
        }
}

static int error_from_status(long status, const Transfer *t, char **ret_message) {
        _cleanup_free_ char *m = server_error_message(t);
        int r;

        switch (status) {
        case 401:
                r = -EACCES;
                break;
        case 403:
                r = -EPERM;
                break;
        case 409:
                r = -EEXIST;
                break;
        default:
                r = -EBADMSG;
        }
        if (!m && asprintf(&m, "HTTP %ld from control server", status) < 0)
                m = NULL;
        *ret_message = TAKE_PTR(m);
        return r;
}

/* Returns 0 on a usable 2xx reply, 1 on 304 (long-poll only), <0 with a
 * message otherwise. */
static int transfer_result(Transfer *t, CURLcode code, char **ret_message) {
        long status = 0;

        *ret_message = NULL;
        (void) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        t->status = status;
        if (code != CURLE_OK) {
                /* Once the status line arrived, the server was reached: a
                 * connection lost after that is a cut-off reply, not an
                 * unreachable server. */
                if (status > 0 &&
                    (code == CURLE_RECV_ERROR || code == CURLE_SSL_CONNECT_ERROR || code == CURLE_READ_ERROR)) {
                        int r = asprintf(ret_message, "truncated reply (%s)",
                                         t->error_buffer[0] ? t->error_buffer : curl_easy_strerror(code));
                        if (r < 0)
                                *ret_message = NULL;
                        return -EBADMSG;
                }
                return error_from_curl(code, t->body_too_large, t->error_buffer, ret_message);
        }

        if (status == 304 && t->kind == TRANSFER_POLL)
                return 1;
        if (status < 200 || status > 299)
                return error_from_status(status, t, ret_message);

        if (status != 204) {
                /* Validate at the border: a 200 is only usable as a JSON object. */
                _cleanup_json_ cJSON *j = t->body ? cJSON_ParseWithLength(t->body, t->body_size) : NULL;
                if (!cJSON_IsObject(j)) {
                        *ret_message = strdup("reply is not a JSON object");
                        return -EBADMSG;
                }
        }
        return 0;
}

/* ---- long-poll loop */

static int poll_start(ControlClient *c) {
        char path[128];
        Transfer *t;
        int r;

        /* With a version to build on, a delta is welcome (docs/protocol.md).
         * On another replica, the first poll asks for its whole netmap at
         * once: the mesh's version is the same on every replica, the hub
         * and relay it names are not (docs/replicas.md). */
        uint64_t since = c->replica_changed ? 0 : c->netmap_version;

        (void) snprintf(path, sizeof(path), "/v1/netmap?since=%" PRIu64 "&timeout=%d%s", since,
                        POLL_SERVER_TIMEOUT_SEC, since > 0 ? "&delta=1" : "");
        r = transfer_new(c, TRANSFER_POLL, path, c->token, NULL, POLL_TIMEOUT_MS, &t);
        if (r < 0)
                return r;
        c->poll_transfer = t;
        return 0;
}

static uint64_t backoff_next(ControlClient *c) {
        c->backoff_usec = c->backoff_usec == 0 ? BACKOFF_MIN_USEC : MIN(c->backoff_usec * 2, BACKOFF_MAX_USEC);
        return c->backoff_usec;
}

static int on_poll_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        ControlClient *c = userdata;
        int r;

        if (!c->polling || c->poll_transfer)
                return 0;
        r = poll_start(c);
        if (r < 0) {
                log_debug_errno(r, "Failed to start netmap poll, retrying: %m");
                poll_schedule(c, backoff_next(c));
        }
        return 0;
}

void poll_schedule(ControlClient *c, uint64_t delay_usec) {
        uint64_t now;
        int r;

        r = sd_event_now(c->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                goto fail;
        if (c->poll_timer) {
                r = sd_event_source_set_time(c->poll_timer, now + delay_usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->poll_timer, SD_EVENT_ONESHOT);
        } else {
                r = sd_event_add_time(c->event, &c->poll_timer, CLOCK_MONOTONIC, now + delay_usec,
                                      POLL_TIMER_ACCURACY_USEC, on_poll_timer, c);
                if (r >= 0)
                        (void) sd_event_source_set_description(c->poll_timer, "control-client-poll");
        }
        if (r >= 0)
                return;
fail:
        /* Without a timer the loop would silently end; say so loudly. */
        log_error_errno(r, "Failed to schedule netmap poll, control connection stalls: %m");
}

static void poll_done(ControlClient *c, Transfer *t, int r, const char *message, bool retry_now) {
        unsigned generation = c->poll_generation;
        uint64_t version = c->netmap_version;
        bool replica_changed = c->replica_changed;

        if (r == 1) { /* 304: nothing changed within the server's timeout */
                c->connected = true;
                c->backoff_usec = 0;
                poll_schedule(c, 0);
                return;
        }

        c->connected = r >= 0;
        if (r < 0)
                log_debug_errno(r, "Netmap poll failed: %s", strna(message));
        if (r == -EACCES || r == -EPERM) {
                /* The token is dead; retrying cannot help. The callback
                 * still gets the reason. */
                ControlReplyCallback callback = c->poll_callback;
                void *userdata = c->poll_userdata;

                control_client_stop_polling(c);
                callback(c, r, message, NULL, 0, userdata);
                return;
        }

        c->poll_callback(c, r, message, r >= 0 ? strempty(t->body) : NULL, r >= 0 ? t->body_size : 0,
                         c->poll_userdata);

        if (c->free_requested || !c->polling || c->poll_generation != generation)
                return; /* stopped or restarted from the callback */

        /* A netmap the caller did not accept (version not advanced) would
         * come back at once: back off as after an error instead of spinning. */
        if (r >= 0 && (c->netmap_version != version || (replica_changed && !c->replica_changed))) {
                c->backoff_usec = 0;
                poll_schedule(c, 0);
        } else if (retry_now)
                poll_schedule(c, 0); /* another replica, from the version we have */
        else
                poll_schedule(c, backoff_next(c));
}

static void transfer_done(ControlClient *c, Transfer *t, CURLcode code) {
        _cleanup_free_ char *message = NULL;
        bool retry_now;
        int r;

        curl_event_remove(c->curl, t->easy);
        t->in_multi = false;

        r = transfer_result(t, code, &message);
        if (r < 0 && !message)
                message = strdup(r == -ENOMEM ? "out of memory" : "control request failed");

        /* Any answer from the server, even a refusal, shows it is reachable;
         * the long-poll alone would say so only after up to a minute. */
        if (r >= 0 || r == -EACCES || r == -EPERM || r == -EEXIST)
                c->connected = true;
        else if (r == -EHOSTUNREACH || r == -ETIMEDOUT || r == -EKEYREJECTED)
                c->connected = false;
        retry_now = failover_note_result(c, t, r, message);

        switch (t->kind) {
        case TRANSFER_CHALLENGE:
        case TRANSFER_REGISTER:
        case TRANSFER_CA:
        case TRANSFER_CERT:
                if (t->kind == TRANSFER_REGISTER || t->kind == TRANSFER_CHALLENGE) {
                        c->register_transfer = NULL;
                        /* a join goes on at the next replica: they share the
                         * challenge secret, so either step may move */
                        if (retry_now && failover_resend(c, t, &c->register_transfer) >= 0)
                                break;
                } else if (t->kind == TRANSFER_CA)
                        c->ca_transfer = NULL;
                else
                        c->cert_transfer = NULL;
                t->callback(c, r < 0 ? r : 0, r < 0 ? message : NULL, r >= 0 ? strempty(t->body) : NULL,
                            r >= 0 ? t->body_size : 0, t->userdata);
                break;
        case TRANSFER_ENDPOINTS:
                c->endpoints_transfer = NULL;
                /* what the node announces must reach the mesh: on the next replica */
                if (retry_now && failover_resend(c, t, &c->endpoints_transfer) >= 0)
                        break;
                if (r < 0)
                        log_debug_errno(r, "Posting endpoints failed: %s", strna(message));
                break;
        case TRANSFER_ROUTES:
                c->routes_transfer = NULL;
                if (retry_now && failover_resend(c, t, &c->routes_transfer) >= 0)
                        break;
                if (t->callback)
                        t->callback(c, r < 0 ? r : 0, r < 0 ? message : NULL, NULL, 0, t->userdata);
                break;
        case TRANSFER_POLL:
                c->poll_transfer = NULL;
                poll_done(c, t, r, message, retry_now);
                break;
        }
        transfer_free(t);
}

/* From curl-event.c's dispatch; a callback may free the client, which is
 * then deferred until this returns (and curl-event.c's own free until its
 * dispatch returns, so no further transfer is reported). */
void on_curl_done(CurlEvent *ce, CURL *easy, CURLcode result, void *userdata) {
        ControlClient *c = userdata;
        char *p = NULL;

        if (c->free_requested)
                return;
        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p) != CURLE_OK || !p)
                return;
        c->dispatching++;
        transfer_done(c, (Transfer *) p, result);
        c->dispatching--;

        if (c->dispatching == 0 && c->free_requested)
                client_free_now(c);
}
