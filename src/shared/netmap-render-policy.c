/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Each node's part of the access policy and the routes in its netmap
 * (netmap-render-policy.h): computed once per snapshot. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "netmap-render-policy.h"
#include "policy-mesh.h"
#include "strv.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

static void view_done(NetmapView *v) {
        for (size_t i = 0; i < v->n_peers; i++)
                free(v->peer_routes[i]);
        free(v->peer_routes);
        free(v->peers);
        free(v->filter);
        free(v->devices);
}

NetmapViews *netmap_views_free(NetmapViews *v) {
        if (!v)
                return NULL;
        for (size_t i = 0; i < v->n; i++)
                view_done(&v->v[i]);
        free(v->v);
        free(v);
        return NULL;
}

ssize_t netmap_view_peer(const NetmapView *v, int64_t id) {
        size_t lo = 0, hi = v->n_peers;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (v->peers[mid] == id)
                        return (ssize_t) mid;
                if (v->peers[mid] < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -1;
}

bool netmap_view_equal(const NetmapView *a, const NetmapView *b) {
        if (a->n_peers != b->n_peers || a->own_devices != b->own_devices || !streq_ptr(a->filter, b->filter) ||
            !streq_ptr(a->devices, b->devices))
                return false;
        for (size_t i = 0; i < a->n_peers; i++)
                if (a->peers[i] != b->peers[i] || !streq_ptr(a->peer_routes[i], b->peer_routes[i]))
                        return false;
        return true;
}

/* ",\"KEY\":" + the array, or NULL for an empty one when skip_empty. */
static int render_array(const char *key, cJSON *a, bool skip_empty, char **ret, size_t *ret_len) {
        _cleanup_free_ char *text = NULL;

        if (skip_empty && cJSON_GetArraySize(a) == 0)
                return 0;
        text = cJSON_PrintUnformatted(a);
        if (!text || asprintf(ret, ",\"%s\":%s", key, text) < 0)
                return -ENOMEM;
        *ret_len = strlen(*ret);
        return 0;
}

static int add_string(cJSON *a, const char *s) {
        cJSON *e = cJSON_CreateString(s);

        if (!e || !cJSON_AddItemToArray(a, e)) {
                cJSON_Delete(e);
                return -ENOMEM;
        }
        return 0;
}

static const char *prefix_format(const InAddrPrefix *p, char buf[static INET6_ADDRSTRLEN + 5]) {
        char addr[INET6_ADDRSTRLEN];

        in_addr_format(p->family, &p->address, addr, sizeof(addr));
        snprintf(buf, INET6_ADDRSTRLEN + 5, "%s/%u", addr, p->prefixlen);
        return buf;
}

static int add_prefixes(cJSON *o, const char *key, const InAddrPrefix *v, size_t n) {
        cJSON *a = cJSON_AddArrayToObject(o, key);

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char buf[INET6_ADDRSTRLEN + 5];

                if (add_string(a, prefix_format(&v[i], buf)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int render_filter(const NetmapFilter *f, NetmapView *v) {
        _cleanup_(cJSON_Deletep) cJSON *a = cJSON_CreateArray();

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < f->n_entries; i++) {
                const NetmapFilterEntry *e = &f->entries[i];
                cJSON *o = cJSON_CreateObject(), *ports;

                if (!o || !cJSON_AddItemToArray(a, o)) {
                        cJSON_Delete(o);
                        return -ENOMEM;
                }
                if (add_prefixes(o, "src", e->src, e->n_src) < 0 ||
                    add_prefixes(o, "dst", e->dst, e->n_dst) < 0 ||
                    !(ports = cJSON_AddArrayToObject(o, "ports")))
                        return -ENOMEM;
                for (size_t j = 0; j < e->n_ports; j++) {
                        char buf[NETMAP_FILTER_PORT_STRLEN];
                        if (add_string(ports, netmap_filter_port_format(&e->ports[j], buf, sizeof(buf))) < 0)
                                return -ENOMEM;
                }
        }
        return render_array("filter", a, false, &v->filter, &v->filter_len);
}

/* The routes of peer pm that self may use. */
static int render_routes(const Policy *p, const PolicyMember *self, const PolicyMember *pm, char **ret,
                         size_t *ret_len) {
        _cleanup_(cJSON_Deletep) cJSON *a = cJSON_CreateArray();
        char buf[INET6_ADDRSTRLEN + 5];

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < pm->n_routes; i++)
                if (policy_route_usable(p, self, &pm->routes[i]) &&
                    add_string(a, prefix_format(&pm->routes[i], buf)) < 0)
                        return -ENOMEM;
        return render_array("routes", a, true, ret, ret_len);
}

static int render_devices(const Policy *p, const NetmapMesh *mesh, const PolicyMembers *m, size_t self,
                          NetmapView *v) {
        _cleanup_(cJSON_Deletep) cJSON *a = cJSON_CreateArray();

        if (!a)
                return -ENOMEM;
        v->own_devices = true;
        for (size_t i = 0; i < mesh->n_devices; i++) {
                const NetmapMeshNode *d = &mesh->devices[i];
                cJSON *o;

                if (!policy_peers(p, &m->v[self], &m->v[m->n_nodes + i]))
                        continue;
                o = cJSON_CreateObject();
                if (!o || !cJSON_AddItemToArray(a, o)) {
                        cJSON_Delete(o);
                        return -ENOMEM;
                }
                if (!cJSON_AddStringToObject(o, "name", d->name) ||
                    !cJSON_AddStringToObject(o, "public_key", d->public_key) ||
                    !cJSON_AddStringToObject(o, "ipv4", d->ipv4) ||
                    (d->ipv6 && !cJSON_AddStringToObject(o, "ipv6", d->ipv6)))
                        return -ENOMEM;
        }
        return render_array("devices", a, true, &v->devices, &v->devices_len);
}

static int view_build(const Policy *p, const NetmapMesh *mesh, const PolicyMembers *m, size_t self,
                      NetmapView *v) {
        int r;

        v->id = mesh->nodes[self].id;
        v->peers = calloc(MAX(mesh->n_nodes, (size_t) 1), sizeof(int64_t));
        v->peer_routes = calloc(MAX(mesh->n_nodes, (size_t) 1), sizeof(char *));
        if (!v->peers || !v->peer_routes)
                return -ENOMEM;
        for (size_t j = 0; j < mesh->n_nodes; j++) {
                size_t len = 0;

                if (j == self || !policy_peers(p, &m->v[self], &m->v[j]))
                        continue;
                v->peers[v->n_peers] = mesh->nodes[j].id;
                r = render_routes(p, &m->v[self], &m->v[j], &v->peer_routes[v->n_peers], &len);
                if (r < 0)
                        return r;
                v->routes_len += len;
                v->n_peers++;
        }
        if (!p)
                return 0;

        NetmapFilter *f = NULL;
        r = policy_compile_filter(p, m->v, m->n, self, &f);
        if (r == -E2BIG) {
                log_error("Node '%s': the policy's filter exceeds the netmap's bounds; nothing may reach it.",
                          mesh->nodes[self].name);
                f = calloc(1, sizeof(NetmapFilter));
        } else if (r < 0)
                return r;
        if (!f)
                return -ENOMEM;
        r = render_filter(f, v);
        netmap_filter_free(f);
        if (r < 0)
                return r;
        return render_devices(p, mesh, m, self, v);
}

static bool mesh_has_routes(const NetmapMesh *mesh) {
        for (size_t i = 0; i < mesh->n_nodes; i++)
                if (strv_length(mesh->nodes[i].routes) > 0)
                        return true;
        return false;
}

static int load_policy(const NetmapMesh *mesh, Policy **ret) {
        _cleanup_free_ char *error = NULL;
        int r;

        if (!mesh->policy)
                return 0;
        r = policy_parse(mesh->policy, strlen(mesh->policy), ret, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_error("The stored policy does not parse (%s); nothing may reach anything.", strna(error));
                *ret = calloc(1, sizeof(Policy));
                if (!*ret)
                        return -ENOMEM;
        }
        return 0;
}

int netmap_views_new(const NetmapMesh *mesh, NetmapViews **ret) {
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_(policy_members_done) PolicyMembers m = {};
        NetmapViews *views;
        int r;

        *ret = NULL;
        if (!mesh->policy && !mesh_has_routes(mesh))
                return 0;
        r = load_policy(mesh, &p);
        if (r < 0)
                return r;
        r = policy_members_from_mesh(mesh, &m);
        if (r < 0)
                return r;

        views = calloc(1, sizeof(NetmapViews));
        if (!views)
                return -ENOMEM;
        views->v = calloc(MAX(mesh->n_nodes, (size_t) 1), sizeof(NetmapView));
        if (!views->v) {
                free(views);
                return -ENOMEM;
        }
        for (size_t i = 0; i < mesh->n_nodes; i++) {
                views->n++; /* counted first: a half-built view is freed too */
                r = view_build(p, mesh, &m, i, &views->v[i]);
                if (r < 0) {
                        netmap_views_free(views);
                        return r;
                }
        }
        *ret = views;
        return 0;
}
