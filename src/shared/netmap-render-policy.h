/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the access policy and the approved routes change in each node's
 * netmap (netmap-render.c asks): which peers and devices it sees, the
 * routes of each peer it may use, and its "filter". Only built when the mesh
 * has a policy or routes, so a mesh without either renders as before. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netmap-render.h"

typedef struct NetmapView {
        int64_t id;
        int64_t *peers; /* the nodes it sees, ascending ids */
        size_t n_peers;
        char **peer_routes; /* parallel to peers: NULL or ,"routes":[…] */
        size_t routes_len;  /* their lengths summed */
        char *filter;       /* ,"filter":[…] or NULL (no policy) */
        size_t filter_len;
        bool own_devices; /* with a policy: devices is this node's own list */
        char *devices;    /* ,"devices":[…] or NULL (none it sees) */
        size_t devices_len;
} NetmapView;

typedef struct NetmapViews {
        NetmapView *v; /* in the order of the mesh's nodes */
        size_t n;
} NetmapViews;

/* *ret NULL when the mesh has neither a policy nor a route. A policy that
 * does not parse (the store's was checked when it was set) is logged and
 * taken as one that allows nothing: closed, not open. */
int netmap_views_new(const NetmapMesh *mesh, NetmapViews **ret);
NetmapViews *netmap_views_free(NetmapViews *v);
/* peer index into v->peers, or -1 */
ssize_t netmap_view_peer(const NetmapView *v, int64_t id);
/* Whether a node's peer set, routes, filter and devices are the same in both. */
bool netmap_view_equal(const NetmapView *a, const NetmapView *b);
