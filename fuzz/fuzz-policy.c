/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The access policy's two forms must agree (src/shared/policy.c): for
 * random policies and random traffic (src member, dst address, protocol,
 * port), policy_allows() says yes exactly when the filter that
 * policy_compile_filter() makes for the receiving node accepts the packet,
 * matched the way the node's firewall matches it (netmap-filter.h: own
 * addresses for traffic to the node, the other prefixes for traffic it
 * forwards). And allowed traffic implies the two are peers, and that the
 * route it goes through is in the sender's netmap.
 *
 * Third, the receiver's nftables table (src/daemon/firewall-script.c):
 * the filter as firewall_filter_rules() → firewall_sets_build(), matched
 * as the kernel's set lookups match (firewall_sets_match()), entries with
 * rules of their own matched like put_rule() writes them, in the order of
 * the chain the packet takes (input for the node's own addresses, forward
 * with its "not a route of this node" drop for the rest). The chains'
 * fixed accepts (established, the probe port) are outside the tuples.
 *
 * Input byte 0 odd: the rest is a policy file (policy_parse() must not
 * crash; what parses is checked). Even: the bytes pick a policy from a
 * small vocabulary that hits the mesh below often, then the tuples. */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>

#include "constants.h"
#include "firewall-filter.h"
#include "firewall-sets.h"
#include "fuzz.h"
#include "policy.h"

#define N_NODES 4
#define N_MEMBERS 6

typedef struct Bytes {
        const uint8_t *p;
        size_t n;
} Bytes;

static uint8_t take(Bytes *b) {
        if (b->n == 0)
                return 0;
        b->n--;
        return *b->p++;
}

static const char *const names[N_MEMBERS] = { "a0", "a1", "a2", "a3", "d0", "d1" };

static const char *const srcs[] = { "*",        "a0",       "a1",       "a2",     "a3",     "d0",    "d1",
                                    "group:g0", "group:g1", "group:g2", "tag:t0", "tag:t1", "nobody" };
static const char *const dsts[] = { "*",
                                    "a0",
                                    "a1",
                                    "a2",
                                    "a3",
                                    "d0",
                                    "group:g0",
                                    "group:g1",
                                    "tag:t0",
                                    "tag:t1",
                                    "0.0.0.0/0",
                                    "[::/0]",
                                    "192.168.0.0/16",
                                    "192.168.1.0/24",
                                    "192.168.1.128/25",
                                    "10.0.0.0/8",
                                    "10.9.0.0/16",
                                    "[fd00::/64]",
                                    "[fd00::/72]",
                                    "8.8.8.8" };
static const char *const ports[] = { "",     ":22/tcp",    ":1-100/udp", ":icmp", ":tcp", ":22/tcp,53/udp,icmp",
                                     ":udp", ":80-443/tcp" };
static const char *const group_members[] = { "a0",     "a1",     "a2",       "a3",       "d0",      "d1",
                                             "tag:t0", "tag:t1", "group:g0", "group:g1", "group:g2" };

#define PICK(b, v) (v)[take(b) % ELEMENTSOF(v)]

/* A policy file from the bytes: three groups, up to 8 rules. */
static char *policy_from_bytes(Bytes *b) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        unsigned n_rules;

        fuzz_check(f);
        fputs("{\"groups\": {", f);
        for (unsigned g = 0; g < 3; g++) {
                unsigned n = take(b) % 4;
                fprintf(f, "%s\"g%u\": [", g ? ", " : "", g);
                for (unsigned i = 0; i < n; i++)
                        fprintf(f, "%s\"%s\"", i ? ", " : "", PICK(b, group_members));
                fputs("]", f);
        }
        fputs("},\n\"rules\": [", f);
        n_rules = take(b) % 9;
        for (unsigned i = 0; i < n_rules; i++)
                fprintf(f, "%s\n\"allow %s -> %s%s\"", i ? "," : "", PICK(b, srcs), PICK(b, dsts),
                        PICK(b, ports));
        fputs("]}", f);
        fuzz_check(fclose(f) == 0);
        return text;
}

typedef struct Mesh {
        PolicyMember m[N_MEMBERS];
        InAddrPrefix routes[5];
        InAddrPrefix ranges[2]; /* the mesh's own, as the netmap gives them */
} Mesh;

static void prefix(InAddrPrefix *p, const char *s) {
        fuzz_check(in_addr_prefix_parse(s, &p->family, &p->address, &p->prefixlen) >= 0);
}

static void mesh_init(Mesh *mesh) {
        static char *const t0[] = { "t0", NULL }, *const t1[] = { "t1", NULL },
                           *const t01[] = { "t0", "t1", NULL };
        static char *const *const tags[N_MEMBERS] = { t0, NULL, t1, t01, t1, NULL };

        for (size_t i = 0; i < N_MEMBERS; i++) {
                char buf[64];

                mesh->m[i] = (PolicyMember) { .name = names[i],
                                              .tags = tags[i],
                                              .has_ipv4 = true,
                                              .has_ipv6 = i != 5,
                                              .device = i >= N_NODES };
                snprintf(buf, sizeof(buf), "100.64.0.%zu", i + 2);
                fuzz_check(inet_pton(AF_INET, buf, &mesh->m[i].ipv4.in) == 1);
                snprintf(buf, sizeof(buf), "fd7a::%zu", i + 2);
                fuzz_check(inet_pton(AF_INET6, buf, &mesh->m[i].ipv6.in6) == 1);
        }
        /* a1 routes a LAN, a2 is an exit node, a3 routes two */
        prefix(&mesh->routes[0], "192.168.1.0/24");
        prefix(&mesh->routes[1], "0.0.0.0/0");
        prefix(&mesh->routes[2], "::/0");
        prefix(&mesh->routes[3], "10.0.0.0/8");
        prefix(&mesh->routes[4], "fd00::/64");
        mesh->m[1].routes = &mesh->routes[0];
        mesh->m[1].n_routes = 1;
        mesh->m[2].routes = &mesh->routes[1];
        mesh->m[2].n_routes = 2;
        mesh->m[3].routes = &mesh->routes[3];
        mesh->m[3].n_routes = 2;
        prefix(&mesh->ranges[0], "100.64.0.0/10");
        prefix(&mesh->ranges[1], "fd7a::/48");
}

static bool prefix_is_address(const InAddrPrefix *p, int family, const union in_addr_union *a) {
        return p->family == family && p->prefixlen == (family == AF_INET ? 32 : 128) &&
               memcmp(&p->address, a, family == AF_INET ? 4 : 16) == 0;
}

static bool in_list(const InAddrPrefix *v, size_t n, int family, const union in_addr_union *a, bool own,
                    const PolicyMember *self) {
        for (size_t i = 0; i < n; i++) {
                bool is_own = prefix_is_address(&v[i], AF_INET, &self->ipv4) ||
                              (self->has_ipv6 && prefix_is_address(&v[i], AF_INET6, &self->ipv6));
                /* the firewall: own addresses for input, the rest for forwarding */
                if (is_own != own)
                        continue;
                if (v[i].family == family && in_addr_prefix_contains(family, &v[i].address, v[i].prefixlen, a))
                        return true;
        }
        return false;
}

static bool filter_accepts(const NetmapFilter *f, const PolicyMember *self, int family,
                           const union in_addr_union *src, const union in_addr_union *dst, bool own,
                           const NetmapFilterPort *port) {
        for (size_t i = 0; i < f->n_entries; i++) {
                const NetmapFilterEntry *e = &f->entries[i];
                bool port_ok = e->n_ports == 0;

                if (!in_list(e->src, e->n_src, family, src, false, self) ||
                    !in_list(e->dst, e->n_dst, family, dst, own, self))
                        continue;
                for (size_t j = 0; j < e->n_ports && !port_ok; j++)
                        port_ok = e->ports[j].proto == port->proto &&
                                  e->ports[j].port_first <= port->port_first &&
                                  port->port_first <= e->ports[j].port_last;
                if (port_ok)
                        return true;
        }
        return false;
}

/* A destination of node d: an own address, or one inside one of its routes. */
static bool pick_dst(Bytes *b, const Mesh *mesh, const PolicyMember *d, int *family, union in_addr_union *a,
                     bool *own, const InAddrPrefix **route) {
        uint8_t c = take(b);

        *route = NULL;
        *own = c % 3 == 0 || d->n_routes == 0;
        if (*own) {
                *family = c % 2 == 0 || !d->has_ipv6 ? AF_INET : AF_INET6;
                *a = *family == AF_INET ? d->ipv4 : d->ipv6;
                return true;
        }
        *route = &d->routes[take(b) % d->n_routes];
        *family = (*route)->family;
        *a = (*route)->address;
        for (size_t i = (*route)->prefixlen / 8; i < (*family == AF_INET ? 4u : 16u); i++)
                a->bytes[i] |=
                        take(b) & (i == (*route)->prefixlen / 8 ? 0xffu >> ((*route)->prefixlen % 8) : 0xff);
        /* the mesh's ranges are never routed through another node (the
         * mesh interface's own route is more specific than any exit) */
        for (size_t i = 0; i < ELEMENTSOF(mesh->ranges); i++)
                if (mesh->ranges[i].family == *family &&
                    in_addr_prefix_contains(*family, &mesh->ranges[i].address, mesh->ranges[i].prefixlen, a))
                        return false;
        return true;
}

/* The receiving node's table (firewall-script.c), built once per input. */
typedef struct Table {
        FirewallRule *rules;
        FirewallSpec spec;
        FirewallSets sets;
} Table;

static void table_init(Table *t, const NetmapFilter *filter, const Mesh *mesh, const PolicyMember *node) {
        fuzz_check(firewall_filter_rules(filter, &t->rules) == 0);
        t->spec = (FirewallSpec) { .ifname = "mesh0",
                                   .policy = true,
                                   .filter = t->rules,
                                   .n_filter = filter->n_entries,
                                   .routes = node->routes,
                                   .n_routes = node->n_routes,
                                   .mesh = mesh->ranges,
                                   .n_mesh = ELEMENTSOF(mesh->ranges) };
        fuzz_check(firewall_sets_build(&t->spec, &t->sets) == 0);
}

static void table_done(Table *t) {
        firewall_sets_done(&t->sets);
        firewall_filter_rules_free(t->rules);
}

static bool prefixes_contain(const InAddrPrefix *v, size_t n, int family, const union in_addr_union *a) {
        for (size_t i = 0; i < n; i++)
                if (v[i].family == family && in_addr_prefix_contains(family, &v[i].address, v[i].prefixlen, a))
                        return true;
        return false;
}

/* An entry with rules of its own: "saddr { … } daddr { … }" and its port
 * lines, the destinations as put_rule() cuts them. */
static bool rule_accepts(const FirewallSpec *spec, const FirewallRule *rule, int family,
                         const union in_addr_union *src, const union in_addr_union *dst, FirewallProto proto,
                         uint16_t port) {
        _cleanup_free_ InAddrPrefix *d = NULL;
        size_t n_d;

        fuzz_check(firewall_dst_of_family(spec, rule->dst, rule->n_dst, family, &d, &n_d) == 0);
        if (!prefixes_contain(rule->src, rule->n_src, family, src) || !prefixes_contain(d, n_d, family, dst))
                return false;
        if (rule->n_ports == 0)
                return true;
        for (size_t i = 0; i < rule->n_ports; i++)
                if (rule->ports[i].proto == proto &&
                    (proto == FIREWALL_PROTO_ICMP ||
                     (rule->ports[i].from <= port && port <= rule->ports[i].to)))
                        return true;
        return false;
}

/* mesh_input for own addresses, mesh_forward for the rest; new traffic. */
static bool table_accepts(const Table *t, int family, const union in_addr_union *src,
                          const union in_addr_union *dst, bool own, const NetmapFilterPort *port) {
        FirewallProto proto = port->proto == NETMAP_FILTER_TCP   ? FIREWALL_PROTO_TCP
                              : port->proto == NETMAP_FILTER_UDP ? FIREWALL_PROTO_UDP
                                                                 : FIREWALL_PROTO_ICMP;
        bool exit_node = false;

        if (own && proto == FIREWALL_PROTO_UDP && port->port_first == PROBE_PORT)
                return true;
        if (!own) {
                for (size_t i = 0; i < t->spec.n_routes; i++)
                        exit_node |= t->spec.routes[i].prefixlen == 0;
                /* "not a route of this node", the /0s left out */
                if (!exit_node && !prefixes_contain(t->spec.routes, t->spec.n_routes, family, dst))
                        return false;
        }
        if (firewall_sets_match(&t->sets, family, src, dst, proto, port->port_first))
                return true;
        for (size_t i = 0; i < t->spec.n_filter; i++)
                if (t->sets.own_rules[i] &&
                    rule_accepts(&t->spec, &t->spec.filter[i], family, src, dst, proto, port->port_first))
                        return true;
        return false;
}

static void check_tuple(const Policy *p, const Mesh *mesh, NetmapFilter *const *filters, const Table *tables,
                        Bytes *b) {
        size_t s = take(b) % N_MEMBERS, d = take(b) % N_NODES;
        const PolicyMember *src = &mesh->m[s], *dst = &mesh->m[d];
        NetmapFilterPort port = { .proto = take(b) % 3 };
        const InAddrPrefix *route;
        union in_addr_union a;
        char text[INET6_ADDRSTRLEN];
        int family, r;
        bool own, accepted, table;

        if (s == d || !pick_dst(b, mesh, dst, &family, &a, &own, &route))
                return;
        if (family == AF_INET6 && !src->has_ipv6)
                return;
        if (port.proto != NETMAP_FILTER_ICMP)
                port.port_first = port.port_last = (uint16_t) (1 + (take(b) << 1 | (take(b) & 1)) % 500);

        fuzz_check(inet_ntop(family, &a, text, sizeof(text)));
        r = policy_allows(p, mesh->m, N_MEMBERS, src->name, text, &port);
        fuzz_check(r == 0 || r == 1);
        accepted = filter_accepts(filters[d], dst, family, family == AF_INET ? &src->ipv4 : &src->ipv6, &a, own,
                                  &port);
        table = table_accepts(&tables[d], family, family == AF_INET ? &src->ipv4 : &src->ipv6, &a, own, &port);
        if ((r == 1) != accepted || accepted != table) {
                fprintf(stderr, "%s -> %s (%s) proto %d port %u: evaluator %d, filter of %s %d, its table %d\n",
                        src->name, text, own ? "own" : "routed", port.proto, port.port_first, r, dst->name,
                        accepted, table);
                abort();
        }
        if (r == 1) {
                fuzz_check(policy_peers(p, src, dst));
                fuzz_check(!route || policy_route_usable(p, src, route));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Bytes b = { data, size };
        _cleanup_free_ char *text = NULL, *error = NULL;
        Policy *p = NULL;
        NetmapFilter *filters[N_NODES] = {};
        Table tables[N_NODES];
        Mesh mesh;
        int r;

        fuzz_quiet_logs();
        if (size == 0)
                return 0;
        if (take(&b) & 1) {
                r = policy_parse((const char *) b.p, b.n, &p, &error);
                fuzz_check(r >= 0 || (r == -EINVAL && error && strncmp(error, "line ", 5) == 0) ||
                           r == -ENOMEM || (r == -EINVAL && error && strstr(error, "larger than")));
                b.n = 0; /* the text was the whole input: no tuples */
        } else {
                text = policy_from_bytes(&b);
                r = policy_parse(text, strlen(text), &p, &error);
                /* only a group cycle is refused in what the vocabulary makes */
                if (r < 0)
                        fuzz_check(error && strstr(error, "cycle"));
        }
        if (r < 0)
                return 0;

        mesh_init(&mesh);
        for (size_t i = 0; i < N_NODES; i++)
                fuzz_check(policy_compile_filter(p, mesh.m, N_MEMBERS, i, &filters[i]) == 0);
        for (size_t i = 0; i < N_NODES; i++)
                table_init(&tables[i], filters[i], &mesh, &mesh.m[i]);
        (void) policy_run_tests(p, mesh.m, N_MEMBERS, &error);
        for (unsigned i = 0; i < 64 && b.n > 0; i++)
                check_tuple(p, &mesh, filters, tables, &b);

        for (size_t i = 0; i < N_NODES; i++) {
                table_done(&tables[i]);
                netmap_filter_free(filters[i]);
        }
        policy_free(p);
        return 0;
}
