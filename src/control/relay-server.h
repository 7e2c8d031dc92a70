/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The server end of the TLS relay (docs/protocol.md, "GET /v1/relay"): one
 * RelayStream per upgraded connection, each with a UDP socket of its own on
 * 127.0.0.1 connect()ed to the hub's port. Frames from the node go to the
 * hub as datagrams, datagrams from the hub go back framed. Everything is
 * non-blocking in the caller's sd-event loop; a stream that misbehaves is
 * closed alone, with one log line naming its node and why.
 *
 * The HTTP side (authentication, the 101) is http.c's; it hands over the
 * upgraded socket and learns through hooks when to let it go. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "endpoint.h"
#include "key.h"
#include "macro.h"
#include "wg.h"

#define RELAY_MAX_STREAMS_DEFAULT 1024
/* what waits for a node that does not read; more is dropped, like UDP */
#define RELAY_QUEUE_MAX (256 * 1024)
#define RELAY_STALL_USEC (10 * USEC_PER_SEC)
#define RELAY_IDLE_USEC (90 * USEC_PER_SEC)
#define RELAY_TICK_USEC USEC_PER_SEC

typedef struct RelayServer RelayServer;
typedef struct RelayStream RelayStream;

typedef struct RelayServerHooks {
        /* The stream is gone: release its connection (the upgraded socket
         * must not be used any more). Required. */
        void (*closed)(void *connection, void *userdata);
        /* The connection's sockets moved (we read or wrote the upgraded
         * socket, or its network socket became ready): the HTTP layer must
         * run to forward. May be NULL. */
        void (*kick)(void *userdata);
        /* A handshake was handed to the hub: read its peers soon (then call
         * relay_server_check_peers()). May be NULL. */
        void (*handshake_forwarded)(void *userdata);
        /* Whether node id is still a member (not removed, not expired).
         * May be NULL: everyone is. */
        bool (*is_member)(int64_t id, const WgKey *key, void *userdata);
        /* Put the hub entry of key back, after a stream was found to carry
         * that node's packets: to *endpoint (the node's own relay stream),
         * or, when that is AF_UNSPEC, to where the hub last saw the node
         * outside the relay; *endpoint is then what was set (AF_UNSPEC:
         * none). 0 or -errno. */
        int (*restore_endpoint)(const WgKey *key, union sockaddr_union *endpoint, void *userdata);
        void *userdata;
} RelayServerHooks;

/* hub_port: the hub's UDP port on 127.0.0.1. */
int relay_server_new(sd_event *event, uint16_t hub_port, unsigned max_streams, const RelayServerHooks *hooks,
                     RelayServer **ret);
/* Closes every stream (each through the closed hook). */
RelayServer *relay_server_free(RelayServer *rs);
DEFINE_TRIVIAL_CLEANUP_FUNC(RelayServer *, relay_server_free);

/* Whether one more stream for node id fits (its own stream, which a new one
 * replaces, does not count). */
bool relay_server_has_room(const RelayServer *rs, int64_t id);
size_t relay_server_n_streams(const RelayServer *rs);

/* Serves a stream on fd (the upgraded socket, owned by the connection: it is
 * never closed here). net_fd: the connection's network socket, or -1;
 * watched (edge-triggered, never read) only to call the kick hook. extra:
 * bytes the HTTP layer already read past the request. A stream of the same
 * node is closed first ("replaced"). On failure the closed hook has been
 * called already. */
int relay_server_add(RelayServer *rs, int fd, int net_fd, void *connection, int64_t id, const char *name,
                     const WgKey *key, const uint8_t *extra, size_t n_extra);

/* Who holds a stream's connection, when it is not the HTTP layer of the
 * hooks: relay-listener.c's own TLS connections get their close (and no
 * kick) through this, so both kinds of connection live side by side. */
typedef struct RelayStreamOwner {
        void (*closed)(void *connection, void *userdata); /* required */
        void (*kick)(void *userdata);                     /* may be NULL */
        void *connection;
        void *userdata;
} RelayStreamOwner;
/* As relay_server_add(), with owner's hooks instead of the server's. */
int relay_server_add_owned(RelayServer *rs, int fd, int net_fd, const RelayStreamOwner *owner, int64_t id,
                           const char *name, const WgKey *key, const uint8_t *extra, size_t n_extra);

/* The hub's peers as just read: closes every stream whose loopback socket is
 * another node's hub entry, and has that entry put back. */
void relay_server_check_peers(RelayServer *rs, const WgDevice *d);
/* What the once-a-second tick does (now_usec: CLOCK_MONOTONIC): closes the
 * streams of non-members, idle ones and those whose node stopped reading. */
void relay_server_check_timeouts(RelayServer *rs, uint64_t now_usec);
/* Closes the streams of nodes that are not members any more. */
void relay_server_check_members(RelayServer *rs);

/* A bounded byte queue of frames for the way to the node (pure, tested on
 * its own): a ring of RELAY_QUEUE_MAX bytes. */
typedef struct RelayQueue {
        uint8_t *buf;
        size_t size, head, used;
} RelayQueue;
int relay_queue_init(RelayQueue *q, size_t size);
void relay_queue_done(RelayQueue *q);
/* Appends header and payload as one frame: -ENOBUFS (nothing queued) when
 * it does not fit whole. */
int relay_queue_push_frame(RelayQueue *q, const uint8_t *payload, size_t len);
/* Writes as much as fd takes: bytes written (0 when it would block), or -errno. */
ssize_t relay_queue_flush(RelayQueue *q, int fd);
