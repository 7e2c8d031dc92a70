/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Reading io.meshd replies (docs/api.md) for mount.mesh. */

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* The Peer object in a ListPeers reply ({"peers": [...]}) whose name, fqdn,
 * ipv4 or ipv6 is name_or_address (names case-insensitive, a trailing '.'
 * allowed). NULL when none; the result points into reply. */
const cJSON *mesh_peer_find(const cJSON *reply, const char *name_or_address);

/* Whether a node object (a Peer, or the GetStatus reply for this node)
 * answers to name_or_address. */
bool mesh_node_matches(const cJSON *node, const char *name_or_address);

/* The address to mount from: ipv6 when the user wrote an IPv6 address
 * (want_ipv6) and the node has one, else ipv4. NULL when it has none. */
const char *mesh_node_address(const cJSON *node, bool want_ipv6);

/* Why a peer that WaitOnline gave up on is unreachable, for the one line
 * mount.mesh prints: "no handshake" when there has been no WireGuard
 * handshake in the last 3 minutes (now_usec: CLOCK_REALTIME), else
 * "no probe reply". */
const char *mesh_peer_unreachable_reason(const cJSON *peer, uint64_t now_usec);

/* "30s", "1min 30s" style is not needed: "30s", or "500ms" below a second. */
void format_timeout(uint64_t usec, char *buf, size_t size);
