/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <netinet/tcp.h>
#include <sodium.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "dns-resolv-watch.h"
#include "dns-server.h"
#include "log.h"

#define DNS_MESSAGE_MAX 65535
/* a TCP client that does not read its replies is cut off at this */
#define DNS_TCP_OUT_MAX (4 * (DNS_MESSAGE_MAX + 2))

typedef struct DnsTcpConnection DnsTcpConnection;
typedef struct DnsForward DnsForward;

typedef struct DnsListener {
        DnsServer *server;
        int udp_fd, tcp_fd;
        sd_event_source *udp_source, *tcp_source;
} DnsListener;

struct DnsTcpConnection {
        DnsServer *server;
        int fd;
        sd_event_source *io, *timer;
        uint8_t *in; /* 2 + DNS_MESSAGE_MAX */
        size_t in_len;
        uint8_t *out;
        size_t out_len;
        DnsTcpConnection *prev, *next;
};

/* A query on its way to an upstream; the reply goes back to a UDP client
 * (reply_fd, client) or to a TCP connection (conn, NULL when it closed). */
struct DnsForward {
        DnsServer *server;
        int fd;
        sd_event_source *io, *timer;
        uint16_t id, client_id;
        uint8_t *query; /* with the client's ID */
        size_t size;
        size_t attempt; /* index into the upstreams */
        int reply_fd;
        union sockaddr_union client;
        size_t max_size;
        DnsTcpConnection *conn;
        /* over TCP to the upstream (a TCP client's reply came truncated):
         * first the framed query goes out of tcp_buf, then the reply comes in */
        uint8_t *tcp_buf;
        size_t tcp_pos, tcp_out_left;
        DnsForward *prev, *next;
};

struct DnsServer {
        sd_event *event;
        DnsListener listeners[DNS_SERVER_LISTEN_MAX];
        size_t n_listeners;
        DnsNameTable *names;
        union sockaddr_union upstreams[DNS_SERVER_UPSTREAMS_MAX];
        size_t n_upstreams;
        union sockaddr_union listen[DNS_SERVER_LISTEN_MAX]; /* never an upstream: that would loop */
        DnsResolvWatch *resolv_watch;
        DnsTcpConnection *connections;
        size_t n_connections;
        DnsForward *forwards;
        size_t n_forwards;
};

#define LIST_PREPEND(head, item)             \
        do {                                 \
                (item)->prev = NULL;         \
                (item)->next = (head);       \
                if (head)                    \
                        (head)->prev = item; \
                (head) = item;               \
        } while (0)
#define LIST_REMOVE(head, item)                            \
        do {                                               \
                if ((item)->prev)                          \
                        (item)->prev->next = (item)->next; \
                else                                       \
                        (head) = (item)->next;             \
                if ((item)->next)                          \
                        (item)->next->prev = (item)->prev; \
        } while (0)

static void forward_free(DnsForward *f);
static int forward_start(DnsServer *s, const uint8_t *query, size_t size, DnsForward *where);
static void tcp_connection_free(DnsTcpConnection *c);
static void tcp_queue_reply(DnsTcpConnection *c, const uint8_t *reply, size_t size);

/* ---- answering ------------------------------------------------------------------------------ */

static void udp_send(int fd, const union sockaddr_union *to, const uint8_t *reply, size_t size) {
        if (sendto(fd, reply, size, MSG_DONTWAIT | MSG_NOSIGNAL, &to->sa, endpoint_socklen(to)) < 0)
                log_debug_errno(-errno, "DNS: failed to send a reply: %m");
}

/* Answers a SERVFAIL for query to where it came from. */
static void reply_servfail(const DnsForward *where, const uint8_t *query, size_t size) {
        _cleanup_free_ uint8_t *reply = NULL;
        size_t reply_size;

        if (dns_answer_error(query, size, 2 /* SERVFAIL */, &reply, &reply_size) < 0)
                return;
        if (where->conn)
                tcp_queue_reply(where->conn, reply, reply_size);
        else if (where->reply_fd >= 0)
                udp_send(where->reply_fd, &where->client, reply, reply_size);
}

/* One query from where (a UDP client or a TCP connection). */
static void server_handle_query(DnsServer *s, const uint8_t *query, size_t size, DnsForward *where) {
        _cleanup_free_ uint8_t *reply = NULL;
        size_t reply_size = 0;
        int r;

        r = dns_answer(s->names, query, size, where->max_size, &reply, &reply_size);
        if (r < 0) {
                log_debug_errno(r, "DNS: failed to answer a query: %m");
                return;
        }
        if (r == DNS_VERDICT_DROP)
                return;
        if (r == DNS_VERDICT_FORWARD) {
                if (forward_start(s, query, size, where) < 0)
                        reply_servfail(where, query, size);
                return;
        }
        if (where->conn)
                tcp_queue_reply(where->conn, reply, reply_size);
        else
                udp_send(where->reply_fd, &where->client, reply, reply_size);
}

/* Who may ask: mesh addresses (members through the tunnel, this host by
 * its own mesh address) and loopback. The listening addresses are mesh
 * addresses, but Linux takes a datagram for a local address on any
 * interface: without this a neighbour on the underlay, routing the mesh
 * range to us, would have an open resolver. A spoofed mesh source gets its
 * reply sent into the tunnel, never back to the spoofer. */
static bool client_allowed(const DnsServer *s, const union sockaddr_union *sa) {
        const DnsNameTable *t = s->names;
        union in_addr_union a = {}, prefix = {};

        if (sa->sa.sa_family == AF_INET) {
                a.in = sa->in.sin_addr;
                if ((ntohl(a.in.s_addr) >> 24) == 127)
                        return true;
                if (!t)
                        return false;
                prefix.in = t->ipv4_range;
                return in_addr_prefix_contains(AF_INET, &prefix, t->ipv4_prefixlen, &a);
        }
        if (sa->sa.sa_family != AF_INET6)
                return false;
        a.in6 = sa->in6.sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&a.in6))
                return true;
        if (!t || !t->has_ipv6_range)
                return false;
        prefix.in6 = t->ipv6_range;
        return in_addr_prefix_contains(AF_INET6, &prefix, t->ipv6_prefixlen, &a);
}

static int on_udp(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        DnsListener *l = userdata;

        /* a few datagrams a wakeup, then the rest of the loop gets a turn */
        for (unsigned i = 0; i < 32; i++) {
                uint8_t buf[DNS_MESSAGE_MAX];
                DnsForward where = { .reply_fd = fd };
                socklen_t len = sizeof(where.client);
                ssize_t n;

                n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, &where.client.sa, &len);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_debug_errno(-errno, "DNS: receive failed: %m");
                        break;
                }
                if (!client_allowed(l->server, &where.client))
                        continue; /* not even an error reply: no reflection */
                where.max_size = dns_query_max_udp_size(buf, (size_t) n);
                server_handle_query(l->server, buf, (size_t) n, &where);
        }
        return 0;
}

/* ---- TCP ------------------------------------------------------------------------------------ */

static void tcp_update_events(DnsTcpConnection *c) {
        (void) sd_event_source_set_io_events(c->io, EPOLLIN | (c->out_len > 0 ? EPOLLOUT : 0));
}

static void tcp_flush(DnsTcpConnection *c) {
        while (c->out_len > 0) {
                ssize_t n = send(c->fd, c->out, c->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        tcp_connection_free(c);
                        return;
                }
                memmove(c->out, c->out + n, c->out_len - (size_t) n);
                c->out_len -= (size_t) n;
        }
        tcp_update_events(c);
}

static void tcp_queue_reply(DnsTcpConnection *c, const uint8_t *reply, size_t size) {
        uint8_t *out;

        if (size > DNS_MESSAGE_MAX || c->out_len + 2 + size > DNS_TCP_OUT_MAX) {
                tcp_connection_free(c);
                return;
        }
        out = realloc(c->out, c->out_len + 2 + size);
        if (!out) {
                tcp_connection_free(c);
                return;
        }
        c->out = out;
        out[c->out_len] = (uint8_t) (size >> 8);
        out[c->out_len + 1] = (uint8_t) size;
        memcpy(out + c->out_len + 2, reply, size);
        c->out_len += 2 + size;
        tcp_flush(c);
}

static int tcp_restart_timer(DnsTcpConnection *c) {
        uint64_t now;
        int r;

        r = sd_event_now(c->server->event, CLOCK_MONOTONIC, &now);
        if (r >= 0)
                r = sd_event_source_set_time(c->timer, now + DNS_SERVER_TCP_IDLE_USEC);
        return r;
}

/* Every complete message in the input buffer, answered. */
static void tcp_process_input(DnsTcpConnection *c) {
        DnsServer *s = c->server;
        size_t used = 0;

        while (c->in_len - used >= 2) {
                size_t size = (size_t) c->in[used] << 8 | c->in[used + 1];
                DnsForward where = { .conn = c, .max_size = DNS_MESSAGE_MAX };

                size_t before = s->n_connections;

                if (c->in_len - used < 2 + size)
                        break;
                (void) tcp_restart_timer(c);
                server_handle_query(s, c->in + used + 2, size, &where);
                used += 2 + size;
                /* the connection may be gone now (a reply it could not take);
                 * no other one comes or goes meanwhile */
                if (s->n_connections != before)
                        return;
        }
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
}

static int on_tcp_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        DnsTcpConnection *c = userdata;
        ssize_t n;

        if (revents & EPOLLOUT) {
                DnsServer *s = c->server;
                size_t before = s->n_connections;

                tcp_flush(c);
                if (s->n_connections != before)
                        return 0; /* freed */
        }
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;

        n = recv(fd, c->in + c->in_len, 2 + DNS_MESSAGE_MAX - c->in_len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                tcp_connection_free(c);
                return 0;
        }
        c->in_len += (size_t) n;
        tcp_process_input(c);
        return 0;
}

static int on_tcp_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        tcp_connection_free(userdata);
        return 0;
}

static void tcp_connection_free(DnsTcpConnection *c) {
        DnsServer *s;

        if (!c)
                return;
        s = c->server;
        /* forwards still under way answer nobody now */
        for (DnsForward *f = s->forwards; f; f = f->next)
                if (f->conn == c) {
                        f->conn = NULL;
                        f->reply_fd = -EBADF;
                }
        LIST_REMOVE(s->connections, c);
        s->n_connections--;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        safe_close(c->fd);
        free(c->in);
        free(c->out);
        free(c);
}

static int tcp_connection_new(DnsServer *s, int fd) {
        DnsTcpConnection *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->server = s;
        c->fd = fd;
        LIST_PREPEND(s->connections, c);
        s->n_connections++;

        c->in = malloc(2 + DNS_MESSAGE_MAX);
        r = c->in ? sd_event_add_io(s->event, &c->io, fd, EPOLLIN, on_tcp_io, c) : -ENOMEM;
        if (r >= 0)
                r = sd_event_add_time_relative(s->event, &c->timer, CLOCK_MONOTONIC, DNS_SERVER_TCP_IDLE_USEC,
                                               0, on_tcp_timeout, c);
        if (r < 0) {
                tcp_connection_free(c);
                return r;
        }
        return 0;
}

/* One pending connection: false when there was none. */
static bool tcp_accept_one(DnsServer *s, int fd) {
        union sockaddr_union peer = {};
        socklen_t len = sizeof(peer);
        int cfd, r;

        cfd = accept4(fd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        log_debug_errno(-errno, "DNS: accept failed: %m");
                return false;
        }
        if (!client_allowed(s, &peer)) {
                safe_close(cfd);
                return true;
        }
        if (s->n_connections >= DNS_SERVER_TCP_MAX) {
                log_debug("DNS: %d TCP connections already, closing a new one.", DNS_SERVER_TCP_MAX);
                safe_close(cfd);
                return true;
        }
        r = tcp_connection_new(s, cfd);
        if (r < 0)
                log_debug_errno(r, "DNS: failed to take a TCP connection: %m");
        return true;
}

static int on_tcp_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        DnsListener *l = userdata;

        /* a few a wakeup: a burst of connections is not served one per loop turn */
        for (unsigned i = 0; i < 16 && tcp_accept_one(l->server, fd); i++)
                ;
        return 0;
}

/* ---- forwarding ----------------------------------------------------------------------------- */

static void forward_free(DnsForward *f) {
        if (!f)
                return;
        LIST_REMOVE(f->server->forwards, f);
        f->server->n_forwards--;
        sd_event_source_disable_unref(f->io);
        sd_event_source_disable_unref(f->timer);
        safe_close(f->fd);
        free(f->query);
        free(f->tcp_buf);
        free(f);
}

static void forward_deliver(DnsForward *f, uint8_t *reply, size_t size) {
        _cleanup_free_ uint8_t *cut = NULL;
        size_t cut_size;

        /* the client's own ID back */
        reply[0] = (uint8_t) (f->client_id >> 8);
        reply[1] = (uint8_t) f->client_id;
        if (f->conn) {
                tcp_queue_reply(f->conn, reply, size);
                return;
        }
        if (f->reply_fd < 0)
                return;
        if (size > f->max_size) {
                if (dns_reply_truncate(reply, size, f->max_size, &cut, &cut_size) < 0)
                        return;
                reply = cut;
                size = cut_size;
        }
        udp_send(f->reply_fd, &f->client, reply, size);
}

/* The upstream over TCP failed: the timer moves on (next upstream, or SERVFAIL). */
static void forward_tcp_fail(DnsForward *f) {
        f->io = sd_event_source_disable_unref(f->io);
        f->fd = safe_close(f->fd);
}

static int on_forward_tcp(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        DnsForward *f = userdata;
        ssize_t n;

        if (f->tcp_out_left > 0) {
                n = send(fd, f->tcp_buf + f->tcp_pos, f->tcp_out_left, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                if (n < 0) {
                        forward_tcp_fail(f);
                        return 0;
                }
                f->tcp_pos += (size_t) n;
                f->tcp_out_left -= (size_t) n;
                if (f->tcp_out_left == 0) {
                        f->tcp_pos = 0;
                        (void) sd_event_source_set_io_events(f->io, EPOLLIN);
                }
                return 0;
        }

        n = recv(fd, f->tcp_buf + f->tcp_pos, 2 + DNS_MESSAGE_MAX - f->tcp_pos, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                forward_tcp_fail(f);
                return 0;
        }
        f->tcp_pos += (size_t) n;
        size_t len = f->tcp_pos >= 2 ? (size_t) f->tcp_buf[0] << 8 | f->tcp_buf[1] : SIZE_MAX;
        if (len == SIZE_MAX || f->tcp_pos < 2 + len)
                return 0;
        if (len < DNS_HEADER_SIZE || (f->tcp_buf[2] << 8 | f->tcp_buf[3]) != f->id || !(f->tcp_buf[4] & 0x80)) {
                forward_tcp_fail(f);
                return 0;
        }
        forward_deliver(f, f->tcp_buf + 2, len);
        forward_free(f);
        return 0;
}

/* The query again, over TCP to the same upstream, with the same ID. */
static int forward_to_tcp(DnsForward *f) {
        DnsServer *s = f->server;
        const union sockaddr_union *up = &s->upstreams[f->attempt];
        uint64_t now;
        int r;

        f->io = sd_event_source_disable_unref(f->io);
        f->fd = safe_close(f->fd);
        if (!f->tcp_buf) {
                f->tcp_buf = malloc(2 + DNS_MESSAGE_MAX);
                if (!f->tcp_buf)
                        return -ENOMEM;
        }
        f->tcp_buf[0] = (uint8_t) (f->size >> 8);
        f->tcp_buf[1] = (uint8_t) f->size;
        memcpy(f->tcp_buf + 2, f->query, f->size);
        f->tcp_pos = 0;
        f->tcp_out_left = 2 + f->size;

        f->fd = socket(up->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (f->fd < 0)
                return -errno;
        if (connect(f->fd, &up->sa, endpoint_socklen(up)) < 0 && errno != EINPROGRESS)
                return -errno;
        r = sd_event_add_io(s->event, &f->io, f->fd, EPOLLOUT, on_forward_tcp, f);
        if (r >= 0)
                r = sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        if (r >= 0)
                r = sd_event_source_set_time(f->timer, now + DNS_SERVER_FORWARD_TIMEOUT_USEC);
        return r;
}

static int on_forward_reply(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        DnsForward *f = userdata;
        uint8_t buf[DNS_MESSAGE_MAX];
        ssize_t n;

        /* the socket is connected: the kernel passes only the upstream's datagrams */
        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 || (size_t) n < DNS_HEADER_SIZE)
                return 0;
        /* not the reply to our query (a stale or forged one): wait on */
        if ((buf[0] << 8 | buf[1]) != f->id || !(buf[2] & 0x80))
                return 0;
        /* too large for UDP: a TCP client gets the whole answer over TCP */
        if ((buf[2] & 0x02) && f->conn && forward_to_tcp(f) >= 0)
                return 0;
        forward_deliver(f, buf, (size_t) n);
        forward_free(f);
        return 0;
}

/* Sends the query to upstream number f->attempt, with a fresh ID and socket. */
static int forward_send(DnsForward *f) {
        DnsServer *s = f->server;
        const union sockaddr_union *up = &s->upstreams[f->attempt];
        int r;

        f->io = sd_event_source_disable_unref(f->io);
        f->fd = safe_close(f->fd);
        f->tcp_out_left = f->tcp_pos = 0;
        f->fd = socket(up->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (f->fd < 0)
                return -errno;
        if (connect(f->fd, &up->sa, endpoint_socklen(up)) < 0)
                return -errno;
        r = sd_event_add_io(s->event, &f->io, f->fd, EPOLLIN, on_forward_reply, f);
        if (r < 0)
                return r;

        f->id = (uint16_t) randombytes_uniform(65536);
        f->query[0] = (uint8_t) (f->id >> 8);
        f->query[1] = (uint8_t) f->id;
        if (send(f->fd, f->query, f->size, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                return -errno;
        return 0;
}

static int on_forward_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        DnsForward *f = userdata;
        int r = -ETIMEDOUT;

        while (++f->attempt < f->server->n_upstreams) {
                r = forward_send(f);
                if (r >= 0)
                        break;
        }
        if (r >= 0 && sd_event_source_set_time(f->timer, usec + DNS_SERVER_FORWARD_TIMEOUT_USEC) >= 0)
                return 0;

        /* nobody answered: SERVFAIL with the client's ID */
        f->query[0] = (uint8_t) (f->client_id >> 8);
        f->query[1] = (uint8_t) f->client_id;
        reply_servfail(f, f->query, f->size);
        forward_free(f);
        return 0;
}

static int forward_start(DnsServer *s, const uint8_t *query, size_t size, DnsForward *where) {
        DnsForward *f;
        int r = -EHOSTUNREACH;

        if (s->n_upstreams == 0 || s->n_forwards >= DNS_SERVER_FORWARDS_MAX || size < DNS_HEADER_SIZE)
                return -EBUSY;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        *f = *where;
        f->server = s;
        f->fd = -EBADF;
        f->io = f->timer = NULL;
        f->client_id = (uint16_t) (query[0] << 8 | query[1]);
        f->query = malloc(size);
        if (f->query)
                memcpy(f->query, query, size);
        f->size = size;
        LIST_PREPEND(s->forwards, f);
        s->n_forwards++;
        if (!f->query) {
                forward_free(f);
                return -ENOMEM;
        }

        for (; f->attempt < s->n_upstreams; f->attempt++) {
                r = forward_send(f);
                if (r >= 0)
                        break;
                log_debug_errno(r, "DNS: failed to forward a query: %m");
        }
        if (r >= 0)
                r = sd_event_add_time_relative(s->event, &f->timer, CLOCK_MONOTONIC,
                                               DNS_SERVER_FORWARD_TIMEOUT_USEC, 0, on_forward_timeout, f);
        if (r < 0)
                forward_free(f);
        return r;
}

/* ---- the server ----------------------------------------------------------------------------- */

static int listener_socket(const union sockaddr_union *sa, int type) {
        _cleanup_close_ int fd = -EBADF;
        int one = 1;

        fd = socket(sa->sa.sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        /* the mesh address may come up after us (the device is configured later) */
        if (sa->sa.sa_family == AF_INET)
                (void) setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
        else {
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        }
        if (bind(fd, &sa->sa, endpoint_socklen(sa)) < 0)
                return -errno;
        if (type == SOCK_STREAM && listen(fd, DNS_SERVER_TCP_MAX) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static int listener_open(DnsServer *s, DnsListener *l, const union sockaddr_union *sa) {
        char text[ENDPOINT_STRLEN];
        int r;

        *l = (DnsListener) { .server = s, .udp_fd = -EBADF, .tcp_fd = -EBADF };
        (void) endpoint_format(sa, text, sizeof(text));

        l->udp_fd = listener_socket(sa, SOCK_DGRAM);
        if (l->udp_fd < 0)
                return log_error_errno(l->udp_fd, "Failed to bind DNS (UDP) to %s: %m", text);
        l->tcp_fd = listener_socket(sa, SOCK_STREAM);
        if (l->tcp_fd < 0)
                return log_error_errno(l->tcp_fd, "Failed to bind DNS (TCP) to %s: %m", text);
        r = sd_event_add_io(s->event, &l->udp_source, l->udp_fd, EPOLLIN, on_udp, l);
        if (r >= 0)
                r = sd_event_add_io(s->event, &l->tcp_source, l->tcp_fd, EPOLLIN, on_tcp_accept, l);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the DNS sockets: %m");
        log_info("Mesh DNS on %s (UDP and TCP).", text);
        return 0;
}

int dns_server_new(sd_event *event, const union sockaddr_union *listen, size_t n_listen, DnsServer **ret) {
        _cleanup_(dns_server_freep) DnsServer *s = NULL;
        int r;

        if (!event || (!listen && n_listen > 0) || n_listen > DNS_SERVER_LISTEN_MAX || !ret)
                return -EINVAL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return log_oom();
        s->event = sd_event_ref(event);
        if (sodium_init() < 0)
                return log_error_errno(-EIO, "Failed to initialise libsodium.");

        for (size_t i = 0; i < n_listen; i++) {
                s->listen[i] = listen[i];
                r = listener_open(s, &s->listeners[i], &listen[i]);
                s->n_listeners++;
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

DnsServer *dns_server_free(DnsServer *s) {
        if (!s)
                return NULL;
        dns_resolv_watch_free(s->resolv_watch);
        while (s->forwards)
                forward_free(s->forwards);
        while (s->connections)
                tcp_connection_free(s->connections);
        for (size_t i = 0; i < s->n_listeners; i++) {
                sd_event_source_disable_unref(s->listeners[i].udp_source);
                sd_event_source_disable_unref(s->listeners[i].tcp_source);
                safe_close(s->listeners[i].udp_fd);
                safe_close(s->listeners[i].tcp_fd);
        }
        dns_name_table_free(s->names);
        sd_event_unref(s->event);
        return mfree(s);
}

void dns_server_set_names(DnsServer *s, DnsNameTable *t) {
        if (!s) {
                dns_name_table_free(t);
                return;
        }
        dns_name_table_free(s->names);
        s->names = t;
}

int dns_server_set_upstreams(DnsServer *s, const union sockaddr_union *servers, size_t n) {
        if (!s || (!servers && n > 0))
                return -EINVAL;
        n = MIN(n, (size_t) DNS_SERVER_UPSTREAMS_MAX);
        for (size_t i = 0; i < n; i++) {
                s->upstreams[i] = servers[i];
                if (servers[i].sa.sa_family == AF_INET && servers[i].in.sin_port == 0)
                        s->upstreams[i].in.sin_port = htons(53);
                else if (servers[i].sa.sa_family == AF_INET6 && servers[i].in6.sin6_port == 0)
                        s->upstreams[i].in6.sin6_port = htons(53);
        }
        s->n_upstreams = n;
        return 0;
}

size_t dns_server_get_upstreams(const DnsServer *s, union sockaddr_union ret[static DNS_SERVER_UPSTREAMS_MAX]) {
        memcpy(ret, s->upstreams, s->n_upstreams * sizeof(s->upstreams[0]));
        return s->n_upstreams;
}

int dns_server_watch_resolv_conf(DnsServer *s, const char *path) {
        if (!s || !path)
                return -EINVAL;
        s->resolv_watch = dns_resolv_watch_free(s->resolv_watch);
        return dns_resolv_watch_new(s->event, s, path, s->listen, s->n_listeners, &s->resolv_watch);
}
