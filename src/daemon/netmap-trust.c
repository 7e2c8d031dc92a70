/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpsl.h>

static char ascii_tolower(char c) {
        return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

#include "error-message.h"
#include "msg-routes.h"
#include "netmap-trust.h"
#include "strv.h"

#define fail(ret_error, ...) error_setf(ret_error, -EBADMSG, __VA_ARGS__)

static void psl_freep(psl_ctx_t **p) {
        /* psl_free() leaves the built-in list alone */
        if (*p)
                psl_free(*p);
}

int mesh_domain_check(const char *domain, char **ret_error) {
        _cleanup_(psl_freep) psl_ctx_t *psl = NULL;
        _cleanup_free_ char *lower = NULL;
        const psl_ctx_t *list;

        if (!domain || !strchr(domain, '.'))
                return fail(ret_error, "domain '%s' is a single label", strna(domain));
        /* the list is lowercase, and libpsl does not fold */
        lower = strdup(domain);
        if (!lower)
                return -ENOMEM;
        for (char *p = lower; *p; p++)
                *p = ascii_tolower(*p);

        /* The list the publicsuffix package keeps current, else the one
         * libpsl was built with: without any, no domain is safe to accept. */
        psl = psl_latest(NULL);
        list = psl ?: psl_builtin();
        if (!list)
                return fail(ret_error, "domain '%s' cannot be checked: no public suffix list", domain);
        /* NO_STAR_RULE: by the implicit "*" rule every unknown TLD
         * ("internal", "test") would be a public suffix, and mesh.internal
         * a registrable domain, not a suffix; only listed suffixes count. */
        if (psl_is_public_suffix2(list, lower, PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE))
                return fail(ret_error, "domain '%s' is a public suffix", domain);
        return 0;
}

typedef struct PrivateBlock {
        const char *text;
        uint8_t bytes[4];
        uint8_t prefixlen;
} PrivateBlock;

static const PrivateBlock private_ipv4[] = {
        { "100.64.0.0/10", { 100, 64, 0, 0 }, 10 },
        { "10.0.0.0/8", { 10, 0, 0, 0 }, 8 },
        { "172.16.0.0/12", { 172, 16, 0, 0 }, 12 },
        { "192.168.0.0/16", { 192, 168, 0, 0 }, 16 },
};

static bool ipv4_range_is_private(const union in_addr_union *a, uint8_t prefixlen) {
        for (size_t i = 0; i < ELEMENTSOF(private_ipv4); i++) {
                union in_addr_union b = {};

                memcpy(b.bytes, private_ipv4[i].bytes, 4);
                if (prefixlen >= private_ipv4[i].prefixlen &&
                    in_addr_prefix_contains(AF_INET, &b, private_ipv4[i].prefixlen, a))
                        return true;
        }
        return false;
}

static const char *range_format(int family, const union in_addr_union *a, uint8_t prefixlen, char *buf,
                                size_t len) {
        char t[INET6_ADDRSTRLEN];

        snprintf(buf, len, "%s/%u", in_addr_format(family, a, t, sizeof(t)) ?: "?", prefixlen);
        return buf;
}

static int check_ranges(const Netmap *nm, const InAddrPrefix *avoid, size_t n_avoid, char **ret_error) {
        static const union in_addr_union ula = { .bytes = { 0xfc } };
        char r4[INET6_ADDRSTRLEN + 4], r6[INET6_ADDRSTRLEN + 4], t[INET6_ADDRSTRLEN + 4];

        range_format(AF_INET, &nm->ipv4_range, nm->ipv4_prefixlen, r4, sizeof(r4));
        if (!ipv4_range_is_private(&nm->ipv4_range, nm->ipv4_prefixlen))
                return fail(
                        ret_error,
                        "ipv4_range %s is not inside 100.64.0.0/10, 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
                        r4);
        if (nm->ipv4_prefixlen > 30)
                return fail(ret_error, "ipv4_range %s is too small for a mesh", r4);
        if (nm->has_ipv6_range) {
                range_format(AF_INET6, &nm->ipv6_range, nm->ipv6_prefixlen, r6, sizeof(r6));
                if (nm->ipv6_prefixlen < 16 || nm->ipv6_prefixlen > 120 ||
                    !in_addr_prefix_contains(AF_INET6, &ula, 7, &nm->ipv6_range))
                        return fail(ret_error, "ipv6_range %s is not a /16 to /120 inside fc00::/7", r6);
        }

        for (size_t i = 0; i < n_avoid; i++) {
                const InAddrPrefix *p = &avoid[i];
                bool v4 = p->family == AF_INET;

                if (!v4 && (p->family != AF_INET6 || !nm->has_ipv6_range))
                        continue;
                if (in_addr_prefix_overlaps(p->family, v4 ? &nm->ipv4_range : &nm->ipv6_range,
                                            v4 ? nm->ipv4_prefixlen : nm->ipv6_prefixlen, &p->address,
                                            p->prefixlen))
                        return fail(ret_error, "%s %s overlaps %s, which this host uses outside the mesh",
                                    v4 ? "ipv4_range" : "ipv6_range", v4 ? r4 : r6,
                                    range_format(p->family, &p->address, p->prefixlen, t, sizeof(t)));
        }
        return 0;
}

static int check_endpoints(const InAddrPrefix *mesh, size_t n_mesh, const NetmapNode *n, const char *what,
                           char **ret_error) {
        for (char **e = n->endpoints; e && *e; e++) {
                union sockaddr_union sa;

                const char *why;

                if (endpoint_parse(*e, &sa) < 0)
                        return fail(ret_error, "%s endpoint %s is not ip:port", what, *e);
                why = endpoint_unannounceable_reason(&sa, mesh, n_mesh);
                if (why)
                        return fail(ret_error, "%s endpoint %s is not an address to send to: %s", what, *e,
                                    why);
        }
        return 0;
}

static bool prefix_inside(const InAddrPrefix *p, const InAddrPrefix *range) {
        return p->family == range->family && p->prefixlen >= range->prefixlen &&
               in_addr_prefix_contains(p->family, &range->address, range->prefixlen, &p->address);
}

static bool prefix_is_own(const Netmap *nm, const InAddrPrefix *p) {
        if (p->family == AF_INET)
                return p->prefixlen == 32 &&
                       memcmp(&p->address.in, &nm->self.ipv4.in, sizeof(struct in_addr)) == 0;
        return nm->self.has_ipv6 && p->prefixlen == 128 &&
               memcmp(&p->address.in6, &nm->self.ipv6.in6, sizeof(struct in6_addr)) == 0;
}

/* The "filter" (netmap-filter.h): sources are members, so inside the mesh
 * ranges; a destination inside them is one of the node's own addresses (a
 * server that names another member there would make this node accept
 * traffic meant for nobody here); anything else is a routed prefix, which
 * the firewall only forwards to where the node routes anyway. */
static int check_filter(const Netmap *nm, const InAddrPrefix *mesh, size_t n_mesh, char **ret_error) {
        char buf[INET6_ADDRSTRLEN];

        for (size_t i = 0; nm->filter && i < nm->filter->n_entries; i++) {
                const NetmapFilterEntry *e = &nm->filter->entries[i];

                for (size_t j = 0; j < e->n_src; j++) {
                        bool inside = false;
                        for (size_t k = 0; k < n_mesh && !inside; k++)
                                inside = prefix_inside(&e->src[j], &mesh[k]);
                        if (!inside)
                                return fail(ret_error, "filter[%zu].src[%zu]: %s/%u is outside the mesh ranges",
                                            i, j,
                                            in_addr_format(e->src[j].family, &e->src[j].address, buf,
                                                           sizeof(buf)),
                                            e->src[j].prefixlen);
                }
                for (size_t j = 0; j < e->n_dst; j++) {
                        bool inside = false;
                        for (size_t k = 0; k < n_mesh && !inside; k++)
                                inside = prefix_inside(&e->dst[j], &mesh[k]);
                        if (inside && !prefix_is_own(nm, &e->dst[j]))
                                return fail(ret_error,
                                            "filter[%zu].dst[%zu]: %s/%u is in the mesh but not this node's", i,
                                            j,
                                            in_addr_format(e->dst[j].family, &e->dst[j].address, buf,
                                                           sizeof(buf)),
                                            e->dst[j].prefixlen);
                }
        }
        return 0;
}

int netmap_check_bounds(const Netmap *nm, const InAddrPrefix *avoid, size_t n_avoid, char **ret_error) {
        int r;

        r = mesh_domain_check(nm->domain, ret_error);
        if (r < 0)
                return r;
        r = check_ranges(nm, avoid, n_avoid, ret_error);
        if (r < 0)
                return r;
        InAddrPrefix mesh[2] = {
                { .family = AF_INET, .address = nm->ipv4_range, .prefixlen = nm->ipv4_prefixlen },
                { .family = AF_INET6, .address = nm->ipv6_range, .prefixlen = nm->ipv6_prefixlen },
        };
        size_t n_mesh = nm->has_ipv6_range ? 2 : 1;

        r = check_endpoints(mesh, n_mesh, &nm->self, "self", ret_error);
        if (r >= 0 && nm->has_hub)
                r = check_endpoints(mesh, n_mesh, &nm->hub, "hub", ret_error);
        for (size_t i = 0; r >= 0 && i < nm->n_peers; i++)
                r = check_endpoints(mesh, n_mesh, &nm->peers[i], nm->peers[i].name, ret_error);
        if (r >= 0)
                r = check_filter(nm, mesh, n_mesh, ret_error);
        return r;
}

bool credentials_have_pins(const Credentials *c) {
        return c->domain && c->ipv4_range;
}

static bool range_equal(int family, const char *pin, const union in_addr_union *a, uint8_t prefixlen) {
        union in_addr_union p;
        uint8_t plen;
        int f;

        return in_addr_prefix_parse(pin, &f, &p, &plen) >= 0 && f == family && plen == prefixlen &&
               in_addr_prefix_contains(family, &p, plen, a);
}

static bool node_inside(const NetmapNode *n, int f6, const union in_addr_union *p4, uint8_t l4,
                        const union in_addr_union *p6, uint8_t l6) {
        return in_addr_prefix_contains(AF_INET, p4, l4, &n->ipv4) &&
               (!n->has_ipv6 || (f6 == AF_INET6 && in_addr_prefix_contains(AF_INET6, p6, l6, &n->ipv6)));
}

/* netmap_parse() checked the routes against the netmap's own ranges; a
 * route into the pinned ones would pull members' traffic to one peer. */
static int check_routes_pinned(const NetmapNode *n, const char *what, const InAddrPrefix *pinned,
                               size_t n_pinned, char **ret_error) {
        char t[ROUTE_PREFIX_STRLEN];

        for (char **i = n->routes; i && *i; i++) {
                InAddrPrefix p;

                if (route_prefix_parse(*i, &p) < 0 || route_prefix_unroutable_reason(&p, pinned, n_pinned))
                        return fail(ret_error, "%s: route %s overlaps the pinned ranges", what,
                                    strna(route_prefix_format(&p, t, sizeof(t))));
        }
        return 0;
}

int netmap_check_pins(const Netmap *nm, const Credentials *c, char **ret_error) {
        char t[INET6_ADDRSTRLEN + 4];
        union in_addr_union p4, p6 = {};
        uint8_t l4, l6 = 0;
        int f4, f6 = AF_UNSPEC;

        if (!credentials_have_pins(c))
                return fail(ret_error, "nothing pinned yet");
        if (strcasecmp(nm->domain, c->domain) != 0)
                return fail(ret_error, "domain '%s' differs from '%s' pinned at join", nm->domain, c->domain);
        if (!range_equal(AF_INET, c->ipv4_range, &nm->ipv4_range, nm->ipv4_prefixlen))
                return fail(ret_error, "ipv4_range %s differs from %s pinned at join",
                            range_format(AF_INET, &nm->ipv4_range, nm->ipv4_prefixlen, t, sizeof(t)),
                            c->ipv4_range);
        if (nm->has_ipv6_range != !!c->ipv6_range ||
            (c->ipv6_range && !range_equal(AF_INET6, c->ipv6_range, &nm->ipv6_range, nm->ipv6_prefixlen)))
                return fail(ret_error, "ipv6_range %s differs from %s pinned at join",
                            nm->has_ipv6_range
                                    ? range_format(AF_INET6, &nm->ipv6_range, nm->ipv6_prefixlen, t, sizeof(t))
                                    : "(none)",
                            c->ipv6_range ?: "(none)");

        /* netmap_parse() checked the addresses against the netmap's own
         * ranges; these are the ones that count. */
        if (in_addr_prefix_parse(c->ipv4_range, &f4, &p4, &l4) < 0 || f4 != AF_INET ||
            (c->ipv6_range && in_addr_prefix_parse(c->ipv6_range, &f6, &p6, &l6) < 0))
                return fail(ret_error, "pinned ranges are damaged");
        if (!node_inside(&nm->self, f6, &p4, l4, &p6, l6))
                return fail(ret_error, "self: address outside the pinned ranges");
        if (nm->has_hub && !node_inside(&nm->hub, f6, &p4, l4, &p6, l6))
                return fail(ret_error, "hub: address outside the pinned ranges");
        for (size_t i = 0; i < nm->n_peers; i++)
                if (!node_inside(&nm->peers[i], f6, &p4, l4, &p6, l6))
                        return fail(ret_error, "peer %s: address outside the pinned ranges", nm->peers[i].name);
        InAddrPrefix pinned[2] = {
                { .family = AF_INET, .address = p4, .prefixlen = l4 },
                { .family = f6, .address = p6, .prefixlen = l6 },
        };
        size_t n_pinned = f6 == AF_INET6 ? 2 : 1;
        int r = check_routes_pinned(&nm->self, "self", pinned, n_pinned, ret_error);
        for (size_t i = 0; r >= 0 && i < nm->n_peers; i++)
                r = check_routes_pinned(&nm->peers[i], nm->peers[i].name, pinned, n_pinned, ret_error);
        if (r < 0)
                return r;
        /* A device's addresses join the hub entry's AllowedIPs: outside the
         * mesh they would route foreign traffic into the tunnel. */
        for (size_t i = 0; i < nm->n_devices; i++)
                if (!node_inside(&nm->devices[i], f6, &p4, l4, &p6, l6))
                        return fail(ret_error, "device %s: address outside the pinned ranges",
                                    nm->devices[i].name);
        return 0;
}

int credentials_pin_netmap(Credentials *c, const Netmap *nm) {
        char r4[INET6_ADDRSTRLEN + 4], r6[INET6_ADDRSTRLEN + 4];
        _cleanup_free_ char *domain = strdup(nm->domain), *v4 = NULL, *v6 = NULL;

        v4 = strdup(range_format(AF_INET, &nm->ipv4_range, nm->ipv4_prefixlen, r4, sizeof(r4)));
        if (nm->has_ipv6_range)
                v6 = strdup(range_format(AF_INET6, &nm->ipv6_range, nm->ipv6_prefixlen, r6, sizeof(r6)));
        if (!domain || !v4 || (nm->has_ipv6_range && !v6))
                return -ENOMEM;
        free(c->domain);
        free(c->ipv4_range);
        free(c->ipv6_range);
        c->domain = TAKE_PTR(domain);
        c->ipv4_range = TAKE_PTR(v4);
        c->ipv6_range = TAKE_PTR(v6);
        return 0;
}
