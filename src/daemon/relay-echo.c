/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <sodium.h>

#include "exit-route.h"
#include "log.h"
#include "relay-echo.h"
#include "relay-frame.h"

#define ECHO_BURST 16

struct RelayEcho {
        sd_event *event;
        union sockaddr_union server;
        int fd;
        sd_event_source *io;
        sd_event_source *timer;
        /* ring of the nonces of the last requests; n_sent counts them all */
        uint8_t nonces[RELAY_ECHO_NONCES][RELAY_ECHO_NONCE_SIZE];
        unsigned n_sent;
        RelayEchoHandler handler;
        void *userdata;
};

RelayEcho *relay_echo_free(RelayEcho *e) {
        if (!e)
                return NULL;
        sd_event_source_disable_unref(e->io);
        sd_event_source_disable_unref(e->timer);
        safe_close(e->fd);
        sd_event_unref(e->event);
        free(e);
        return NULL;
}

static void echo_send(RelayEcho *e) {
        uint8_t *nonce = e->nonces[e->n_sent % RELAY_ECHO_NONCES];
        uint8_t buf[RELAY_ECHO_SIZE];

        randombytes_buf(nonce, RELAY_ECHO_NONCE_SIZE);
        e->n_sent++;
        relay_echo_encode(RELAY_ECHO_REQUEST, nonce, buf);
        /* Lost like any datagram when UDP is blocked: that is what we test. */
        if (sendto(e->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL, &e->server.sa,
                   endpoint_socklen(&e->server)) < 0)
                log_debug_errno(negative_errno(), "UDP echo request not sent: %m");
}

static int on_echo_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        RelayEcho *e = userdata;
        uint64_t now;
        int r;

        echo_send(e);
        /* from now, not from when it was due: a stalled loop sends no burst */
        r = sd_event_now(e->event, CLOCK_MONOTONIC, &now);
        if (r >= 0)
                r = sd_event_source_set_time(s, now + RELAY_ECHO_INTERVAL_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ON);
        if (r < 0)
                log_warning_errno(r, "Failed to rearm the UDP echo timer: %m");
        return 0;
}

static bool echo_nonce_is_recent(const RelayEcho *e, const uint8_t nonce[static RELAY_ECHO_NONCE_SIZE]) {
        unsigned n = MIN(e->n_sent, (unsigned) RELAY_ECHO_NONCES);

        for (unsigned i = 0; i < n; i++)
                if (sodium_memcmp(e->nonces[i], nonce, RELAY_ECHO_NONCE_SIZE) == 0)
                        return true;
        return false;
}

/* The socket is not connect()ed, so that each request leaves from the
 * address the routes pick now (a laptop changes networks while on the
 * relay): the source of a reply is checked here. */
static bool echo_reply_is_valid(const RelayEcho *e, const uint8_t *buf, ssize_t n,
                                const union sockaddr_union *from) {
        uint8_t type, nonce[RELAY_ECHO_NONCE_SIZE];

        if (!endpoint_equal(from, &e->server))
                return false;
        if (relay_echo_decode(buf, (size_t) n, &type, nonce) < 0 || type != RELAY_ECHO_REPLY)
                return false;
        return echo_nonce_is_recent(e, nonce);
}

static int on_echo_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        RelayEcho *e = userdata;

        /* a bounded number per wakeup: anyone may send to this port */
        for (unsigned i = 0; i < ECHO_BURST; i++) {
                uint8_t buf[RELAY_ECHO_SIZE + 1];
                union sockaddr_union from = {};
                socklen_t fromlen = sizeof(from);
                ssize_t n;

                n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, &from.sa, &fromlen);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        if (errno != EAGAIN)
                                log_debug_errno(negative_errno(), "UDP echo receive failed: %m");
                        return 0;
                }
                if (echo_reply_is_valid(e, buf, n, &from)) {
                        /* last thing: the handler may free us */
                        e->handler(e, e->userdata);
                        return 0;
                }
        }
        return 0;
}

int relay_echo_new(sd_event *event, const union sockaddr_union *server, uint32_t fwmark,
                   RelayEchoHandler handler, void *userdata, RelayEcho **ret) {
        _cleanup_(relay_echo_freep) RelayEcho *e = NULL;
        uint64_t now;
        int r;

        if (!event || !server || !handler || !ret)
                return -EINVAL;
        if (server->sa.sa_family != AF_INET && server->sa.sa_family != AF_INET6)
                return -EAFNOSUPPORT;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->fd = -EBADF;
        e->event = sd_event_ref(event);
        e->server = *server;
        e->handler = handler;
        e->userdata = userdata;

        e->fd = socket(server->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (e->fd < 0)
                return log_debug_errno(negative_errno(), "Failed to open the UDP echo socket: %m");
        (void) exit_route_mark_socket(e->fd, fwmark);
        r = sd_event_add_io(event, &e->io, e->fd, EPOLLIN, on_echo_io, e);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(e->io, "relay-echo-io");

        r = sd_event_now(event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        /* the first request goes out at once */
        r = sd_event_add_time(event, &e->timer, CLOCK_MONOTONIC, now, USEC_PER_MSEC, on_echo_timer, e);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(e->timer, "relay-echo-timer");

        *ret = TAKE_PTR(e);
        return 0;
}
