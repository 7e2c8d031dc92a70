/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The NETMAP and NETMAP DELTA JSON of docs/protocol.md, rendered from a
 * plain description of the whole mesh at one version (NetmapMesh, what the
 * control server's store holds). netmap.c parses what this renders. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* One member as stored: all text, as it goes on the wire. */
typedef struct NetmapMeshNode {
        int64_t id; /* the server's node id: orders the peers */
        char *name;
        char *public_key; /* base64 */
        char *ipv4;
        char *ipv6;
        char *observed_endpoint; /* "ip:port" as the hub saw it, NULL when unknown */
        char **endpoints;        /* strv of the announced candidates, may be NULL */
        char **tags;             /* strv of its tags (without "tag:"), may be NULL */
        /* strv of its APPROVED routes ("192.168.50.0/24", "0.0.0.0/0"),
         * valid prefixes outside the mesh ranges, may be NULL: filled by the
         * store's routes table; NULL everywhere renders as without routes. */
        char **routes;
} NetmapMeshNode;

/* A pair of node ids, lo < hi, whose traffic goes through the hub. */
typedef struct NetmapRelayPair {
        int64_t lo, hi;
} NetmapRelayPair;

typedef struct NetmapMeshHub {
        char *public_key; /* base64 */
        char *ipv4, *ipv6;
        char *endpoint;      /* "ip:port" */
        uint16_t relay_port; /* 0: none ("relay_port" absent) */
} NetmapMeshHub;

typedef struct NetmapMesh {
        uint64_t version;
        char *domain, *ipv4_range, *ipv6_range;
        bool has_hub;
        NetmapMeshHub hub;
        NetmapMeshNode *nodes; /* ordered by id */
        size_t n_nodes;
        NetmapRelayPair *relays; /* ordered by (lo, hi), each once */
        size_t n_relays;
        /* Plain WireGuard devices behind the hub ("devices" of
         * docs/protocol.md): ordered by id; endpoints and
         * observed_endpoint unused. ipv6 NULL: none. */
        NetmapMeshNode *devices;
        size_t n_devices;
        /* The access policy's text (docs/policy.md), NULL: none, everyone
         * reaches everyone. With a policy (or routes), each node's netmap
         * lists only the peers and devices it may talk to, its "filter" and
         * the routes of its peers it may use (netmap-render-policy.c). */
        char *policy;
} NetmapMesh;

void netmap_mesh_done(NetmapMesh *m);

/* A node's endpoints as every netmap lists them: the observed one first
 * (when known), then its announced candidates, without duplicates. */
int netmap_endpoints_compose(const char *observed, char *const *announced, char ***ret);

/* One consistent view of the mesh at one version, rendered once: each
 * node's JSON is made when the snapshot is made, and the netmap of any node
 * is then a concatenation, so answering N long-pollers after a change costs
 * N copies, not N renderings. */
typedef struct NetmapSnapshot NetmapSnapshot;

/* -ENOMEM (logged) */
int netmap_snapshot_new(const NetmapMesh *mesh, NetmapSnapshot **ret);
NetmapSnapshot *netmap_snapshot_free(NetmapSnapshot *snap);
DEFINE_TRIVIAL_CLEANUP_FUNC(NetmapSnapshot *, netmap_snapshot_free);
uint64_t netmap_snapshot_version(const NetmapSnapshot *snap);
bool netmap_snapshot_has_node(const NetmapSnapshot *snap, int64_t id);
/* Whether the pair {a, b} is relayed in this snapshot: a binary search. */
bool netmap_snapshot_relayed(const NetmapSnapshot *snap, int64_t a, int64_t b);
/* The NETMAP DELTA of docs/protocol.md for node self_id, from prev (the
 * snapshot the node has) to snap; what changed between the two is worked
 * out on the first call and kept in snap for the other nodes. -ENOENT when
 * the node is not in snap (removed), -ESTALE when it was not in prev (it
 * needs a full netmap). */
int netmap_snapshot_render_delta(NetmapSnapshot *snap, const NetmapSnapshot *prev, int64_t self_id, char **ret,
                                 size_t *ret_len);
/* The NETMAP JSON object of docs/protocol.md for node self_id; -ENOENT when
 * that node is not in the snapshot (removed). */
int netmap_snapshot_render(const NetmapSnapshot *snap, int64_t self_id, char **ret, size_t *ret_len);
/* The same without peers and devices: the node's own entry, the mesh, the
 * hub and its filter, at the snapshot's version. What a register reply
 * carries for a node that fetches its peers with its first long-poll
 * (docs/protocol.md, "POST /v1/register"): O(1) in the mesh's size. */
int netmap_snapshot_render_self(const NetmapSnapshot *snap, int64_t self_id, char **ret, size_t *ret_len);
/* That netmap from a mesh's header (its nodes, relays, devices and policy
 * unused) and the one member: no snapshot of the whole mesh needed. */
int netmap_mesh_render_self(const NetmapMesh *header, const NetmapMeshNode *self, char **ret, size_t *ret_len);
