/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The access policy compiled for one receiving node: the netmap's "filter"
 * (netmap-filter.h). Each rule whose DST covers the node (its own addresses
 * through a member selector, or a part of its approved routes through a
 * prefix) becomes entries "from the addresses of the members SRC selects,
 * to those addresses of the node, on PORTS". Same meaning as policy.c's
 * evaluator, which fuzz/fuzz-policy.c checks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy.h"

typedef struct PrefixList {
        InAddrPrefix *v;
        size_t n, allocated;
} PrefixList;

static void prefix_list_done(PrefixList *l) {
        free(l->v);
        *l = (PrefixList) {};
}

static int prefix_list_add(PrefixList *l, int family, const union in_addr_union *a, uint8_t prefixlen) {
        if (l->n == l->allocated) {
                size_t n = MAX(l->allocated * 2, (size_t) 8);
                InAddrPrefix *v = reallocarray(l->v, n, sizeof(InAddrPrefix));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->allocated = n;
        }
        l->v[l->n++] = (InAddrPrefix) { .family = family, .address = *a, .prefixlen = prefixlen };
        return 0;
}

static int add_member_addresses(PrefixList *l, const PolicyMember *m) {
        int r = 0;

        if (m->has_ipv4)
                r = prefix_list_add(l, AF_INET, &m->ipv4, 32);
        if (r >= 0 && m->has_ipv6)
                r = prefix_list_add(l, AF_INET6, &m->ipv6, 128);
        return r;
}

/* What of self the rule's DST covers. */
static int rule_dst(const Policy *p, const PolicyRule *rule, const PolicyMember *self, PrefixList *ret) {
        const InAddrPrefix *d = &rule->dst.prefix;
        int r;

        if (rule->dst.kind != POLICY_SELECT_PREFIX)
                return policy_selects(p, &rule->dst, self) ? add_member_addresses(ret, self) : 0;

        for (size_t i = 0; i < self->n_routes; i++) {
                const InAddrPrefix *route = &self->routes[i];

                if (route->family != d->family || !in_addr_prefix_overlaps(d->family, &d->address, d->prefixlen,
                                                                           &route->address, route->prefixlen))
                        continue;
                /* two prefixes that overlap: one holds the other, and the smaller is what both cover */
                r = d->prefixlen >= route->prefixlen
                            ? prefix_list_add(ret, d->family, &d->address, d->prefixlen)
                            : prefix_list_add(ret, route->family, &route->address, route->prefixlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int copy_prefixes(const InAddrPrefix *v, size_t n, InAddrPrefix **ret) {
        *ret = calloc(n, sizeof(InAddrPrefix));
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, v, n * sizeof(InAddrPrefix));
        return 0;
}

/* One entry per NETMAP_FILTER_PREFIXES_MAX sources. */
static int emit(NetmapFilter *f, size_t *allocated, const PolicyRule *rule, const PrefixList *src,
                const PrefixList *dst) {
        for (size_t off = 0; off < src->n; off += NETMAP_FILTER_PREFIXES_MAX) {
                size_t n = MIN(src->n - off, (size_t) NETMAP_FILTER_PREFIXES_MAX);
                NetmapFilterEntry *e;
                int r;

                if (f->n_entries >= NETMAP_FILTER_ENTRIES_MAX || dst->n > NETMAP_FILTER_PREFIXES_MAX)
                        return -E2BIG;
                if (f->n_entries == *allocated) {
                        size_t k = MIN(MAX(*allocated * 2, (size_t) 8), (size_t) NETMAP_FILTER_ENTRIES_MAX);
                        NetmapFilterEntry *v = reallocarray(f->entries, k, sizeof(NetmapFilterEntry));
                        if (!v)
                                return -ENOMEM;
                        f->entries = v;
                        *allocated = k;
                }
                e = &f->entries[f->n_entries];
                *e = (NetmapFilterEntry) {};
                f->n_entries++; /* counted first: a half-made entry is freed with f */
                r = copy_prefixes(src->v + off, n, &e->src);
                if (r < 0)
                        return r;
                e->n_src = n;
                r = copy_prefixes(dst->v, dst->n, &e->dst);
                if (r < 0)
                        return r;
                e->n_dst = dst->n;
                if (rule->n_ports > 0) {
                        e->ports = calloc(rule->n_ports, sizeof(NetmapFilterPort));
                        if (!e->ports)
                                return -ENOMEM;
                        memcpy(e->ports, rule->ports, rule->n_ports * sizeof(NetmapFilterPort));
                        e->n_ports = rule->n_ports;
                }
        }
        return 0;
}

static int compile_rule(const Policy *p, const PolicyRule *rule, const PolicyMember *members, size_t n_members,
                        size_t self, NetmapFilter *f, size_t *allocated) {
        _cleanup_(prefix_list_done) PrefixList dst = {}, src = {};
        int r;

        r = rule_dst(p, rule, &members[self], &dst);
        if (r < 0 || dst.n == 0)
                return r;
        for (size_t i = 0; i < n_members; i++)
                if (i != self && policy_selects(p, &rule->src, &members[i])) {
                        r = add_member_addresses(&src, &members[i]);
                        if (r < 0)
                                return r;
                }
        if (src.n == 0)
                return 0;
        return emit(f, allocated, rule, &src, &dst);
}

int policy_compile_filter(const Policy *p, const PolicyMember *members, size_t n_members, size_t self,
                          NetmapFilter **ret) {
        NetmapFilter *f;
        size_t allocated = 0;
        int r;

        if (!p || self >= n_members)
                return -EINVAL;
        f = calloc(1, sizeof(NetmapFilter));
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_rules; i++) {
                r = compile_rule(p, &p->rules[i], members, n_members, self, f, &allocated);
                if (r < 0) {
                        netmap_filter_free(f);
                        return r;
                }
        }
        *ret = f;
        return 0;
}
