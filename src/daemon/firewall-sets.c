/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "firewall-sets.h"

/* ---- normalizing ---- */

static void prefix_clear_host_bits(InAddrPrefix *p) {
        size_t bytes = p->family == AF_INET ? 4 : 16;

        for (size_t i = 0; i < bytes; i++) {
                unsigned keep = p->prefixlen >= (i + 1) * 8 ? 8
                                : p->prefixlen > i * 8      ? p->prefixlen - i * 8
                                                            : 0;
                p->address.bytes[i] &= (uint8_t) (0xff00u >> keep);
        }
}

static int compare_prefix(const InAddrPrefix *x, const InAddrPrefix *y) {
        int c = memcmp(x->address.bytes, y->address.bytes, sizeof(x->address.bytes));

        return c != 0 ? c : (int) x->prefixlen - (int) y->prefixlen;
}

static int compare_prefix_qsort(const void *a, const void *b) {
        return compare_prefix(a, b);
}

static bool prefix_valid(const InAddrPrefix *p) {
        return (p->family == AF_INET && p->prefixlen <= 32) || (p->family == AF_INET6 && p->prefixlen <= 128);
}

int firewall_prefixes_of_family(const InAddrPrefix *list, size_t n, int family, InAddrPrefix **ret,
                                size_t *ret_n) {
        _cleanup_free_ InAddrPrefix *a = NULL;
        size_t k = 0, m = 0;

        *ret = NULL;
        *ret_n = 0;
        for (size_t i = 0; i < n; i++) {
                if (!prefix_valid(&list[i]))
                        return -EINVAL;
                m += list[i].family == family;
        }
        if (m == 0)
                return 0;
        a = calloc(m, sizeof(InAddrPrefix));
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (list[i].family == family) {
                        a[k] = list[i];
                        if (family == AF_INET) /* the rest of the union is no part of the address */
                                memset(a[k].address.bytes + 4, 0, 12);
                        prefix_clear_host_bits(&a[k]);
                        k++;
                }
        qsort(a, k, sizeof(InAddrPrefix), compare_prefix_qsort);
        /* in address order a prefix comes right before those inside it */
        m = 0;
        for (size_t i = 0; i < k; i++)
                if (m == 0 ||
                    !in_addr_prefix_contains(family, &a[m - 1].address, a[m - 1].prefixlen, &a[i].address))
                        a[m++] = a[i];
        *ret = TAKE_PTR(a);
        *ret_n = m;
        return 0;
}

/* Whether m lies strictly inside p. */
static bool prefix_wider(const InAddrPrefix *p, const InAddrPrefix *m) {
        return p->prefixlen < m->prefixlen &&
               in_addr_prefix_contains(p->family, &p->address, p->prefixlen, &m->address);
}

/* p minus the strictly smaller m inside it: the siblings of m and of each of
 * its ancestors below p, at most 128 prefixes. */
static void prefix_cut(const InAddrPrefix *p, const InAddrPrefix *m, InAddrPrefix *out, size_t *n) {
        for (unsigned len = m->prefixlen; len > p->prefixlen; len--) {
                InAddrPrefix sibling = { .family = m->family, .address = m->address, .prefixlen = len };

                sibling.address.bytes[(len - 1) / 8] ^= (uint8_t) (0x80u >> ((len - 1) % 8));
                prefix_clear_host_bits(&sibling);
                out[(*n)++] = sibling;
        }
}

int firewall_dst_of_family(const FirewallSpec *spec, const InAddrPrefix *list, size_t n, int family,
                           InAddrPrefix **ret, size_t *ret_n) {
        _cleanup_free_ InAddrPrefix *mesh = NULL, *a = NULL;
        size_t n_mesh, k = 0;
        int r;

        r = firewall_prefixes_of_family(spec->mesh, spec->n_mesh, family, &mesh, &n_mesh);
        if (r < 0 || n_mesh == 0)
                return r < 0 ? r : firewall_prefixes_of_family(list, n, family, ret, ret_n);
        /* not normalized yet: an own address inside a /0 must survive the cut */
        a = calloc(MAX(n, (size_t) 1), sizeof(InAddrPrefix));
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (list[i].family == family) {
                        if (!prefix_valid(&list[i]))
                                return -EINVAL;
                        a[k] = list[i];
                        prefix_clear_host_bits(&a[k++]);
                }
        for (size_t j = 0; j < n_mesh; j++) {
                _cleanup_free_ InAddrPrefix *b = NULL;
                size_t m = 0, cuts = 0;

                for (size_t i = 0; i < k; i++)
                        cuts += prefix_wider(&a[i], &mesh[j]);
                if (cuts == 0)
                        continue;
                b = calloc(k + cuts * 128, sizeof(InAddrPrefix));
                if (!b)
                        return -ENOMEM;
                for (size_t i = 0; i < k; i++)
                        if (prefix_wider(&a[i], &mesh[j]))
                                prefix_cut(&a[i], &mesh[j], b, &m);
                        else
                                b[m++] = a[i];
                free(a);
                a = TAKE_PTR(b);
                k = m;
        }
        return firewall_prefixes_of_family(a, k, family, ret, ret_n);
}

static int compare_port(const void *a, const void *b) {
        const FirewallPort *x = a, *y = b;

        if (x->proto != y->proto)
                return (int) x->proto - (int) y->proto;
        return (int) x->from - (int) y->from;
}

int firewall_ports_normalize(const FirewallPort *ports, size_t n, FirewallPort **ret, size_t *ret_n) {
        _cleanup_free_ FirewallPort *p = NULL;
        size_t m = 0;

        *ret = NULL;
        *ret_n = 0;
        if (n == 0)
                return 0;
        p = calloc(n, sizeof(FirewallPort));
        if (!p)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if ((unsigned) ports[i].proto >= _FIREWALL_PROTO_MAX || ports[i].from > ports[i].to)
                        return -EINVAL;
                p[i] = ports[i];
                if (p[i].proto == FIREWALL_PROTO_ICMP)
                        p[i].from = p[i].to = 0;
        }
        qsort(p, n, sizeof(FirewallPort), compare_port);
        for (size_t i = 0; i < n; i++)
                if (m > 0 && p[m - 1].proto == p[i].proto && (unsigned) p[i].from <= (unsigned) p[m - 1].to + 1)
                        p[m - 1].to = MAX(p[m - 1].to, p[i].to);
                else
                        p[m++] = p[i];
        *ret = TAKE_PTR(p);
        *ret_n = m;
        return 0;
}

/* ---- building ---- */

void firewall_sets_done(FirewallSets *s) {
        for (size_t f = 0; f < 2; f++)
                for (size_t k = 0; k < _FIREWALL_SET_MAX; k++)
                        free(s->elements[f][k]);
        free(s->own_rules);
        *s = (FirewallSets) {};
}

static int sets_append(FirewallSets *s, size_t f, FirewallSetKind k, const FirewallElement *e) {
        if (s->n[f][k] == s->allocated[f][k]) {
                size_t want = MAX(s->allocated[f][k] * 2, (size_t) 64);
                FirewallElement *p = reallocarray(s->elements[f][k], want, sizeof(FirewallElement));

                if (!p)
                        return -ENOMEM;
                s->elements[f][k] = p;
                s->allocated[f][k] = want;
        }
        s->elements[f][k][s->n[f][k]++] = *e;
        return 0;
}

static FirewallSetKind port_kind(FirewallProto p) {
        return p == FIREWALL_PROTO_TCP   ? FIREWALL_SET_TCP
               : p == FIREWALL_PROTO_UDP ? FIREWALL_SET_UDP
                                         : FIREWALL_SET_ICMP;
}

/* The elements of one entry in one family. */
static int sets_add_entry_family(FirewallSets *s, size_t f, const InAddrPrefix *src, size_t n_src,
                                 const InAddrPrefix *dst, size_t n_dst, const FirewallPort *ports,
                                 size_t n_ports) {
        for (size_t i = 0; i < n_src; i++)
                for (size_t j = 0; j < n_dst; j++) {
                        FirewallElement e = { .src = src[i], .dst = dst[j] };
                        int r = 0;

                        if (n_ports == 0)
                                r = sets_append(s, f, FIREWALL_SET_ALL, &e);
                        for (size_t k = 0; r >= 0 && k < n_ports; k++) {
                                e.from = ports[k].from;
                                e.to = ports[k].to;
                                r = sets_append(s, f, port_kind(ports[k].proto), &e);
                        }
                        if (r < 0)
                                return r;
                }
        return 0;
}

static bool prefixes_hosts(const InAddrPrefix *a, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (a[i].prefixlen != (a[i].family == AF_INET ? 32 : 128))
                        return false;
        return true;
}

/* The entry's sources and destinations of both families ([0] IPv4), as the
 * sets get them: the mesh's ranges cut out of the destinations. */
typedef struct EntryPrefixes {
        InAddrPrefix *src[2], *dst[2];
        size_t n_src[2], n_dst[2];
} EntryPrefixes;

static void entry_prefixes_done(EntryPrefixes *p) {
        for (size_t f = 0; f < 2; f++) {
                free(p->src[f]);
                free(p->dst[f]);
        }
}

/* How many elements the entry makes, counted after the cut: a routed
 * 0.0.0.0/0 is 10 IPv4 prefixes around a /10 mesh range, ::/0 48 around a
 * /48, and a limit counted before it would let one entry grow 48 times. */
static size_t entry_elements(const EntryPrefixes *p, size_t n_ports) {
        size_t n = 0;

        for (size_t f = 0; f < 2; f++)
                n += p->n_src[f] * p->n_dst[f] * MAX(n_ports, (size_t) 1);
        return n;
}

static int sets_add_entry(FirewallSets *s, const FirewallSpec *spec, size_t index, const FirewallRule *rule) {
        _cleanup_(entry_prefixes_done) EntryPrefixes p = {};
        _cleanup_free_ FirewallPort *ports = NULL;
        size_t n_ports;
        int r;

        /* sources are single addresses (the members'), so two elements can
         * only overlap where one destination lies inside another */
        if (!prefixes_hosts(rule->src, rule->n_src)) {
                s->own_rules[index] = true;
                return 0;
        }
        r = firewall_ports_normalize(rule->ports, rule->n_ports, &ports, &n_ports);
        for (size_t f = 0; r >= 0 && f < 2; f++) {
                int family = f == 0 ? AF_INET : AF_INET6;

                r = firewall_prefixes_of_family(rule->src, rule->n_src, family, &p.src[f], &p.n_src[f]);
                if (r >= 0)
                        r = firewall_dst_of_family(spec, rule->dst, rule->n_dst, family, &p.dst[f],
                                                   &p.n_dst[f]);
        }
        if (r < 0)
                return r;
        if (entry_elements(&p, n_ports) > FIREWALL_ENTRY_ELEMENTS_MAX) {
                s->own_rules[index] = true;
                return 0;
        }
        for (size_t f = 0; r >= 0 && f < 2; f++)
                r = sets_add_entry_family(s, f, p.src[f], p.n_src[f], p.dst[f], p.n_dst[f], ports, n_ports);
        return r;
}

static int compare_element(const void *a, const void *b) {
        const FirewallElement *x = a, *y = b;
        int c = compare_prefix(&x->src, &y->src);

        if (c == 0)
                c = compare_prefix(&x->dst, &y->dst);
        return c != 0 ? c : (int) x->from - (int) y->from;
}

static bool same_pair(const FirewallElement *x, const FirewallElement *y) {
        return compare_prefix(&x->src, &y->src) == 0 && compare_prefix(&x->dst, &y->dst) == 0;
}

static bool dst_strictly_inside(const FirewallElement *inner, const FirewallElement *outer) {
        return outer->dst.prefixlen < inner->dst.prefixlen &&
               in_addr_prefix_contains(inner->dst.family, &outer->dst.address, outer->dst.prefixlen,
                                       &inner->dst.address);
}

/* x's range minus the ranges of the wider destinations of its source
 * (group: the elements of that source), appended to out. */
static int subtract_wider(const FirewallElement *x, const FirewallElement *group, size_t n, FirewallSets *out,
                          size_t f, FirewallSetKind k) {
        uint32_t from = x->from; /* the rest of x's range not yet taken out or emitted */

        /* the wider ranges, in port order: group is sorted by destination
         * first, so collect them by repeated scans for the next start */
        while (from <= x->to) {
                const FirewallElement *next = NULL;

                for (size_t i = 0; i < n; i++)
                        if (dst_strictly_inside(x, &group[i]) && group[i].to >= from &&
                            group[i].from <= x->to && (!next || group[i].from < next->from))
                                next = &group[i];
                if (!next)
                        break;
                if (next->from > from) {
                        FirewallElement piece = *x;
                        int r;

                        piece.from = (uint16_t) from;
                        piece.to = (uint16_t) (next->from - 1);
                        r = sets_append(out, f, k, &piece);
                        if (r < 0)
                                return r;
                }
                from = MAX(from, (uint32_t) next->to + 1);
        }
        if (from <= x->to) {
                FirewallElement piece = *x;

                piece.from = (uint16_t) from;
                return sets_append(out, f, k, &piece);
        }
        return 0;
}

/* Sorted, ranges of one pair merged, then made disjoint (see the header). */
static int sets_compact(FirewallSets *s, FirewallSets *out, size_t f, FirewallSetKind k) {
        FirewallElement *e = s->elements[f][k];
        size_t n = s->n[f][k], m = 0;

        if (n == 0)
                return 0;
        qsort(e, n, sizeof(FirewallElement), compare_element);
        for (size_t i = 0; i < n; i++)
                if (m > 0 && same_pair(&e[m - 1], &e[i]) && (uint32_t) e[i].from <= (uint32_t) e[m - 1].to + 1)
                        e[m - 1].to = MAX(e[m - 1].to, e[i].to);
                else
                        e[m++] = e[i];
        for (size_t g = 0; g < m;) {
                size_t end = g;

                while (end < m && compare_prefix(&e[end].src, &e[g].src) == 0)
                        end++;
                for (size_t i = g; i < end; i++) {
                        int r = subtract_wider(&e[i], e + g, end - g, out, f, k);
                        if (r < 0)
                                return r;
                }
                g = end;
        }
        return 0;
}

int firewall_sets_build(const FirewallSpec *spec, FirewallSets *ret) {
        _cleanup_(firewall_sets_done) FirewallSets raw = {}, out = {};
        int r;

        raw.own_rules = calloc(MAX(spec->n_filter, (size_t) 1), sizeof(bool));
        if (!raw.own_rules)
                return -ENOMEM;
        for (size_t i = 0; i < spec->n_filter; i++) {
                r = sets_add_entry(&raw, spec, i, &spec->filter[i]);
                if (r < 0)
                        return r;
        }
        for (size_t f = 0; f < 2; f++)
                for (FirewallSetKind k = 0; k < _FIREWALL_SET_MAX; k++) {
                        r = sets_compact(&raw, &out, f, k);
                        if (r < 0)
                                return r;
                }
        out.own_rules = TAKE_PTR(raw.own_rules);
        *ret = out;
        out = (FirewallSets) {};
        return 0;
}

/* ---- text ---- */

static const char *const kind_name[_FIREWALL_SET_MAX] = {
        [FIREWALL_SET_TCP] = "tcp",
        [FIREWALL_SET_UDP] = "udp",
        [FIREWALL_SET_ICMP] = "icmp",
        [FIREWALL_SET_ALL] = "all",
};

static void put_prefix(FILE *f, const InAddrPrefix *p) {
        char buf[INET6_ADDRSTRLEN];

        fputs(in_addr_format(p->family, &p->address, buf, sizeof(buf)), f);
        if (p->prefixlen != (p->family == AF_INET ? 32 : 128))
                fprintf(f, "/%u", p->prefixlen);
}

void firewall_sets_put_definitions(FILE *f, const FirewallSets *s) {
        for (size_t fam = 0; fam < 2; fam++)
                for (FirewallSetKind k = 0; k < _FIREWALL_SET_MAX; k++) {
                        const char *addr = fam == 0 ? "ipv4_addr" : "ipv6_addr";
                        bool ported = k == FIREWALL_SET_TCP || k == FIREWALL_SET_UDP;

                        if (s->n[fam][k] == 0)
                                continue;
                        fprintf(f, "\tset in%s_%s {\n\t\ttype %s . %s%s\n\t\tflags interval\n\t\telements = { ",
                                fam == 0 ? "4" : "6", kind_name[k], addr, addr,
                                ported ? " . inet_service" : "");
                        for (size_t i = 0; i < s->n[fam][k]; i++) {
                                const FirewallElement *e = &s->elements[fam][k][i];

                                if (i > 0)
                                        fputs(",\n\t\t\t     ", f);
                                put_prefix(f, &e->src);
                                fputs(" . ", f);
                                put_prefix(f, &e->dst);
                                if (ported)
                                        fprintf(f, e->from == e->to ? " . %u" : " . %u-%u", e->from, e->to);
                        }
                        fputs(" }\n\t}\n", f);
                }
}

void firewall_sets_put_rules(FILE *f, const FirewallSets *s) {
        for (size_t fam = 0; fam < 2; fam++) {
                const char *ip = fam == 0 ? "ip" : "ip6", *n = fam == 0 ? "4" : "6";

                if (s->n[fam][FIREWALL_SET_TCP] > 0)
                        fprintf(f, "\t\t%1$s saddr . %1$s daddr . tcp dport @in%2$s_tcp accept\n", ip, n);
                if (s->n[fam][FIREWALL_SET_UDP] > 0)
                        fprintf(f, "\t\t%1$s saddr . %1$s daddr . udp dport @in%2$s_udp accept\n", ip, n);
                if (s->n[fam][FIREWALL_SET_ICMP] > 0)
                        fprintf(f, "\t\tmeta l4proto %3$s %1$s saddr . %1$s daddr @in%2$s_icmp accept\n", ip, n,
                                fam == 0 ? "icmp" : "ipv6-icmp");
                if (s->n[fam][FIREWALL_SET_ALL] > 0)
                        fprintf(f, "\t\t%1$s saddr . %1$s daddr @in%2$s_all accept\n", ip, n);
        }
}

/* ---- what the kernel will match (for tests and fuzzers) ---- */

static bool element_matches(const FirewallElement *e, int family, const union in_addr_union *src,
                            const union in_addr_union *dst, bool ported, uint16_t port) {
        return in_addr_prefix_contains(family, &e->src.address, e->src.prefixlen, src) &&
               in_addr_prefix_contains(family, &e->dst.address, e->dst.prefixlen, dst) &&
               (!ported || (port >= e->from && port <= e->to));
}

static bool set_matches(const FirewallSets *s, size_t fam, FirewallSetKind k, int family,
                        const union in_addr_union *src, const union in_addr_union *dst, uint16_t port) {
        bool ported = k == FIREWALL_SET_TCP || k == FIREWALL_SET_UDP;

        for (size_t i = 0; i < s->n[fam][k]; i++)
                if (element_matches(&s->elements[fam][k][i], family, src, dst, ported, port))
                        return true;
        return false;
}

bool firewall_sets_match(const FirewallSets *s, int family, const union in_addr_union *src,
                         const union in_addr_union *dst, FirewallProto proto, uint16_t port) {
        size_t fam = family == AF_INET ? 0 : 1;

        if (set_matches(s, fam, FIREWALL_SET_ALL, family, src, dst, 0))
                return true;
        return set_matches(s, fam,
                           proto == FIREWALL_PROTO_TCP   ? FIREWALL_SET_TCP
                           : proto == FIREWALL_PROTO_UDP ? FIREWALL_SET_UDP
                                                         : FIREWALL_SET_ICMP,
                           family, src, dst, port);
}

static bool elements_overlap(const FirewallElement *a, const FirewallElement *b, bool ported) {
        return in_addr_prefix_overlaps(a->src.family, &a->src.address, a->src.prefixlen, &b->src.address,
                                       b->src.prefixlen) &&
               in_addr_prefix_overlaps(a->dst.family, &a->dst.address, a->dst.prefixlen, &b->dst.address,
                                       b->dst.prefixlen) &&
               (!ported || (a->from <= b->to && b->from <= a->to));
}

bool firewall_sets_disjoint(const FirewallSets *s) {
        for (size_t fam = 0; fam < 2; fam++)
                for (FirewallSetKind k = 0; k < _FIREWALL_SET_MAX; k++) {
                        bool ported = k == FIREWALL_SET_TCP || k == FIREWALL_SET_UDP;

                        for (size_t i = 0; i < s->n[fam][k]; i++)
                                for (size_t j = i + 1; j < s->n[fam][k]; j++)
                                        if (elements_overlap(&s->elements[fam][k][i], &s->elements[fam][k][j],
                                                             ported))
                                                return false;
                }
        return true;
}
