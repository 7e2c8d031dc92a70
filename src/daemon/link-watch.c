/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "link-watch.h"
#include "log.h"

struct LinkWatch {
        sd_event *event;
        int fd;
        sd_event_source *io;
        sd_event_source *debounce;
        LinkWatchHandler handler;
        void *userdata;
        int ignored_ifindex;
};

void link_watch_ignore_ifindex(LinkWatch *w, int ifindex) {
        if (w)
                w->ignored_ifindex = ifindex;
}

/* The interface a message is about, 0 when it names none. */
static int message_ifindex(const struct nlmsghdr *h) {
        switch (h->nlmsg_type) {
        case RTM_NEWLINK:
        case RTM_DELLINK:
                if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct ifinfomsg)))
                        return ((const struct ifinfomsg *) NLMSG_DATA(h))->ifi_index;
                return 0;
        case RTM_NEWADDR:
        case RTM_DELADDR:
                if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct ifaddrmsg)))
                        return (int) ((const struct ifaddrmsg *) NLMSG_DATA(h))->ifa_index;
                return 0;
        case RTM_NEWROUTE:
        case RTM_DELROUTE: {
                const struct rtmsg *rt;
                const struct rtattr *a;
                int len;

                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg)))
                        return 0;
                rt = NLMSG_DATA(h);
                len = (int) RTM_PAYLOAD(h);
                for (a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len))
                        if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= sizeof(int))
                                return *(const int *) RTA_DATA(a);
                return 0;
        }
        default:
                return 0;
        }
}

static int on_debounce(sd_event_source *s, uint64_t usec, void *userdata) {
        LinkWatch *w = userdata;

        w->debounce = sd_event_source_disable_unref(w->debounce);
        w->handler(w, w->userdata);
        return 0;
}

static int on_netlink(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        LinkWatch *w = userdata;
        char buf[8192];
        bool any = false;
        int r;

        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        /* ENOBUFS: we missed events, which is itself a reason to look again. */
                        if (errno == ENOBUFS)
                                any = true;
                        break;
                }
                if (n == 0)
                        break;
                for (const struct nlmsghdr *h = (const struct nlmsghdr *) buf; NLMSG_OK(h, (size_t) n);
                     h = NLMSG_NEXT(h, n)) {
                        int ifindex = message_ifindex(h);
                        if (ifindex == 0 || ifindex != w->ignored_ifindex)
                                any = true;
                }
        }
        if (!any || w->debounce)
                return 0;

        r = sd_event_add_time_relative(w->event, &w->debounce, CLOCK_MONOTONIC, LINK_WATCH_DEBOUNCE_USEC, 0,
                                       on_debounce, w);
        if (r < 0)
                log_debug_errno(r, "Failed to arm link change timer: %m");
        return 0;
}

int link_watch_new(sd_event *event, LinkWatchHandler handler, void *userdata, LinkWatch **ret) {
        _cleanup_(link_watch_freep) LinkWatch *w = NULL;
        struct sockaddr_nl sa = {
                .nl_family = AF_NETLINK,
                .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE |
                             RTMGRP_IPV6_ROUTE,
        };
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
        r = sd_event_add_io(event, &w->io, w->fd, EPOLLIN, on_netlink, w);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(w->io, "link-watch");

        *ret = TAKE_PTR(w);
        return 0;
}

LinkWatch *link_watch_free(LinkWatch *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->debounce);
        safe_close(w->fd);
        sd_event_unref(w->event);
        free(w);
        return NULL;
}
