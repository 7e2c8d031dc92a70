/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The access policy on the hub, for devices (hub-policy.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hub-policy.h"
#include "log.h"
#include "policy-mesh.h"

#define CHAIN "device_policy" /* "devices" is a keyword of nft */

static void put_prefixes(FILE *f, const InAddrPrefix *v, size_t n, int family) {
        char buf[INET6_ADDRSTRLEN];
        bool first = true;

        fputs("{ ", f);
        for (size_t i = 0; i < n; i++) {
                if (v[i].family != family)
                        continue;
                fprintf(f, "%s%s/%u", first ? "" : ", ", inet_ntop(family, &v[i].address, buf, sizeof(buf)),
                        v[i].prefixlen);
                first = false;
        }
        fputs(" }", f);
}

static size_t count_family(const InAddrPrefix *v, size_t n, int family) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                k += v[i].family == family;
        return k;
}

/* "tcp dport 22", "udp dport 1-5", "meta l4proto tcp", "meta l4proto { icmp, ipv6-icmp }" */
static void put_port(FILE *f, const NetmapFilterPort *p) {
        const char *proto = netmap_filter_proto_to_string(p->proto);

        if (p->proto == NETMAP_FILTER_ICMP)
                fputs(" meta l4proto { icmp, ipv6-icmp }", f);
        else if (p->port_first == 0 && p->port_last == 65535)
                fprintf(f, " meta l4proto %s", proto);
        else if (p->port_first == p->port_last)
                fprintf(f, " %s dport %u", proto, p->port_first);
        else
                fprintf(f, " %s dport %u-%u", proto, p->port_first, p->port_last);
}

/* One accept rule per family and port item of each entry. */
static void put_entry(FILE *f, const char *table, const NetmapFilterEntry *e) {
        for (int k = 0; k < 2; k++) {
                int family = k == 0 ? AF_INET : AF_INET6;
                const char *ip = k == 0 ? "ip" : "ip6";

                if (count_family(e->src, e->n_src, family) == 0 || count_family(e->dst, e->n_dst, family) == 0)
                        continue;
                for (size_t j = 0; j < MAX(e->n_ports, (size_t) 1); j++) {
                        fprintf(f, "add rule inet %s " CHAIN " %s saddr ", table, ip);
                        put_prefixes(f, e->src, e->n_src, family);
                        fprintf(f, " %s daddr ", ip);
                        put_prefixes(f, e->dst, e->n_dst, family);
                        if (e->n_ports > 0)
                                put_port(f, &e->ports[j]);
                        fputs(" accept\n", f);
                }
        }
}

int hub_policy_script(const char *ifname, const char *table, const HubPolicyDevice *devices, size_t n,
                      bool policy, char **ret) {
        char *text = NULL, buf[INET6_ADDRSTRLEN];
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        if (!f)
                return -ENOMEM;
        /* the same priority as the table's forward chain: a packet must pass both */
        fprintf(f,
                "add chain inet %1$s " CHAIN
                " { type filter hook forward priority filter - 10; policy accept; }\n"
                "flush chain inet %1$s " CHAIN "\n",
                table);
        if (policy && n > 0) {
                fprintf(f, "add rule inet %s " CHAIN " oifname != \"%s\" accept\n", table, ifname);
                fprintf(f, "add rule inet %s " CHAIN " ct state established,related accept\n", table);
                for (size_t i = 0; i < n; i++)
                        for (size_t j = 0; devices[i].filter && j < devices[i].filter->n_entries; j++)
                                put_entry(f, table, &devices[i].filter->entries[j]);
                for (size_t i = 0; i < n; i++) {
                        fprintf(f,
                                "add rule inet %s " CHAIN " ip daddr %s counter drop comment \"device: "
                                "not allowed by the policy\"\n",
                                table, inet_ntop(AF_INET, &devices[i].ipv4, buf, sizeof(buf)));
                        if (devices[i].has_ipv6)
                                fprintf(f,
                                        "add rule inet %s " CHAIN " ip6 daddr %s counter drop comment "
                                        "\"device: not allowed by the policy\"\n",
                                        table, inet_ntop(AF_INET6, &devices[i].ipv6, buf, sizeof(buf)));
                }
        }
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}

/* The devices of the mesh with their compiled filters (filters[i] owned). */
static int compile_devices(const Policy *p, const PolicyMembers *m, HubPolicyDevice *d,
                           NetmapFilter **filters) {
        for (size_t i = 0; i < m->n - m->n_nodes; i++) {
                const PolicyMember *member = &m->v[m->n_nodes + i];
                int r = policy_compile_filter(p, m->v, m->n, m->n_nodes + i, &filters[i]);

                if (r == -E2BIG) /* closed: nothing new reaches it */
                        filters[i] = calloc(1, sizeof(NetmapFilter));
                else if (r < 0)
                        return r;
                if (!filters[i])
                        return -ENOMEM;
                d[i] = (HubPolicyDevice) { .ipv4 = member->ipv4.in,
                                           .ipv6 = member->ipv6.in6,
                                           .has_ipv6 = member->has_ipv6,
                                           .filter = filters[i] };
        }
        return 0;
}

int hub_policy_sync(HubFirewall *fw, Store *store, const char *ifname) {
        _cleanup_(netmap_mesh_done) NetmapMesh mesh = {};
        _cleanup_(policy_members_done) PolicyMembers m = {};
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ HubPolicyDevice *d = NULL;
        _cleanup_free_ NetmapFilter **filters = NULL;
        _cleanup_free_ char *script = NULL, *perror = NULL;
        char error[256];
        size_t n = 0;
        int r;

        r = store_read_mesh(store, NULL, &mesh);
        if (r < 0)
                return r;
        if (mesh.policy) {
                r = policy_parse(mesh.policy, strlen(mesh.policy), &p, &perror);
                if (r == -ENOMEM)
                        return log_oom();
                if (r < 0) /* as netmap-render-policy.c: closed, not open */
                        p = calloc(1, sizeof(Policy));
                if (!p)
                        return log_oom();
                r = policy_members_from_mesh(&mesh, &m);
                if (r < 0)
                        return r;
                n = m.n - m.n_nodes;
                d = calloc(n + 1, sizeof(HubPolicyDevice));
                filters = calloc(n + 1, sizeof(NetmapFilter *));
                if (!d || !filters)
                        return log_oom();
                r = compile_devices(p, &m, d, filters);
        }
        if (r >= 0)
                r = hub_policy_script(ifname, hub_firewall_table(fw), d, n, p != NULL, &script);
        for (size_t i = 0; filters && i < n; i++)
                netmap_filter_free(filters[i]);
        if (r < 0)
                return log_oom();
        r = hub_firewall_apply(fw, script, error, sizeof(error));
        if (r < 0)
                return log_error_errno(r, "Failed to apply the access policy to the hub's devices: %s", error);
        log_debug("Hub firewall: %s for %zu device(s).", p ? "access policy" : "no access policy", n);
        return 0;
}
