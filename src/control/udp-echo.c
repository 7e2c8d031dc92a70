/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "log.h"
#include "rate-limit.h"
#include "relay-frame.h"
#include "time-util.h"
#include "udp-echo.h"

/* datagrams one wakeup handles before the loop serves the rest */
#define UDP_ECHO_BUDGET 64

struct UdpEcho {
        int fd;
        sd_event_source *source;
        RateLimit limit;
        char listen_text[ENDPOINT_STRLEN];
        uint64_t refused; /* over the rate, for the log */
};

bool udp_echo_answer(uint8_t *buf, size_t len) {
        uint8_t type, nonce[RELAY_ECHO_NONCE_SIZE];

        if (relay_echo_decode(buf, len, &type, nonce) < 0 || type != RELAY_ECHO_REQUEST)
                return false;
        relay_echo_encode(RELAY_ECHO_REPLY, nonce, buf);
        return true;
}

/* Replies from the address the request was sent to (IP_PKTINFO), even on
 * a wildcard listen address of a host with several. */
static bool udp_echo_handle(UdpEcho *e, uint64_t now) {
        uint8_t buf[RELAY_ECHO_SIZE + 1];
        union sockaddr_union from;
        union {
                struct cmsghdr align;
                uint8_t buf[CMSG_SPACE(MAX(sizeof(struct in_pktinfo), sizeof(struct in6_pktinfo)))];
        } control;
        struct iovec iov = { buf, sizeof(buf) };
        struct msghdr mh = {
                .msg_name = &from,
                .msg_namelen = sizeof(from),
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        ssize_t n;

        n = recvmsg(e->fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
                if (errno == EAGAIN)
                        return false;
                if (errno != EINTR)
                        log_debug_errno(-errno, "UDP echo: receive failed: %m");
                return true;
        }
        /* a truncated datagram was longer than a request: MSG_TRUNC gives its length */
        if ((mh.msg_flags & MSG_TRUNC) || !udp_echo_answer(buf, (size_t) n))
                return true;
        if (!rate_limit_take(&e->limit, now)) {
                if (e->refused++ % 1000 == 0)
                        log_notice("UDP echo: more than %u requests a second, not answering all "
                                   "(%" PRIu64 " so far).",
                                   UDP_ECHO_RATE, e->refused);
                return true;
        }
        /* the same control data back: the pktinfo names our source address */
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                        struct in_pktinfo *pi = (struct in_pktinfo *) CMSG_DATA(c);
                        pi->ipi_spec_dst = pi->ipi_addr;
                        pi->ipi_ifindex = 0;
                }
        }
        iov.iov_len = RELAY_ECHO_SIZE;
        mh.msg_flags = 0;
        if (sendmsg(e->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                log_debug_errno(-errno, "UDP echo: reply failed: %m");
        return true;
}

static int on_echo(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        UdpEcho *e = userdata;
        uint64_t now = clock_usec(CLOCK_MONOTONIC);

        for (unsigned i = 0; i < UDP_ECHO_BUDGET; i++)
                if (!udp_echo_handle(e, now))
                        break;
        return 0;
}

int udp_echo_new(sd_event *event, const union sockaddr_union *listen, UdpEcho **ret) {
        _cleanup_(udp_echo_freep) UdpEcho *e = NULL;
        int family = listen->sa.sa_family, one = 1, r;

        e = calloc(1, sizeof(*e));
        if (!e)
                return log_oom();
        e->fd = -EBADF;
        rate_limit_init(&e->limit, UDP_ECHO_RATE, UDP_ECHO_BURST, clock_usec(CLOCK_MONOTONIC));
        (void) endpoint_format(listen, e->listen_text, sizeof(e->listen_text));

        e->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (e->fd < 0)
                return log_error_errno(-errno, "Failed to open the UDP echo socket: %m");
        if (family == AF_INET)
                r = setsockopt(e->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
        else
                r = setsockopt(e->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
        if (r < 0)
                return log_error_errno(-errno, "Failed to set up the UDP echo socket: %m");
        if (bind(e->fd, &listen->sa, endpoint_socklen(listen)) < 0)
                return log_error_errno(-errno,
                                       "Failed to bind the UDP echo to %s: %m "
                                       "(--no-udp-echo runs without it).",
                                       e->listen_text);
        r = sd_event_add_io(event, &e->source, e->fd, EPOLLIN, on_echo, e);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the UDP echo socket: %m");
        log_info("UDP echo on %s.", e->listen_text);
        *ret = TAKE_PTR(e);
        return 0;
}

UdpEcho *udp_echo_free(UdpEcho *e) {
        if (!e)
                return NULL;
        sd_event_source_disable_unref(e->source);
        safe_close(e->fd);
        free(e);
        return NULL;
}
