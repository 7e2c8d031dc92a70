/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>
#include <netlink/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "endpoint.h"
#include "exit-route.h"
#include "fileio.h"
#include "log.h"
#include "rule-watch.h"
#include "strv.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_msg *, nlmsg_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_addr *, nl_addr_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cache *, nl_cache_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_rule *, rtnl_rule_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_route *, rtnl_route_put);

struct ExitRoute {
        uint32_t fwmark; /* and table */
        int ifindex;     /* where the default routes point, 0: disabled */
        bool ipv4, ipv6;
};

int exit_route_new(uint32_t fwmark, ExitRoute **ret) {
        ExitRoute *e;

        if (fwmark == 0)
                return -EINVAL;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->fwmark = fwmark;
        *ret = e;
        return 0;
}

ExitRoute *exit_route_free(ExitRoute *e) {
        free(e);
        return NULL;
}

bool exit_route_is_enabled(const ExitRoute *e) {
        return e && e->ifindex > 0;
}

uint32_t exit_route_get_fwmark(const ExitRoute *e) {
        return e ? e->fwmark : 0;
}

/* ---- rtnetlink -------------------------------------------------------------------------------- */

/* The kernel's own errno from NLMSG_ERROR: libnl's NLE_* codes lose ENOENT
 * against ESRCH, and a missing rule or route is no error when removing. */
static int rtnl_error_cb(struct sockaddr_nl *nla, struct nlmsgerr *e, void *userdata) {
        int *error = userdata;

        *error = e->error < 0 ? e->error : -e->error;
        return NL_STOP;
}

static int rtnl_open(struct nl_sock **ret, int *kernel_error) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = nl_socket_alloc();
        int r;

        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0)
                return -EIO;
        *kernel_error = 0;
        if (nl_socket_modify_err_cb(sk, NL_CB_CUSTOM, rtnl_error_cb, kernel_error) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(sk);
        return 0;
}

static int rtnl_result(int nlerr, int kernel_error) {
        if (kernel_error < 0)
                return kernel_error;
        return nlerr < 0 ? (nlerr == -NLE_NOMEM ? -ENOMEM : -EIO) : 0;
}

/* libnl's rule object has neither FIB_RULE_INVERT ("not") nor
 * FRA_SUPPRESS_PREFIXLEN: the request it builds gets them added here. */
static int rule_send(bool add, int family, uint32_t priority, uint32_t table, uint32_t not_fwmark) {
        _cleanup_(rtnl_rule_putp) struct rtnl_rule *rule = rtnl_rule_alloc();
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(nlmsg_freep) struct nl_msg *msg = NULL;
        int kernel_error = 0, r;

        if (!rule)
                return -ENOMEM;
        rtnl_rule_set_family(rule, family);
        rtnl_rule_set_prio(rule, priority);
        rtnl_rule_set_table(rule, table);
        rtnl_rule_set_action(rule, FR_ACT_TO_TBL);
        if (not_fwmark != 0) {
                rtnl_rule_set_mark(rule, not_fwmark);
                rtnl_rule_set_mask(rule, UINT32_MAX);
        }
        r = add ? rtnl_rule_build_add_request(rule, NLM_F_CREATE | NLM_F_EXCL, &msg)
                : rtnl_rule_build_delete_request(rule, 0, &msg);
        if (r < 0)
                return -ENOMEM;
        if (not_fwmark != 0)
                ((struct fib_rule_hdr *) nlmsg_data(nlmsg_hdr(msg)))->flags |= FIB_RULE_INVERT;
        else if (nla_put_u32(msg, FRA_SUPPRESS_PREFIXLEN, 0) < 0)
                return -ENOMEM;

        r = rtnl_open(&sk, &kernel_error);
        if (r < 0)
                return r;
        r = nl_send_auto_complete(sk, msg);
        if (r >= 0)
                r = nl_wait_for_ack(sk);
        return rtnl_result(r, kernel_error);
}

static int route_send(bool add, int family, uint32_t table, int ifindex) {
        _cleanup_(rtnl_route_putp) struct rtnl_route *rt = rtnl_route_alloc();
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(nl_addr_putp) struct nl_addr *dst = NULL;
        struct rtnl_nexthop *nh;
        uint8_t zero[16] = {};
        int kernel_error = 0, r;

        if (!rt)
                return -ENOMEM;
        dst = nl_addr_build(family, zero, family == AF_INET ? 4 : 16);
        if (!dst)
                return -ENOMEM;
        nl_addr_set_prefixlen(dst, 0);
        rtnl_route_set_family(rt, (uint8_t) family);
        rtnl_route_set_table(rt, table);
        rtnl_route_set_type(rt, RTN_UNICAST);
        rtnl_route_set_protocol(rt, RTPROT_BOOT);
        rtnl_route_set_scope(rt, family == AF_INET ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE);
        if (rtnl_route_set_dst(rt, dst) < 0)
                return -ENOMEM;
        nh = rtnl_route_nh_alloc();
        if (!nh)
                return -ENOMEM;
        rtnl_route_nh_set_ifindex(nh, ifindex);
        rtnl_route_add_nexthop(rt, nh);

        r = rtnl_open(&sk, &kernel_error);
        if (r < 0)
                return r;
        r = add ? rtnl_route_add(sk, rt, NLM_F_CREATE | NLM_F_REPLACE) : rtnl_route_delete(sk, rt, 0);
        return rtnl_result(r, kernel_error);
}

static bool gone(int r) {
        return r == -ENOENT || r == -ESRCH || r == -ENODEV;
}

/* Rules first, so that no packet meets table T while it is half there. */
static int family_disable(ExitRoute *e, int family, int ifindex) {
        int r, ret = 0;

        r = rule_send(false, family, EXIT_ROUTE_PRIORITY + 1, e->fwmark, e->fwmark);
        if (r < 0 && !gone(r))
                ret = r;
        r = rule_send(false, family, EXIT_ROUTE_PRIORITY, RT_TABLE_MAIN, 0);
        if (r < 0 && !gone(r))
                ret = r;
        if (ifindex > 0) {
                r = route_send(false, family, e->fwmark, ifindex);
                if (r < 0 && !gone(r))
                        ret = r;
        }
        return ret;
}

/* The route first, then the suppress rule, then the rule that sends
 * everything unmarked to table T. */
static int family_enable(ExitRoute *e, int family, int ifindex) {
        int r;

        r = route_send(true, family, e->fwmark, ifindex);
        if (r < 0)
                return log_error_errno(r, "Failed to add the %s exit route to table %" PRIu32 ": %m",
                                       family == AF_INET ? "IPv4" : "IPv6", e->fwmark);
        r = rule_send(true, family, EXIT_ROUTE_PRIORITY, RT_TABLE_MAIN, 0);
        if (r < 0 && r != -EEXIST)
                return log_error_errno(r, "Failed to add the %s rule 'table main suppress_prefixlength 0': %m",
                                       family == AF_INET ? "IPv4" : "IPv6");
        r = rule_send(true, family, EXIT_ROUTE_PRIORITY + 1, e->fwmark, e->fwmark);
        if (r < 0 && r != -EEXIST)
                return log_error_errno(r,
                                       "Failed to add the %s rule 'not fwmark %#" PRIx32 " table %" PRIu32
                                       "': %m",
                                       family == AF_INET ? "IPv4" : "IPv6", e->fwmark, e->fwmark);
        return 0;
}

int exit_route_enable(ExitRoute *e, int ifindex, bool ipv4, bool ipv6) {
        int r = 0;

        if (!e || ifindex <= 0)
                return -EINVAL;
        if (e->ifindex > 0 && e->ifindex != ifindex)
                (void) exit_route_disable(e);
        if (ipv4)
                r = family_enable(e, AF_INET, ifindex);
        else
                (void) family_disable(e, AF_INET, ifindex);
        if (r >= 0 && ipv6)
                r = family_enable(e, AF_INET6, ifindex);
        else if (r >= 0)
                (void) family_disable(e, AF_INET6, ifindex);
        e->ifindex = ifindex;
        e->ipv4 = ipv4;
        e->ipv6 = ipv6;
        if (r < 0) {
                (void) exit_route_disable(e);
                return r;
        }
        return 0;
}

int exit_route_disable(ExitRoute *e) {
        int r4, r6;

        if (!e)
                return 0;
        r4 = family_disable(e, AF_INET, e->ifindex);
        r6 = family_disable(e, AF_INET6, e->ifindex);
        e->ifindex = 0;
        e->ipv4 = e->ipv6 = false;
        if (r4 < 0 || r6 < 0)
                return log_warning_errno(r4 < 0 ? r4 : r6, "Failed to remove the exit route's rules: %m");
        return 0;
}

void exit_route_remove_stale(ExitRoute *e, int ifindex) {
        if (!e)
                return;
        (void) family_disable(e, AF_INET, ifindex);
        (void) family_disable(e, AF_INET6, ifindex);
}

/* ---- repair ----------------------------------------------------------------------------------- */

/* Which of the family's two rules are in the kernel (priority and table tell them). */
static int rules_present(const ExitRoute *e, int family, bool *ret_suppress, bool *ret_not_fwmark) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(nl_cache_freep) struct nl_cache *rules = NULL;
        int kernel_error, r;

        *ret_suppress = *ret_not_fwmark = false;
        r = rtnl_open(&sk, &kernel_error);
        if (r < 0)
                return r;
        if (rtnl_rule_alloc_cache(sk, family, &rules) < 0)
                return -EIO;
        for (struct nl_object *o = nl_cache_get_first(rules); o; o = nl_cache_get_next(o)) {
                struct rtnl_rule *rule = (struct rtnl_rule *) o;
                uint32_t priority = rtnl_rule_get_prio(rule), table = rtnl_rule_get_table(rule);

                /* the cache may hold the other family's too */
                if (rtnl_rule_get_family(rule) != family)
                        continue;
                *ret_suppress |= priority == EXIT_ROUTE_PRIORITY && table == RT_TABLE_MAIN;
                *ret_not_fwmark |= priority == EXIT_ROUTE_PRIORITY + 1 && table == e->fwmark;
        }
        return 0;
}

static bool has_default_route(const InAddrPrefix *l, size_t n, int family) {
        for (size_t i = 0; i < n; i++)
                if (l[i].family == family && l[i].prefixlen == 0)
                        return true;
        return false;
}

/* In the order of family_enable(): the route, then the rules. */
static int family_repair(ExitRoute *e, int family, char ***what) {
        _cleanup_free_ InAddrPrefix *routes = NULL;
        const char *name = family == AF_INET ? "IPv4" : "IPv6";
        bool suppress, not_fwmark;
        size_t n_routes;
        char *s;
        int n = 0, r;

        r = rule_watch_dump_routes(e->ifindex, e->fwmark, &routes, &n_routes);
        if (r >= 0)
                r = rules_present(e, family, &suppress, &not_fwmark);
        if (r < 0)
                return r;
        if (!has_default_route(routes, n_routes, family)) {
                r = route_send(true, family, e->fwmark, e->ifindex);
                if (r < 0)
                        return r;
                if (asprintf(&s, "%s route default table %" PRIu32, name, e->fwmark) < 0 ||
                    strv_consume(what, s) < 0)
                        return -ENOMEM;
                n++;
        }
        if (!suppress) {
                r = rule_send(true, family, EXIT_ROUTE_PRIORITY, RT_TABLE_MAIN, 0);
                if (r < 0 && r != -EEXIST)
                        return r;
                if (asprintf(&s, "%s rule %u", name, EXIT_ROUTE_PRIORITY) < 0 || strv_consume(what, s) < 0)
                        return -ENOMEM;
                n++;
        }
        if (!not_fwmark) {
                r = rule_send(true, family, EXIT_ROUTE_PRIORITY + 1, e->fwmark, e->fwmark);
                if (r < 0 && r != -EEXIST)
                        return r;
                if (asprintf(&s, "%s rule %u", name, EXIT_ROUTE_PRIORITY + 1) < 0 || strv_consume(what, s) < 0)
                        return -ENOMEM;
                n++;
        }
        return n;
}

int exit_route_repair(ExitRoute *e, char ***what) {
        int n = 0, r;

        if (!exit_route_is_enabled(e))
                return 0;
        for (int i = 0; i < 2; i++) {
                int family = i == 0 ? AF_INET : AF_INET6;

                if (!(family == AF_INET ? e->ipv4 : e->ipv6))
                        continue;
                r = family_repair(e, family, what);
                if (r < 0)
                        return r;
                n += r;
        }
        return n;
}

/* ---- sockets, netmaps, forwarding -------------------------------------------------------------- */

int exit_route_mark_socket(int fd, uint32_t mark) {
        if (mark == 0)
                return 0;
        if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0)
                return log_debug_errno(negative_errno(), "Failed to mark an underlay socket: %m");
        return 0;
}

bool exit_route_offered(const NetmapNode *n, bool *ret_ipv4, bool *ret_ipv6) {
        bool v4 = false, v6 = false;

        for (char **s = n ? n->routes : NULL; s && *s; s++) {
                union in_addr_union a;
                uint8_t len;
                int family;

                if (in_addr_prefix_parse(*s, &family, &a, &len) < 0 || len != 0)
                        continue;
                v4 |= family == AF_INET;
                v6 |= family == AF_INET6;
        }
        if (ret_ipv4)
                *ret_ipv4 = v4;
        if (ret_ipv6)
                *ret_ipv6 = v6;
        return v4 || v6;
}

static int sysctl_read(const char *family, const char *ifname, const char *key, int *ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len;

        if (asprintf(&path, "/proc/sys/net/%s/conf/%s/%s", family, ifname, key) < 0)
                return -ENOMEM;
        if (read_full_file(path, 16, &text, &len) < 0 || len == 0)
                return -ENOENT; /* no such interface (any more) */
        *ret = atoi(text);
        return 0;
}

static int forwarding_check_one(const char *family, const char *ifname) {
        int v;

        if (sysctl_read(family, ifname, "forwarding", &v) < 0 || v != 0)
                return 0;
        log_error("Exit node: forwarding is off on %s (net.%s.conf.%s.forwarding=0); traffic from the mesh "
                  "cannot leave. Turn it on (sysctl -w net.%s.conf.%s.forwarding=1).",
                  ifname, family, ifname, family, ifname);
        return 1;
}

/* The interfaces of the main table's default routes of the families asked, but mesh_ifname. */
static int default_route_ifnames(const char *mesh_ifname, bool ipv4, bool ipv6,
                                 void (*each)(int family, const char *ifname, void *userdata), void *userdata) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(nl_cache_freep) struct nl_cache *routes = NULL;
        int kernel_error, r;

        r = rtnl_open(&sk, &kernel_error);
        if (r >= 0 && rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &routes) < 0)
                r = -EIO;
        if (r < 0)
                return log_warning_errno(r, "Failed to read the default routes: %m");
        for (struct nl_object *o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
                struct rtnl_route *rt = (struct rtnl_route *) o;
                int family = rtnl_route_get_family(rt);
                char ifname[IF_NAMESIZE];

                if (rtnl_route_get_table(rt) != RT_TABLE_MAIN ||
                    nl_addr_get_prefixlen(rtnl_route_get_dst(rt)) != 0 || rtnl_route_get_nnexthops(rt) < 1 ||
                    !(family == AF_INET ? ipv4 : family == AF_INET6 && ipv6))
                        continue;
                if (!if_indextoname((unsigned) rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(rt, 0)),
                                    ifname) ||
                    streq(ifname, mesh_ifname))
                        continue;
                each(family, ifname, userdata);
        }
        return 0;
}

static void forwarding_check_default(int family, const char *ifname, void *userdata) {
        int *n = userdata;

        *n += forwarding_check_one(family == AF_INET ? "ipv4" : "ipv6", ifname);
}

int exit_route_check_forwarding(const char *mesh_ifname, bool ipv4, bool ipv6) {
        int n = 0;

        if (ipv4)
                n += forwarding_check_one("ipv4", mesh_ifname);
        if (ipv6)
                n += forwarding_check_one("ipv6", mesh_ifname);
        (void) default_route_ifnames(mesh_ifname, ipv4, ipv6, forwarding_check_default, &n);
        return n;
}

/* The kernel takes the larger of "all" and the interface's value; 1 (strict)
 * drops what arrives on an interface its source would not be routed out of. */
static void rp_filter_check_default(int family, const char *ifname, void *userdata) {
        int all = 0, v = 0;

        if (family != AF_INET)
                return;
        (void) sysctl_read("ipv4", "all", "rp_filter", &all);
        (void) sysctl_read("ipv4", ifname, "rp_filter", &v);
        if (MAX(all, v) == 1)
                log_warning(
                        "Strict reverse-path filtering on %s (net.ipv4.conf.%s.rp_filter=1) drops the replies "
                        "of peers reached through the default route while an exit node is used: their "
                        "source now routes into the tunnel. Use loose mode (rp_filter=2).",
                        ifname, all == 1 ? "all" : ifname);
}

void exit_route_check_rp_filter(const char *mesh_ifname) {
        (void) default_route_ifnames(mesh_ifname, true, false, rp_filter_check_default, NULL);
}
