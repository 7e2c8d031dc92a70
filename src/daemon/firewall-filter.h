/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The netmap's "filter" (CONTRACT16 §2) as the firewall's FirewallRules.
 * Reads the netmap's JSON itself, so the node's table does not wait on the
 * netmap parser: an adapter that goes once the parsed Netmap carries the
 * filter (then it converts that struct instead). */

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "firewall.h"

#define FIREWALL_FILTER_MAX 4096
#define FIREWALL_FILTER_PREFIXES_MAX 256
#define FIREWALL_FILTER_PORTS_MAX 64

/* filter absent or null: *ret_policy false (no policy), no rules. An
 * array: *ret_policy true and its rules (none for []). -EBADMSG with a
 * one-line error naming the entry at fault. */
int firewall_filter_parse(const cJSON *filter, bool *ret_policy, FirewallRule **ret, size_t *ret_n,
                          char **ret_error);
/* The same from a netmap's text. */
int firewall_filter_parse_netmap(const char *json, size_t len, bool *ret_policy, FirewallRule **ret,
                                 size_t *ret_n, char **ret_error);
