/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* rtnetlink (libnl-route) for the mesh interface: create, up, MTU, addresses. */

#include <stdbool.h>
#include <stdint.h>

#include "endpoint.h"

int link_get_ifindex(const char *ifname);
/* -EOPNOTSUPP when the kernel has no wireguard link type, -EEXIST when the name is taken. */
int link_create_wireguard(const char *ifname);
int link_delete(int ifindex);
int link_set_up(int ifindex, uint32_t mtu);

/* Adds (or keeps, when present) addr/prefixlen on the link. IPv6 addresses
 * get IFA_F_NODAD so that they are bindable at once, never tentative. */
int link_address_add(int ifindex, int family, const union in_addr_union *addr, uint8_t prefixlen);
/* Removes every address of that family on the link that is not `keep`. */
int link_address_flush_except(int ifindex, int family, const union in_addr_union *keep, uint8_t prefixlen);

/* Local, non-loopback, non-link-local addresses of all links except `exclude_ifindex`,
 * as candidate endpoints ("ip:port"); a NULL-terminated strv. */
int link_list_endpoint_candidates(int exclude_ifindex, uint16_t port, char ***ret);

/* What the underlay uses, for a mesh range to stay clear of: every address
 * (as a host prefix) and its connected prefix, every link-scope route of the
 * main table and the gateway of every default route (as a host prefix), of
 * all links except `exclude_ifindex` (the mesh interface) and loopback. */
int link_list_underlay_prefixes(int exclude_ifindex, InAddrPrefix **ret, size_t *ret_n);

/* A route PREFIX dev IFINDEX (scope link, main table) added (replacing one
 * to the same prefix) or deleted: a subnet route through the mesh. Deleting
 * one that is gone is no error. */
int link_route_mesh_prefix(int ifindex, const InAddrPrefix *p, bool add);
