/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "netmap-render-policy.h"
#include "netmap-render.h"
#include "strv.h"

typedef struct SnapshotNode {
        int64_t id;
        char *body; /* the node's JSON object without its closing brace */
        size_t len;
        /* ,"routes":[…] of its approved routes, "" without: after body when
         * the node is self (a peer's are those self may use, NetmapView) */
        char *own_routes;
        size_t own_routes_len;
        char *public_key;
} SnapshotNode;

struct NetmapSnapshot {
        uint64_t version;
        char *header; /* {"version":…,"domain":…,"ipv4_range":…,"ipv6_range":… */
        size_t header_len;
        char *hub; /* ,"hub":{…} or NULL without a hub */
        size_t hub_len;
        char *devices; /* ,"devices":[…] or NULL without devices */
        size_t devices_len;
        SnapshotNode *nodes; /* ordered by id */
        size_t n_nodes;
        size_t bodies_len;
        NetmapRelayPair *relays; /* ordered by (lo, hi): one lookup per (self, peer) */
        size_t n_relays;
        /* NULL without a policy and routes; else per node, in the order of
         * nodes: its peers, their routes, its filter and devices */
        NetmapViews *views;

        /* What changed since the snapshot of version delta_base, computed
         * once for all the long-pollers that get a delta */
        bool has_delta;
        uint64_t delta_base;
        int64_t *changed_ids; /* ordered: nodes new or with another body */
        size_t n_changed_ids;
        char **removed_keys;            /* strv: public keys of nodes gone */
        size_t removed_len;             /* their rendered length, quotes and commas included */
        NetmapRelayPair *relay_changes; /* pairs relayed in one snapshot but not the other */
        size_t n_relay_changes;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

/* Nodes and devices own the same strings. */
static void mesh_nodes_free(NetmapMeshNode *nodes, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(nodes[i].name);
                free(nodes[i].public_key);
                free(nodes[i].ipv4);
                free(nodes[i].ipv6);
                free(nodes[i].observed_endpoint);
                strv_free(nodes[i].endpoints);
                strv_free(nodes[i].tags);
                strv_free(nodes[i].routes);
        }
        free(nodes);
}

void netmap_mesh_done(NetmapMesh *m) {
        free(m->domain);
        free(m->ipv4_range);
        free(m->ipv6_range);
        free(m->hub.public_key);
        free(m->hub.ipv4);
        free(m->hub.ipv6);
        free(m->hub.endpoint);
        mesh_nodes_free(m->nodes, m->n_nodes);
        free(m->relays);
        mesh_nodes_free(m->devices, m->n_devices);
        free(m->policy);
        *m = (NetmapMesh) {};
}

NetmapSnapshot *netmap_snapshot_free(NetmapSnapshot *snap) {
        if (!snap)
                return NULL;
        for (size_t i = 0; i < snap->n_nodes; i++) {
                free(snap->nodes[i].body);
                free(snap->nodes[i].own_routes);
                free(snap->nodes[i].public_key);
        }
        free(snap->nodes);
        free(snap->header);
        free(snap->hub);
        free(snap->devices);
        free(snap->relays);
        free(snap->changed_ids);
        strv_free(snap->removed_keys);
        free(snap->relay_changes);
        netmap_views_free(snap->views);
        free(snap);
        return NULL;
}

/* cJSON prints "{…}"; we keep "{…" and close it per use. */
static int json_print_open(const cJSON *obj, char **ret, size_t *ret_len) {
        char *p = cJSON_PrintUnformatted(obj);
        size_t len;

        if (!p)
                return -ENOMEM;
        len = strlen(p);
        if (len < 2 || p[len - 1] != '}') {
                free(p);
                return -EINVAL;
        }
        p[--len] = 0;
        *ret = p;
        *ret_len = len;
        return 0;
}

int netmap_endpoints_compose(const char *observed, char *const *announced, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;

        l = calloc(strv_length(announced) + 2, sizeof(char *));
        if (!l)
                return -ENOMEM;
        if (observed) {
                l[n] = strdup(observed);
                if (!l[n++])
                        return -ENOMEM;
        }
        for (size_t i = 0; announced && announced[i]; i++) {
                bool seen = false;

                /* at most STORE_ENDPOINTS_MAX + 1 entries: quadratic is cheapest */
                for (size_t j = 0; j < n && !seen; j++)
                        seen = streq(l[j], announced[i]);
                if (seen)
                        continue;
                l[n] = strdup(announced[i]);
                if (!l[n++])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int snapshot_node_render(const NetmapMeshNode *n, SnapshotNode *ret) {
        _cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();
        _cleanup_strv_free_ char **endpoints = NULL;
        cJSON *a;

        if (netmap_endpoints_compose(n->observed_endpoint, n->endpoints, &endpoints) < 0)
                return -ENOMEM;

        if (!o || !cJSON_AddStringToObject(o, "name", n->name) ||
            !cJSON_AddStringToObject(o, "public_key", n->public_key) ||
            !cJSON_AddStringToObject(o, "ipv4", n->ipv4) || !cJSON_AddStringToObject(o, "ipv6", n->ipv6) ||
            !(a = cJSON_AddArrayToObject(o, "endpoints")))
                return -ENOMEM;
        for (size_t i = 0; endpoints[i]; i++) {
                cJSON *e = cJSON_CreateString(endpoints[i]);
                if (!e || !cJSON_AddItemToArray(a, e)) {
                        cJSON_Delete(e);
                        return -ENOMEM;
                }
        }
        /* absent when none: a mesh without routes renders as before */
        ret->own_routes = strdup("");
        if (!ret->own_routes)
                return -ENOMEM;
        if (n->routes && n->routes[0]) {
                _cleanup_(cJSON_Deletep) cJSON *routes = cJSON_CreateArray();
                _cleanup_free_ char *text = NULL;

                for (size_t i = 0; routes && n->routes[i]; i++) {
                        cJSON *e = cJSON_CreateString(n->routes[i]);
                        if (!e || !cJSON_AddItemToArray(routes, e)) {
                                cJSON_Delete(e);
                                return -ENOMEM;
                        }
                }
                text = routes ? cJSON_PrintUnformatted(routes) : NULL;
                free(ret->own_routes);
                ret->own_routes = NULL;
                if (!text || asprintf(&ret->own_routes, ",\"routes\":%s", text) < 0)
                        return -ENOMEM;
        }
        ret->own_routes_len = strlen(ret->own_routes);

        ret->id = n->id;
        ret->public_key = strdup(n->public_key);
        if (!ret->public_key)
                return -ENOMEM;
        return json_print_open(o, &ret->body, &ret->len);
}

static int snapshot_header_render(const NetmapMesh *mesh, char **ret, size_t *ret_len) {
        const char *const fields[][2] = {
                { "domain", mesh->domain },
                { "ipv4_range", mesh->ipv4_range },
                { "ipv6_range", mesh->ipv6_range },
        };
        _cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();
        _cleanup_free_ char *text = NULL;
        size_t len;
        char *h;
        int r;

        if (!o)
                return log_oom();
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (!cJSON_AddStringToObject(o, fields[i][0], fields[i][1]))
                        return log_oom();
        r = json_print_open(o, &text, &len);
        if (r < 0)
                return log_oom();
        /* text is "{"domain":…" — splice the integer version in front exactly */
        if (asprintf(&h, "{\"version\":%" PRIu64 ",%s", mesh->version, text + 1) < 0)
                return log_oom();
        *ret_len = strlen(h);
        *ret = h;
        return 0;
}
static int snapshot_hub_render(const NetmapMeshHub *hub, char **ret, size_t *ret_len) {
        _cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();
        _cleanup_free_ char *text = NULL;
        cJSON *a, *e;

        if (!o || !cJSON_AddStringToObject(o, "public_key", hub->public_key) ||
            !cJSON_AddStringToObject(o, "ipv4", hub->ipv4) || !cJSON_AddStringToObject(o, "ipv6", hub->ipv6) ||
            !(a = cJSON_AddArrayToObject(o, "endpoints")))
                return log_oom();
        e = cJSON_CreateString(hub->endpoint);
        if (!e || !cJSON_AddItemToArray(a, e)) {
                cJSON_Delete(e);
                return log_oom();
        }
        if (hub->relay_port != 0 && !cJSON_AddNumberToObject(o, "relay_port", hub->relay_port))
                return log_oom();
        text = cJSON_PrintUnformatted(o);
        if (!text)
                return log_oom();
        if (asprintf(ret, ",\"hub\":%s", text) < 0)
                return log_oom();
        *ret_len = strlen(*ret);
        return 0;
}
/* The same text for every node: devices are peers of the hub only. */
static int snapshot_devices_render(const NetmapMeshNode *devices, size_t n, char **ret, size_t *ret_len) {
        _cleanup_(cJSON_Deletep) cJSON *a = cJSON_CreateArray();
        _cleanup_free_ char *text = NULL;

        if (!a)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                cJSON *o = cJSON_CreateObject();

                if (!o || !cJSON_AddItemToArray(a, o)) {
                        cJSON_Delete(o);
                        return log_oom();
                }
                if (!cJSON_AddStringToObject(o, "name", devices[i].name) ||
                    !cJSON_AddStringToObject(o, "public_key", devices[i].public_key) ||
                    !cJSON_AddStringToObject(o, "ipv4", devices[i].ipv4) ||
                    (devices[i].ipv6 && !cJSON_AddStringToObject(o, "ipv6", devices[i].ipv6)))
                        return log_oom();
        }
        text = cJSON_PrintUnformatted(a);
        if (!text)
                return log_oom();
        if (asprintf(ret, ",\"devices\":%s", text) < 0)
                return log_oom();
        *ret_len = strlen(*ret);
        return 0;
}

int netmap_snapshot_new(const NetmapMesh *mesh, NetmapSnapshot **ret) {
        _cleanup_(netmap_snapshot_freep) NetmapSnapshot *snap = NULL;
        int r;

        snap = calloc(1, sizeof(*snap));
        if (!snap)
                return log_oom();
        snap->version = mesh->version;
        r = snapshot_header_render(mesh, &snap->header, &snap->header_len);
        if (r < 0)
                return r;
        if (mesh->has_hub) {
                r = snapshot_hub_render(&mesh->hub, &snap->hub, &snap->hub_len);
                if (r < 0)
                        return r;
        }
        /* none: no key at all, so a mesh without devices renders as before */
        if (mesh->n_devices > 0) {
                r = snapshot_devices_render(mesh->devices, mesh->n_devices, &snap->devices, &snap->devices_len);
                if (r < 0)
                        return r;
        }
        snap->relays = calloc(MAX(mesh->n_relays, (size_t) 1), sizeof(NetmapRelayPair));
        if (!snap->relays)
                return log_oom();
        if (mesh->n_relays > 0)
                memcpy(snap->relays, mesh->relays, mesh->n_relays * sizeof(NetmapRelayPair));
        snap->n_relays = mesh->n_relays;

        r = netmap_views_new(mesh, &snap->views);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return r; /* logged: a member's address or route that does not parse */

        snap->nodes = calloc(MAX(mesh->n_nodes, (size_t) 1), sizeof(SnapshotNode));
        if (!snap->nodes)
                return log_oom();
        for (size_t i = 0; i < mesh->n_nodes; i++) {
                r = snapshot_node_render(mesh->nodes + i, snap->nodes + i);
                if (r < 0)
                        return log_oom();
                snap->n_nodes++;
                snap->bodies_len += snap->nodes[i].len;
        }

        *ret = TAKE_PTR(snap);
        return 0;
}
uint64_t netmap_snapshot_version(const NetmapSnapshot *snap) {
        return snap->version;
}

static const SnapshotNode *snapshot_find(const NetmapSnapshot *snap, int64_t id) {
        size_t lo = 0, hi = snap->n_nodes;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (snap->nodes[mid].id == id)
                        return snap->nodes + mid;
                if (snap->nodes[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

bool netmap_snapshot_has_node(const NetmapSnapshot *snap, int64_t id) {
        return snapshot_find(snap, id);
}

bool netmap_snapshot_relayed(const NetmapSnapshot *snap, int64_t a, int64_t b) {
        int64_t lo = MIN(a, b), hi = MAX(a, b);
        size_t l = 0, h = snap->n_relays;

        while (l < h) {
                size_t mid = l + (h - l) / 2;
                const NetmapRelayPair *p = snap->relays + mid;

                if (p->lo == lo && p->hi == hi)
                        return true;
                if (p->lo < lo || (p->lo == lo && p->hi < hi))
                        l = mid + 1;
                else
                        h = mid;
        }
        return false;
}

/* The view of node self in snap, NULL when snap has none. */
static const NetmapView *snapshot_view(const NetmapSnapshot *snap, const SnapshotNode *self) {
        return snap->views ? &snap->views->v[self - snap->nodes] : NULL;
}

/* A peer's routes as self may use them, or "" (no view, none). */
static const char *view_routes(const NetmapView *view, int64_t peer_id, bool *ret_visible) {
        ssize_t i;

        *ret_visible = true;
        if (!view)
                return "";
        i = netmap_view_peer(view, peer_id);
        *ret_visible = i >= 0;
        return i >= 0 && view->peer_routes[i] ? view->peer_routes[i] : "";
}

/* The devices self sees: its view's own list with a policy, else everyone's. */
static const char *view_devices(const NetmapSnapshot *snap, const NetmapView *view, size_t *ret_len) {
        if (view && view->own_devices) {
                *ret_len = view->devices_len;
                return view->devices;
        }
        *ret_len = snap->devices_len;
        return snap->devices;
}

static int snapshot_render(const NetmapSnapshot *snap, int64_t self_id, bool with_peers, char **ret,
                           size_t *ret_len) {
        static const char self_open[] = ",\"self\":", peers_open[] = "},\"peers\":[",
                          direct_close[] = ",\"relay\":false}", relay_close[] = ",\"relay\":true}";
        const SnapshotNode *self;
        const NetmapView *view;
        const char *devices;
        size_t size, devices_len = 0;
        char *buf, *p;

        self = snapshot_find(snap, self_id);
        if (!self)
                return -ENOENT;
        view = snapshot_view(snap, self);
        devices = with_peers ? view_devices(snap, view, &devices_len) : NULL;

        size = snap->header_len + strlen(self_open) + self->len + self->own_routes_len + strlen(peers_open) +
               1 + snap->hub_len + devices_len + 2 + (view ? view->filter_len : 0);
        if (with_peers)
                size += snap->bodies_len + snap->n_nodes * (strlen(direct_close) + 1) +
                        (view ? view->routes_len : 0);
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;

        p = mempcpy(buf, snap->header, snap->header_len);
        p = mempcpy(p, self_open, strlen(self_open));
        p = mempcpy(p, self->body, self->len);
        p = mempcpy(p, self->own_routes, self->own_routes_len);
        p = mempcpy(p, peers_open, strlen(peers_open));
        for (size_t i = 0; with_peers && i < snap->n_nodes; i++) {
                const SnapshotNode *n = snap->nodes + i;
                const char *routes;
                bool visible;

                if (n == self)
                        continue;
                routes = view_routes(view, n->id, &visible);
                if (!visible)
                        continue;
                if (p[-1] == '}')
                        *p++ = ',';
                p = mempcpy(p, n->body, n->len);
                p = stpcpy(p, routes);
                if (netmap_snapshot_relayed(snap, self_id, n->id))
                        p = mempcpy(p, relay_close, strlen(relay_close));
                else
                        p = mempcpy(p, direct_close, strlen(direct_close));
        }
        *p++ = ']';
        if (view && view->filter)
                p = mempcpy(p, view->filter, view->filter_len);
        if (snap->hub)
                p = mempcpy(p, snap->hub, snap->hub_len);
        /* last: where merging a delta that brings the first device adds it */
        if (devices)
                p = mempcpy(p, devices, devices_len);
        *p++ = '}';
        *p = 0;

        *ret_len = p - buf;
        *ret = buf;
        return 0;
}

int netmap_snapshot_render(const NetmapSnapshot *snap, int64_t self_id, char **ret, size_t *ret_len) {
        return snapshot_render(snap, self_id, true, ret, ret_len);
}

int netmap_snapshot_render_self(const NetmapSnapshot *snap, int64_t self_id, char **ret, size_t *ret_len) {
        return snapshot_render(snap, self_id, false, ret, ret_len);
}

int netmap_mesh_render_self(const NetmapMesh *header, const NetmapMeshNode *self, char **ret, size_t *ret_len) {
        _cleanup_(netmap_snapshot_freep) NetmapSnapshot *snap = NULL;
        NetmapMesh m = *header; /* borrowed, never freed here */
        int r;

        m.nodes = (NetmapMeshNode *) self;
        m.n_nodes = 1;
        m.relays = NULL;
        m.n_relays = 0;
        m.devices = NULL;
        m.n_devices = 0;
        m.policy = NULL;
        r = netmap_snapshot_new(&m, &snap);
        if (r < 0)
                return r;
        return netmap_snapshot_render_self(snap, self->id, ret, ret_len);
}

static int relay_pair_compare(const NetmapRelayPair *a, const NetmapRelayPair *b) {
        if (a->lo != b->lo)
                return a->lo < b->lo ? -1 : 1;
        if (a->hi != b->hi)
                return a->hi < b->hi ? -1 : 1;
        return 0;
}

/* One merge walk over both (ordered) node lists and both relay lists. */
static int snapshot_delta_prepare(NetmapSnapshot *snap, const NetmapSnapshot *prev) {
        _cleanup_free_ int64_t *changed = NULL;
        _cleanup_free_ NetmapRelayPair *relays = NULL;
        _cleanup_strv_free_ char **removed = NULL;
        size_t n_changed = 0, n_removed = 0, n_relays = 0, removed_len = 0, i = 0, j = 0;

        changed = calloc(MAX(snap->n_nodes, (size_t) 1), sizeof(int64_t));
        removed = calloc(prev->n_nodes + 1, sizeof(char *));
        relays = calloc(MAX(snap->n_relays + prev->n_relays, (size_t) 1), sizeof(NetmapRelayPair));
        if (!changed || !removed || !relays)
                return -ENOMEM;

        while (i < snap->n_nodes || j < prev->n_nodes) {
                const SnapshotNode *a = i < snap->n_nodes ? snap->nodes + i : NULL;
                const SnapshotNode *b = j < prev->n_nodes ? prev->nodes + j : NULL;

                if (a && (!b || a->id < b->id)) {
                        changed[n_changed++] = a->id;
                        i++;
                } else if (b && (!a || b->id < a->id)) {
                        removed[n_removed] = strdup(b->public_key);
                        if (!removed[n_removed])
                                return -ENOMEM;
                        removed_len += strlen(b->public_key) + 3;
                        n_removed++;
                        j++;
                } else {
                        /* both are set here: the branches above took every one-sided case */
                        /* cppcheck-suppress nullPointerRedundantCheck */
                        if (a->len != b->len || memcmp(a->body, b->body, a->len) != 0)
                                changed[n_changed++] = a->id;
                        i++;
                        j++;
                }
        }

        for (i = 0, j = 0; i < snap->n_relays || j < prev->n_relays;) {
                int c = i >= snap->n_relays   ? 1
                        : j >= prev->n_relays ? -1
                                              : relay_pair_compare(snap->relays + i, prev->relays + j);
                if (c < 0)
                        relays[n_relays++] = snap->relays[i++];
                else if (c > 0)
                        relays[n_relays++] = prev->relays[j++];
                else
                        i++, j++;
        }

        free(snap->changed_ids);
        strv_free(snap->removed_keys);
        free(snap->relay_changes);
        snap->changed_ids = TAKE_PTR(changed);
        snap->n_changed_ids = n_changed;
        snap->removed_keys = TAKE_PTR(removed);
        snap->removed_len = removed_len;
        snap->relay_changes = TAKE_PTR(relays);
        snap->n_relay_changes = n_relays;
        snap->delta_base = prev->version;
        snap->has_delta = true;
        return 0;
}

static bool id_in_sorted(const int64_t *ids, size_t n, int64_t id) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (ids[mid] == id)
                        return true;
                if (ids[mid] < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return false;
}

/* An upper bound for the changed peers of self_id's delta: every changed
 * node, and once more for every relay change of self_id. */
static size_t delta_peers_size(const NetmapSnapshot *snap, int64_t self_id) {
        static const char direct_close[] = ",\"relay\":false}";
        size_t size = 0;

        for (size_t i = 0; i < snap->n_changed_ids; i++)
                size += snapshot_find(snap, snap->changed_ids[i])->len + strlen(direct_close) + 1;
        for (size_t i = 0; i < snap->n_relay_changes; i++) {
                const NetmapRelayPair *pair = snap->relay_changes + i;
                const SnapshotNode *peer;

                if (pair->lo != self_id && pair->hi != self_id)
                        continue;
                peer = snapshot_find(snap, pair->lo == self_id ? pair->hi : pair->lo);
                if (peer)
                        size += peer->len + strlen(direct_close) + 1;
        }
        return size;
}

#define NO_DEVICES ",\"devices\":[]"

/* The complete list, only when it differs from delta_from's; [] when the
 * last device went (docs/protocol.md). At most DELTA_DEVICES_SIZE(snap). */
#define DELTA_DEVICES_SIZE(snap) MAX((snap)->devices_len, strlen(NO_DEVICES))
static char *delta_append_devices(char *p, const NetmapSnapshot *snap, const NetmapSnapshot *prev) {
        if (streq_ptr(snap->devices, prev->devices))
                return p;
        return snap->devices ? mempcpy(p, snap->devices, snap->devices_len)
                             : mempcpy(p, NO_DEVICES, strlen(NO_DEVICES));
}

/* One entry of peers_changed: body, the routes self may use, relay flag. */
static char *delta_append_peer(char *p, const NetmapSnapshot *snap, int64_t self_id, const SnapshotNode *n,
                               const char *routes) {
        static const char direct_close[] = ",\"relay\":false}", relay_close[] = ",\"relay\":true}";

        if (p[-1] == '}')
                *p++ = ',';
        p = mempcpy(p, n->body, n->len);
        p = stpcpy(p, routes);
        return netmap_snapshot_relayed(snap, self_id, n->id) ? mempcpy(p, relay_close, strlen(relay_close))
                                                             : mempcpy(p, direct_close, strlen(direct_close));
}

/* A delta never carries "filter" (docs/protocol.md): a node whose peer set,
 * peers' routes, filter or devices changed gets a full netmap. */
static bool delta_view_unchanged(const NetmapSnapshot *snap, const NetmapSnapshot *prev,
                                 const SnapshotNode *self, const SnapshotNode *prev_self) {
        const NetmapView *view = snapshot_view(snap, self), *prev_view;

        if (!view && !prev->views)
                return true;
        prev_view = snapshot_view(prev, prev_self);
        return view && prev_view && netmap_view_equal(view, prev_view);
}

int netmap_snapshot_render_delta(NetmapSnapshot *snap, const NetmapSnapshot *prev, int64_t self_id, char **ret,
                                 size_t *ret_len) {
        static const char self_open[] = ",\"self\":", removed_open[] = "],\"peers_removed\":[";
        const SnapshotNode *self, *prev_self;
        const NetmapView *view;
        char delta_open[64];
        size_t size, n_delta_open;
        char *buf, *p;
        int r;

        self = snapshot_find(snap, self_id);
        if (!self)
                return -ENOENT;
        prev_self = snapshot_find(prev, self_id);
        if (!prev_self || !delta_view_unchanged(snap, prev, self, prev_self))
                return -ESTALE;
        view = snapshot_view(snap, self);
        if (!snap->has_delta || snap->delta_base != prev->version) {
                r = snapshot_delta_prepare(snap, prev);
                if (r < 0)
                        return r;
        }

        n_delta_open = (size_t) snprintf(delta_open, sizeof(delta_open),
                                         "},\"delta_from\":%" PRIu64 ",\"peers_changed\":[", prev->version);
        size = snap->header_len + strlen(self_open) + self->len + self->own_routes_len + n_delta_open +
               strlen(removed_open) + delta_peers_size(snap, self_id) + snap->removed_len + snap->hub_len +
               DELTA_DEVICES_SIZE(snap) + 3 + (view ? view->routes_len * 2 : 0);

        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        p = mempcpy(buf, snap->header, snap->header_len);
        p = mempcpy(p, self_open, strlen(self_open));
        p = mempcpy(p, self->body, self->len);
        p = mempcpy(p, self->own_routes, self->own_routes_len);
        p = mempcpy(p, delta_open, n_delta_open);

        for (size_t i = 0; i < snap->n_changed_ids; i++) {
                const char *routes;
                bool visible;

                routes = view_routes(view, snap->changed_ids[i], &visible);
                if (snap->changed_ids[i] != self_id && visible)
                        p = delta_append_peer(p, snap, self_id, snapshot_find(snap, snap->changed_ids[i]),
                                              routes);
        }
        for (size_t i = 0; i < snap->n_relay_changes; i++) {
                const NetmapRelayPair *pair = snap->relay_changes + i;
                int64_t other;
                const SnapshotNode *peer;
                const char *routes;
                bool visible;

                if (pair->lo != self_id && pair->hi != self_id)
                        continue;
                other = pair->lo == self_id ? pair->hi : pair->lo;
                peer = snapshot_find(snap, other);
                routes = view_routes(view, other, &visible);
                /* gone (then in peers_removed), listed already, or not its peer */
                if (!peer || !visible || id_in_sorted(snap->changed_ids, snap->n_changed_ids, other))
                        continue;
                p = delta_append_peer(p, snap, self_id, peer, routes);
        }

        p = mempcpy(p, removed_open, strlen(removed_open));
        /* with a view, its peer set is the same as in prev: none of it went */
        for (size_t i = 0; !view && snap->removed_keys[i]; i++)
                p += sprintf(p, "%s\"%s\"", i > 0 ? "," : "", snap->removed_keys[i]);
        *p++ = ']';
        if (snap->hub)
                p = mempcpy(p, snap->hub, snap->hub_len);
        if (!view || !view->own_devices)
                p = delta_append_devices(p, snap, prev);
        *p++ = '}';
        *p = 0;
        assert(p < buf + size);

        *ret_len = p - buf;
        *ret = buf;
        return 0;
}
