/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "firewall-filter.h"

static FirewallProto proto_of(NetmapFilterProto p) {
        switch (p) {
        case NETMAP_FILTER_TCP:
                return FIREWALL_PROTO_TCP;
        case NETMAP_FILTER_UDP:
                return FIREWALL_PROTO_UDP;
        default:
                return FIREWALL_PROTO_ICMP;
        }
}

/* One allocation for the rules and all their ports, after the rules. */
int firewall_filter_rules(const NetmapFilter *filter, FirewallRule **ret) {
        FirewallRule *rules;
        FirewallPort *ports;
        size_t n_ports = 0, k = 0;

        *ret = NULL;
        if (!filter || filter->n_entries == 0)
                return 0;
        for (size_t i = 0; i < filter->n_entries; i++)
                n_ports += filter->entries[i].n_ports;
        rules = calloc(1, filter->n_entries * sizeof(FirewallRule) + n_ports * sizeof(FirewallPort));
        if (!rules)
                return -ENOMEM;
        ports = (FirewallPort *) (rules + filter->n_entries);
        for (size_t i = 0; i < filter->n_entries; i++) {
                const NetmapFilterEntry *e = &filter->entries[i];

                rules[i] = (FirewallRule) {
                        .src = e->src,
                        .n_src = e->n_src,
                        .dst = e->dst,
                        .n_dst = e->n_dst,
                        .ports = ports + k,
                        .n_ports = e->n_ports,
                };
                for (size_t j = 0; j < e->n_ports; j++)
                        ports[k++] = (FirewallPort) { .proto = proto_of(e->ports[j].proto),
                                                      .from = e->ports[j].port_first,
                                                      .to = e->ports[j].port_last };
        }
        *ret = rules;
        return 0;
}

void firewall_filter_rules_free(FirewallRule *rules) {
        free(rules);
}
