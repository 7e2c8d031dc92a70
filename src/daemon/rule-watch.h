/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Tells when something else removed what meshd keeps in the kernel's
 * routing: an `ip rule` of the exit node (systemd-networkd with
 * ManageForeignRoutingPolicyRules=yes drops foreign rules whenever it
 * configures a link), a route in meshd's own table (`ip route flush table
 * 5066`), an accepted subnet route on the mesh interface, or the mesh
 * interface going down and up (the kernel drops its IPv4 routes then
 * without a word). The handler looks at the kernel and re-adds what is
 * missing; it returns how many objects it re-added.
 *
 * Another program that deletes them every time (a second network manager
 * fighting meshd) must not make a loop of it: at most
 * RULE_WATCH_REPAIRS_MAX repairs that re-added something within
 * RULE_WATCH_WINDOW_USEC; past that one journal line says so and the next
 * repair waits for the window to end. */

#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "msg-routes.h"

typedef struct RuleWatch RuleWatch;
/* Re-adds what is missing: how many objects, or -errno. */
typedef int (*RuleWatchHandler)(RuleWatch *w, void *userdata);

/* Events come in bursts (networkd drops four rules at once): one look after the last. */
#define RULE_WATCH_DEBOUNCE_USEC (100 * USEC_PER_MSEC)
#define RULE_WATCH_REPAIRS_MAX 10U
#define RULE_WATCH_WINDOW_USEC (10 * USEC_PER_SEC)

int rule_watch_new(sd_event *event, RuleWatchHandler handler, void *userdata, RuleWatch **ret);
RuleWatch *rule_watch_free(RuleWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(RuleWatch *, rule_watch_free);

/* What is meshd's: the mesh interface (its routes, and it coming up), its
 * own table (0: none) and its rules' priorities [priority, priority + 1]
 * (0: none). Removals of anything else are none of its business. */
void rule_watch_set(RuleWatch *w, int ifindex, uint32_t table, uint32_t priority);

/* The routes in `table` through ifindex (the first next hop's), both
 * families, from a dump of the kernel's: for the handler to see what is
 * missing. */
int rule_watch_dump_routes(int ifindex, uint32_t table, InAddrPrefix **ret, size_t *ret_n);
