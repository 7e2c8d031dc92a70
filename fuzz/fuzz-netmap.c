/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The netmap is what the control server sends every node (docs/protocol.md):
 * netmap_parse() is the border, and whatever passes it goes straight into
 * netmap_diff() and the WireGuard backends. The input is one netmap, a
 * register reply, or a netmap delta, merged into a fixed base map first; a
 * map that parses is diffed against the base map, against nothing and
 * against itself, looked up peer by peer, and rendered by the server's
 * renderer (netmap-render.c) and parsed again into the same map. */

#include <sys/socket.h>

#include "fuzz.h"
#include "msg-register.h" /* register_reply_parse(), and netmap.h */
#include "netmap-render.h"
#include "netmap.h"
#include "strv.h"

/* self nas, peers laptop and backup (relayed), a hub: the map a node has
 * before the new one arrives. Keys are 32 times the same byte. */
static const char base_json[] =
        "{\"version\": 12, \"domain\": \"mesh.internal\","
        " \"ipv4_range\": \"100.64.0.0/10\", \"ipv6_range\": \"fd7a:115c:a1e0::/48\","
        " \"self\": {\"name\": \"nas\", \"public_key\": \"AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\","
        "  \"ipv4\": \"100.64.0.3\", \"ipv6\": \"fd7a:115c:a1e0::3\", \"endpoints\": [\"192.0.2.11:41641\"]},"
        " \"peers\": ["
        "  {\"name\": \"laptop\", \"public_key\": \"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\","
        "   \"ipv4\": \"100.64.0.2\", \"ipv6\": \"fd7a:115c:a1e0::2\","
        "   \"endpoints\": [\"198.51.100.7:41641\", \"192.0.2.10:41641\"], \"relay\": false},"
        "  {\"name\": \"backup\", \"public_key\": \"BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ=\","
        "   \"ipv4\": \"100.64.0.4\", \"endpoints\": [\"[2001:db8::4]:41641\"], \"relay\": true}],"
        " \"hub\": {\"public_key\": \"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\", \"ipv4\": \"100.64.0.1\","
        "  \"ipv6\": \"fd7a:115c:a1e0::1\", \"endpoints\": [\"192.0.2.1:41640\"]}}";

static bool points_into(const NetmapNode *p, const Netmap *m) {
        return m && p >= m->peers && p < m->peers + m->n_peers;
}

/* What netmap_diff() promises, and that the diff of next against old mirrors
 * the diff of old against next. */
static void check_diff(const Netmap *old, const Netmap *next) {
        NetmapDiff d = {}, back = {};

        fuzz_check(netmap_diff(old, next, &d) == 0);
        fuzz_check(d.n_added + d.n_changed <= next->n_peers);
        fuzz_check(d.n_removed <= (old ? old->n_peers : 0));
        for (size_t i = 0; i < d.n_added; i++) {
                fuzz_check(points_into(d.added[i], next));
                fuzz_check(!netmap_find_peer_by_key(old, &d.added[i]->public_key));
        }
        for (size_t i = 0; i < d.n_changed; i++) {
                const NetmapNode *o;

                fuzz_check(points_into(d.changed[i], next));
                o = netmap_find_peer_by_key(old, &d.changed[i]->public_key);
                fuzz_check(o && !netmap_node_equal(o, d.changed[i]));
        }
        for (size_t i = 0; i < d.n_removed; i++) {
                fuzz_check(points_into(d.removed[i], old));
                fuzz_check(!netmap_find_peer_by_key(next, &d.removed[i]->public_key));
        }

        if (!old) {
                fuzz_check(d.n_added == next->n_peers && d.self_changed);
                fuzz_check(d.hub_changed == next->has_hub);
        } else {
                fuzz_check(netmap_diff(next, old, &back) == 0);
                fuzz_check(back.n_added == d.n_removed && back.n_removed == d.n_added);
                fuzz_check(back.n_changed == d.n_changed);
                fuzz_check(back.self_changed == d.self_changed && back.hub_changed == d.hub_changed);
                fuzz_check(back.devices_changed == d.devices_changed);
                netmap_diff_done(&back);
        }
        if (old == next)
                fuzz_check(d.n_added == 0 && d.n_removed == 0 && d.n_changed == 0 && !d.self_changed &&
                           !d.hub_changed && !d.devices_changed);
        if (!old)
                fuzz_check(d.devices_changed == (next->n_devices > 0));
        netmap_diff_done(&d);
}

static void check_lookups(const Netmap *m) {
        char buf[INET6_ADDRSTRLEN], fqdn[NETMAP_NAME_MAX + 256 + 2];

        fuzz_check(netmap_node_equal(&m->self, &m->self));
        /* Peers only, never self: not by name, nor by address. */
        fuzz_check(!netmap_resolve_peer(m, m->self.name));
        fuzz_check(in_addr_format(AF_INET, &m->self.ipv4, buf, sizeof(buf)));
        fuzz_check(!netmap_resolve_peer(m, buf));

        for (size_t i = 0; i < m->n_peers; i++) {
                const NetmapNode *p = &m->peers[i];
                union sockaddr_union sa;

                fuzz_check(netmap_node_equal(p, p));
                fuzz_check(netmap_find_peer_by_name(m, p->name) == p);
                fuzz_check(netmap_find_peer_by_key(m, &p->public_key) == p);
                fuzz_check(netmap_resolve_peer(m, p->name) == p);
                snprintf(fqdn, sizeof(fqdn), "%s.%s.", p->name, m->domain);
                fuzz_check(netmap_resolve_peer(m, fqdn) == p);
                fuzz_check(in_addr_format(AF_INET, &p->ipv4, buf, sizeof(buf)));
                fuzz_check(netmap_resolve_peer(m, buf) == p);
                fuzz_check(in_addr_prefix_contains(AF_INET, &m->ipv4_range, m->ipv4_prefixlen, &p->ipv4));
                if (p->has_ipv6) {
                        fuzz_check(in_addr_format(AF_INET6, &p->ipv6, buf, sizeof(buf)));
                        fuzz_check(netmap_resolve_peer(m, buf) == p);
                }
                for (char **e = p->endpoints; e && *e; e++)
                        fuzz_check(endpoint_parse(*e, &sa) == 0);
        }
}

/* Devices: one namespace with the nodes, inside the ranges, never peers. */
static void check_devices(const Netmap *m) {
        for (size_t i = 0; i < m->n_devices; i++) {
                const NetmapNode *d = &m->devices[i];

                fuzz_check(netmap_find_device_by_name(m, d->name) == d);
                fuzz_check(!netmap_find_peer_by_name(m, d->name) &&
                           !netmap_find_peer_by_key(m, &d->public_key));
                fuzz_check(!key_equal(&d->public_key, &m->self.public_key));
                fuzz_check(!m->has_hub || !key_equal(&d->public_key, &m->hub.public_key));
                fuzz_check(in_addr_prefix_contains(AF_INET, &m->ipv4_range, m->ipv4_prefixlen, &d->ipv4));
                fuzz_check(!d->has_ipv6 ||
                           in_addr_prefix_contains(AF_INET6, &m->ipv6_range, m->ipv6_prefixlen, &d->ipv6));
                fuzz_check(!d->endpoints && !d->relay);
        }
}

static char *addr_dup(int family, const union in_addr_union *a, uint8_t prefixlen) {
        char buf[INET6_ADDRSTRLEN], *s;

        fuzz_check(in_addr_format(family, a, buf, sizeof(buf)));
        if (prefixlen == UINT8_MAX)
                s = strdup(buf);
        else
                fuzz_check(asprintf(&s, "%s/%u", buf, prefixlen) > 0);
        fuzz_check(s);
        return s;
}

static void mesh_node_from(const NetmapNode *n, int64_t id, NetmapMeshNode *ret) {
        char key[WG_KEY_B64_LEN + 1];

        key_to_base64(&n->public_key, key);
        *ret = (NetmapMeshNode) {
                .id = id,
                .name = strdup(n->name),
                .public_key = strdup(key),
                .ipv4 = addr_dup(AF_INET, &n->ipv4, UINT8_MAX),
                .ipv6 = addr_dup(AF_INET6, &n->ipv6, UINT8_MAX),
        };
        fuzz_check(ret->name && ret->public_key && strv_copy(n->endpoints, &ret->endpoints) >= 0 &&
                   strv_copy(n->routes, &ret->routes) >= 0);
}

/* The renderer writes every address and lists each endpoint once. */
static bool node_renderable(const NetmapNode *n) {
        if (!n->has_ipv6)
                return false;
        for (size_t i = 0; n->endpoints && n->endpoints[i]; i++)
                for (size_t j = 0; j < i; j++)
                        if (streq(n->endpoints[i], n->endpoints[j]))
                                return false;
        return true;
}

/* parse -> render -> parse: the map as the server would send it to self
 * (id 1; peers 2, 3, … in their order, then the devices) parses into the
 * same map. */
static void check_round_trip(const Netmap *m) {
        _cleanup_(netmap_mesh_done) NetmapMesh mesh = {};
        _cleanup_(netmap_snapshot_freep) NetmapSnapshot *snap = NULL;
        _cleanup_(netmap_freep) Netmap *back = NULL;
        _cleanup_free_ char *json = NULL, *error = NULL;
        size_t len;

        if (!m->has_ipv6_range || !node_renderable(&m->self) || (m->has_hub && !m->hub.has_ipv6))
                return;
        for (size_t i = 0; i < m->n_peers; i++)
                if (!node_renderable(&m->peers[i]))
                        return;
        for (size_t i = 0; i < m->n_devices; i++)
                if (!m->devices[i].has_ipv6)
                        return;

        mesh = (NetmapMesh) {
                .version = m->version,
                .domain = strdup(m->domain),
                .ipv4_range = addr_dup(AF_INET, &m->ipv4_range, m->ipv4_prefixlen),
                .ipv6_range = addr_dup(AF_INET6, &m->ipv6_range, m->ipv6_prefixlen),
                .nodes = calloc(m->n_peers + 1, sizeof(NetmapMeshNode)),
                .relays = calloc(m->n_peers + 1, sizeof(NetmapRelayPair)),
                .devices = calloc(m->n_devices + 1, sizeof(NetmapMeshNode)),
        };
        fuzz_check(mesh.domain && mesh.nodes && mesh.relays && mesh.devices);
        /* a device's endpoints, if the input had any, are ignored by the parser */
        for (size_t i = 0; i < m->n_devices; i++) {
                NetmapMeshNode *d = &mesh.devices[mesh.n_devices++];

                mesh_node_from(&m->devices[i], (int64_t) (m->n_peers + 2 + i), d);
                d->endpoints = strv_free(d->endpoints);
        }
        mesh_node_from(&m->self, 1, &mesh.nodes[mesh.n_nodes++]);
        for (size_t i = 0; i < m->n_peers; i++) {
                mesh_node_from(&m->peers[i], (int64_t) i + 2, &mesh.nodes[mesh.n_nodes++]);
                if (m->peers[i].relay)
                        mesh.relays[mesh.n_relays++] = (NetmapRelayPair) { 1, (int64_t) i + 2 };
        }
        if (m->has_hub) {
                NetmapMeshNode hub;

                mesh_node_from(&m->hub, 0, &hub);
                mesh.has_hub = true;
                mesh.hub = (NetmapMeshHub) {
                        .public_key = hub.public_key,
                        .ipv4 = hub.ipv4,
                        .ipv6 = hub.ipv6,
                        .endpoint = strdup(hub.endpoints[0]),
                        .relay_port = m->hub.relay_port,
                };
                fuzz_check(mesh.hub.endpoint);
                free(hub.name);
                strv_free(hub.endpoints);
                strv_free(hub.routes);
        }

        fuzz_check(netmap_snapshot_new(&mesh, &snap) == 0);
        fuzz_check(netmap_snapshot_render(snap, 1, &json, &len) == 0);
        if (netmap_parse(json, len, &back, &error) < 0) {
                fprintf(stderr, "%s\n%s\n", json, error);
                fuzz_check(!"the rendered map parses");
        }
        fuzz_check(back->version == m->version && streq(back->domain, m->domain));
        fuzz_check(back->ipv4_prefixlen == m->ipv4_prefixlen && back->ipv6_prefixlen == m->ipv6_prefixlen);
        fuzz_check(netmap_node_equal(&back->self, &m->self));
        fuzz_check(back->n_peers == m->n_peers && back->has_hub == m->has_hub);
        for (size_t i = 0; i < m->n_peers; i++)
                fuzz_check(netmap_node_equal(&back->peers[i], &m->peers[i]));
        fuzz_check(back->n_devices == m->n_devices);
        for (size_t i = 0; i < m->n_devices; i++)
                fuzz_check(netmap_node_equal(&back->devices[i], &m->devices[i]));
        fuzz_check(!m->has_hub ||
                   (netmap_node_equal(&back->hub, &m->hub) && back->hub.relay_port == m->hub.relay_port));
}

static void check_map(const Netmap *base, const Netmap *m) {
        check_lookups(m);
        check_devices(m);
        check_diff(NULL, m);
        check_diff(m, m);
        check_diff(base, m);
        check_round_trip(m);
}

/* The reply to GET /v1/netmap?delta=1, applied to the map the node has. */
static void check_delta(const Netmap *base, const uint8_t *data, size_t size) {
        _cleanup_(netmap_freep) Netmap *m = NULL;
        _cleanup_free_ char *merged = NULL, *error = NULL;
        size_t len = 0;
        int r;

        if (!netmap_json_is_delta((const char *) data, size))
                return;
        r = netmap_delta_merge(base_json, strlen(base_json), (const char *) data, size, &merged, &len, &error);
        fuzz_check(r == 0 || r == -ESTALE || r == -EBADMSG || r == -ENOMEM);
        fuzz_check(r != -EBADMSG || error);
        if (r < 0)
                return;
        fuzz_check(merged && len == strlen(merged));
        if (netmap_parse(merged, len, &m, NULL) == 0)
                check_map(base, m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(netmap_freep) Netmap *base = NULL, *m = NULL;
        _cleanup_free_ char *error = NULL, *query = NULL;
        RegisterReply reply = {};
        int r;

        fuzz_quiet_logs();
        fuzz_check(netmap_parse(base_json, strlen(base_json), &base, NULL) == 0);

        r = netmap_parse((const char *) data, size, &m, &error);
        if (r < 0) {
                fuzz_check(r == -EBADMSG || r == -ENOMEM);
                fuzz_check(r == -ENOMEM || (error && error[0] != '\0'));
        } else {
                fuzz_check(!error);
                check_map(base, m);
        }

        /* The same bytes as the reply to POST /v1/register, whose netmap
         * is checked by the same code under the "netmap." prefix. */
        free(error);
        error = NULL;
        if (register_reply_parse((const char *) data, size, &reply, &error) == 0) {
                fuzz_check(reply.token && reply.token[0] != '\0' && reply.node_id >= 1);
                check_map(base, reply.netmap);
                register_reply_done(&reply);
        } else
                fuzz_check(!reply.netmap && !reply.token);

        check_delta(base, data, size);

        /* meshctl ping NAME: any string against a real map. */
        query = fuzz_string(data, size);
        (void) netmap_resolve_peer(base, query);
        return 0;
}
