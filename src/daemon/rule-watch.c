/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "messages.h"
#include "rule-watch.h"

struct RuleWatch {
        sd_event *event;
        int fd;
        sd_event_source *io;
        sd_event_source *timer; /* the debounce, or the end of a window that ran out */
        RuleWatchHandler handler;
        void *userdata;
        int ifindex;
        uint32_t table, priority;
        /* when the last repairs that re-added something ran, a ring */
        uint64_t repairs[RULE_WATCH_REPAIRS_MAX];
        size_t n_repairs, next_repair;
        bool contested_logged; /* since the last window ran out */
};

void rule_watch_set(RuleWatch *w, int ifindex, uint32_t table, uint32_t priority) {
        if (!w)
                return;
        w->ifindex = ifindex;
        w->table = table;
        w->priority = priority;
}

/* An attribute's u32, or `otherwise`. */
static uint32_t attr_u32(const struct rtattr *first, int len, unsigned short type, uint32_t otherwise) {
        for (const struct rtattr *a = first; RTA_OK(a, len); a = RTA_NEXT(a, len))
                if (a->rta_type == type && RTA_PAYLOAD(a) >= sizeof(uint32_t))
                        return *(const uint32_t *) RTA_DATA(a);
        return otherwise;
}

static bool rule_is_ours(const RuleWatch *w, const struct nlmsghdr *h) {
        const struct fib_rule_hdr *frh = NLMSG_DATA(h);
        const struct rtattr *first;
        int len;
        uint32_t priority, table;

        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*frh)))
                return false;
        first = (const struct rtattr *) ((const char *) frh + NLMSG_ALIGN(sizeof(*frh)));
        len = (int) (h->nlmsg_len - NLMSG_LENGTH(sizeof(*frh)));
        priority = attr_u32(first, len, FRA_PRIORITY, 0);
        table = attr_u32(first, len, FRA_TABLE, frh->table);
        return (w->priority != 0 && (priority == w->priority || priority == w->priority + 1)) ||
               (w->table != 0 && table == w->table);
}

static bool route_is_ours(const RuleWatch *w, const struct nlmsghdr *h) {
        const struct rtmsg *rt = NLMSG_DATA(h);
        int len;

        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*rt)))
                return false;
        len = (int) RTM_PAYLOAD(h);
        if (w->table != 0 && attr_u32(RTM_RTA(rt), len, RTA_TABLE, rt->rtm_table) == w->table)
                return true;
        return w->ifindex > 0 && attr_u32(RTM_RTA(rt), len, RTA_OIF, 0) == (uint32_t) w->ifindex;
}

/* Whether the message may mean that something of ours is gone. */
static bool message_concerns_us(const RuleWatch *w, const struct nlmsghdr *h) {
        switch (h->nlmsg_type) {
        case RTM_DELRULE:
                return rule_is_ours(w, h);
        case RTM_DELROUTE:
                return route_is_ours(w, h);
        case RTM_NEWLINK: {
                const struct ifinfomsg *ifi = NLMSG_DATA(h);

                /* up again: the kernel dropped its routes when it went down */
                return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*ifi)) && w->ifindex > 0 &&
                       ifi->ifi_index == w->ifindex && (ifi->ifi_flags & IFF_UP);
        }
        default:
                return false;
        }
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static int arm(RuleWatch *w, uint64_t when_usec) {
        int r;

        if (w->timer)
                return 0;
        r = sd_event_add_time(w->event, &w->timer, CLOCK_MONOTONIC, when_usec, 0, on_timer, w);
        if (r < 0)
                return log_debug_errno(r, "Failed to arm the routing repair timer: %m");
        (void) sd_event_source_set_description(w->timer, "rule-watch");
        return 0;
}

/* The oldest of the last RULE_WATCH_REPAIRS_MAX repairs, when they are that many. */
static uint64_t oldest_repair(const RuleWatch *w) {
        return w->n_repairs < RULE_WATCH_REPAIRS_MAX ? 0 : w->repairs[w->next_repair];
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        RuleWatch *w = userdata;
        uint64_t now = 0, oldest = oldest_repair(w);
        int r;

        w->timer = sd_event_source_disable_unref(w->timer);
        (void) sd_event_now(w->event, CLOCK_MONOTONIC, &now);
        if (oldest != 0 && now < oldest + RULE_WATCH_WINDOW_USEC) {
                if (!w->contested_logged)
                        log_full_errno_fields(
                                LOG_WARNING, 0, &((LogFields) { .message_id = MESSAGE_ROUTES_CONTESTED }),
                                "Something keeps removing meshd's routing rules or routes (%u repairs in %llu "
                                "s): another network manager? meshd re-adds them at most %u times in %llu s.",
                                RULE_WATCH_REPAIRS_MAX,
                                (unsigned long long) (RULE_WATCH_WINDOW_USEC / USEC_PER_SEC),
                                RULE_WATCH_REPAIRS_MAX,
                                (unsigned long long) (RULE_WATCH_WINDOW_USEC / USEC_PER_SEC));
                w->contested_logged = true;
                return arm(w, oldest + RULE_WATCH_WINDOW_USEC);
        }
        w->contested_logged = false;
        r = w->handler(w, w->userdata);
        if (r > 0) {
                w->repairs[w->next_repair] = now;
                w->next_repair = (w->next_repair + 1) % RULE_WATCH_REPAIRS_MAX;
                w->n_repairs = MIN(w->n_repairs + 1, (size_t) RULE_WATCH_REPAIRS_MAX);
        }
        return 0;
}

static int on_netlink(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        RuleWatch *w = userdata;
        uint64_t now = 0;
        char buf[8192];
        bool any = false;

        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        /* ENOBUFS: events were lost, one of them may have been ours */
                        any |= errno == ENOBUFS;
                        break;
                }
                if (n == 0)
                        break;
                for (const struct nlmsghdr *h = (const struct nlmsghdr *) buf; NLMSG_OK(h, (size_t) n);
                     h = NLMSG_NEXT(h, n))
                        any |= message_concerns_us(w, h);
        }
        if (!any)
                return 0;
        (void) sd_event_now(w->event, CLOCK_MONOTONIC, &now);
        return arm(w, now + RULE_WATCH_DEBOUNCE_USEC);
}

int rule_watch_new(sd_event *event, RuleWatchHandler handler, void *userdata, RuleWatch **ret) {
        static const int groups[] = { RTNLGRP_LINK, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV4_RULE,
                                      RTNLGRP_IPV6_RULE };
        _cleanup_(rule_watch_freep) RuleWatch *w = NULL;
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->fd = -EBADF;
        w->event = sd_event_ref(event);
        w->handler = handler;
        w->userdata = userdata;

        w->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
        if (w->fd < 0)
                return -errno;
        if (bind(w->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        /* RTNLGRP_IPV6_RULE has no bit in the old nl_groups mask */
        for (size_t i = 0; i < ELEMENTSOF(groups); i++)
                if (setsockopt(w->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &groups[i], sizeof(groups[i])) < 0)
                        return -errno;
        r = sd_event_add_io(event, &w->io, w->fd, EPOLLIN, on_netlink, w);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(w->io, "rule-watch-netlink");

        *ret = TAKE_PTR(w);
        return 0;
}

RuleWatch *rule_watch_free(RuleWatch *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->timer);
        safe_close(w->fd);
        sd_event_unref(w->event);
        free(w);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cache *, nl_cache_free);

int rule_watch_dump_routes(int ifindex, uint32_t table, InAddrPrefix **ret, size_t *ret_n) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = nl_socket_alloc();
        _cleanup_(nl_cache_freep) struct nl_cache *routes = NULL;
        _cleanup_free_ InAddrPrefix *l = NULL;
        size_t n = 0;

        if (!sk)
                return -ENOMEM;
        if (nl_connect(sk, NETLINK_ROUTE) < 0 || rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &routes) < 0)
                return -EIO;
        l = calloc((size_t) MAX(nl_cache_nitems(routes), 1), sizeof(InAddrPrefix));
        if (!l)
                return -ENOMEM;
        for (struct nl_object *o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
                struct rtnl_route *rt = (struct rtnl_route *) o;
                struct nl_addr *dst = rtnl_route_get_dst(rt);
                int family = rtnl_route_get_family(rt);

                if (rtnl_route_get_table(rt) != table || rtnl_route_get_nnexthops(rt) < 1 ||
                    rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(rt, 0)) != ifindex || !dst ||
                    (family != AF_INET && family != AF_INET6) ||
                    nl_addr_get_len(dst) > sizeof(union in_addr_union))
                        continue;
                l[n] = (InAddrPrefix) { .family = family, .prefixlen = (uint8_t) nl_addr_get_prefixlen(dst) };
                memcpy(&l[n].address, nl_addr_get_binary_addr(dst), nl_addr_get_len(dst));
                n++;
        }
        *ret = TAKE_PTR(l);
        *ret_n = n;
        return 0;
}
