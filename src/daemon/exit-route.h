/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Exit nodes, the client's side: all traffic but the mesh's and the
 * underlay's goes into the mesh interface, exactly as wg-quick does it for
 * a full tunnel (docs/decisions.md, "Exit nodes"):
 *
 *   ip rule add not fwmark M table T            priority EXIT_ROUTE_PRIORITY + 1
 *   ip rule add table main suppress_prefixlength 0   priority EXIT_ROUTE_PRIORITY
 *   ip route add default dev MESH table T
 *
 * for IPv4 and IPv6, M = T = ExitFwmark= (meshd.conf(5)). WireGuard's own
 * UDP and meshd's sockets towards the underlay carry the mark M (the
 * interface's fwmark, exit_route_mark_socket()), so they skip table T and
 * keep to the main table's default route. Everything through rtnetlink
 * (libnl), never by running ip(8). The exit peer's AllowedIPs gaining
 * 0.0.0.0/0 and ::/0 is the manager's part (manager-exit.c). */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include "netmap.h"

/* The suppress rule; the "not fwmark" rule is the next number. Just in
 * front of the main table (32766), as wg-quick's end up, so an admin's own
 * rules (lower numbers) still come first. */
#define EXIT_ROUTE_PRIORITY 32700U

typedef struct ExitRoute ExitRoute;

/* fwmark: both the mark and the table number. Touches nothing yet. */
int exit_route_new(uint32_t fwmark, ExitRoute **ret);
/* Frees the object; the kernel's rules and routes stay (call
 * exit_route_disable() first to remove them). */
ExitRoute *exit_route_free(ExitRoute *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(ExitRoute *, exit_route_free);

/* Installs the default route(s) via ifindex in table T and the rules, for
 * the families asked; a family not asked is removed. Idempotent. On
 * failure everything is removed again (nothing half-applied). */
int exit_route_enable(ExitRoute *e, int ifindex, bool ipv4, bool ipv6);
/* Removes the rules and the routes (also those a crashed meshd left: the
 * same priorities and table). A missing one is no error. */
int exit_route_disable(ExitRoute *e);
/* At start: the rules and, on ifindex (an adopted interface), the routes
 * that a meshd which crashed left behind. */
void exit_route_remove_stale(ExitRoute *e, int ifindex);
/* Re-adds what of an enabled exit route someone else removed (systemd-networkd
 * drops foreign rules, `ip route flush table T`, the mesh interface going
 * down): how many objects, each named in *what ("IPv4 rule 32701 ..."). */
int exit_route_repair(ExitRoute *e, char ***what);
bool exit_route_is_enabled(const ExitRoute *e);
uint32_t exit_route_get_fwmark(const ExitRoute *e);

/* SO_MARK on a socket meshd opens towards the underlay; mark 0: nothing. */
int exit_route_mark_socket(int fd, uint32_t mark);

/* Whether n's routes offer the internet: 0.0.0.0/0 (ret_ipv4) and ::/0 (ret_ipv6). */
bool exit_route_offered(const NetmapNode *n, bool *ret_ipv4, bool *ret_ipv6);

/* The exit node's side: forwarding must be on for the mesh interface and
 * for every interface a default route leaves through
 * (net.ipv4.conf.IF.forwarding, net.ipv6.conf.IF.forwarding). Logs one
 * error per interface where it is off; returns how many. */
int exit_route_check_forwarding(const char *mesh_ifname, bool ipv4, bool ipv6);

/* The client's side: strict reverse-path filtering on the interface of a
 * default route drops the encrypted replies of peers behind it once their
 * source routes into table T (wg-quick adds connmark rules for it, meshd
 * does not: docs/exit-nodes.md). Logs a warning naming the sysctl. */
void exit_route_check_rp_filter(const char *mesh_ifname);
