/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "api.h"
#include "netmap.h"
#include "peer-path.h"
#include "wg.h"

typedef struct Manager Manager;
typedef struct PendingPing PendingPing;

/* Probe cadence: every second while a probe is unanswered or the peer is
 * unreachable, so that READY=1 comes as soon as the path works and a dead
 * path is noticed within PEER_PATH_DEAD_USEC; every 2 s while it answers.
 * A peer stays reachable while a reply came within PEER_REACHABLE_USEC
 * (DESIGN.md §3). */
#define PEER_PROBE_UNREACHABLE_USEC (1 * USEC_PER_SEC)
#define PEER_PROBE_REACHABLE_USEC (2 * USEC_PER_SEC)
#define PEER_REACHABLE_USEC (30 * USEC_PER_SEC)
/* Try the next endpoint candidate when the current one gave no reply this long. */
#define PEER_ENDPOINT_TRY_USEC (5 * USEC_PER_SEC)
/* Device entries one tick may write to wake direct paths (punches, retries,
 * endpoint switches): beyond, the peers wait for the next tick. */
#define PEER_WAKE_BATCH_MAX 256
#define PEER_KEEPALIVE_SEC 25

typedef struct Peer {
        Manager *manager;
        char *name;
        char *fqdn;
        WgKey public_key;
        char public_key_b64[WG_KEY_B64_LEN + 1];
        union in_addr_union ipv4, ipv6;
        bool has_ipv6;
        char **endpoints;
        size_t endpoint_index;

        bool reachable;
        uint64_t last_reply_usec; /* CLOCK_MONOTONIC */
        uint64_t last_reply_realtime_usec;
        uint64_t last_probe_usec;
        uint32_t last_probe_seq;
        uint64_t rtt_usec;
        uint64_t endpoint_since_usec;

        /* from the device, refreshed on demand */
        uint64_t last_handshake_realtime_usec;
        uint64_t rx_bytes, tx_bytes;
        char *device_endpoint;

        /* Direct or through the hub: this node's own decision (peer-path.h). */
        bool is_hub; /* the control server's hub, not a node */
        PeerPathState path;
        uint64_t oldest_unanswered_usec; /* first probe sent after the latest reply, 0 = none */
        uint64_t direct_heard_usec;      /* WireGuard last received on this peer's entry */
        unsigned direct_retries;         /* since the relay began: picks the endpoint to try */

        PendingPing *pings;

        /* its subnet routes this node accepted (manager-routes.c): on its
         * WireGuard entry with its own addresses */
        InAddrPrefix *routes;
        size_t n_routes;
        /* this node's exit node (manager-exit.c): its own entry also carries 0.0.0.0/0, ::/0 */
        bool exit_ipv4, exit_ipv6;
} Peer;

int peer_new(Manager *m, const NetmapNode *node, const char *domain, Peer **ret);
Peer *peer_free(Peer *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Peer *, peer_free);

/* Takes the netmap's view of the peer; returns 1 when the WireGuard side
 * (allowed IPs, endpoint) must be rewritten, 0 when not. */
int peer_update(Peer *p, const NetmapNode *node, const char *domain);
/* Fills a WgPeer (allocated in d) that (re)creates this peer on the device. */
int peer_to_wg(const Peer *p, WgDevice *d);
/* Queues the removal of the peer's entry and its creation anew in d: a new
 * entry has no handshake history, so WireGuard initiates one at once. */
int peer_to_wg_fresh(const Peer *p, WgDevice *d);
const char *peer_current_endpoint(const Peer *p);
/* The peer's mesh addresses as allowed IPs of w (also used for the hub entry of a relayed peer). */
int peer_add_allowed_ips(const Peer *p, WgPeer *w);
/* 0.0.0.0/0 and ::/0 when the peer is this node's exit node. */
int peer_add_exit_allowed_ips(const Peer *p, WgPeer *w);

static inline bool peer_is_relayed(const Peer *p) {
        return peer_path_is_relay(p->path.path);
}

/* Called once a second: probe, expire reachability, rotate endpoints,
 * judge the path. */
void peer_tick(Peer *p, uint64_t now);
/* Probe at once, e.g. after the underlay changed: traffic makes WireGuard
 * (and the hub) learn our new endpoint. */
void peer_probe_now(Peer *p, uint64_t now);
/* Sends the probe numbered last_probe_seq (a tick's batch holds them until
 * its device changes are written: manager_device_batch_flush()). */
void peer_send_probe_now(Peer *p);
void peer_handle_probe_reply(Peer *p, uint32_t seq, uint64_t now);
/* The device's counters for this peer, read at now: traffic or a new
 * handshake on the peer's own entry is what proves the direct path. */
void peer_take_device_stats(Peer *p, const WgPeer *w, uint64_t now);
/* The hub answers probes (peer-path.h: not silent for PEER_PATH_DEAD_USEC). */
bool peer_answers(const Peer *p, uint64_t now);

/* io.meshd.Ping: answers call when a reply to a fresh probe comes, or
 * io.meshd.Timeout after timeout_usec. */
int peer_ping(Peer *p, ApiCall *call, uint64_t timeout_usec);

cJSON *peer_to_json(const Peer *p);
bool peer_has_address(const Peer *p, int family, const union in_addr_union *a);
/* Whether addr/prefixlen is one of the subnet routes accepted for p. */
bool peer_has_route(const Peer *p, int family, const union in_addr_union *addr, uint8_t prefixlen);
