/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The netmap: what the control server tells a node about itself and its
 * peers (docs/protocol.md). Parsed and validated at the border
 * (netmap-parse.c): a netmap that passes netmap_parse() is safe to apply as
 * it is. netmap-delta.c merges a delta, netmap-render.h renders both. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"
#include "key.h"
#include "macro.h"
#include "netmap-filter.h"

#define NETMAP_NAME_MAX 63

typedef struct NetmapNode {
        char *name; /* DNS label, unique in the netmap */
        WgKey public_key;
        union in_addr_union ipv4; /* always set, inside ipv4_range */
        union in_addr_union ipv6; /* inside ipv6_range when has_ipv6 */
        bool has_ipv6;
        char **endpoints;    /* strv of "ip:port", each valid for endpoint_parse() */
        bool relay;          /* reach this peer through the hub */
        uint16_t relay_port; /* hub only: the TLS relay's own port on the control host, 0: none */
        /* self and peers: the node's approved routes ("routes"), a strv of
         * canonical prefixes ("192.168.50.0/24"; NULL: none), each valid and
         * routable per msg-routes.h (no host bits; but for 0.0.0.0/0 and
         * ::/0, the exit node's, outside the mesh ranges), at most
         * ROUTES_MSG_MAX, none twice */
        char **routes;
} NetmapNode;

typedef struct Netmap {
        uint64_t version;
        char *domain; /* e.g. "mesh.internal" */
        union in_addr_union ipv4_range;
        uint8_t ipv4_prefixlen;
        union in_addr_union ipv6_range;
        uint8_t ipv6_prefixlen;
        bool has_ipv6_range;
        NetmapNode self;
        NetmapNode *peers;
        size_t n_peers;
        /* The control server's own WireGuard peer: relay and NAT observer
         * (docs/protocol.md, "The hub"). Its name is "hub". */
        bool has_hub;
        NetmapNode hub;
        /* Plain WireGuard devices (phones, cameras): peers of the hub only,
         * reached through it (docs/protocol.md, "Devices"). name, key and
         * addresses as a node's, never endpoints or relay. */
        NetmapNode *devices;
        size_t n_devices;
        /* The compiled access policy for traffic this node receives
         * (netmap-filter.h); NULL: no policy, the mesh may reach it all. */
        NetmapFilter *filter;
} Netmap;

Netmap *netmap_free(Netmap *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Netmap *, netmap_free);

/* Parses and validates; on error returns -EBADMSG and, when ret_error is
 * non-NULL, a one-line message naming the offending field
 * ("peers[2].public_key: not a WireGuard key"). */
int netmap_parse(const char *json, size_t len, Netmap **ret, char **ret_error);
/* Same, from an already parsed cJSON object (borrowed). */
struct cJSON;
int netmap_from_json(const struct cJSON *obj, Netmap **ret, char **ret_error);

const NetmapNode *netmap_find_peer_by_name(const Netmap *m, const char *name);
const NetmapNode *netmap_find_peer_by_key(const Netmap *m, const WgKey *key);
const NetmapNode *netmap_find_device_by_name(const Netmap *m, const char *name);
/* Accepts "nas", "nas.<domain>" (case-insensitive, trailing '.' allowed), or a
 * peer's IPv4/IPv6 address in text form. Peers only, never self. */
const NetmapNode *netmap_resolve_peer(const Netmap *m, const char *name_or_address);
/* The same among the devices (plain WireGuard peers of the hub). */
const NetmapNode *netmap_resolve_device(const Netmap *m, const char *name_or_address);

/* Peers are identified by public key. A peer whose key is in both maps but
 * whose addresses, endpoints, relay flag or name differ is "changed". The
 * arrays point into old (removed) and new (added, changed). */
typedef struct NetmapDiff {
        const NetmapNode **added;
        size_t n_added;
        const NetmapNode **removed;
        size_t n_removed;
        const NetmapNode **changed;
        size_t n_changed;
        bool self_changed;    /* own name or addresses differ */
        bool hub_changed;     /* hub added, removed, or its key, addresses or endpoint differ */
        bool devices_changed; /* a device came, went, or its name, key or addresses differ */
} NetmapDiff;

/* old may be NULL (everything in new is added, self_changed set). Endpoint
 * order counts: the first candidate is the one the server observed. */
int netmap_diff(const Netmap *old, const Netmap *new, NetmapDiff *ret);
void netmap_diff_done(NetmapDiff *d);
bool netmap_node_equal(const NetmapNode *a, const NetmapNode *b);

/* A NETMAP DELTA (docs/protocol.md) applied to the netmap JSON text it is
 * based on ("devices" in the delta replaces the base's list, [] removes it,
 * absent keeps it); *ret is the full NETMAP text (validate it with netmap_parse()).
 * -ESTALE when delta_from is not base's version (ask for a full netmap),
 * -EBADMSG when either is malformed (ret_error says what). */
int netmap_delta_merge(const char *base, size_t base_len, const char *delta, size_t delta_len, char **ret,
                       size_t *ret_len, char **ret_error);
/* The same delta applied to the parsed base netmap (netmap-delta-apply.c):
 * only the delta is parsed, the rest copied. Takes only the common delta (at
 * most 64 peers changed and 64 removed, same domain and ranges, no
 * "devices" or "filter" in it) that yields a valid netmap; -EAGAIN for
 * anything else, also for a malformed one: then netmap_delta_merge() and
 * netmap_parse() give the same netmap, or say what is wrong. */
int netmap_delta_apply(const Netmap *base, const char *delta, size_t delta_len, Netmap **ret);
/* Whether a reply of GET /v1/netmap is a delta rather than a full netmap. */
bool netmap_json_is_delta(const char *json, size_t len);

/* For envelopes that embed a netmap (msg-register.c): parse_json() of
 * netmap_parse(), and netmap_from_json() with error paths under prefix
 * ("netmap."). */
int netmap_json_parse(const char *json, size_t len, struct cJSON **ret, char **ret_error);
int netmap_from_json_at(const struct cJSON *obj, const char *prefix, Netmap **ret, char **ret_error);
