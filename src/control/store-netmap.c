/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one consistent read of the store that every netmap is rendered from
 * (src/shared/netmap-render.c renders it). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipam.h"
#include "log.h"
#include "store-private.h"

/* The version and the mesh's settings in one statement (consistent by
 * itself), which is one round trip on PostgreSQL, not four. */
static int store_read_header(Store *s, NetmapMesh *m) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        const struct {
                const char *key;
                char **value;
        } fields[] = {
                { "domain", &m->domain },
                { "ipv4_range", &m->ipv4_range },
                { "ipv6_range", &m->ipv6_range },
        };
        bool have_version = false;
        int r;

        r = store_prepare(s,
                          "SELECT key, value FROM settings "
                          "WHERE key IN ('version', 'domain', 'ipv4_range', 'ipv6_range')",
                          &stmt);
        if (r < 0)
                return r;
        while ((r = store_step(s, stmt)) > 0) {
                const char *key = db_column_text(stmt, 0), *value = db_column_text(stmt, 1);

                if (!key || !value)
                        continue;
                if (streq(key, "version")) {
                        m->version = (uint64_t) db_column_int64(stmt, 1);
                        have_version = true;
                }
                for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                        if (streq(key, fields[i].key) && !*fields[i].value &&
                            !(*fields[i].value = strdup(value)))
                                return log_oom();
        }
        if (r < 0)
                return r;
        if (!have_version)
                return log_error_errno(-ENOENT, "%s: setting 'version' missing.", s->path);
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (!*fields[i].value)
                        return log_error_errno(-ENOENT, "%s: setting '%s' missing.", s->path, fields[i].key);
        return 0;
}

/* The hub's entry; its addresses from the ranges the header has read. */
static int store_read_hub(Store *s, const NetmapMesh *m, const NetmapHub *hub, NetmapMeshHub *ret) {
        char ipv4[INET6_ADDRSTRLEN], ipv6[INET6_ADDRSTRLEN];
        IpamRange range;
        int r;

        r = ipam_range_parse(m->ipv4_range, m->ipv6_range, &range);
        if (r < 0)
                return log_error_errno(r, "%s: invalid address ranges '%s', '%s': %m", s->path, m->ipv4_range,
                                       m->ipv6_range);
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

/* The header, and with hub the hub's entry from the ranges it holds. */
static int store_read_header_and_hub(Store *s, const NetmapHub *hub, NetmapMesh *m) {
        int r;

        r = store_read_header(s, m);
        if (r < 0 || !hub)
                return r;
        r = store_read_hub(s, m, hub, &m->hub);
        if (r < 0)
                return r;
        m->has_hub = true;
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

        r = store_read_header_and_hub(s, hub, &m);
        if (r < 0)
                return r;
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

int store_read_mesh_header(Store *s, const NetmapHub *hub, NetmapMesh *ret) {
        _cleanup_(netmap_mesh_done) NetmapMesh m = {};
        int r;

        /* one statement: no transaction needed for a consistent read */
        r = store_read_header_and_hub(s, hub, &m);
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
