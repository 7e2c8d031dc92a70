/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
#include <string.h>

#include "endpoint.h"
#include "link.h"
#include "log.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cache *, nl_cache_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_addr *, nl_addr_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_link *, rtnl_link_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_addr *, rtnl_addr_put);

#define LINK_MTU_MIN 1280U     /* IPv6 needs it */
#define LINK_MTU_DEFAULT 1420U /* 1500 minus WireGuard's IPv6 overhead, like wg-quick */

/* libnl folds kernel errors into its own NLE_* codes, which lose the
 * difference between e.g. EEXIST and EBUSY. Catch the raw errno from the
 * NLMSG_ERROR message instead, so callers see exactly what the kernel said. */
static int rtnl_error_cb(struct sockaddr_nl *nla, struct nlmsgerr *e, void *userdata) {
        int *error = userdata;

        *error = e->error < 0 ? e->error : -e->error;
        return NL_STOP;
}

static int rtnl_result(int nlerr, int kernel_error) {
        if (nlerr >= 0)
                return 0;
        if (kernel_error < 0)
                return kernel_error;
        switch (-nlerr) {
        case NLE_NOMEM:
                return -ENOMEM;
        case NLE_PERM:
                return -EPERM;
        case NLE_NODEV:
        case NLE_OBJ_NOTFOUND:
                return -ENODEV;
        case NLE_EXIST:
                return -EEXIST;
        case NLE_OPNOTSUPP:
                return -EOPNOTSUPP;
        case NLE_INVAL:
                return -EINVAL;
        default:
                return -EIO;
        }
}

static int rtnl_open(struct nl_sock **ret, int *kernel_error) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        int r;

        sk = nl_socket_alloc();
        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0)
                return log_debug_errno(rtnl_result(r, 0), "Failed to connect to rtnetlink: %s", nl_geterror(r));
        *kernel_error = 0;
        r = nl_socket_modify_err_cb(sk, NL_CB_CUSTOM, rtnl_error_cb, kernel_error);
        if (r < 0)
                return rtnl_result(r, 0);
        *ret = TAKE_PTR(sk);
        return 0;
}

int link_get_ifindex(const char *ifname) {
        unsigned idx;

        if (!ifname || strlen(ifname) == 0 || strlen(ifname) >= IF_NAMESIZE)
                return -EINVAL;
        idx = if_nametoindex(ifname);
        if (idx == 0)
                return errno == ENXIO || errno == 0 ? -ENODEV : -errno;
        if (idx > INT32_MAX)
                return -ERANGE;
        return (int) idx;
}

int link_create_wireguard(const char *ifname) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
        int kernel_error, r;

        if (!ifname || strlen(ifname) == 0 || strlen(ifname) >= IF_NAMESIZE)
                return -EINVAL;

        r = rtnl_open(&sk, &kernel_error);
        if (r < 0)
                return r;

        link = rtnl_link_alloc();
        if (!link)
                return -ENOMEM;
        rtnl_link_set_name(link, ifname);
        r = rtnl_link_set_type(link, "wireguard");
        if (r < 0)
                return rtnl_result(r, 0);

        /* NLM_F_EXCL: an existing link of that name is not ours to take over
         * here; the caller decides whether to adopt it. Without the module the
         * kernel answers EOPNOTSUPP ("unknown device type"). */
        r = rtnl_result(rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL), kernel_error);
        if (r < 0)
                return log_debug_errno(r, "Failed to create wireguard link %s: %m", ifname);
        return 0;
}

int link_delete(int ifindex) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
        int kernel_error, r;

        if (ifindex <= 0)
                return -EINVAL;
        r = rtnl_open(&sk, &kernel_error);
        if (r < 0)
                return r;

        link = rtnl_link_alloc();
        if (!link)
                return -ENOMEM;
        rtnl_link_set_ifindex(link, ifindex);

        r = rtnl_result(rtnl_link_delete(sk, link), kernel_error);
        if (r < 0)
                return log_debug_errno(r, "Failed to delete link %i: %m", ifindex);
        return 0;
}

int link_set_up(int ifindex, uint32_t mtu) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(rtnl_link_putp) struct rtnl_link *orig = NULL, *change = NULL;
        int kernel_error, r;

        if (ifindex <= 0)
                return -EINVAL;
        if (mtu == 0)
                mtu = LINK_MTU_DEFAULT;
        if (mtu < LINK_MTU_MIN)
                return log_debug_errno(-EINVAL, "MTU %" PRIu32 " is below the IPv6 minimum of %u.", mtu,
                                       LINK_MTU_MIN);

        r = rtnl_open(&sk, &kernel_error);
        if (r < 0)
                return r;

        orig = rtnl_link_alloc();
        change = rtnl_link_alloc();
        if (!orig || !change)
                return -ENOMEM;
        rtnl_link_set_ifindex(orig, ifindex);
        rtnl_link_set_mtu(change, mtu);
        rtnl_link_set_flags(change, IFF_UP);

        r = rtnl_result(rtnl_link_change(sk, orig, change, 0), kernel_error);
        if (r < 0)
                return log_debug_errno(r, "Failed to set link %i up with MTU %" PRIu32 ": %m", ifindex, mtu);
        return 0;
}

static size_t family_addr_len(int family) {
        return family == AF_INET ? sizeof(struct in_addr) : family == AF_INET6 ? sizeof(struct in6_addr) : 0;
}

int link_address_add(int ifindex, int family, const union in_addr_union *addr, uint8_t prefixlen) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(rtnl_addr_putp) struct rtnl_addr *a = NULL;
        _cleanup_(nl_addr_putp) struct nl_addr *local = NULL;
        char buf[INET6_ADDRSTRLEN];
        int kernel_error, r;

        if (ifindex <= 0 || !addr || family_addr_len(family) == 0 || prefixlen > (family == AF_INET ? 32 : 128))
                return -EINVAL;

        r = rtnl_open(&sk, &kernel_error);
        if (r < 0)
                return r;

        local = nl_addr_build(family, addr, family_addr_len(family));
        a = rtnl_addr_alloc();
        if (!local || !a)
                return -ENOMEM;
        nl_addr_set_prefixlen(local, prefixlen);
        rtnl_addr_set_ifindex(a, ifindex);
        rtnl_addr_set_family(a, family);
        r = rtnl_addr_set_local(a, local);
        if (r < 0)
                return rtnl_result(r, 0);
        rtnl_addr_set_prefixlen(a, prefixlen);
        /* No duplicate address detection on the tunnel: addresses are
         * assigned by the control server and must be bindable at once. */
        if (family == AF_INET6)
                rtnl_addr_set_flags(a, IFA_F_NODAD);

        r = rtnl_result(rtnl_addr_add(sk, a, 0), kernel_error);
        if (r == -EEXIST)
                return 0;
        if (r < 0)
                return log_debug_errno(r, "Failed to add address %s/%u to link %i: %m",
                                       strna(in_addr_format(family, addr, buf, sizeof(buf))), prefixlen,
                                       ifindex);
        return 0;
}

static bool nl_addr_is(struct nl_addr *a, int family, const union in_addr_union *addr) {
        return a && nl_addr_get_family(a) == family && nl_addr_get_len(a) == family_addr_len(family) &&
               memcmp(nl_addr_get_binary_addr(a), addr, family_addr_len(family)) == 0;
}

static bool in6_is_link_local(const void *p) {
        const uint8_t *b = p;
        return b[0] == 0xfe && (b[1] & 0xc0) == 0x80;
}

int link_address_flush_except(int ifindex, int family, const union in_addr_union *keep, uint8_t prefixlen) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
        int kernel_error, r, ret = 0;

        if (ifindex <= 0 || family_addr_len(family) == 0)
                return -EINVAL;

        r = rtnl_open(&sk, &kernel_error);
        if (r < 0)
                return r;
        r = rtnl_addr_alloc_cache(sk, &cache);
        if (r < 0)
                return log_debug_errno(rtnl_result(r, kernel_error), "Failed to list addresses: %m");

        for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
                struct rtnl_addr *a = (struct rtnl_addr *) o;
                struct nl_addr *local = rtnl_addr_get_local(a);

                if (rtnl_addr_get_ifindex(a) != ifindex || rtnl_addr_get_family(a) != family || !local)
                        continue;
                if (keep && nl_addr_is(local, family, keep) && rtnl_addr_get_prefixlen(a) == prefixlen)
                        continue;
                /* The kernel's own fe80:: address is not ours to manage. */
                if (family == AF_INET6 && nl_addr_get_len(local) == 16 &&
                    in6_is_link_local(nl_addr_get_binary_addr(local)))
                        continue;

                kernel_error = 0;
                r = rtnl_result(rtnl_addr_delete(sk, a, 0), kernel_error);
                if (r == -EADDRNOTAVAIL || r == -ENODEV)
                        continue; /* gone meanwhile */
                if (r < 0) {
                        log_debug_errno(r, "Failed to remove address from link %i: %m", ifindex);
                        if (ret == 0)
                                ret = r;
                }
        }
        return ret;
}

/* Addresses a peer elsewhere could reach us on; anything scoped to this host
 * or link, or inside the mesh's own CGNAT range, would only mislead it. */
/* The checks every announced endpoint passes (endpoint_is_announceable()),
 * and 100.64.0.0/10, the default mesh range, before the node knows its
 * mesh's own ranges (manager.c drops those later). */
static bool address_is_candidate(int family, const uint8_t *b) {
        static const InAddrPrefix default_mesh = { .family = AF_INET,
                                                   .address.bytes = { 100, 64 },
                                                   .prefixlen = 10 };
        union sockaddr_union sa = {};

        if (family == AF_INET) {
                sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons(1);
                memcpy(&sa.in.sin_addr, b, 4);
        } else if (family == AF_INET6) {
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons(1);
                memcpy(&sa.in6.sin6_addr, b, 16);
        } else
                return false;
        return endpoint_is_announceable(&sa, &default_mesh, 1);
}

/* The endpoint "ADDRESS:port" that address a offers, in buf; false when
 * it offers none: on the excluded interface (our own tunnel), not global,
 * not settled (tentative, DAD failed, deprecated), not announceable, or
 * on a loopback or down link. */
static bool address_candidate_endpoint(struct nl_cache *links, struct rtnl_addr *a, int exclude_ifindex,
                                       uint16_t port, char *buf, size_t size) {
        _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
        struct nl_addr *local = rtnl_addr_get_local(a);
        union sockaddr_union sa = {};
        int family = rtnl_addr_get_family(a), ifindex = rtnl_addr_get_ifindex(a);
        unsigned flags;

        if (ifindex == exclude_ifindex || !local || nl_addr_get_len(local) != family_addr_len(family) ||
            family_addr_len(family) == 0)
                return false;
        if (rtnl_addr_get_scope(a) != RT_SCOPE_UNIVERSE)
                return false;
        if (rtnl_addr_get_flags(a) & (IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_DEPRECATED))
                return false;
        if (!address_is_candidate(family, nl_addr_get_binary_addr(local)))
                return false;

        link = rtnl_link_get(links, ifindex);
        if (!link)
                return false;
        flags = rtnl_link_get_flags(link);
        if ((flags & IFF_LOOPBACK) || !(flags & IFF_UP))
                return false;

        if (family == AF_INET) {
                sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons(port);
                memcpy(&sa.in.sin_addr, nl_addr_get_binary_addr(local), 4);
        } else {
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons(port);
                memcpy(&sa.in6.sin6_addr, nl_addr_get_binary_addr(local), 16);
        }
        return endpoint_format(&sa, buf, size);
}

int link_list_endpoint_candidates(int exclude_ifindex, uint16_t port, char ***ret) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(nl_cache_freep) struct nl_cache *links = NULL, *addrs = NULL;
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        int kernel_error, r;

        if (!ret || port == 0)
                return -EINVAL;

        r = rtnl_open(&sk, &kernel_error);
        if (r < 0)
                return r;
        r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links);
        if (r < 0)
                return log_debug_errno(rtnl_result(r, kernel_error), "Failed to list links: %m");
        r = rtnl_addr_alloc_cache(sk, &addrs);
        if (r < 0)
                return log_debug_errno(rtnl_result(r, kernel_error), "Failed to list addresses: %m");

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
                char buf[ENDPOINT_STRLEN];
                bool dup = false;
                char **nl;

                if (!address_candidate_endpoint(links, (struct rtnl_addr *) o, exclude_ifindex, port, buf,
                                                sizeof(buf)))
                        continue;

                for (size_t i = 0; i < n; i++)
                        if (streq(l[i], buf))
                                dup = true;
                if (dup)
                        continue;

                nl = reallocarray(l, n + 2, sizeof(char *));
                if (!nl)
                        return -ENOMEM;
                l = nl;
                l[n] = strdup(buf);
                if (!l[n])
                        return -ENOMEM;
                l[++n] = NULL;
        }

        *ret = TAKE_PTR(l);
        return (int) MIN(n, (size_t) INT32_MAX);
}

static int prefixes_add(InAddrPrefix **l, size_t *n, int family, const void *bytes, unsigned prefixlen) {
        InAddrPrefix *nl;
        size_t len = family_addr_len(family);

        if (len == 0 || prefixlen > len * 8)
                return 0;
        nl = reallocarray(*l, *n + 1, sizeof(InAddrPrefix));
        if (!nl)
                return -ENOMEM;
        *l = nl;
        nl[*n] = (InAddrPrefix) { .family = family, .prefixlen = (uint8_t) prefixlen };
        memcpy(nl[*n].address.bytes, bytes, len);
        (*n)++;
        return 0;
}

static int prefixes_add_nl(InAddrPrefix **l, size_t *n, const struct nl_addr *a, bool host) {
        int family;

        if (!a)
                return 0;
        family = nl_addr_get_family(a);
        if (nl_addr_get_len(a) != family_addr_len(family) || family_addr_len(family) == 0)
                return 0;
        return prefixes_add(l, n, family, nl_addr_get_binary_addr(a),
                            host ? (unsigned) family_addr_len(family) * 8 : nl_addr_get_prefixlen(a));
}

static int underlay_addresses(struct nl_sock *sk, int *kernel_error, int exclude_ifindex, InAddrPrefix **l,
                              size_t *n) {
        _cleanup_(nl_cache_freep) struct nl_cache *addrs = NULL;
        int r;

        r = rtnl_addr_alloc_cache(sk, &addrs);
        if (r < 0)
                return log_debug_errno(rtnl_result(r, *kernel_error), "Failed to list addresses: %m");
        for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
                struct rtnl_addr *a = (struct rtnl_addr *) o;
                struct nl_addr *local = rtnl_addr_get_local(a);

                if (rtnl_addr_get_ifindex(a) == exclude_ifindex || rtnl_addr_get_scope(a) == RT_SCOPE_HOST ||
                    !local)
                        continue;
                r = prefixes_add_nl(l, n, local, true);
                if (r >= 0)
                        r = prefixes_add(l, n, nl_addr_get_family(local), nl_addr_get_binary_addr(local),
                                         rtnl_addr_get_prefixlen(a));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int underlay_routes(struct nl_sock *sk, int *kernel_error, int exclude_ifindex, InAddrPrefix **l,
                           size_t *n) {
        _cleanup_(nl_cache_freep) struct nl_cache *routes = NULL;
        int r;

        r = rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &routes);
        if (r < 0)
                return log_debug_errno(rtnl_result(r, *kernel_error), "Failed to list routes: %m");
        for (struct nl_object *o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
                struct rtnl_route *rt = (struct rtnl_route *) o;
                struct nl_addr *dst = rtnl_route_get_dst(rt);
                bool is_default = !dst || nl_addr_get_prefixlen(dst) == 0;
                bool ours = false;

                if (rtnl_route_get_table(rt) != RT_TABLE_MAIN || rtnl_route_get_type(rt) != RTN_UNICAST)
                        continue;
                for (int i = 0; i < rtnl_route_get_nnexthops(rt); i++)
                        ours |= rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(rt, i)) == exclude_ifindex;
                if (ours)
                        continue;
                if (is_default) {
                        /* the default route covers everything; what must stay
                         * reachable outside the tunnel is its gateway */
                        for (int i = 0; i < rtnl_route_get_nnexthops(rt); i++) {
                                r = prefixes_add_nl(l, n,
                                                    rtnl_route_nh_get_gateway(rtnl_route_nexthop_n(rt, i)),
                                                    true);
                                if (r < 0)
                                        return r;
                        }
                        continue;
                }
                if (rtnl_route_get_scope(rt) != RT_SCOPE_LINK)
                        continue;
                r = prefixes_add_nl(l, n, dst, false);
                if (r < 0)
                        return r;
        }
        return 0;
}

int link_list_underlay_prefixes(int exclude_ifindex, InAddrPrefix **ret, size_t *ret_n) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_free_ InAddrPrefix *l = NULL;
        size_t n = 0;
        int kernel_error, r;

        if (!ret || !ret_n)
                return -EINVAL;
        r = rtnl_open(&sk, &kernel_error);
        if (r < 0)
                return r;
        r = underlay_addresses(sk, &kernel_error, exclude_ifindex, &l, &n);
        if (r >= 0)
                r = underlay_routes(sk, &kernel_error, exclude_ifindex, &l, &n);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        *ret_n = n;
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_route *, rtnl_route_put);

int link_route_mesh_prefix(int ifindex, const InAddrPrefix *p, bool add) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(rtnl_route_putp) struct rtnl_route *route = NULL;
        _cleanup_(nl_addr_putp) struct nl_addr *dst = NULL;
        struct rtnl_nexthop *nh;
        int kernel_error, r;

        if (ifindex <= 0 || !p || family_addr_len(p->family) == 0)
                return -EINVAL;
        r = rtnl_open(&sk, &kernel_error);
        if (r < 0)
                return r;
        dst = nl_addr_build(p->family, &p->address, family_addr_len(p->family));
        route = rtnl_route_alloc();
        nh = rtnl_route_nh_alloc();
        if (!dst || !route || !nh) {
                rtnl_route_nh_free(nh);
                return -ENOMEM;
        }
        nl_addr_set_prefixlen(dst, p->prefixlen);
        rtnl_route_set_family(route, (uint8_t) p->family);
        r = rtnl_route_set_dst(route, dst);
        if (r < 0) {
                rtnl_route_nh_free(nh);
                return rtnl_result(r, 0);
        }
        rtnl_route_set_table(route, RT_TABLE_MAIN);
        rtnl_route_set_scope(route, RT_SCOPE_LINK);
        rtnl_route_set_protocol(route, RTPROT_STATIC);
        rtnl_route_set_type(route, RTN_UNICAST);
        rtnl_route_nh_set_ifindex(nh, ifindex);
        rtnl_route_add_nexthop(route, nh); /* the route owns it now */

        if (add)
                r = rtnl_result(rtnl_route_add(sk, route, NLM_F_REPLACE), kernel_error);
        else {
                r = rtnl_result(rtnl_route_delete(sk, route, 0), kernel_error);
                if (r == -ESRCH || r == -ENODEV)
                        r = 0; /* gone already, e.g. with the interface */
        }
        return r;
}
