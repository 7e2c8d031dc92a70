/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GET /v1/relay, the HTTP side of the TLS relay: admission and the upgrade;
 * the streams are relay-server.c's, the relay's own port relay-listener.c's. */
#include <arpa/inet.h>
#include <stdlib.h>

#include "http-internal.h"
#include "log.h"
#include "relay-admit.h"
#include "relay-frame.h"

static void on_relay_upgrade(void *cls, struct MHD_Connection *connection, void *con_cls, const char *extra_in,
                             size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
        Server *s = cls;
        Request *req = con_cls;

        if (!s->relay || !req || !req->relay_name) {
                (void) MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
                server_schedule_mhd(s);
                return;
        }
        const union MHD_ConnectionInfo *info =
                MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);

        /* MHD forwards between the TLS socket and sock inside MHD_run().
         * It never shuts sock down when the node hangs up (0.9.75), so the
         * stream watches the TLS socket itself (edge-triggered, never
         * reading it): for the hang-up, and to have MHD run whenever either
         * side moved rather than rely on MHD's nested epoll sets alone. */
        (void) relay_server_add(s->relay, sock, info ? info->connect_fd : -1, urh, req->node_id,
                                req->relay_name, &req->relay_key, (const uint8_t *) extra_in, extra_in_size);
}

enum MHD_Result handle_relay(Request *req) {
        _cleanup_(relay_admission_done) RelayAdmission a = {};
        Server *s = req->server;
        struct MHD_Response *response;
        enum MHD_Result ret;

        if (relay_admit(s->store, s->relay, s->relay_disabled,
                        MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION),
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
void server_start_relay_listener(Server *s) {
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
                log_warning_errno(r,
                                  "Failed to listen for the TLS relay on %s (--relay-port=%u): %m; "
                                  "serving without it, nodes relay through the API port.",
                                  text, (unsigned) s->relay_port);
                return;
        }
        log_info("TLS relay listening on %s.", relay_listener_address(s->relay_listener));
        s->netmap_hub.relay_port = s->relay_port;
        /* a netmap rendered before this must not be served without it */
        s->snapshot = netmap_snapshot_free(s->snapshot);
        s->previous = netmap_snapshot_free(s->previous);
}

/* After the hub: the streams' sockets talk to its port. */
int server_start_relay(Server *s) {
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
