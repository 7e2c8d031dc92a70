/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <cjson/cJSON.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "log.h"
#include "relay-admit.h"
#include "relay-frame.h"
#include "relay-head.h"
#include "relay-listener.h"
#include "time-util.h"

/* gnutls_record_send() takes one record at a time */
#define TLS_RECORD_MAX 16384
#define ACCEPT_BUDGET 64
#define ACCEPT_PAUSE_USEC USEC_PER_SEC

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

typedef enum ConnState {
        CONN_HANDSHAKE,
        CONN_HEAD,
        CONN_REFUSING, /* the error reply goes out, then the connection closes */
        CONN_RELAYING, /* after the 101: the pump */
        CONN_HUNG_UP,  /* the node is gone; waiting for RelayServer to let the stream go */
        CONN_CLOSING,  /* the stream closed at its start (bad first frames): the 101 goes out, then the close */
} ConnState;

typedef struct Conn Conn;
struct Conn {
        RelayListener *listener;
        Conn *prev, *next;
        ConnState state;

        int fd;
        gnutls_session_t tls;
        sd_event_source *io, *deadline;
        union sockaddr_union peer;
        char peer_text[ENDPOINT_STRLEN];

        char *head; /* RELAY_HEAD_MAX + 1, until the answer */
        size_t head_len;

        /* after the 101: pair_fd ours, stream_fd RelayServer's (borrowed by it) */
        int pair_fd, stream_fd;
        sd_event_source *pair_io;
        uint8_t *in, *out; /* TLS → pair, pair → TLS (and the replies) */
        size_t in_start, in_end, out_start, out_end;
        size_t send_pending; /* a record gnutls took but could not send yet */
        bool tls_eof;
        bool in_add, stream_gone;
        bool draining; /* refusing or closing: the reply is out, reading to the end */
};

struct RelayListener {
        sd_event *event;
        Store *store;
        RelayServer *relay;
        gnutls_certificate_credentials_t creds;
        gnutls_priority_t priority;

        int fd;
        uint16_t port;
        char address_text[ENDPOINT_STRLEN];
        sd_event_source *accept_source, *accept_pause;

        Conn *conns;
        size_t n_pending; /* not yet relaying */
};

/* ---- one connection ---- */

static bool conn_is_pending(const Conn *c) {
        return c->state < CONN_RELAYING;
}

static Conn *conn_free(Conn *c) {
        RelayListener *l;

        if (!c)
                return NULL;
        l = c->listener;
        if (c->prev)
                c->prev->next = c->next;
        else
                l->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        if (conn_is_pending(c))
                l->n_pending--;

        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->deadline);
        sd_event_source_disable_unref(c->pair_io);
        if (c->tls)
                gnutls_deinit(c->tls);
        safe_close(c->fd);
        safe_close(c->pair_fd);
        safe_close(c->stream_fd);
        if (c->head)
                erase_and_free(c->head, RELAY_HEAD_MAX + 1); /* it held a token */
        free(c->in);
        free(c->out);
        free(c);
        return NULL;
}

static void conn_set_events(Conn *c, sd_event_source *s, uint32_t events) {
        int r = sd_event_source_set_io_events(s, events);
        if (r < 0)
                (void) log_warning_errno(r, "Relay connection from %s: failed to update events: %m",
                                         c->peer_text);
}

static void conn_leave_pending(Conn *c, ConnState state) {
        if (conn_is_pending(c))
                c->listener->n_pending--;
        c->state = state;
        c->deadline = sd_event_source_disable_unref(c->deadline);
}

/* The node went away (or broke the TLS stream): closing our end of the
 * socketpair makes RelayServer read EOF and close the stream, with its own
 * log line; its closed hook then frees c. */
static void conn_hang_up(Conn *c) {
        c->io = sd_event_source_disable_unref(c->io);
        c->pair_io = sd_event_source_disable_unref(c->pair_io);
        c->pair_fd = safe_close(c->pair_fd);
        if (c->tls) {
                gnutls_deinit(c->tls);
                c->tls = NULL;
        }
        c->fd = safe_close(c->fd);
        c->state = CONN_HUNG_UP;
        if (c->stream_gone)
                conn_free(c);
}

/* ---- the pump ---- */

/* 1: moved bytes, 0: nothing to do now, -EPIPE: the node is gone. */
static int pump_tls_to_in(Conn *c) {
        int moved = 0;

        while (!c->tls_eof && c->in_end < RELAY_LISTENER_BUFFER) {
                ssize_t n = gnutls_record_recv(c->tls, c->in + c->in_end, RELAY_LISTENER_BUFFER - c->in_end);

                if (n > 0) {
                        c->in_end += (size_t) n;
                        moved = 1;
                } else if (n == 0)
                        c->tls_eof = true;
                else if (n == GNUTLS_E_AGAIN)
                        break;
                else if (n == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal((int) n))
                        continue;
                else {
                        log_debug("Relay connection from %s: TLS read failed: %s", c->peer_text,
                                  gnutls_strerror((int) n));
                        return -EPIPE;
                }
        }
        return moved;
}

static int pump_in_to_pair(Conn *c) {
        ssize_t n;

        if (c->in_start == c->in_end)
                return 0;
        n = send(c->pair_fd, c->in + c->in_start, c->in_end - c->in_start, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -EPIPE;
        c->in_start += (size_t) n;
        if (c->in_start == c->in_end)
                c->in_start = c->in_end = 0;
        return n > 0;
}

static int pump_pair_to_out(Conn *c) {
        int moved = 0;

        /* the bytes of a pending record must stay where gnutls saw them */
        if (c->send_pending == 0 && c->out_start > 0) {
                memmove(c->out, c->out + c->out_start, c->out_end - c->out_start);
                c->out_end -= c->out_start;
                c->out_start = 0;
        }
        while (c->out_end < RELAY_LISTENER_BUFFER) {
                ssize_t n =
                        recv(c->pair_fd, c->out + c->out_end, RELAY_LISTENER_BUFFER - c->out_end, MSG_DONTWAIT);
                if (n > 0) {
                        c->out_end += (size_t) n;
                        moved = 1;
                } else if (n == 0 || errno == EAGAIN)
                        break; /* EOF: RelayServer never shuts its end, it closes through the hook */
                else if (errno != EINTR)
                        return -EPIPE;
        }
        return moved;
}

static int pump_out_to_tls(Conn *c) {
        int moved = 0;

        while (c->out_start < c->out_end) {
                size_t len = c->send_pending ?: MIN(c->out_end - c->out_start, (size_t) TLS_RECORD_MAX);
                ssize_t n = gnutls_record_send(c->tls, c->out + c->out_start, len);

                if (n > 0) {
                        c->out_start += (size_t) n;
                        c->send_pending = 0;
                        moved = 1;
                } else if (n == GNUTLS_E_AGAIN) {
                        c->send_pending = len;
                        break;
                } else if (n == GNUTLS_E_INTERRUPTED) {
                        c->send_pending = len;
                } else {
                        log_debug("Relay connection from %s: TLS write failed: %s", c->peer_text,
                                  gnutls_strerror((int) n));
                        return -EPIPE;
                }
        }
        if (c->out_start == c->out_end && c->send_pending == 0)
                c->out_start = c->out_end = 0;
        return moved;
}

/* Moves what both sides allow, until nothing moves: each step is bounded by
 * a buffer, and the socketpair fills when RelayServer has not run. Records
 * gnutls already decrypted (gnutls_record_check_pending()) are read in the
 * same loop, since the TCP socket will not wake us for them. */
static void conn_pump(Conn *c) {
        for (;;) {
                int a, b, d, e;

                a = pump_tls_to_in(c);
                b = a < 0 ? a : pump_in_to_pair(c);
                d = b < 0 ? b : pump_pair_to_out(c);
                e = d < 0 ? d : pump_out_to_tls(c);
                if (a < 0 || b < 0 || d < 0 || e < 0) {
                        conn_hang_up(c);
                        return;
                }
                if (c->tls_eof && c->in_start == c->in_end) {
                        log_debug("Relay connection from %s: the node closed its TLS stream.", c->peer_text);
                        conn_hang_up(c);
                        return;
                }
                if (a + b + d + e == 0)
                        break;
        }
        conn_set_events(c, c->io,
                        (!c->tls_eof && c->in_end < RELAY_LISTENER_BUFFER ? EPOLLIN : 0) |
                                (c->out_start < c->out_end ? EPOLLOUT : 0));
        conn_set_events(c, c->pair_io,
                        (c->out_end < RELAY_LISTENER_BUFFER ? EPOLLIN : 0) |
                                (c->in_start < c->in_end ? EPOLLOUT : 0));
}

static int on_pair_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        conn_pump(userdata);
        return 0;
}

/* RelayServer let the stream go: it logged why. */
static void on_stream_closed(void *connection, void *userdata) {
        Conn *c = connection;

        c->stream_gone = true;
        if (!c->in_add)
                conn_free(c);
}

static void conn_run(Conn *c);
static int on_conn_deadline(sd_event_source *s, uint64_t usec, void *userdata);

/* ---- before the 101 ---- */

static int conn_queue(Conn *c, const char *text, size_t len) {
        if (!c->out) {
                c->out = malloc(RELAY_LISTENER_BUFFER);
                if (!c->out)
                        return -ENOMEM;
        }
        if (len > RELAY_LISTENER_BUFFER - c->out_end)
                return -ENOBUFS;
        memcpy(c->out + c->out_end, text, len);
        c->out_end += len;
        return 0;
}

static const char *status_text(unsigned status) {
        switch (status) {
        case 400:
                return "Bad Request";
        case 401:
                return "Unauthorized";
        case 403:
                return "Forbidden";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        case 431:
                return "Request Header Fields Too Large";
        case 503:
                return "Service Unavailable";
        default:
                return "Internal Server Error";
        }
}

/* The same one-line JSON error the API port answers, then the close. */
static void conn_refuse(Conn *c, unsigned status, const char *error) {
        _cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();
        _cleanup_free_ char *body = NULL;
        char head[256];
        int n;

        log_debug("Relay connection from %s refused: %u %s", c->peer_text, status, error);
        if (o && cJSON_AddStringToObject(o, "error", error))
                body = cJSON_PrintUnformatted(o);
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %u %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
                     "Cache-Control: no-store\r\n%sContent-Length: %zu\r\n\r\n",
                     status, status_text(status), status == 405 ? "Allow: GET\r\n" : "",
                     body ? strlen(body) : 0);
        if (!body || conn_queue(c, head, (size_t) n) < 0 || conn_queue(c, body, strlen(body)) < 0) {
                conn_free(c);
                return;
        }
        c->state = CONN_REFUSING;
        conn_set_events(c, c->io, EPOLLOUT);
}

static int conn_start_stream(Conn *c, const RelayHead *h, RelayAdmission *a) {
        static const char reply[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                                    "Upgrade: " RELAY_UPGRADE_TOKEN "\r\n\r\n";
        RelayListener *l = c->listener;
        const RelayStreamOwner owner = { .closed = on_stream_closed, .connection = c, .userdata = l };
        int sv[2], r;

        c->in = malloc(RELAY_LISTENER_BUFFER);
        if (!c->in || conn_queue(c, reply, sizeof(reply) - 1) < 0)
                return -ENOMEM;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        c->stream_fd = sv[0];
        c->pair_fd = sv[1];
        r = sd_event_add_io(l->event, &c->pair_io, c->pair_fd, EPOLLIN, on_pair_io, c);
        if (r < 0)
                return r;
        conn_leave_pending(c, CONN_RELAYING);

        log_peer_full_errno_fields(a->name, LOG_INFO, 0, (.endpoint = c->peer_text, .path = "relay"),
                                   "Relay stream of node %s arrives on the relay port %s from %s.", a->name,
                                   l->address_text, c->peer_text);
        /* RelayServer logs the open (or why not) and may close at once
         * (a full server, the first frames bad): the hook then waits */
        c->in_add = true;
        (void) relay_server_add_owned(l->relay, c->stream_fd, -1, &owner, a->id, a->name, &a->key,
                                      (const uint8_t *) c->head + h->size, c->head_len - h->size);
        c->in_add = false;
        erase_and_free(c->head, RELAY_HEAD_MAX + 1);
        c->head = NULL;
        if (c->stream_gone) {
                /* as on the API port: the 101, then the close */
                c->state = CONN_CLOSING;
                c->pair_io = sd_event_source_disable_unref(c->pair_io);
                r = sd_event_add_time_relative(l->event, &c->deadline, CLOCK_MONOTONIC,
                                               RELAY_LISTENER_DEADLINE_USEC, 100 * USEC_PER_MSEC,
                                               on_conn_deadline, c);
                if (r < 0) {
                        conn_free(c);
                        return 0;
                }
                conn_run(c);
                return 0;
        }
        conn_pump(c);
        return 0;
}

static void conn_answer(Conn *c, RelayHead *h) {
        _cleanup_(relay_admission_done) RelayAdmission a = {};
        RelayListener *l = c->listener;
        int r;

        if (!streq(h->target, "/v1/relay"))
                return conn_refuse(c, 404, "no such endpoint");
        if (!streq(h->method, "GET"))
                return conn_refuse(c, 405, "method not allowed");
        if (relay_admit(l->store, l->relay, false, h->authorization, h->upgrade, &a) < 0)
                return conn_refuse(c, 500, "out of memory");
        if (a.status != 0)
                return conn_refuse(c, a.status, a.error);
        if (!h->connection_upgrade)
                return conn_refuse(c, 400, "Connection: expected Upgrade");
        r = conn_start_stream(c, h, &a);
        if (r < 0) {
                log_warning_errno(r, "Relay connection from %s: failed to start the stream: %m", c->peer_text);
                conn_free(c);
        }
}

/* Reads the head; answers once it is complete. */
static void conn_read_head(Conn *c) {
        for (;;) {
                RelayHead h;
                ssize_t n;
                int r;

                if (c->head_len >= RELAY_HEAD_MAX)
                        return conn_refuse(c, 431, "request head larger than 8 KiB");
                n = gnutls_record_recv(c->tls, c->head + c->head_len, RELAY_HEAD_MAX - c->head_len);
                if (n == GNUTLS_E_AGAIN)
                        return conn_set_events(c, c->io, EPOLLIN);
                if (n == GNUTLS_E_INTERRUPTED || (n < 0 && !gnutls_error_is_fatal((int) n)))
                        continue;
                if (n <= 0) {
                        log_debug("Relay connection from %s closed before its request.", c->peer_text);
                        conn_free(c);
                        return;
                }
                c->head_len += (size_t) n;
                r = relay_head_parse(c->head, c->head_len, &h);
                if (r == -E2BIG)
                        return conn_refuse(c, 431, "request head larger than 8 KiB");
                if (r < 0)
                        return conn_refuse(c, 400, "malformed request head");
                if (r > 0)
                        return conn_answer(c, &h);
        }
}

/* Discards what comes until the node closes, or the deadline (a node that
 * keeps sending gets no more time than that). */
static void conn_drain(Conn *c) {
        char scratch[4096];

        for (unsigned i = 0; i < 16; i++) {
                ssize_t n = recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (n <= 0) {
                        conn_free(c);
                        return;
                }
        }
}

static void conn_run(Conn *c) {
        int r;

        switch (c->state) {
        case CONN_HANDSHAKE:
                r = gnutls_handshake(c->tls);
                if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED || (r < 0 && !gnutls_error_is_fatal(r)))
                        return conn_set_events(c, c->io,
                                               gnutls_record_get_direction(c->tls) ? EPOLLOUT : EPOLLIN);
                if (r < 0) {
                        log_debug("Relay connection from %s: TLS handshake failed: %s", c->peer_text,
                                  gnutls_strerror(r));
                        conn_free(c);
                        return;
                }
                c->state = CONN_HEAD;
                __attribute__((fallthrough));
        case CONN_HEAD:
                return conn_read_head(c);
        case CONN_REFUSING:
        case CONN_CLOSING:
                if (c->draining)
                        return conn_drain(c);
                r = pump_out_to_tls(c);
                if (r < 0) {
                        conn_free(c);
                        return;
                }
                if (c->out_start < c->out_end)
                        return conn_set_events(c, c->io, EPOLLOUT);
                /* the reply is out: close our side, and read what the node
                 * still sends until it closes too, since closing with unread
                 * bytes resets the connection, and the reply with it */
                (void) gnutls_bye(c->tls, GNUTLS_SHUT_WR);
                (void) shutdown(c->fd, SHUT_WR);
                c->draining = true;
                return conn_set_events(c, c->io, EPOLLIN);
        case CONN_RELAYING:
                return conn_pump(c);
        case CONN_HUNG_UP:
                return;
        }
}

static int on_conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        conn_run(userdata);
        return 0;
}

static int on_conn_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Conn *c = userdata;

        if (c->state <= CONN_HEAD)
                log_info("Relay connection from %s closed: no complete request within %u s.", c->peer_text,
                         (unsigned) (RELAY_LISTENER_DEADLINE_USEC / USEC_PER_SEC));
        else
                log_debug("Relay connection from %s closed: its reply was not read within %u s.", c->peer_text,
                          (unsigned) (RELAY_LISTENER_DEADLINE_USEC / USEC_PER_SEC));
        conn_free(c);
        return 0;
}

static size_t listener_pending_from(const RelayListener *l, const union sockaddr_union *peer) {
        size_t n = 0;

        for (const Conn *c = l->conns; c; c = c->next)
                if (conn_is_pending(c) && c->peer.sa.sa_family == peer->sa.sa_family &&
                    (peer->sa.sa_family == AF_INET ? c->peer.in.sin_addr.s_addr == peer->in.sin_addr.s_addr
                                                   : memcmp(&c->peer.in6.sin6_addr, &peer->in6.sin6_addr,
                                                            sizeof(struct in6_addr)) == 0))
                        n++;
        return n;
}

static int conn_new(RelayListener *l, int fd, const union sockaddr_union *peer) {
        Conn *c;
        int r, one = 1;

        c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        *c = (Conn) { .listener = l, .fd = fd, .peer = *peer, .pair_fd = -EBADF, .stream_fd = -EBADF };
        (void) endpoint_format(peer, c->peer_text, sizeof(c->peer_text));
        c->next = l->conns;
        if (l->conns)
                l->conns->prev = c;
        l->conns = c;
        l->n_pending++;

        /* WireGuard packets are small and latency matters */
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->head = malloc(RELAY_HEAD_MAX + 1);
        r = c->head ? gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK) : -ENOMEM;
        if (r == GNUTLS_E_SUCCESS)
                r = gnutls_priority_set(c->tls, l->priority);
        if (r == GNUTLS_E_SUCCESS)
                r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, l->creds);
        if (r != GNUTLS_E_SUCCESS) {
                conn_free(c);
                return r == -ENOMEM ? r : -EIO;
        }
        gnutls_transport_set_int(c->tls, fd);
        gnutls_handshake_set_timeout(c->tls, 0); /* ours is the deadline below */

        r = sd_event_add_io(l->event, &c->io, fd, EPOLLIN, on_conn_io, c);
        if (r >= 0)
                r = sd_event_add_time_relative(l->event, &c->deadline, CLOCK_MONOTONIC,
                                               RELAY_LISTENER_DEADLINE_USEC, 100 * USEC_PER_MSEC,
                                               on_conn_deadline, c);
        if (r < 0) {
                conn_free(c);
                return r;
        }
        return 0;
}

/* ---- the listener ---- */

static int on_accept_pause(sd_event_source *s, uint64_t usec, void *userdata) {
        RelayListener *l = userdata;
        (void) sd_event_source_set_enabled(l->accept_source, SD_EVENT_ON);
        return 0;
}

/* Out of file descriptors: the listening socket stays readable, so rather
 * than spin we stop accepting for a moment. */
static void listener_pause(RelayListener *l, int error) {
        int r;

        log_warning_errno(error, "Relay listener on %s: accept failed, pausing for a second: %m",
                          l->address_text);
        (void) sd_event_source_set_enabled(l->accept_source, SD_EVENT_OFF);
        l->accept_pause = sd_event_source_disable_unref(l->accept_pause);
        r = sd_event_add_time_relative(l->event, &l->accept_pause, CLOCK_MONOTONIC, ACCEPT_PAUSE_USEC, 0,
                                       on_accept_pause, l);
        if (r < 0)
                (void) sd_event_source_set_enabled(l->accept_source, SD_EVENT_ON);
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        RelayListener *l = userdata;

        for (unsigned i = 0; i < ACCEPT_BUDGET; i++) {
                union sockaddr_union peer = {};
                socklen_t len = sizeof(peer);
                char text[ENDPOINT_STRLEN] = "?";
                int cfd = accept4(fd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (cfd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                                listener_pause(l, -errno);
                        break; /* EAGAIN, or a connection that died in the queue */
                }
                if (l->n_pending >= RELAY_LISTENER_PENDING_MAX ||
                    listener_pending_from(l, &peer) >= RELAY_LISTENER_PENDING_PER_ADDRESS) {
                        (void) endpoint_format(&peer, text, sizeof(text));
                        log_debug("Relay connection from %s refused: %zu connections wait for their request.",
                                  text, l->n_pending);
                        safe_close(cfd);
                        continue;
                }
                if (conn_new(l, cfd, &peer) < 0)
                        log_debug("Relay connection: failed to set up a new connection.");
        }
        return 0;
}

static int listener_bind(RelayListener *l, const union sockaddr_union *address, uint16_t port) {
        union sockaddr_union sa = *address;
        socklen_t len = sa.sa.sa_family == AF_INET6 ? sizeof(sa.in6) : sizeof(sa.in);
        int one = 1;

        if (sa.sa.sa_family == AF_INET6)
                sa.in6.sin6_port = htons(port);
        else
                sa.in.sin_port = htons(port);
        (void) endpoint_format(&sa, l->address_text, sizeof(l->address_text));

        l->fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (l->fd < 0)
                return -errno;
        if (setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        /* like the API's socket (MHD without dual stack): [::] is IPv6 only */
        if (sa.sa.sa_family == AF_INET6 && setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(l->fd, &sa.sa, len) < 0 || listen(l->fd, SOMAXCONN) < 0)
                return -errno;
        l->port = port;
        return 0;
}

int relay_listener_new(sd_event *event, const union sockaddr_union *address, uint16_t port, const char *key_pem,
                       const char *cert_pem, const char *priorities, Store *store, RelayServer *rs,
                       RelayListener **ret) {
        _cleanup_(relay_listener_freep) RelayListener *l = NULL;
        gnutls_datum_t key = { (unsigned char *) key_pem, (unsigned) strlen(key_pem) };
        gnutls_datum_t cert = { (unsigned char *) cert_pem, (unsigned) strlen(cert_pem) };
        int r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(event);
        l->store = store;
        l->relay = rs;
        l->fd = -EBADF;

        if (gnutls_certificate_allocate_credentials(&l->creds) != GNUTLS_E_SUCCESS)
                return -ENOMEM;
        r = gnutls_certificate_set_x509_key_mem(l->creds, &cert, &key, GNUTLS_X509_FMT_PEM);
        if (r < 0)
                return log_error_errno(-EINVAL, "Relay listener: the TLS key or certificate is unusable: %s",
                                       gnutls_strerror(r));
        r = gnutls_priority_init(&l->priority, priorities, NULL);
        if (r < 0)
                return log_error_errno(-EINVAL, "Relay listener: bad TLS priorities: %s", gnutls_strerror(r));

        r = listener_bind(l, address, port);
        if (r < 0)
                return r;
        r = sd_event_add_io(event, &l->accept_source, l->fd, EPOLLIN, on_accept, l);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

RelayListener *relay_listener_free(RelayListener *l) {
        if (!l)
                return NULL;
        while (l->conns)
                conn_free(l->conns);
        sd_event_source_disable_unref(l->accept_source);
        sd_event_source_disable_unref(l->accept_pause);
        safe_close(l->fd);
        if (l->priority)
                gnutls_priority_deinit(l->priority);
        if (l->creds)
                gnutls_certificate_free_credentials(l->creds);
        sd_event_unref(l->event);
        free(l);
        return NULL;
}

size_t relay_listener_n_pending(const RelayListener *l) {
        return l->n_pending;
}

const char *relay_listener_address(const RelayListener *l) {
        return l->address_text;
}
