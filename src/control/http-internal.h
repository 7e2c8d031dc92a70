/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the files of the HTTPS server share: the Server, one Request, one
 * accepted Connection, and the functions the API handlers (api-*.c) call
 * to answer. http.c is the MHD/sd-event glue, http-request.c replies and
 * authentication, http-poll.c the long-poll waiters and the netmap version,
 * http-connections.c the connection list and its sweep. */

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "acme.h"
#include "ca.h"
#include "challenge.h"
#include "endpoint.h"
#include "http.h"
#include "hub.h"
#include "key.h"
#include "relay-listener.h"
#include "relay-server.h"
#include "store.h"
#include "udp-echo.h"

/* how often http-connections.c sweeps */
#define SWEEP_USEC USEC_PER_SEC
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct cJSON;

typedef struct Request Request;
typedef struct Connection Connection;
typedef struct RegisterJob RegisterJob;

/* One accepted socket, from MHD's connection notifications. */
struct Connection {
        Server *server;
        int fd;
        uint64_t since;  /* CLOCK_MONOTONIC µs: accepted, or its last request ended */
        bool in_request; /* a complete request is being answered (a long-poll too) */
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
        sd_event_source *db_notify; /* PostgreSQL's wake-up (store_notify_fd()); NULL: SQLite, or lost */

        uint64_t version; /* highest netmap version seen */
        StoreWatch store_watch;
        NetmapSnapshot *snapshot;
        NetmapSnapshot *previous; /* the one before: the base of deltas */

        Request *waiters; /* suspended GET /v1/netmap */
        size_t n_waiters;
        Connection *connections;
        sd_event_source *sweep;

        /* POST /v1/challenge, /v1/register */
        ChallengeSecret challenge_secret;
        ChallengeSet *used_challenges;
        bool expired_needs_admin;
        InAddrPrefix mesh_ranges[2]; /* no endpoint inside */
        /* register-batch.c: the registrations waiting for the group commit */
        RegisterJob *register_queue, **register_tail;
        size_t n_register_queued;
        sd_event_source *register_timer;

        /* POST /v1/cert */
        CertAuthority *ca;
        char *domain;
        uint64_t cert_lifetime_sec;
        AcmeIssuer *acme; /* NULL: the mesh CA signs (acme.h) */
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
        uint16_t relay_port; /* the relay's own TLS port, 0: none */
        RelayListener *relay_listener;
        UdpEcho *echo;

        /* mesh DNS on the hub's addresses (hub-dns.c); NULL: off */
        uint16_t dns_port;
        char *dns_resolv_conf;
        struct DnsServer *dns;
        union sockaddr_union dns_listen[2];
        size_t n_dns_listen;
        /* upgraded connections let go during MHD_run(), handed back after it */
        bool in_mhd_run;
        struct MHD_UpgradeResponseHandle **closing;
        size_t n_closing, n_closing_allocated;
        size_t n_unfinished; /* let go, but MHD has not closed the connection yet */
};

struct Request {
        Server *server;
        struct MHD_Connection *connection;
        Connection *conn; /* NULL if MHD gave none */
        char *method, *path;
        unsigned status; /* of the queued response, 0 before */

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
        bool delta;        /* &delta=1: a NETMAP DELTA is welcome */
        uint64_t deadline; /* CLOCK_MONOTONIC, µs */
        bool waiting;
        sd_event_source *timeout_source;
        Request *waiters_prev, *waiters_next;

        /* POST /v1/register: queued for the group commit, then its result */
        RegisterJob *register_job;
};

/* http.c: MHD processes resumed connections in its next MHD_run(). */
void server_schedule_mhd(Server *s);

/* http-request.c */
Request *request_free(Request *req);
enum MHD_Result request_reply(Request *req, unsigned status, char *body, size_t len);
_printf_(3, 4) enum MHD_Result request_reply_error(Request *req, unsigned status, const char *format, ...);
enum MHD_Result request_reply_oom(Request *req);
enum MHD_Result request_reply_internal(Request *req);
int parse_uint64(const char *s, uint64_t *ret);
/* Returns MHD_YES with *ret_id (and *ret_node, when not NULL) set when the
 * token belongs to a valid member; otherwise the error reply is queued and
 * *ret_id is -1. */
enum MHD_Result request_authenticate_node(Request *req, int64_t *ret_id, StoreNode *ret_node);
enum MHD_Result request_authenticate(Request *req, int64_t *ret_id);
struct cJSON *request_parse_body(Request *req);

/* http-poll.c: the netmap version, its snapshots and the long-poll waiters */
void request_unlink(Request *req);
void request_resume(Request *req);
enum MHD_Result request_wait(Request *req);
void server_check_version(Server *s);
void server_wake_waiters(Server *s);
int server_get_snapshot(Server *s, NetmapSnapshot **ret);
void on_hub_changed(Hub *h, void *userdata);
/* Other processes' commits (meshd-control nodes remove): what the database
 * is now (server_new()), and from server_run() on, watching it. */
int server_db_poll_init(Server *s);
int server_start_db_poll(Server *s);

/* http-connections.c */
void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                   enum MHD_ConnectionNotificationCode code);
int on_sweep(sd_event_source *source, uint64_t usec, void *userdata);

/* the API, one file per resource */
enum MHD_Result handle_challenge(Request *req); /* api-register.c */
enum MHD_Result handle_register(Request *req);  /* api-register.c */
enum MHD_Result handle_netmap(Request *req);    /* api-netmap.c */
enum MHD_Result handle_endpoints(Request *req); /* api-endpoints.c */
enum MHD_Result handle_routes(Request *req);    /* api-routes.c */
enum MHD_Result handle_paths(Request *req);     /* api-paths.c */
enum MHD_Result handle_ca(Request *req);        /* api-cert.c */
enum MHD_Result handle_cert(Request *req);      /* api-cert.c */
enum MHD_Result handle_relay(Request *req);     /* api-relay.c */
/* hub-dns.c: after the hub, the mesh DNS server; its names again at
 * every netmap version */
void server_start_dns(Server *s);
void server_dns_update(Server *s);
/* names from the mesh a snapshot was rendered from (http-poll.c) */
void server_dns_set_names(Server *s, const NetmapMesh *m);
/* api-relay.c: after the hub, the relay streams and the UDP echo; after
 * MHD holds the API's port, the relay's own port */
int server_start_relay(Server *s);
void server_start_relay_listener(Server *s);
