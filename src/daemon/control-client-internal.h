/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the two halves of the control client share: control-transfer.c runs
 * the curl transfers (errors, backoff, the long-poll loop), control-client.c
 * makes the API's requests. */

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "control-client.h"
#include "control-urls.h"
#include "curl-event.h"
#include "key.h"

/* Bodies are at most 1 MiB by protocol; allow some slack, but never let a
 * broken or hostile server make us buffer without bound. */
#define BODY_MAX (4U * 1024U * 1024U)
#define CONNECT_TIMEOUT_MS 10000L
/* With replicas to go to, a server that does not answer a connect within
 * this is given up sooner (a TCP and TLS handshake is a few round trips). */
#define CONNECT_TIMEOUT_REPLICAS_MS 5000L
#define REQUEST_TIMEOUT_MS 30000L
/* The server holds a poll at most POLL_SERVER_TIMEOUT_SEC; the curl timeout
 * leaves room for a slow reply on top before we call the connection dead. */
#define POLL_SERVER_TIMEOUT_SEC 55
#define POLL_TIMEOUT_MS 70000L
#define TCP_KEEPALIVE_IDLE_SEC 5L
#define TCP_KEEPALIVE_INTERVAL_SEC 5L
#define TCP_KEEPALIVE_PROBES 3
/* With replicas, a replica that vanished without a RST (power, network) is
 * noticed within 10 s (docs/replicas.md): an idle long-poll is probed after
 * 2 s and every 2 s, 3 probes; TCP_USER_TIMEOUT bounds unacknowledged data
 * the same way. The kernel answers probes, so a live server costs nothing
 * but the packets: a long-poll deadline that short would cost a request
 * (and a TLS record each way) per node every few seconds. */
#define TCP_KEEPALIVE_REPLICAS_SEC 2L
#define TCP_USER_TIMEOUT_REPLICAS_MS 8000U
/* How long a node stays on a replica it failed over to before it tries the
 * first (preferred) URL again. */
#define FAILBACK_USEC (30 * USEC_PER_SEC)
#define BACKOFF_MIN_USEC (1 * USEC_PER_SEC)
#define BACKOFF_MAX_USEC (30 * USEC_PER_SEC)
/* A reconnect after a backoff is as prompt as curl's own timers
 * (curl-event.c); sd-event's default slack is 250 ms. */
#define POLL_TIMER_ACCURACY_USEC USEC_PER_MSEC
#define MESSAGE_MAX 256

typedef enum TransferKind {
        TRANSFER_CHALLENGE,
        TRANSFER_REGISTER,
        TRANSFER_POLL,
        TRANSFER_ENDPOINTS,
        TRANSFER_CA,
        TRANSFER_CERT,
        TRANSFER_ROUTES,
} TransferKind;

typedef struct Transfer {
        ControlClient *client;
        TransferKind kind;
        size_t url_index; /* the URL it went to */
        long status;      /* the HTTP status, 0 when none came */
        CURL *easy;
        bool in_multi;
        struct curl_slist *headers;
        char *request_body; /* may hold the auth key: erased on free */
        size_t request_body_size;
        char *body;
        size_t body_size;
        size_t body_allocated;
        bool body_too_large;
        char error_buffer[CURL_ERROR_SIZE];
        ControlReplyCallback callback;
        void *userdata;
} Transfer;

struct ControlClient {
        sd_event *event;
        CurlEvent *curl;
        char *urls_text;         /* the list as given: node.json keeps it */
        char **urls;             /* each without trailing '/' */
        ControlUrlChoice choice; /* the one requests go to */
        sd_event_source *failback_timer;
        char *pin;

        Transfer *register_transfer; /* the challenge, then the register */
        /* what the register after the challenge sends; secrets erased */
        struct {
                char *authkey;
                WgKey private_key;
                char public_key[WG_KEY_B64_LEN + 1];
                char *hostname;
                char **endpoints;
                ControlReplyCallback callback;
                void *userdata;
        } join;
        Transfer *endpoints_transfer;
        Transfer *ca_transfer;
        Transfer *cert_transfer;
        Transfer *routes_transfer;
        bool fresh_connect; /* next transfer must not reuse a pooled connection */
        uint32_t fwmark;    /* SO_MARK of its connections (exit-route.h), 0: none */

        /* long-poll loop */
        bool polling;
        bool connected;
        unsigned poll_generation; /* bumped by start/stop, so a callback that restarts polling is noticed */
        char *token;
        uint64_t netmap_version;
        bool replica_changed; /* moved to another URL, no netmap taken from it yet */
        uint64_t backoff_usec;
        ControlReplyCallback poll_callback;
        void *poll_userdata;
        Transfer *poll_transfer;
        sd_event_source *poll_timer;

        /* Callbacks may free the client; the free is then deferred until the
         * dispatch loop that called them has unwound. */
        unsigned dispatching;
        bool free_requested;
};

/* control-transfer.c */
/* A 2xx without a body still hands the callback a string. */
const char *strempty(const char *s);
void erase_string(char **s);
Transfer *transfer_free(Transfer *t);
/* Takes ownership of request_body (NULL: a GET). */
int transfer_new(ControlClient *c, TransferKind kind, const char *path, const char *token, char *request_body,
                 long timeout_ms, Transfer **ret);
/* (Re)starts the long-poll after delay_usec. */
void poll_schedule(ControlClient *c, uint64_t delay_usec);
/* curl-event.c's completion callback (userdata: the client) */
void on_curl_done(CurlEvent *ce, CURL *easy, CURLcode result, void *userdata);

/* control-failover.c */
/* After a transfer to t->url_index ended with r: an answer settles the
 * round, a dead or broken server moves the client to the next URL (logged
 * with MESHD_CONTROL_URL=). Returns true when the request should be made
 * again at once, on the URL now current. */
bool failover_note_result(ControlClient *c, const Transfer *t, int r, const char *message);
/* A join's challenge or register, or POST /v1/endpoints or /v1/routes,
 * once more on the URL now current (its callback kept); -EOPNOTSUPP for
 * the other requests. */
int failover_resend(ControlClient *c, const Transfer *t, Transfer **slot);

/* control-client.c: the free itself, once no callback runs */
void client_free_now(ControlClient *c);
