/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "constants.h"
#include "firewall-sets.h"
#include "firewall.h"

/* The script text of "table inet meshd": pure, so that the unit tests pin
 * it down without a kernel. The filter goes into named sets of
 * concatenations (firewall-sets.c): eight rules however many entries. An
 * entry that does not fit them gets rules of its own, every address list
 * an anonymous set ("{ a, b }"), normalized first: sorted, prefixes inside
 * another of the list dropped (nft refuses overlapping intervals), host
 * bits cleared; port ranges sorted and merged likewise. */

static const char *const proto_name[_FIREWALL_PROTO_MAX] = {
        [FIREWALL_PROTO_TCP] = "tcp",
        [FIREWALL_PROTO_UDP] = "udp",
        [FIREWALL_PROTO_ICMP] = "icmp",
};

/* ---- text ---- */

static bool ifname_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > 15)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
                        return false;
        return true;
}

static const char *family_keyword(int family) {
        return family == AF_INET ? "ip" : "ip6";
}

static bool prefixes_all(const InAddrPrefix *a, size_t n) {
        return n > 0 && a[0].prefixlen == 0; /* sorted: a /0 swallowed the rest */
}

static void put_prefixes(FILE *f, const InAddrPrefix *a, size_t n) {
        char buf[INET6_ADDRSTRLEN];
        unsigned max = a[0].family == AF_INET ? 32 : 128;

        fputs("{ ", f);
        for (size_t i = 0; i < n; i++) {
                fprintf(f, "%s%s", i > 0 ? ", " : "",
                        in_addr_format(a[i].family, &a[i].address, buf, sizeof(buf)));
                if (a[i].prefixlen != max)
                        fprintf(f, "/%u", a[i].prefixlen);
        }
        fputs(" }", f);
}

/* "ip saddr { … } ip daddr { … } ", or only the family when both are all. */
static void put_address_match(FILE *f, int family, const InAddrPrefix *src, size_t n_src,
                              const InAddrPrefix *dst, size_t n_dst) {
        bool src_all = prefixes_all(src, n_src), dst_all = prefixes_all(dst, n_dst);

        if (src_all && dst_all)
                fprintf(f, "meta nfproto %s ", family == AF_INET ? "ipv4" : "ipv6");
        if (!src_all) {
                fprintf(f, "%s saddr ", family_keyword(family));
                put_prefixes(f, src, n_src);
                fputc(' ', f);
        }
        if (!dst_all) {
                fprintf(f, "%s daddr ", family_keyword(family));
                put_prefixes(f, dst, n_dst);
                fputc(' ', f);
        }
}

/* One line per protocol the ports name: "tcp dport { 22, 8000-8100 }",
 * "meta l4proto udp" for all its ports, "meta l4proto icmp". */
static void put_port_lines(FILE *f, const char *match, size_t index, int family, const FirewallPort *p,
                           size_t n) {
        for (size_t i = 0; i < n;) {
                FirewallProto proto = p[i].proto;
                size_t j = i;
                bool all = false;

                while (j < n && p[j].proto == proto) {
                        all |= p[j].from == 0 && p[j].to == 65535;
                        j++;
                }
                fprintf(f, "\t\t%s", match);
                if (proto == FIREWALL_PROTO_ICMP)
                        fprintf(f, "meta l4proto %s", family == AF_INET ? "icmp" : "ipv6-icmp");
                else if (all)
                        fprintf(f, "meta l4proto %s", proto_name[proto]);
                else {
                        fprintf(f, "%s dport { ", proto_name[proto]);
                        for (size_t k = i; k < j; k++) {
                                fprintf(f, "%s%u", k > i ? ", " : "", p[k].from);
                                if (p[k].to != p[k].from)
                                        fprintf(f, "-%u", p[k].to);
                        }
                        fputs(" }", f);
                }
                fprintf(f, " accept comment \"filter %zu\"\n", index);
                i = j;
        }
}

static int put_rule(FILE *f, const FirewallSpec *spec, const FirewallRule *rule, size_t index) {
        _cleanup_free_ FirewallPort *ports = NULL;
        size_t n_ports;
        int r;

        r = firewall_ports_normalize(rule->ports, rule->n_ports, &ports, &n_ports);
        if (r < 0)
                return r;
        for (int family = AF_INET; family != 0; family = family == AF_INET ? AF_INET6 : 0) {
                _cleanup_free_ InAddrPrefix *src = NULL, *dst = NULL;
                _cleanup_free_ char *match = NULL;
                _cleanup_fclose_ FILE *m = NULL;
                size_t n_src, n_dst, size;

                r = firewall_prefixes_of_family(rule->src, rule->n_src, family, &src, &n_src);
                if (r >= 0)
                        r = firewall_dst_of_family(spec, rule->dst, rule->n_dst, family, &dst, &n_dst);
                if (r < 0)
                        return r;
                if (n_src == 0 || n_dst == 0)
                        continue;
                m = open_memstream(&match, &size);
                if (!m)
                        return -ENOMEM;
                put_address_match(m, family, src, n_src, dst, n_dst);
                if (fclose(TAKE_PTR(m)) != 0)
                        return -ENOMEM;
                if (n_ports == 0)
                        fprintf(f, "\t\t%saccept comment \"filter %zu\"\n", match, index);
                else
                        put_port_lines(f, match, index, family, ports, n_ports);
        }
        return 0;
}

static int put_filter_rules(FILE *f, const FirewallSpec *spec, const FirewallSets *sets) {
        firewall_sets_put_rules(f, sets);
        for (size_t i = 0; i < spec->n_filter; i++) {
                int r = sets->own_rules[i] ? put_rule(f, spec, &spec->filter[i], i) : 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

static void put_base_chain(FILE *f, const char *name, const char *jump, const char *ifname) {
        fprintf(f,
                "\tchain %s {\n"
                "\t\ttype filter hook %s priority " FIREWALL_FILTER_PRIORITY "; policy accept;\n"
                "\t\tiifname \"%s\" jump %s\n"
                "\t}\n",
                name, name, ifname, jump);
}

static const char CHAIN_HEAD[] = "\t\tct state established,related accept\n"
                                 "\t\tct state invalid drop\n";

static int put_input(FILE *f, const FirewallSpec *spec, const FirewallSets *sets) {
        int r;

        put_base_chain(f, "input", "mesh_input", spec->ifname);
        fprintf(f,
                "\tchain mesh_input {\n%s"
                "\t\tudp dport %u accept comment \"meshd's path probes\"\n",
                CHAIN_HEAD, (unsigned) PROBE_PORT);
        r = put_filter_rules(f, spec, sets);
        if (r < 0)
                return r;
        fputs("\t\tcounter drop comment \"not allowed by the mesh policy\"\n"
              "\t}\n",
              f);
        return 0;
}

/* The routes of one family, without /0 (the exit flag's business): a /0
 * would swallow the subnets, which the SNAT rules tell apart. */
static int routes_of_family(const FirewallSpec *spec, int family, InAddrPrefix **ret, size_t *ret_n) {
        _cleanup_free_ InAddrPrefix *subnets = calloc(MAX(spec->n_routes, (size_t) 1), sizeof(InAddrPrefix));
        size_t n = 0;

        if (!subnets)
                return -ENOMEM;
        for (size_t i = 0; i < spec->n_routes; i++)
                if (spec->routes[i].prefixlen > 0)
                        subnets[n++] = spec->routes[i];
        return firewall_prefixes_of_family(subnets, n, family, ret, ret_n);
}

static bool spec_exit(const FirewallSpec *spec) {
        if (spec->exit)
                return true;
        for (size_t i = 0; i < spec->n_routes; i++)
                if (spec->routes[i].prefixlen == 0)
                        return true;
        return false;
}

/* Forwarded from the mesh: only to the routes (everywhere else too on an
 * exit node), and with a policy only what a filter rule allows. */
static int put_forward(FILE *f, const FirewallSpec *spec, const FirewallSets *sets) {
        bool exit = spec_exit(spec);
        int r;

        put_base_chain(f, "forward", "mesh_forward", spec->ifname);
        fprintf(f, "\tchain mesh_forward {\n%s", CHAIN_HEAD);
        for (int family = AF_INET; !exit && family != 0; family = family == AF_INET ? AF_INET6 : 0) {
                _cleanup_free_ InAddrPrefix *routes = NULL;
                size_t n;

                r = routes_of_family(spec, family, &routes, &n);
                if (r < 0)
                        return r;
                fprintf(f, "\t\tmeta nfproto %s ", family == AF_INET ? "ipv4" : "ipv6");
                if (n > 0) {
                        fprintf(f, "%s daddr != ", family_keyword(family));
                        put_prefixes(f, routes, n);
                        fputc(' ', f);
                }
                fputs("counter drop comment \"not a route of this node\"\n", f);
        }
        /* routing nothing, everything was dropped above */
        if (spec->policy && (exit || spec->n_routes > 0)) {
                r = put_filter_rules(f, spec, sets);
                if (r < 0)
                        return r;
                fputs("\t\tcounter drop comment \"not allowed by the mesh policy\"\n", f);
        }
        fputs("\t}\n", f);
        return 0;
}

static void put_masquerade(FILE *f, const FirewallSpec *spec, int family, const InAddrPrefix *mesh,
                           size_t n_mesh, const InAddrPrefix *routes, size_t n_routes, bool subnet) {
        fprintf(f, "\t\tiifname \"%1$s\" oifname != \"%1$s\" ", spec->ifname);
        if (n_mesh > 0) {
                fprintf(f, "%s saddr ", family_keyword(family));
                put_prefixes(f, mesh, n_mesh);
                fputc(' ', f);
        } else
                fprintf(f, "meta nfproto %s ", family == AF_INET ? "ipv4" : "ipv6");
        if (n_routes > 0) {
                fprintf(f, "%s daddr %s", family_keyword(family), subnet ? "" : "!= ");
                put_prefixes(f, routes, n_routes);
                fputc(' ', f);
        }
        fprintf(f, "masquerade comment \"%s\"\n", subnet ? "SubnetSNAT=yes" : "ExitSNAT=yes");
}

static int put_postrouting(FILE *f, const FirewallSpec *spec) {
        bool exit = spec_exit(spec) && spec->exit_snat;

        if (!spec->subnet_snat && !exit)
                return 0;
        fputs("\tchain postrouting {\n"
              "\t\ttype nat hook postrouting priority " FIREWALL_NAT_PRIORITY "; policy accept;\n",
              f);
        for (int family = AF_INET; family != 0; family = family == AF_INET ? AF_INET6 : 0) {
                _cleanup_free_ InAddrPrefix *routes = NULL, *mesh = NULL;
                size_t n_routes, n_mesh;
                int r;

                r = routes_of_family(spec, family, &routes, &n_routes);
                if (r >= 0)
                        r = firewall_prefixes_of_family(spec->mesh, spec->n_mesh, family, &mesh, &n_mesh);
                if (r < 0)
                        return r;
                if (spec->subnet_snat && n_routes > 0)
                        put_masquerade(f, spec, family, mesh, n_mesh, routes, n_routes, true);
                if (exit)
                        put_masquerade(f, spec, family, mesh, n_mesh, routes, n_routes, false);
        }
        fputs("\t}\n", f);
        return 0;
}

bool firewall_spec_wanted(const FirewallSpec *spec) {
        return spec->policy || spec->n_routes > 0 || spec->exit;
}

int firewall_script_install(const FirewallSpec *spec, char **ret) {
        _cleanup_(firewall_sets_done) FirewallSets sets = {};
        _cleanup_free_ char *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size;
        int r;

        if (!ifname_valid(spec->ifname))
                return -EINVAL;
        if (!firewall_spec_wanted(spec)) {
                *ret = NULL;
                return 0;
        }
        r = firewall_sets_build(spec, &sets);
        if (r < 0)
                return r;
        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        /* add (a no-op when it exists), delete, define: one transaction that
         * replaces the old table whole, with no moment without one */
        fprintf(f,
                "table inet " FIREWALL_TABLE " {}\n"
                "delete table inet " FIREWALL_TABLE "\n"
                "table inet " FIREWALL_TABLE " {\n"
                "\tcomment \"meshd: the mesh policy and forwarding of %s, replaced whole by meshd; see meshd(8)\"\n",
                spec->ifname);
        firewall_sets_put_definitions(f, &sets);
        r = spec->policy ? put_input(f, spec, &sets) : 0;
        if (r >= 0)
                r = put_forward(f, spec, &sets);
        if (r >= 0)
                r = put_postrouting(f, spec);
        if (r < 0)
                return r;
        fputs("}\n", f);
        if (ferror(f) || fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(text);
        return 0;
}

int firewall_script_remove(char **ret) {
        *ret = strdup("table inet " FIREWALL_TABLE " {}\ndelete table inet " FIREWALL_TABLE "\n");
        return *ret ? 0 : -ENOMEM;
}
