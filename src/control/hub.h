/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The hub (docs/protocol.md, "The hub"): the control server's own WireGuard
 * interface with the first address of each mesh range. Every member is its
 * peer, with the member's addresses as allowed IPs and no endpoint (nodes
 * come to the hub, which also makes it see their endpoints after NAT).
 * The hub forwards between its peers (relay), publishes each member's
 * endpoint as it sees it (observed endpoint), and answers probes on UDP
 * 41642 of its mesh addresses like a node. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "constants.h"
#include "endpoint.h"
#include "hub-firewall.h"
#include "ipam.h"
#include "key.h"
#include "macro.h"
#include "store.h"
#include "wg.h"

#define HUB_INTERFACE_DEFAULT "meshhub"

typedef struct Hub Hub;

typedef struct HubOptions {
        const char *ifname;
        WgBackendType backend;
        WgKey private_key;
        uint16_t listen_port;
        bool keep_interface;   /* leave the interface in place on stop */
        bool ipv6_forwarding;  /* set net.ipv6.conf.all.forwarding=1 */
        const char *database;  /* the store's file: its commits are watched (hub-watch.h); NULL: polled only */
        bool no_firewall;      /* run without the nftables table (hub-firewall.h) */
        const HubAllow *allow; /* services on the hub address open to members */
        size_t n_allow;
} HubOptions;

/* Called after the hub committed new observed endpoints (the netmap
 * version was bumped). */
typedef void (*HubChangedHandler)(Hub *h, void *userdata);

/* Installs the firewall (unless no_firewall; failing to is fatal), sets up
 * the interface (key, port, addresses, up, forwarding), loads every
 * member as a peer, opens the probe sockets and starts reading endpoints
 * every second. store is borrowed. SIGCHLD must be blocked (userspace
 * backend: wireguard-go is our child, and the hub ends with it). */
int hub_new(sd_event *event, Store *store, const HubOptions *opts, HubChangedHandler on_changed, void *userdata,
            Hub **ret);
/* Removes the interface and then the firewall, unless keep_interface
 * (then both stay: an interface left up must not be an open door). */
Hub *hub_free(Hub *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Hub *, hub_free);

/* Called with every read of the hub's peers (every second, and after
 * hub_read_soon()). */
typedef void (*HubPeersHandler)(Hub *h, const WgDevice *d, void *userdata);
void hub_set_peers_handler(Hub *h, HubPeersHandler handler, void *userdata);
/* Reads the peers in a moment (coalesced): a relayed handshake may have
 * moved an endpoint. */
int hub_read_soon(Hub *h);
/* Whether node id with key is a peer of the hub (a member: not removed,
 * not expired), as of the last sync. */
bool hub_has_member(Hub *h, const WgKey *key, int64_t id);
/* Sets the peer's endpoint to *endpoint, or when that is AF_UNSPEC to the
 * last one the hub published for it (never loopback); *endpoint is then
 * what was set, AF_UNSPEC when the peer had none (it is re-added without). */
int hub_restore_endpoint(Hub *h, const WgKey *key, union sockaddr_union *endpoint);

/* Brings the peers and the firewall's member sets in line with the members
 * when membership changed since the last sync (a cheap counter read
 * otherwise): only the differences. */
int hub_sync(Hub *h);
