/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "firewall-filter.h"
#include "firewall.h"
#include "log.h"
#include "manager-private.h"
#include "msg-routes.h"

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
        FirewallRule *rules = NULL;
        InAddrPrefix mesh[2], routes[ROUTES_MSG_MAX];
        size_t n_routes;
        FirewallSpec spec;
        bool exit = false;
        int r;

        if (!m->netmap)
                return;
        if (!m->firewall && firewall_new(m->state_dir, &m->firewall) < 0) {
                (void) log_oom();
                return;
        }
        r = firewall_filter_rules(m->netmap->filter, &rules);
        if (r < 0) {
                (void) log_oom();
                return;
        }
        /* what this node routes for: its approved subnets, and all else
         * when it is an approved exit node (0.0.0.0/0, ::/0 in "self") */
        n_routes = manager_routes_own_approved(m, routes, ELEMENTSOF(routes));
        for (char **i = m->netmap->self.routes; i && *i; i++) {
                InAddrPrefix p;

                if (route_prefix_parse(*i, &p) >= 0 && route_prefix_is_default(&p))
                        exit = true;
        }
        spec = (FirewallSpec) {
                .ifname = m->config.interface,
                .policy = m->netmap->filter != NULL,
                .filter = rules,
                .n_filter = m->netmap->filter ? m->netmap->filter->n_entries : 0,
                .routes = routes,
                .n_routes = n_routes,
                .exit = exit,
                .subnet_snat = m->config.subnet_snat,
                .exit_snat = m->config.exit_snat,
                .mesh = mesh,
                .n_mesh = mesh_ranges(m->netmap, mesh),
        };
        (void) firewall_apply(m->firewall, &spec);
        firewall_filter_rules_free(rules);
}

void manager_firewall_remove(Manager *m) {
        (void) firewall_remove(m->firewall);
}
