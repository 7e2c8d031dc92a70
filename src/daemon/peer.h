/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "api.h"
#include "netmap.h"
#include "wg.h"

typedef struct Manager Manager;
typedef struct PendingPing PendingPing;

/* Probe cadence: quick while a peer is unreachable so READY=1 comes as soon
 * as the path works; relaxed once it answers. A peer stays reachable while a
 * reply came within PEER_REACHABLE_USEC (DESIGN.md §3). */
#define PEER_PROBE_UNREACHABLE_USEC (1 * USEC_PER_SEC)
#define PEER_PROBE_REACHABLE_USEC (5 * USEC_PER_SEC)
#define PEER_REACHABLE_USEC (30 * USEC_PER_SEC)
/* Try the next endpoint candidate when the current one gave no reply this long. */
#define PEER_ENDPOINT_TRY_USEC (5 * USEC_PER_SEC)
#define PEER_KEEPALIVE_SEC 25
/* A direct path that gives no probe reply this long is reported as failed,
 * and the control server relays the pair through the hub. */
#define PEER_DIRECT_TIMEOUT_USEC (5 * USEC_PER_SEC)
/* Within that time, punch again this often: a fresh handshake from both
 * sides until one crosses the two NATs (WireGuard itself retries only
 * every 5 s, and a first crossing can fail when both sides send at once). */
#define PEER_PUNCH_INTERVAL_USEC (1 * USEC_PER_SEC)
/* While relayed, try the direct path again this often. */
#define PEER_DIRECT_RETRY_USEC (15 * USEC_PER_SEC)

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
        bool relay;

        bool reachable;
        uint64_t last_reply_usec;          /* CLOCK_MONOTONIC */
        uint64_t last_reply_realtime_usec;
        uint64_t last_probe_usec;
        uint32_t last_probe_seq;
        uint64_t rtt_usec;
        uint64_t endpoint_since_usec;

        /* from the device, refreshed on demand */
        uint64_t last_handshake_realtime_usec;
        uint64_t rx_bytes, tx_bytes;
        char *device_endpoint;

        /* Direct path or relay (docs/protocol.md, POST /v1/paths). */
        bool is_hub;                       /* the control server's hub, not a node */
        uint64_t direct_trying_since;      /* CLOCK_MONOTONIC, 0 = not trying */
        int direct_reported;               /* -1 nothing said yet, 0 failed, 1 works */
        uint64_t relay_since_realtime_usec;
        uint64_t last_direct_retry_usec;
        uint64_t last_punch_usec;
        unsigned direct_retries;           /* since the relay began: picks the endpoint to try */

        PendingPing *pings;
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

/* Called once a second: probe, expire reachability, rotate endpoints,
 * judge the direct path. */
void peer_tick(Peer *p, uint64_t now);
/* Probe at once, e.g. after the underlay changed: traffic makes WireGuard
 * (and the hub) learn our new endpoint. */
void peer_probe_now(Peer *p, uint64_t now);
void peer_handle_probe_reply(Peer *p, uint32_t seq, uint64_t now);

/* io.meshd.Ping: answers call when a reply to a fresh probe comes, or
 * io.meshd.Timeout after timeout_usec. */
int peer_ping(Peer *p, ApiCall *call, uint64_t timeout_usec);

cJSON *peer_to_json(const Peer *p);
bool peer_has_address(const Peer *p, int family, const union in_addr_union *a);
