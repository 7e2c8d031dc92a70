/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The HTTPS API of docs/protocol.md: libmicrohttpd without threads of its
 * own, driven by an sd-event loop through MHD's epoll fd. Long-polls of
 * GET /v1/netmap are suspended MHD connections on a waiters list, resumed
 * by any change of the netmap version, ours or another process's. */

#include "acme.h"
#include "ca.h"
#include "hub.h"
#include "macro.h"
#include "store.h"

#define SERVER_LISTEN_DEFAULT "0.0.0.0:" CONTROL_PORT_DEFAULT

typedef struct Server Server;

/* Takes ownership of store. listen: "ADDR:PORT" or "[ADDR6]:PORT". */
int server_new(Store *store, const char *state_dir, const char *listen, Server **ret);
/* Run a hub (started by server_run()); public_key (base64) and endpoint
 * ("ip:port") are what netmaps carry as "hub". Without this call netmaps
 * have no hub. */
int server_set_hub(Server *s, const HubOptions *opts, const char *public_key, const char *endpoint);
/* Answer POST /v1/cert and GET /v1/ca (takes ownership of ca; without
 * this call both reply 503). lifetime_sec: of issued certificates. */
int server_set_ca(Server *s, CertAuthority *ca, const char *domain, uint64_t lifetime_sec);
/* Node certificates from an ACME CA instead of the mesh CA (acme.h). */
int server_set_acme(Server *s, const AcmeConfig *config);
/* --expired-nodes=admin: an expired node's key registering again gets 403
 * until `meshd-control nodes renew`; by default it renews the node. */
void server_set_expired_needs_admin(Server *s, bool b);
/* With a hub: GET /v1/relay (unless !relay: 503 "relay disabled") with at
 * most max_streams streams (0: RELAY_MAX_STREAMS_DEFAULT), and the UDP echo
 * on the listen address (unless !udp_echo). */
void server_set_relay(Server *s, bool relay, unsigned max_streams, bool udp_echo);
/* The relay's own TLS port (relay-listener.h; 0: none), on the listen
 * address; announced in netmaps as the hub's "relay_port" when it runs. */
void server_set_relay_port(Server *s, uint16_t port);
/* Mesh DNS on the hub's mesh addresses, port (0: none), forwarding to the
 * resolvers of resolv_conf (NULL: /etc/resolv.conf); hub-dns.c. */
void server_set_dns(Server *s, uint16_t port, const char *resolv_conf);
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);

/* Serves until SIGTERM or SIGINT; sends READY=1 and STOPPING=1. */
int server_run(Server *s);
