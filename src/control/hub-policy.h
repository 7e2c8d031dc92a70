/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Devices have no firewall of their own: with an access policy, the hub
 * forwards a new connection to a device only as the policy allows (the
 * device's compiled filter, policy.h). A second base chain "device_policy" in the
 * hub firewall's table, on the forward hook: replies pass, what a filter
 * entry allows passes, other new traffic to a device is dropped. Without
 * a policy the chain is empty (everything goes on to the member check of
 * hub-firewall.c, as before). */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "hub-firewall.h"
#include "netmap-filter.h"
#include "store.h"

typedef struct HubPolicyDevice {
        struct in_addr ipv4;
        struct in6_addr ipv6;
        bool has_ipv6;
        const NetmapFilter *filter; /* its compiled filter */
} HubPolicyDevice;

/* Pure: the nft script that makes the chain (idempotent: add, flush,
 * rules). policy false: only emptied. */
int hub_policy_script(const char *ifname, const char *table, const HubPolicyDevice *devices, size_t n,
                      bool policy, char **ret);
/* Reads the mesh and its policy from the store and applies the chain. */
int hub_policy_sync(HubFirewall *fw, Store *store, const char *ifname);
