/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "log.h"
#include "probe.h"

struct Prober {
        sd_event_source *io;
        int fd;
        uint16_t port;
        ProbeReplyHandler handler;
        void *userdata;

        bool have_ranges;
        union in_addr_union ipv4_range, ipv6_range;
        uint8_t ipv4_prefixlen, ipv6_prefixlen;
};

/* A dual-stack socket reports IPv4 senders as ::ffff:a.b.c.d. */
static void sockaddr_to_addr(const struct sockaddr_in6 *sa, int *ret_family, union in_addr_union *ret) {
        *ret = (union in_addr_union) {};
        if (IN6_IS_ADDR_V4MAPPED(&sa->sin6_addr)) {
                *ret_family = AF_INET;
                memcpy(&ret->in, sa->sin6_addr.s6_addr + 12, 4);
        } else {
                *ret_family = AF_INET6;
                ret->in6 = sa->sin6_addr;
        }
}

static bool prober_source_allowed(Prober *p, int family, const union in_addr_union *from) {
        if (!p->have_ranges)
                return false;
        if (family == AF_INET)
                return in_addr_prefix_contains(AF_INET, &p->ipv4_range, p->ipv4_prefixlen, from);
        return p->ipv6_prefixlen > 0 &&
               in_addr_prefix_contains(AF_INET6, &p->ipv6_range, p->ipv6_prefixlen, from);
}

static int prober_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Prober *p = userdata;

        /* Drain what is there; a burst of replies must not wait for the next loop iteration. */
        for (int i = 0; i < 64; i++) {
                uint8_t buf[64];
                struct sockaddr_in6 from = {};
                socklen_t fromlen = sizeof(from);
                union in_addr_union addr;
                ProbePacket pkt;
                int family;
                ssize_t n;

                n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *) &from, &fromlen);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        log_debug_errno(errno, "Failed to receive probe: %m");
                        return 0;
                }
                if (from.sin6_family != AF_INET6 || probe_packet_decode(buf, (size_t) n, &pkt) < 0)
                        continue;
                sockaddr_to_addr(&from, &family, &addr);
                if (!prober_source_allowed(p, family, &addr))
                        continue;

                if (pkt.type == PROBE_REQUEST) {
                        pkt.type = PROBE_REPLY;
                        probe_packet_encode(&pkt, buf);
                        if (sendto(fd, buf, PROBE_PACKET_SIZE, MSG_DONTWAIT, (struct sockaddr *) &from,
                                   fromlen) < 0)
                                log_debug_errno(errno, "Failed to answer probe: %m");
                } else if (p->handler)
                        p->handler(p, family, &addr, pkt.seq, p->userdata);
        }
        return 0;
}

int prober_new(sd_event *event, uint16_t port, ProbeReplyHandler handler, void *userdata, Prober **ret) {
        _cleanup_(prober_freep) Prober *p = NULL;
        struct sockaddr_in6 sa = {
                .sin6_family = AF_INET6,
                .sin6_addr = IN6ADDR_ANY_INIT,
                .sin6_port = htons(port),
        };
        int zero = 0, one = 1, r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->fd = -EBADF;
        p->port = port;
        p->handler = handler;
        p->userdata = userdata;

        p->fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (p->fd < 0)
                return -errno;
        if (setsockopt(p->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
                return -errno;
        /* A restarted meshd must get its port back at once. */
        if (setsockopt(p->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(p->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;

        r = sd_event_add_io(event, &p->io, p->fd, EPOLLIN, prober_on_io, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->io, "prober");

        *ret = TAKE_PTR(p);
        return 0;
}

Prober *prober_free(Prober *p) {
        if (!p)
                return NULL;
        sd_event_source_disable_unref(p->io);
        safe_close(p->fd);
        free(p);
        return NULL;
}

void prober_set_mesh_ranges(Prober *p, const union in_addr_union *ipv4, uint8_t ipv4_prefixlen,
                            const union in_addr_union *ipv6, uint8_t ipv6_prefixlen) {
        p->have_ranges = true;
        p->ipv4_range = *ipv4;
        p->ipv4_prefixlen = ipv4_prefixlen;
        if (ipv6) {
                p->ipv6_range = *ipv6;
                p->ipv6_prefixlen = ipv6_prefixlen;
        } else
                p->ipv6_prefixlen = 0;
}

int prober_send(Prober *p, int family, const union in_addr_union *to, uint32_t seq) {
        struct sockaddr_in6 sa = {
                .sin6_family = AF_INET6,
                .sin6_port = htons(p->port),
        };
        uint8_t buf[PROBE_PACKET_SIZE];

        if (family == AF_INET) {
                sa.sin6_addr.s6_addr[10] = sa.sin6_addr.s6_addr[11] = 0xff;
                memcpy(sa.sin6_addr.s6_addr + 12, &to->in, 4);
        } else
                sa.sin6_addr = to->in6;

        probe_packet_encode(&(ProbePacket) { .type = PROBE_REQUEST, .seq = seq }, buf);
        if (sendto(p->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        return 0;
}
