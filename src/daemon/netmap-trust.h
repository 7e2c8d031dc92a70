/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a node believes of its control server (docs/security.md): a netmap
 * is applied only when its domain and ranges are sane (not a public suffix,
 * private address space, clear of the underlay) and the same as pinned at
 * join, and every address it installs lies inside the pinned ranges. The
 * control server being compromised must not turn the node into a router
 * for the Internet or a resolver of foreign names. All checks return 0 or
 * -EBADMSG with one line in *ret_error. */

#include <stddef.h>

#include "endpoint.h"
#include "netmap.h"
#include "state.h"

/* Not a single label, not a public suffix (libpsl; the implicit "*" rule
 * does not count, so that "mesh.internal" is fine). */
int mesh_domain_check(const char *domain, char **ret_error);

/* Domain as above; ipv4_range inside 100.64.0.0/10, 10/8, 172.16/12 or
 * 192.168/16, at most /30; ipv6_range inside fc00::/7, /16 to /120; neither
 * overlapping one of avoid[] (the underlay, the control server's address);
 * every announced endpoint endpoint_is_announceable(); the "filter"'s
 * sources inside the mesh ranges and its destinations inside them only the
 * node's own addresses. */
int netmap_check_bounds(const Netmap *nm, const InAddrPrefix *avoid, size_t n_avoid, char **ret_error);

/* Whether c carries pins (a node.json from before them does not). */
bool credentials_have_pins(const Credentials *c);
/* Domain and ranges equal to the pins in c, and every address of self,
 * peers, hub and devices inside the pinned ranges. */
int netmap_check_pins(const Netmap *nm, const Credentials *c, char **ret_error);
/* Sets c's domain and range pins from nm (the CA pin stays). */
int credentials_pin_netmap(Credentials *c, const Netmap *nm);
