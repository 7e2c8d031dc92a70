/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one consistent read of the store that every netmap is rendered from
 * (src/shared/netmap-render.c renders it). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipam.h"
#include "log.h"
#include "store-private.h"

static int store_read_header(Store *s, NetmapMesh *m) {
        const struct {
                const char *key;
                char **value;
        } fields[] = {
                { "domain", &m->domain },
                { "ipv4_range", &m->ipv4_range },
                { "ipv6_range", &m->ipv6_range },
        };
        int r;

        r = store_get_version(s, &m->version);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                r = store_get_setting(s, fields[i].key, fields[i].value);
                if (r < 0)
                        return log_error_errno(r, "%s: setting '%s' missing: %m", s->path, fields[i].key);
        }
        return 0;
}

static int store_read_hub(Store *s, const NetmapHub *hub, NetmapMeshHub *ret) {
        char ipv4[INET6_ADDRSTRLEN], ipv6[INET6_ADDRSTRLEN];
        IpamRange range;
        int r;

        r = store_read_range(s, &range);
        if (r < 0)
                return r;
        r = ipam_host_format(&range, IPAM_HOST_HUB, ipv4, ipv6);
        if (r < 0)
                return log_error_errno(r, "%s: no hub address in the mesh ranges: %m", s->path);

        ret->public_key = strdup(hub->public_key);
        ret->endpoint = strdup(hub->endpoint);
        ret->ipv4 = strdup(ipv4);
        ret->ipv6 = strdup(ipv6);
        ret->relay_port = hub->relay_port;
        if (!ret->public_key || !ret->endpoint || !ret->ipv4 || !ret->ipv6)
                return log_oom();
        return 0;
}

/* The rows' strings move into the mesh's nodes (or devices). */
static int mesh_take_nodes(NetmapMeshNode **ret, size_t *ret_n, NodeArray *a) {
        *ret = calloc(MAX(a->n, (size_t) 1), sizeof(NetmapMeshNode));
        if (!*ret)
                return log_oom();
        for (size_t i = 0; i < a->n; i++) {
                StoreNode *n = a->nodes + i;
                NetmapMeshNode *node = *ret + i;

                /* field by field: TAKE_PTR() inside a compound literal is
                 * more than cppcheck's parser can follow */
                node->id = n->id;
                node->name = TAKE_PTR(n->name);
                node->public_key = TAKE_PTR(n->public_key);
                node->ipv4 = TAKE_PTR(n->ipv4);
                node->ipv6 = TAKE_PTR(n->ipv6);
                node->observed_endpoint = TAKE_PTR(n->observed_endpoint);
                node->endpoints = TAKE_PTR(n->endpoints);
                node->tags = TAKE_PTR(n->tags);
                (*ret_n)++;
        }
        return 0;
}

int store_read_mesh(Store *s, const NetmapHub *hub, NetmapMesh *ret) {
        _cleanup_(netmap_mesh_done) NetmapMesh m = {};
        _cleanup_(node_array_done) NodeArray a = {}, d = {};
        int r;

        /* one read transaction: version and nodes from the same commit */
        r = store_begin(s, false);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_read_header(s, &m);
        if (r < 0)
                return r;
        if (hub) {
                r = store_read_hub(s, hub, &m.hub);
                if (r < 0)
                        return r;
                m.has_hub = true;
        }
        r = store_list_nodes_internal(s, false, false, &a);
        if (r < 0)
                return r;
        r = store_list_nodes_internal(s, false, true, &d);
        if (r < 0)
                return r;
        r = store_load_relays(s, &m.relays, &m.n_relays);
        if (r < 0)
                return r;
        r = mesh_take_nodes(&m.nodes, &m.n_nodes, &a);
        if (r < 0)
                return r;
        r = store_load_approved_routes(s, m.nodes, m.n_nodes);
        if (r < 0)
                return r;
        r = store_get_policy(s, &m.policy);
        if (r < 0 && r != -ENOENT)
                return r;
        r = store_commit(&tx);
        if (r < 0)
                return r;

        r = mesh_take_nodes(&m.devices, &m.n_devices, &d);
        if (r < 0)
                return r;
        *ret = m;
        m = (NetmapMesh) {};
        return 0;
}

static int store_read_member(Store *s, int64_t id, NodeArray *ret) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        _cleanup_(node_array_done) NodeArray a = {};
        int r;

        r = store_prepare(s,
                          "SELECT " NODE_COLUMNS " FROM nodes WHERE id = ?1 AND removed IS NULL "
                          "AND expired IS NULL AND kind = 'node'",
                          &stmt);
        if (r < 0)
                return r;
        db_bind_int64(stmt, 1, id);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        a.nodes = calloc(1, sizeof(StoreNode));
        if (!a.nodes)
                return log_oom();
        r = node_from_row(stmt, a.nodes);
        if (r < 0)
                return log_error_errno(r, "%s: failed to read node row: %m", s->path);
        a.n = 1;
        *ret = a;
        a = (NodeArray) {};
        return 0;
}

int store_read_mesh_self(Store *s, const NetmapHub *hub, int64_t id, NetmapMesh *ret) {
        _cleanup_(netmap_mesh_done) NetmapMesh m = {};
        _cleanup_(node_array_done) NodeArray a = {};
        int r;

        r = store_begin(s, false);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_read_header(s, &m);
        if (r < 0)
                return r;
        if (hub) {
                r = store_read_hub(s, hub, &m.hub);
                if (r < 0)
                        return r;
                m.has_hub = true;
        }
        r = store_read_member(s, id, &a);
        if (r < 0)
                return r;
        r = mesh_take_nodes(&m.nodes, &m.n_nodes, &a);
        if (r < 0)
                return r;
        r = store_load_approved_routes(s, m.nodes, m.n_nodes);
        if (r < 0)
                return r;
        r = store_commit(&tx);
        if (r < 0)
                return r;
        *ret = m;
        m = (NetmapMesh) {};
        return 0;
}

int netmap_snapshot_load(Store *s, const NetmapHub *hub, NetmapSnapshot **ret) {
        _cleanup_(netmap_mesh_done) NetmapMesh m = {};
        int r;

        r = store_read_mesh(s, hub, &m);
        if (r < 0)
                return r;
        return netmap_snapshot_new(&m, ret);
}
