/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "firewall-filter.h"
#include "firewall.h"
#include "log.h"
#include "manager-private.h"

/* The manager's side of "table inet meshd" (firewall.h): one FirewallSpec
 * from the applied netmap (its "filter", the mesh's ranges) and this
 * node's routing settings, applied after every netmap; the table deleted
 * when the mesh interface goes. */

static size_t mesh_ranges(const Netmap *nm, InAddrPrefix mesh[static 2]) {
        size_t n = 0;

        mesh[n++] = (InAddrPrefix) { .family = AF_INET,
                                     .address = nm->ipv4_range,
                                     .prefixlen = nm->ipv4_prefixlen };
        if (nm->has_ipv6_range)
                mesh[n++] = (InAddrPrefix) { .family = AF_INET6,
                                             .address = nm->ipv6_range,
                                             .prefixlen = nm->ipv6_prefixlen };
        return n;
}

void manager_firewall_update(Manager *m) {
        _cleanup_free_ char *error = NULL;
        FirewallRule *rules = NULL;
        InAddrPrefix mesh[2];
        FirewallSpec spec;
        size_t n_rules = 0;
        bool policy = false;
        int r;

        if (!m->netmap || !m->netmap_json)
                return;
        r = firewall_filter_parse_netmap(m->netmap_json, m->netmap_json_len, &policy, &rules, &n_rules, &error);
        if (r < 0) {
                /* the table stays as it was: neither opened up nor shut on a netmap we cannot read */
                log_error_errno(r,
                                "Not applying netmap version %llu to nftables table inet " FIREWALL_TABLE
                                ": %s",
                                (unsigned long long) m->netmap->version, strna(error));
                return;
        }
        if (!m->firewall && firewall_new(m->state_dir, &m->firewall) < 0) {
                firewall_rules_free(rules, n_rules);
                (void) log_oom();
                return;
        }
        spec = (FirewallSpec) {
                .ifname = m->config.interface,
                .policy = policy,
                .filter = rules,
                .n_filter = n_rules,
                /* routes, exit and SNAT: filled from the node's routing
                 * settings (CONTRACT16 §3) */
                .subnet_snat = true,
                .exit_snat = true,
                .mesh = mesh,
                .n_mesh = mesh_ranges(m->netmap, mesh),
        };
        (void) firewall_apply(m->firewall, &spec);
        firewall_rules_free(rules, n_rules);
}

void manager_firewall_remove(Manager *m) {
        (void) firewall_remove(m->firewall);
}
