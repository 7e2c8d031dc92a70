/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The TLS relay's own port (docs/protocol.md, "GET /v1/relay"): a TCP
 * listener that terminates TLS itself, with the API's certificate and
 * priorities, reads the one request a relay stream starts with, answers it
 * as the API port would (relay-admit.c), and after the 101 pumps the stream
 * between the TLS session and a socketpair whose other end RelayServer
 * serves. It exists because libmicrohttpd < 1.0 forwards an upgraded TLS
 * connection a few bytes at a time.
 *
 * Limits: the TLS handshake and the request head within
 * RELAY_LISTENER_DEADLINE_USEC of the accept, a head of RELAY_HEAD_MAX bytes,
 * RELAY_LISTENER_PENDING_MAX connections not yet upgraded, of which
 * RELAY_LISTENER_PENDING_PER_ADDRESS from one address. */

#include <stdint.h>
#include <systemd/sd-event.h>

#include "constants.h"
#include "endpoint.h"
#include "macro.h"
#include "relay-server.h"
#include "store.h"
#include "time-util.h"

#define RELAY_LISTENER_DEADLINE_USEC (10 * USEC_PER_SEC)
#define RELAY_LISTENER_PENDING_MAX 256
#define RELAY_LISTENER_PENDING_PER_ADDRESS 16
/* each way, per upgraded connection */
#define RELAY_LISTENER_BUFFER (64 * 1024)

typedef struct RelayListener RelayListener;

/* Listens on address (the API's, whose port is replaced by port). A port
 * that cannot be bound is the caller's warning to log: -errno. rs and store
 * must outlive the listener; free rs first (its streams close through the
 * listener), then the listener. */
int relay_listener_new(sd_event *event, const union sockaddr_union *address, uint16_t port, const char *key_pem,
                       const char *cert_pem, const char *priorities, Store *store, RelayServer *rs,
                       RelayListener **ret);
RelayListener *relay_listener_free(RelayListener *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(RelayListener *, relay_listener_free);

size_t relay_listener_n_pending(const RelayListener *l);
/* "ADDR:PORT" as it listens */
const char *relay_listener_address(const RelayListener *l);
