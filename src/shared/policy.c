/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The access policy evaluated (docs/policy.md): who may reach what, the peer
 * relation it implies, and the "filter" a receiving node enforces. One
 * meaning, two forms: policy_allows() answers a question directly,
 * policy_compile_filter() writes the same answers as prefixes for the
 * node's firewall; fuzz/fuzz-policy.c checks that they agree.
 *
 * A member (node or device) is selected by "*", its name, a group or a tag,
 * and a selector of members covers their own mesh addresses. An IP prefix
 * as DST covers routed addresses only (approved subnet routes, the internet
 * through an exit node), never a member's mesh address: granting an exit
 * node with 0.0.0.0/0 must not grant every node's IPv4 address too. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "error-message.h"
#include "policy.h"

static bool has_tag(const PolicyMember *m, const char *tag) {
        for (size_t i = 0; m->tags && m->tags[i]; i++)
                if (streq(m->tags[i], tag))
                        return true;
        return false;
}

bool policy_selects(const Policy *p, const PolicySelector *sel, const PolicyMember *m) {
        switch (sel->kind) {
        case POLICY_SELECT_ALL:
                return true;
        case POLICY_SELECT_NAME:
                return strcasecmp(sel->name, m->name) == 0;
        case POLICY_SELECT_TAG:
                return has_tag(m, sel->name);
        case POLICY_SELECT_GROUP: {
                /* groups have no cycles (policy_parse() refuses them) */
                const PolicyGroup *g = &p->groups[sel->group];
                for (size_t i = 0; i < g->n_members; i++)
                        if (policy_selects(p, &g->members[i], m))
                                return true;
                return false;
        }
        default:
                return false;
        }
}

static bool member_has_address(const PolicyMember *m, int family, const union in_addr_union *a) {
        if (family == AF_INET)
                return m->has_ipv4 && memcmp(&m->ipv4.in, &a->in, sizeof(struct in_addr)) == 0;
        return m->has_ipv6 && memcmp(&m->ipv6.in6, &a->in6, sizeof(struct in6_addr)) == 0;
}

static bool prefix_contains(const InAddrPrefix *p, int family, const union in_addr_union *a) {
        return p->family == family && in_addr_prefix_contains(family, &p->address, p->prefixlen, a);
}

static bool prefixes_overlap(const InAddrPrefix *a, const InAddrPrefix *b) {
        return a->family == b->family &&
               in_addr_prefix_overlaps(a->family, &a->address, a->prefixlen, &b->address, b->prefixlen);
}

static bool ports_match(const PolicyRule *rule, const NetmapFilterPort *port) {
        if (!port || rule->n_ports == 0)
                return true;
        for (size_t i = 0; i < rule->n_ports; i++) {
                const NetmapFilterPort *q = &rule->ports[i];
                if (q->proto == port->proto && q->port_first <= port->port_first &&
                    port->port_last <= q->port_last)
                        return true;
        }
        return false;
}

static bool rule_covers_routes(const PolicyRule *rule, const PolicyMember *b) {
        if (rule->dst.kind != POLICY_SELECT_PREFIX)
                return false;
        for (size_t i = 0; i < b->n_routes; i++)
                if (prefixes_overlap(&rule->dst.prefix, &b->routes[i]))
                        return true;
        return false;
}

bool policy_member_reaches(const Policy *p, const PolicyMember *a, const PolicyMember *b) {
        if (!p)
                return true;
        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *rule = &p->rules[i];

                if (!policy_selects(p, &rule->src, a))
                        continue;
                if (policy_selects(p, &rule->dst, b) || rule_covers_routes(rule, b))
                        return true;
        }
        return false;
}

bool policy_route_usable(const Policy *p, const PolicyMember *receiver, const InAddrPrefix *route) {
        if (!p)
                return true;
        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *rule = &p->rules[i];

                if (rule->dst.kind == POLICY_SELECT_PREFIX && prefixes_overlap(&rule->dst.prefix, route) &&
                    policy_selects(p, &rule->src, receiver))
                        return true;
        }
        return false;
}

static const PolicyMember *find_member(const PolicyMember *members, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcasecmp(members[i].name, name) == 0)
                        return &members[i];
        return NULL;
}

/* One address: a member's own (member selectors) or a routed one (prefix
 * selectors, and some member other than src routes it). */
static bool allows_address(const Policy *p, const PolicyMember *members, size_t n, const PolicyMember *src,
                           int family, const union in_addr_union *a, const NetmapFilterPort *port) {
        const PolicyMember *owner = NULL;
        bool routed = false;

        for (size_t i = 0; i < n && !owner; i++)
                if (member_has_address(&members[i], family, a))
                        owner = &members[i];
        if (owner == src)
                return false;
        if (!owner)
                for (size_t i = 0; i < n && !routed; i++) {
                        if (&members[i] == src)
                                continue;
                        for (size_t j = 0; j < members[i].n_routes && !routed; j++)
                                routed = prefix_contains(&members[i].routes[j], family, a);
                }
        if (!owner && !routed)
                return false;

        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *rule = &p->rules[i];
                bool dst;

                if (owner)
                        dst = policy_selects(p, &rule->dst, owner);
                else
                        dst = rule->dst.kind == POLICY_SELECT_PREFIX &&
                              prefix_contains(&rule->dst.prefix, family, a);
                if (dst && ports_match(rule, port) && policy_selects(p, &rule->src, src))
                        return true;
        }
        return false;
}

int policy_allows(const Policy *p, const PolicyMember *members, size_t n_members, const char *src_name,
                  const char *dst_name_or_address, const NetmapFilterPort *port) {
        const PolicyMember *src, *dst;
        union in_addr_union a;
        int family;

        src = find_member(members, n_members, src_name);
        if (!src)
                return -ENOENT;
        if (in_addr_parse(dst_name_or_address, &family, &a) >= 0) {
                if (!p)
                        return 1;
                return allows_address(p, members, n_members, src, family, &a, port);
        }
        dst = find_member(members, n_members, dst_name_or_address);
        if (!dst)
                return -ENOENT;
        if (!p)
                return 1;
        if (dst == src)
                return 0;
        if (dst->has_ipv4 && allows_address(p, members, n_members, src, AF_INET, &dst->ipv4, port))
                return 1;
        if (dst->has_ipv6 && allows_address(p, members, n_members, src, AF_INET6, &dst->ipv6, port))
                return 1;
        return 0;
}

bool policy_auto_approves(const Policy *p, const PolicyMember *m, const InAddrPrefix *prefix) {
        if (!p)
                return false;
        for (size_t i = 0; i < p->n_auto_approve; i++) {
                const PolicyAutoApprove *a = &p->auto_approve[i];

                if (a->prefix.family != prefix->family || a->prefix.prefixlen > prefix->prefixlen ||
                    !in_addr_prefix_contains(a->prefix.family, &a->prefix.address, a->prefix.prefixlen,
                                             &prefix->address))
                        continue;
                for (size_t j = 0; j < a->n_selectors; j++)
                        if (policy_selects(p, &a->selectors[j], m))
                                return true;
        }
        return false;
}

int policy_run_tests(const Policy *p, const PolicyMember *members, size_t n_members, char **ret_error) {
        char port[NETMAP_FILTER_PORT_STRLEN];

        for (size_t i = 0; p && i < p->n_tests; i++) {
                const PolicyTest *t = &p->tests[i];
                int r = policy_allows(p, members, n_members, t->src, t->dst, t->has_port ? &t->port : NULL);

                if (t->has_port)
                        netmap_filter_port_format(&t->port, port, sizeof(port));
                if (r == -ENOENT || r == -EINVAL)
                        return error_setf(ret_error, -EPERM,
                                          "line %u: test '%s %s reach %s%s%s': %s is no member", t->line,
                                          t->src, t->can ? "can" : "cannot", t->dst, t->has_port ? ":" : "",
                                          t->has_port ? port : "",
                                          find_member(members, n_members, t->src) ? t->dst : t->src);
                if (r < 0)
                        return r;
                if ((r > 0) != t->can)
                        return error_setf(ret_error, -EPERM, "line %u: test '%s %s reach %s%s%s' fails",
                                          t->line, t->src, t->can ? "can" : "cannot", t->dst,
                                          t->has_port ? ":" : "", t->has_port ? port : "");
        }
        return 0;
}
