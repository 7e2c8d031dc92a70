/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The netmap as a node holds it: lookups by name, key and address, and
 * what changed between two of them. netmap-parse.c makes one from JSON. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "dns-label.h"
#include "netmap.h"
#include "strv.h"

static void netmap_node_done(NetmapNode *n) {
        free(n->name);
        n->name = NULL;
        n->endpoints = strv_free(n->endpoints);
        n->routes = strv_free(n->routes);
}

Netmap *netmap_free(Netmap *m) {
        if (!m)
                return NULL;

        netmap_node_done(&m->self);
        netmap_node_done(&m->hub);
        for (size_t i = 0; i < m->n_peers; i++)
                netmap_node_done(&m->peers[i]);
        free(m->peers);
        for (size_t i = 0; i < m->n_devices; i++)
                netmap_node_done(&m->devices[i]);
        free(m->devices);
        netmap_filter_free(m->filter);
        free(m->domain);
        free(m);
        return NULL;
}

const NetmapNode *netmap_find_peer_by_name(const Netmap *m, const char *name) {
        if (!m || !name)
                return NULL;

        for (size_t i = 0; i < m->n_peers; i++)
                if (strcasecmp(m->peers[i].name, name) == 0)
                        return &m->peers[i];
        return NULL;
}

const NetmapNode *netmap_find_peer_by_key(const Netmap *m, const WgKey *key) {
        if (!m || !key)
                return NULL;

        for (size_t i = 0; i < m->n_peers; i++)
                if (key_equal(&m->peers[i].public_key, key))
                        return &m->peers[i];
        return NULL;
}

const NetmapNode *netmap_find_device_by_name(const Netmap *m, const char *name) {
        if (!m || !name)
                return NULL;

        for (size_t i = 0; i < m->n_devices; i++)
                if (strcasecmp(m->devices[i].name, name) == 0)
                        return &m->devices[i];
        return NULL;
}

static const NetmapNode *find_in(const NetmapNode *nodes, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcasecmp(nodes[i].name, name) == 0)
                        return &nodes[i];
        return NULL;
}

/* among nodes[0..n): the peers, or the devices */
static const NetmapNode *resolve_in(const Netmap *m, const NetmapNode *nodes, size_t n_nodes,
                                    const char *name_or_address) {
        const NetmapNode *n;
        union in_addr_union a;
        int family;

        if (!m || !name_or_address)
                return NULL;

        n = find_in(nodes, n_nodes, name_or_address);
        if (n)
                return n;

        /* "nas.mesh.internal" and the absolute "nas.mesh.internal." */
        const char *dot = strchr(name_or_address, '.');
        if (dot && dot > name_or_address && m->domain) {
                const char *domain = dot + 1;
                size_t dl = strlen(m->domain), l = strlen(domain);

                if (l == dl + 1 && domain[dl] == '.')
                        l--;
                if (l == dl && strncasecmp(domain, m->domain, dl) == 0) {
                        size_t nl = (size_t) (dot - name_or_address);
                        char label[NETMAP_NAME_MAX + 1];

                        if (nl <= NETMAP_NAME_MAX) {
                                memcpy(label, name_or_address, nl);
                                label[nl] = '\0';
                                n = find_in(nodes, n_nodes, label);
                                if (n)
                                        return n;
                        }
                }
        }

        if (in_addr_parse(name_or_address, &family, &a) < 0)
                return NULL;

        for (size_t i = 0; i < n_nodes; i++) {
                const NetmapNode *p = &nodes[i];

                if (family == AF_INET && memcmp(&p->ipv4.in, &a.in, sizeof(a.in)) == 0)
                        return p;
                if (family == AF_INET6 && p->has_ipv6 && memcmp(&p->ipv6.in6, &a.in6, sizeof(a.in6)) == 0)
                        return p;
        }
        return NULL;
}

const NetmapNode *netmap_resolve_peer(const Netmap *m, const char *name_or_address) {
        return m ? resolve_in(m, m->peers, m->n_peers, name_or_address) : NULL;
}

const NetmapNode *netmap_resolve_device(const Netmap *m, const char *name_or_address) {
        return m ? resolve_in(m, m->devices, m->n_devices, name_or_address) : NULL;
}

static bool node_addresses_equal(const NetmapNode *a, const NetmapNode *b) {
        if (memcmp(&a->ipv4.in, &b->ipv4.in, sizeof(a->ipv4.in)) != 0)
                return false;
        if (a->has_ipv6 != b->has_ipv6)
                return false;
        return !a->has_ipv6 || memcmp(&a->ipv6.in6, &b->ipv6.in6, sizeof(a->ipv6.in6)) == 0;
}

bool netmap_node_equal(const NetmapNode *a, const NetmapNode *b) {
        if (a == b)
                return true;
        if (!a || !b)
                return false;

        return streq_ptr(a->name, b->name) && key_equal_public(&a->public_key, &b->public_key) &&
               node_addresses_equal(a, b) && strv_equal(a->endpoints, b->endpoints) && a->relay == b->relay &&
               a->relay_port == b->relay_port && strv_equal(a->routes, b->routes);
}

/* Devices come sorted by the server's node id, so the same set is the same
 * list in the same order; a reordering counts as a change, which only
 * rewrites the hub entry once more. */
static bool devices_equal(const Netmap *a, const Netmap *b) {
        size_t n_a = a ? a->n_devices : 0;

        if (n_a != b->n_devices)
                return false;
        for (size_t i = 0; i < n_a; i++)
                if (!netmap_node_equal(&a->devices[i], &b->devices[i]))
                        return false;
        return true;
}

static int peer_key_compare(const void *x, const void *y) {
        const NetmapNode *a = *(const NetmapNode *const *) x, *b = *(const NetmapNode *const *) y;
        return memcmp(a->public_key.data, b->public_key.data, WG_KEY_LEN);
}

void netmap_diff_done(NetmapDiff *d) {
        if (!d)
                return;
        free(d->added);
        free(d->removed);
        free(d->changed);
        *d = (NetmapDiff) {};
}

/* Pairs the peers of old and new by key into match (match[i]: the index in
 * new of old's peer i, or SIZE_MAX). First in order: a netmap made from a
 * delta keeps its base's order, less the peers that went or changed (which
 * come at the end), so most pairs are found in one walk, O(n). The peers
 * left over are paired through a sorted array, O(u log u); a reordered
 * netmap costs what sorting all costs. */
static int diff_pair(const Netmap *old, const Netmap *new, size_t *match) {
        _cleanup_free_ const NetmapNode **rest = NULL;
        size_t n_old = old ? old->n_peers : 0, j = 0, n_rest = 0, first_unmatched = 0;

        for (size_t i = 0; i < n_old; i++) {
                match[i] = SIZE_MAX;
                if (j < new->n_peers && key_equal_public(&old->peers[i].public_key, &new->peers[j].public_key))
                        match[i] = j++;
        }
        first_unmatched = j;
        if (first_unmatched == new->n_peers)
                return 0;
        /* the rest of new, sorted by key; keys are unique after netmap_parse() */
        rest = calloc(new->n_peers - first_unmatched, sizeof(NetmapNode *));
        if (!rest)
                return -ENOMEM;
        for (size_t k = first_unmatched; k < new->n_peers; k++)
                rest[n_rest++] = &new->peers[k];
        qsort(rest, n_rest, sizeof(NetmapNode *), peer_key_compare);
        for (size_t i = 0; i < n_old; i++) {
                const NetmapNode *p = &old->peers[i], **found;

                if (match[i] != SIZE_MAX)
                        continue;
                found = bsearch(&p, rest, n_rest, sizeof(NetmapNode *), peer_key_compare);
                if (found)
                        match[i] = (size_t) (*found - new->peers);
        }
        return 0;
}

int netmap_diff(const Netmap *old, const Netmap *new, NetmapDiff *ret) {
        _cleanup_free_ size_t *match = NULL;
        _cleanup_free_ size_t *back = NULL;
        _cleanup_(netmap_diff_done) NetmapDiff d = {};
        size_t n_old = old ? old->n_peers : 0;
        int r;

        if (!new || !ret)
                return -EINVAL;

        /* +1: calloc(0) may return NULL, which must not look like ENOMEM. */
        d.added = calloc(new->n_peers + 1, sizeof(NetmapNode *));
        d.changed = calloc(new->n_peers + 1, sizeof(NetmapNode *));
        d.removed = calloc(n_old + 1, sizeof(NetmapNode *));
        match = calloc(n_old + 1, sizeof(size_t));
        back = malloc((new->n_peers + 1) * sizeof(size_t));
        if (!d.added || !d.changed || !d.removed || !match || !back)
                return -ENOMEM;

        r = diff_pair(old, new, match);
        if (r < 0)
                return r;
        for (size_t k = 0; k < new->n_peers; k++)
                back[k] = SIZE_MAX;
        for (size_t i = 0; i < n_old; i++) {
                if (match[i] == SIZE_MAX)
                        d.removed[d.n_removed++] = &old->peers[i];
                else
                        back[match[i]] = i;
        }
        for (size_t k = 0; k < new->n_peers; k++) {
                if (back[k] == SIZE_MAX)
                        d.added[d.n_added++] = &new->peers[k];
                else if (!netmap_node_equal(&old->peers[back[k]], &new->peers[k]))
                        d.changed[d.n_changed++] = &new->peers[k];
        }

        d.hub_changed = !old ? new->has_hub
                             : old->has_hub != new->has_hub ||
                                        (new->has_hub && !netmap_node_equal(&old->hub, &new->hub));

        d.devices_changed = !devices_equal(old, new);

        d.self_changed = !old || !streq_ptr(old->self.name, new->self.name) ||
                         !key_equal(&old->self.public_key, &new->self.public_key) ||
                         !node_addresses_equal(&old->self, &new->self);

        *ret = d;
        d = (NetmapDiff) {};
        return 0;
}
