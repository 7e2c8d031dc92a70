/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The netmap's parsed "filter" (netmap-filter.h) as the firewall's
 * FirewallRules, so that the table's generator depends on no netmap
 * parser. */

#include "firewall.h"
#include "netmap-filter.h"

/* The rules of filter (NULL: none, *ret NULL): address lists borrowed from
 * filter, which must outlive them; free with firewall_filter_rules_free(). */
int firewall_filter_rules(const NetmapFilter *filter, FirewallRule **ret);
void firewall_filter_rules_free(FirewallRule *rules);
