/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Subnet routes (docs/protocol.md, "Routes"): the prefixes a node
 * advertises (body of POST /v1/routes) and a peer's approved "routes" in
 * the netmap. One rule for all of them: a valid prefix with no host bits
 * set, never overlapping the mesh ranges nor loopback, link-local or
 * multicast space; 0.0.0.0/0 and ::/0 (an exit node) are the exception to
 * the overlap rule. At most ROUTES_MSG_MAX per node. */

#include <stdbool.h>
#include <stddef.h>

#include "endpoint.h"

struct cJSON;

#define ROUTES_MSG_MAX 64
/* "ffff:…:ffff/128" */
#define ROUTE_PREFIX_STRLEN (INET6_ADDRSTRLEN + 4)

/* "192.168.50.0/24" or "fd00:1::/64": -EINVAL when no prefix, -EDOM when
 * host bits are set ("192.168.50.1/24"). */
int route_prefix_parse(const char *s, InAddrPrefix *ret);
const char *route_prefix_format(const InAddrPrefix *p, char *buf, size_t len);
/* p with its host bits cleared: 192.168.1.7/24 → 192.168.1.0/24 */
InAddrPrefix route_prefix_network(const InAddrPrefix *p);
bool route_prefix_is_default(const InAddrPrefix *p);
bool route_prefix_equal(const InAddrPrefix *a, const InAddrPrefix *b);
/* Whether inner lies entirely inside outer (same family). */
bool route_prefix_contains(const InAddrPrefix *outer, const InAddrPrefix *inner);
bool route_prefix_overlaps(const InAddrPrefix *a, const InAddrPrefix *b);
/* NULL when p may be a route, else why not, in a few words; mesh (may be
 * NULL) are the mesh's ranges. */
const char *route_prefix_unroutable_reason(const InAddrPrefix *p, const InAddrPrefix *mesh, size_t n_mesh);

/* A JSON array of prefixes (at most ROUTES_MSG_MAX, each routable, none
 * twice) into *ret; error names the entry at fault as what[i]. -EINVAL or
 * -ENOMEM. */
int routes_json_parse(const struct cJSON *a, const char *what, const InAddrPrefix *mesh, size_t n_mesh,
                      InAddrPrefix **ret, size_t *ret_n, char *error, size_t error_size);
/* Adds key: [...] to o. */
int routes_json_add(struct cJSON *o, const char *key, const InAddrPrefix *l, size_t n);

/* The body of POST /v1/routes: {"routes":[...]}, the complete advertised set. */
int routes_request_render(const InAddrPrefix *l, size_t n, char **ret);
int routes_request_parse(const struct cJSON *body, const InAddrPrefix *mesh, size_t n_mesh, InAddrPrefix **ret,
                         size_t *ret_n, char *error, size_t error_size);
