/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "log.h"
#include "rate-limit.h"
#include "relay-frame.h"
#include "relay-server.h"
#include "time-util.h"

/* What one wakeup of a stream may move before the loop serves the others:
 * a busy stream must not starve the rest of the event loop. */
#define RELAY_READ_BUDGET (64 * 1024)
#define RELAY_DATAGRAM_BUDGET 64
/* A node behind the relay handshakes with the hub only (its peers are
 * reached inside that tunnel): one every few seconds. Each initiation costs
 * the hub a Diffie-Hellman, so a stream gets no more than this. */
#define RELAY_HANDSHAKE_RATE 10
#define RELAY_HANDSHAKE_BURST 20

struct RelayStream {
        RelayServer *server;
        RelayStream *prev, *next;

        int fd; /* the upgraded socket: borrowed, the connection owns it */
        RelayStreamOwner owner;
        int udp_fd;
        union sockaddr_union local; /* 127.0.0.1:port, the hub sees the node here */
        char local_text[ENDPOINT_STRLEN];
        sd_event_source *fd_source, *udp_source, *net_source;

        int64_t id;
        char *name;
        WgKey key;

        RelayFrameReader reader;
        RelayQueue out;
        uint64_t last_frame_usec;    /* CLOCK_MONOTONIC: the last valid frame from the node */
        uint64_t last_progress_usec; /* the last write to the node, or when the queue filled from empty */
        uint64_t dropped;            /* datagrams for the node that did not fit */
        RateLimit handshakes;
};

struct RelayServer {
        sd_event *event;
        uint16_t hub_port;
        unsigned max_streams;
        RelayServerHooks hooks;

        RelayStream *streams;
        size_t n_streams;
        sd_event_source *tick;
};

/* ---- the queue towards the node ---- */

int relay_queue_init(RelayQueue *q, size_t size) {
        *q = (RelayQueue) { .buf = malloc(size), .size = size };
        return q->buf ? 0 : -ENOMEM;
}

void relay_queue_done(RelayQueue *q) {
        free(q->buf);
        *q = (RelayQueue) {};
}

static void relay_queue_put(RelayQueue *q, const uint8_t *p, size_t len) {
        size_t tail = (q->head + q->used) % q->size;
        size_t first = MIN(len, q->size - tail);

        memcpy(q->buf + tail, p, first);
        memcpy(q->buf, p + first, len - first);
        q->used += len;
}

int relay_queue_push_frame(RelayQueue *q, const uint8_t *payload, size_t len) {
        uint8_t header[RELAY_FRAME_HEADER_SIZE];

        if (len == 0 || len > RELAY_FRAME_MAX)
                return -EINVAL;
        if (q->size - q->used < len + RELAY_FRAME_HEADER_SIZE)
                return -ENOBUFS;
        relay_frame_header(len, header);
        relay_queue_put(q, header, sizeof(header));
        relay_queue_put(q, payload, len);
        return 0;
}

ssize_t relay_queue_flush(RelayQueue *q, int fd) {
        size_t done = 0;

        while (q->used > 0) {
                struct iovec iov[2];
                size_t first = MIN(q->used, q->size - q->head);
                int n_iov = 1;
                ssize_t n;

                iov[0] = (struct iovec) { q->buf + q->head, first };
                if (first < q->used)
                        iov[n_iov++] = (struct iovec) { q->buf, q->used - first };
                n = sendmsg(fd, &(struct msghdr) { .msg_iov = iov, .msg_iovlen = n_iov },
                            MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        return -errno;
                }
                if (n == 0)
                        break;
                q->head = (q->head + (size_t) n) % q->size;
                q->used -= (size_t) n;
                done += (size_t) n;
        }
        return (ssize_t) done;
}

/* ---- one stream ---- */

static void relay_server_arm_tick(RelayServer *rs);

static RelayStream *relay_stream_free(RelayStream *st) {
        if (!st)
                return NULL;
        sd_event_source_disable_unref(st->fd_source);
        sd_event_source_disable_unref(st->udp_source);
        sd_event_source_disable_unref(st->net_source);
        safe_close(st->udp_fd);
        relay_queue_done(&st->out);
        free(st->name);
        free(st);
        return NULL;
}

/* The one line every closed stream gets, naming its node (MESHD_PEER=) and
 * why; then the connection is let go. */
_printf_(3, 4) static void relay_stream_close(RelayStream *st, int level, const char *format, ...) {
        RelayServer *rs = st->server;
        char reason[256];
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(reason, sizeof(reason), format, ap);
        va_end(ap);
        log_peer_full_errno_fields(st->name, level, 0, (.endpoint = st->local_text, .path = "relay"),
                                   "Relay stream of node %s closed: %s.", st->name, reason);

        if (st->prev)
                st->prev->next = st->next;
        else
                rs->streams = st->next;
        if (st->next)
                st->next->prev = st->prev;
        rs->n_streams--;

        RelayStreamOwner owner = st->owner;
        relay_stream_free(st);
        relay_server_arm_tick(rs);
        /* last: the owner may free the socket st watched */
        owner.closed(owner.connection, owner.userdata);
}

static void relay_stream_update_events(RelayStream *st) {
        int r = sd_event_source_set_io_events(st->fd_source, EPOLLIN | (st->out.used > 0 ? EPOLLOUT : 0));
        if (r < 0)
                (void) log_warning_errno(r, "Relay stream of node %s: failed to update events: %m", st->name);
}

static void relay_stream_kick(RelayStream *st) {
        if (st->owner.kick)
                st->owner.kick(st->owner.userdata);
}

/* 0, or -EPIPE when the stream was closed. */
static int relay_stream_flush(RelayStream *st) {
        ssize_t n = relay_queue_flush(&st->out, st->fd);

        if (n < 0) {
                relay_stream_close(st, LOG_INFO, "write failed: %s", strerror((int) -n));
                return -EPIPE;
        }
        if (n > 0) {
                st->last_progress_usec = clock_usec(CLOCK_MONOTONIC);
                relay_stream_kick(st);
        }
        relay_stream_update_events(st);
        return 0;
}

static void relay_stream_forward(RelayStream *st, const uint8_t *payload, size_t len, uint64_t now) {
        RelayServer *rs = st->server;
        bool handshake = payload[0] == 1 || payload[0] == 2;

        st->last_frame_usec = now;
        if (handshake && !rate_limit_take(&st->handshakes, now))
                return; /* dropped, like the hub firewall drops a UDP handshake flood */
        if (send(st->udp_fd, payload, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
                /* a full socket buffer, or the hub not there (ICMP): lost like UDP */
                log_debug_errno(-errno, "Relay stream of node %s: datagram to the hub lost: %m", st->name);
                return;
        }
        if (handshake && rs->hooks.handshake_forwarded)
                rs->hooks.handshake_forwarded(rs->hooks.userdata);
}

/* Frames bytes from the node and hands each to the hub. 0, or -EPIPE when
 * the stream was closed for what it sent. */
static int relay_stream_consume(RelayStream *st, const uint8_t *data, size_t len) {
        uint64_t now = clock_usec(CLOCK_MONOTONIC);

        while (len > 0) {
                const uint8_t *payload;
                size_t n;
                RelayFrameVerdict v;
                int r;

                r = relay_frame_reader_feed(&st->reader, &data, &len, &payload, &n);
                if (r == -EMSGSIZE) {
                        size_t declared = (size_t) st->reader.buf[0] << 8 | st->reader.buf[1];
                        relay_stream_close(st, LOG_WARNING, "%s (declared length %zu)",
                                           relay_frame_verdict_to_string(declared == 0 ? RELAY_FRAME_EMPTY
                                                                                       : RELAY_FRAME_OVERSIZED),
                                           declared);
                        return -EPIPE;
                }
                if (r <= 0)
                        break;
                v = relay_frame_check(payload, n);
                if (v != RELAY_FRAME_OK) {
                        relay_stream_close(st, LOG_WARNING, "%s (%zu bytes, type %u)",
                                           relay_frame_verdict_to_string(v), n, payload[0]);
                        return -EPIPE;
                }
                relay_stream_forward(st, payload, n, now);
        }
        return 0;
}

static int on_stream_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        RelayStream *st = userdata;
        uint8_t buf[16384];
        size_t budget = RELAY_READ_BUDGET;

        if (revents & EPOLLOUT && relay_stream_flush(st) < 0)
                return 0;
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;

        /* what we take makes room for more from the network */
        relay_stream_kick(st);
        while (budget > 0) {
                ssize_t n = recv(fd, buf, MIN(sizeof(buf), budget), MSG_DONTWAIT);

                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        relay_stream_close(st, LOG_INFO, "read failed: %m");
                        return 0;
                }
                if (n == 0) {
                        relay_stream_close(st, LOG_INFO, "connection closed by the node");
                        return 0;
                }
                if (relay_stream_consume(st, buf, (size_t) n) < 0)
                        return 0;
                budget -= (size_t) n;
        }
        return 0;
}

/* The network socket is the connection's: we only learn that it moved. */
static int on_net_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        RelayStream *st = userdata;

        /* MHD (0.9.75) stops reading a TLS connection whose peer hung up but
         * never tells the upgraded socket; this is how we learn it */
        if (revents & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                relay_stream_close(st, LOG_INFO, "connection closed by the node");
                return 0;
        }
        relay_stream_kick(st);
        return 0;
}

static int on_udp_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        RelayStream *st = userdata;
        static_assert(RELAY_FRAME_MAX < 16384, "datagram buffer too small");
        uint8_t buf[16384];
        bool was_empty = st->out.used == 0;

        for (unsigned i = 0; i < RELAY_DATAGRAM_BUDGET; i++) {
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);

                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        continue; /* ECONNREFUSED from an earlier send: nothing to do */
                }
                /* WireGuard never sends an empty or a jumbo datagram */
                if (n == 0 || n > RELAY_FRAME_MAX)
                        continue;
                if (relay_queue_push_frame(&st->out, buf, (size_t) n) < 0)
                        st->dropped++;
        }
        if (st->out.used == 0)
                return 0;
        if (was_empty)
                st->last_progress_usec = clock_usec(CLOCK_MONOTONIC);
        (void) relay_stream_flush(st);
        return 0;
}

static int relay_stream_open_socket(RelayStream *st, uint16_t hub_port) {
        union sockaddr_union hub = { .in = { .sin_family = AF_INET,
                                             .sin_port = htons(hub_port),
                                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) } };
        union sockaddr_union local = { .in = { .sin_family = AF_INET,
                                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) } };
        socklen_t len = sizeof(st->local.in);

        st->udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (st->udp_fd < 0)
                return -errno;
        if (bind(st->udp_fd, &local.sa, sizeof(local.in)) < 0)
                return -errno;
        /* connect()ed: the kernel drops datagrams from anyone but the hub */
        if (connect(st->udp_fd, &hub.sa, sizeof(hub.in)) < 0)
                return -errno;
        if (getsockname(st->udp_fd, &st->local.sa, &len) < 0)
                return -errno;
        (void) endpoint_format(&st->local, st->local_text, sizeof(st->local_text));
        return 0;
}

static RelayStream *relay_server_find(const RelayServer *rs, int64_t id) {
        for (RelayStream *st = rs->streams; st; st = st->next)
                if (st->id == id)
                        return st;
        return NULL;
}

bool relay_server_has_room(const RelayServer *rs, int64_t id) {
        return rs->n_streams < rs->max_streams || relay_server_find(rs, id);
}

size_t relay_server_n_streams(const RelayServer *rs) {
        return rs->n_streams;
}

static int relay_stream_new(RelayServer *rs, int fd, int net_fd, const RelayStreamOwner *owner, int64_t id,
                            const char *name, const WgKey *key, RelayStream **ret) {
        RelayStream *st;
        uint64_t now = clock_usec(CLOCK_MONOTONIC);
        int r;

        st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        *st = (RelayStream) {
                .server = rs,
                .fd = fd,
                .owner = *owner,
                .udp_fd = -EBADF,
                .id = id,
                .name = strdup(name),
                .key = *key,
                .last_frame_usec = now,
                .last_progress_usec = now,
        };
        strcpy(st->local_text, "?");
        rate_limit_init(&st->handshakes, RELAY_HANDSHAKE_RATE, RELAY_HANDSHAKE_BURST, now);
        r = st->name ? relay_queue_init(&st->out, RELAY_QUEUE_MAX) : -ENOMEM;
        if (r >= 0)
                r = relay_stream_open_socket(st, rs->hub_port);
        if (r >= 0)
                r = sd_event_add_io(rs->event, &st->fd_source, fd, EPOLLIN, on_stream_io, st);
        if (r >= 0)
                r = sd_event_add_io(rs->event, &st->udp_source, st->udp_fd, EPOLLIN, on_udp_io, st);
        if (r >= 0 && net_fd >= 0)
                r = sd_event_add_io(rs->event, &st->net_source, net_fd,
                                    EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, on_net_io, st);
        if (r < 0) {
                relay_stream_free(st);
                return r;
        }
        *ret = st;
        return 0;
}

int relay_server_add(RelayServer *rs, int fd, int net_fd, void *connection, int64_t id, const char *name,
                     const WgKey *key, const uint8_t *extra, size_t n_extra) {
        const RelayStreamOwner owner = {
                .closed = rs->hooks.closed,
                .kick = rs->hooks.kick,
                .connection = connection,
                .userdata = rs->hooks.userdata,
        };
        return relay_server_add_owned(rs, fd, net_fd, &owner, id, name, key, extra, n_extra);
}

int relay_server_add_owned(RelayServer *rs, int fd, int net_fd, const RelayStreamOwner *owner, int64_t id,
                           const char *name, const WgKey *key, const uint8_t *extra, size_t n_extra) {
        RelayStream *st, *old;
        int r;

        old = relay_server_find(rs, id);
        if (old)
                relay_stream_close(old, LOG_INFO, "replaced by a new stream of the same node");
        if (rs->n_streams >= rs->max_streams) {
                log_peer_full_errno_fields(name, LOG_WARNING, 0, (.path = "relay"),
                                           "Relay stream of node %s refused: %u streams already.", name,
                                           rs->max_streams);
                owner->closed(owner->connection, owner->userdata);
                return -EBUSY;
        }

        r = relay_stream_new(rs, fd, net_fd, owner, id, name, key, &st);
        if (r < 0) {
                log_peer_full_errno_fields(name, LOG_ERR, r, (.path = "relay"),
                                           "Relay stream of node %s failed to start: %m", name);
                owner->closed(owner->connection, owner->userdata);
                return r;
        }
        st->next = rs->streams;
        if (rs->streams)
                rs->streams->prev = st;
        rs->streams = st;
        rs->n_streams++;
        relay_server_arm_tick(rs);

        log_peer_full_errno_fields(name, LOG_INFO, 0, (.endpoint = st->local_text, .path = "relay"),
                                   "Relay stream of node %s open, the hub sees it at %s.", name,
                                   st->local_text);
        if (n_extra > 0 && relay_stream_consume(st, extra, n_extra) < 0)
                return -EPIPE;
        return 0;
}

/* ---- checks across streams ---- */

static void relay_stream_check(RelayStream *st, uint64_t now) {
        RelayServer *rs = st->server;

        if (rs->hooks.is_member && !rs->hooks.is_member(st->id, &st->key, rs->hooks.userdata))
                relay_stream_close(st, LOG_NOTICE, "node removed or expired");
        else if (now - st->last_frame_usec >= RELAY_IDLE_USEC)
                relay_stream_close(st, LOG_INFO, "no frame for %u s",
                                   (unsigned) (RELAY_IDLE_USEC / USEC_PER_SEC));
        else if (st->out.used > 0 && now - st->last_progress_usec >= RELAY_STALL_USEC)
                relay_stream_close(st, LOG_WARNING,
                                   "the node stopped reading (no progress for %u s, %zu bytes queued, %" PRIu64
                                   " datagrams dropped)",
                                   (unsigned) (RELAY_STALL_USEC / USEC_PER_SEC), st->out.used, st->dropped);
}

void relay_server_check_timeouts(RelayServer *rs, uint64_t now_usec) {
        for (RelayStream *st = rs->streams, *next; st; st = next) {
                next = st->next;
                relay_stream_check(st, now_usec);
        }
}

static int on_tick(sd_event_source *source, uint64_t usec, void *userdata) {
        RelayServer *rs = userdata;

        relay_server_check_timeouts(rs, clock_usec(CLOCK_MONOTONIC));
        relay_server_arm_tick(rs);
        return 0;
}

/* The tick runs while there are streams: armed by the first, it re-arms
 * itself until the last is gone. */
static void relay_server_arm_tick(RelayServer *rs) {
        int enabled = SD_EVENT_OFF, r;

        if (!rs->tick || rs->n_streams == 0)
                return;
        (void) sd_event_source_get_enabled(rs->tick, &enabled);
        if (enabled != SD_EVENT_OFF)
                return;
        r = sd_event_source_set_time_relative(rs->tick, RELAY_TICK_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(rs->tick, SD_EVENT_ONESHOT);
        if (r < 0)
                (void) log_warning_errno(r, "Failed to arm the relay tick: %m");
}

void relay_server_check_members(RelayServer *rs) {
        if (!rs->hooks.is_member)
                return;
        for (RelayStream *st = rs->streams, *next; st; st = next) {
                next = st->next;
                if (!rs->hooks.is_member(st->id, &st->key, rs->hooks.userdata))
                        relay_stream_close(st, LOG_NOTICE, "node removed or expired");
        }
}

static RelayStream *relay_server_find_local(const RelayServer *rs, const union sockaddr_union *sa) {
        if (sa->sa.sa_family != AF_INET || sa->in.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
                return NULL;
        for (RelayStream *st = rs->streams; st; st = st->next)
                if (st->local.in.sin_port == sa->in.sin_port)
                        return st;
        return NULL;
}

static RelayStream *relay_server_find_key(const RelayServer *rs, const WgKey *key) {
        for (RelayStream *st = rs->streams; st; st = st->next)
                if (key_equal(&st->key, key))
                        return st;
        return NULL;
}

/* Another node's hub entry at st's socket: st carried that node's packets
 * (a captured handshake or transport datagram), and the hub, roaming as
 * WireGuard does, now sends that node's traffic here. */
static void relay_stream_foreign_peer(RelayStream *st, const WgKey *victim) {
        RelayServer *rs = st->server;
        const RelayStream *own = relay_server_find_key(rs, victim);
        union sockaddr_union restored = {};
        char victim_b64[WG_KEY_B64_LEN + 1], text[ENDPOINT_STRLEN] = "none";
        int r = 0;

        if (own)
                restored = own->local;
        if (rs->hooks.restore_endpoint)
                r = rs->hooks.restore_endpoint(victim, &restored, rs->hooks.userdata);
        if (r >= 0 && restored.sa.sa_family != AF_UNSPEC)
                (void) endpoint_format(&restored, text, sizeof(text));
        key_to_base64(victim, victim_b64);
        relay_stream_close(st, LOG_WARNING,
                           "it carried the packets of node %s (its hub entry was at this stream's socket); "
                           "that entry %s %s",
                           victim_b64, r < 0 ? "could not be put back:" : "is put back to",
                           r < 0 ? strerror(-r) : text);
}

void relay_server_check_peers(RelayServer *rs, const WgDevice *d) {
        if (rs->n_streams == 0)
                return;
        for (size_t i = 0; i < d->n_peers; i++) {
                const WgPeer *p = d->peers + i;
                RelayStream *st = relay_server_find_local(rs, &p->endpoint);

                if (st && !key_equal(&st->key, &p->public_key))
                        relay_stream_foreign_peer(st, &p->public_key);
        }
}

/* ---- the server ---- */

int relay_server_new(sd_event *event, uint16_t hub_port, unsigned max_streams, const RelayServerHooks *hooks,
                     RelayServer **ret) {
        _cleanup_(relay_server_freep) RelayServer *rs = NULL;
        int r;

        if (!hooks || !hooks->closed || hub_port == 0)
                return -EINVAL;
        rs = calloc(1, sizeof(*rs));
        if (!rs)
                return -ENOMEM;
        rs->event = sd_event_ref(event);
        rs->hub_port = hub_port;
        rs->max_streams = max_streams;
        rs->hooks = *hooks;

        r = sd_event_add_time_relative(event, &rs->tick, CLOCK_MONOTONIC, RELAY_TICK_USEC, 100 * USEC_PER_MSEC,
                                       on_tick, rs);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(rs->tick, SD_EVENT_OFF);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(rs);
        return 0;
}

RelayServer *relay_server_free(RelayServer *rs) {
        if (!rs)
                return NULL;
        while (rs->streams)
                relay_stream_close(rs->streams, LOG_INFO, "server shutting down");
        sd_event_source_disable_unref(rs->tick);
        sd_event_unref(rs->event);
        free(rs);
        return NULL;
}
