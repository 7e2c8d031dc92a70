/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "curl-event.h"
#include "exit-route.h"
#include "log.h"
#include "relay-client.h"
#include "relay-echo.h"
#include "relay-frame.h"
#include "relay-upgrade.h"

/* Datagrams taken from WireGuard per wakeup, so that a flood on the loopback
 * socket cannot starve the rest of the event loop. */
#define UDP_BURST 64
#define RECV_CHUNK (16U * 1024U)
/* Reads from the stream per wakeup (1 MiB), for the same fairness; what is
 * left is read from a deferred event, since TLS may hold it already
 * decrypted where the socket's readability does not show it. */
#define RECV_BURST 64
#define TCP_KEEPALIVE_IDLE_SEC 5L
#define TCP_KEEPALIVE_INTERVAL_SEC 5L
#define TCP_KEEPALIVE_PROBES 3
/* Data unacknowledged this long means the server is gone, even while we send
 * (keepalive probes only run on an idle connection). */
#define TCP_USER_TIMEOUT_MS 15000U
#define DEADLINE_ACCURACY_USEC (10 * USEC_PER_MSEC)

typedef enum RelayClientState {
        STATE_CONNECTING, /* curl: TCP and TLS */
        STATE_UPGRADING,  /* our request out, the reply head in */
        STATE_UP,
        STATE_CLOSED,
} RelayClientState;

struct RelayClient {
        sd_event *event;
        uint16_t echo_port; /* 0: the port the TLS connection reached */
        uint32_t fwmark;
        RelayClientHandler handler;
        void *userdata;
        RelayClientState state;
        char *reason;

        uint16_t wg_port;
        int udp_fd;
        union sockaddr_union local;
        sd_event_source *udp_io;

        CurlEvent *curl;
        CURL *easy;
        bool in_multi;
        char error_buffer[CURL_ERROR_SIZE];
        sd_event_source *deadline;

        /* our own watch of curl's connection, on a dup of its fd so that it
         * never clashes with what curl itself asked to watch */
        int stream_fd;
        sd_event_source *stream_io;
        sd_event_source *read_more;
        union sockaddr_union server;

        /* towards the server: the upgrade request, then frames; erased as sent */
        uint8_t *out;
        size_t out_head, out_tail;
        bool send_blocked; /* the last send said CURLE_AGAIN */
        uint64_t n_dropped;

        char reply[RELAY_UPGRADE_REPLY_MAX + 1];
        size_t reply_size;
        RelayFrameReader reader;

        RelayEcho *echo;

        /* The handler may free us; the free then waits until the event
         * callback that called it has unwound. */
        unsigned dispatching;
        bool free_requested;
};

static void client_free_now(RelayClient *c) {
        relay_echo_free(c->echo);
        sd_event_source_disable_unref(c->stream_io);
        sd_event_source_disable_unref(c->read_more);
        safe_close(c->stream_fd);
        sd_event_source_disable_unref(c->udp_io);
        safe_close(c->udp_fd);
        sd_event_source_disable_unref(c->deadline);
        /* closes the connection */
        if (c->in_multi)
                curl_event_remove(c->curl, c->easy);
        if (c->easy)
                curl_easy_cleanup(c->easy);
        curl_event_free(c->curl);
        sd_event_unref(c->event);
        if (c->out)
                erase_and_free(c->out, RELAY_CLIENT_QUEUE_MAX);
        free(c->reason);
        free(c);
}

RelayClient *relay_client_free(RelayClient *c) {
        if (!c)
                return NULL;
        if (c->dispatching > 0)
                c->free_requested = true;
        else
                client_free_now(c);
        return NULL;
}

static void dispatch_begin(RelayClient *c) {
        c->dispatching++;
}

static void dispatch_end(RelayClient *c) {
        if (--c->dispatching == 0 && c->free_requested)
                client_free_now(c);
}

static bool client_running(const RelayClient *c) {
        return c->state != STATE_CLOSED && !c->free_requested;
}

static void client_notify(RelayClient *c, RelayClientEvent event, const char *reason) {
        if (!c->free_requested)
                c->handler(c, event, reason, c->userdata);
}

/* Stops everything but the object itself and reports CLOSED once. */
static void client_close(RelayClient *c, const char *format, ...) _printf_(2, 3);
static void client_close(RelayClient *c, const char *format, ...) {
        va_list ap;

        if (c->state == STATE_CLOSED)
                return;
        c->state = STATE_CLOSED;

        va_start(ap, format);
        if (vasprintf(&c->reason, format, ap) < 0)
                c->reason = NULL;
        va_end(ap);

        c->echo = relay_echo_free(c->echo);
        c->stream_io = sd_event_source_disable_unref(c->stream_io);
        c->read_more = sd_event_source_disable_unref(c->read_more);
        c->stream_fd = safe_close(c->stream_fd);
        (void) sd_event_source_set_enabled(c->udp_io, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(c->deadline, SD_EVENT_OFF);
        if (c->in_multi) {
                curl_event_remove(c->curl, c->easy);
                c->in_multi = false;
        }
        log_debug("TLS relay closed: %s", strna(c->reason));
        client_notify(c, RELAY_CLIENT_CLOSED, c->reason ?: "TLS relay closed");
}

/* ---- towards the server */

static int stream_update_events(RelayClient *c) {
        uint32_t events = EPOLLIN | (c->out_tail > c->out_head ? EPOLLOUT : 0);

        return sd_event_source_set_io_events(c->stream_io, events);
}

/* Sends what the queue holds until TLS would block. A retry after
 * CURLE_AGAIN passes the same bytes at the same address, at least as many:
 * GnuTLS and OpenSSL (without SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER) want
 * that. */
static void stream_flush(RelayClient *c) {
        int r;

        if (!c->stream_io)
                return; /* not connected yet: the queue waits */
        while (c->out_tail > c->out_head) {
                size_t n = 0;
                CURLcode cc;

                cc = curl_easy_send(c->easy, c->out + c->out_head, c->out_tail - c->out_head, &n);
                c->send_blocked = cc == CURLE_AGAIN;
                if (cc == CURLE_AGAIN)
                        break;
                if (cc != CURLE_OK) {
                        client_close(c, "connection to the control server lost: %s", curl_easy_strerror(cc));
                        return;
                }
                explicit_bzero(c->out + c->out_head, n);
                c->out_head += n;
        }
        if (c->out_head == c->out_tail)
                c->out_head = c->out_tail = 0;
        r = stream_update_events(c);
        if (r < 0)
                client_close(c, "cannot watch the relay connection: %s", strerror(-r));
}

/* Like UDP: what does not fit is dropped, never queued without bound. The
 * bytes a blocked send waits to retry stay where they are. */
static bool queue_room(RelayClient *c, size_t n) {
        if (RELAY_CLIENT_QUEUE_MAX - c->out_tail >= n)
                return true;
        if (c->out_head > 0 && !c->send_blocked) {
                memmove(c->out, c->out + c->out_head, c->out_tail - c->out_head);
                c->out_tail -= c->out_head;
                c->out_head = 0;
        }
        return RELAY_CLIENT_QUEUE_MAX - c->out_tail >= n;
}

static int queue_append(RelayClient *c, const void *data, size_t n) {
        if (!queue_room(c, n))
                return -ENOBUFS;
        memcpy(c->out + c->out_tail, data, n);
        c->out_tail += n;
        return 0;
}

static void queue_frame(RelayClient *c, const uint8_t *payload, size_t len) {
        uint8_t header[RELAY_FRAME_HEADER_SIZE];

        relay_frame_header(len, header);
        if (!queue_room(c, sizeof(header) + len)) {
                if (c->n_dropped++ == 0)
                        log_debug("TLS relay queue full, dropping datagrams from WireGuard");
                return;
        }
        (void) queue_append(c, header, sizeof(header));
        (void) queue_append(c, payload, len);
}

/* ---- the loopback socket, WireGuard's side */

static void wg_address(const RelayClient *c, union sockaddr_union *ret) {
        *ret = (union sockaddr_union) {
                .in.sin_family = AF_INET,
                .in.sin_port = htons(c->wg_port),
                .in.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
}

/* Only our WireGuard may send through the relay: anyone else on this host
 * could otherwise inject into the stream (the server would close it). */
static bool udp_take_datagram(RelayClient *c, const uint8_t *buf, ssize_t n, const union sockaddr_union *from) {
        union sockaddr_union wg;
        RelayFrameVerdict v;

        wg_address(c, &wg);
        if (!endpoint_equal(from, &wg))
                return false;
        if (c->state != STATE_UP)
                return false;
        v = n > RELAY_FRAME_MAX ? RELAY_FRAME_OVERSIZED : relay_frame_check(buf, (size_t) n);
        if (v != RELAY_FRAME_OK) {
                log_debug("Datagram from WireGuard not relayed: %s", relay_frame_verdict_to_string(v));
                return false;
        }
        queue_frame(c, buf, (size_t) n);
        return true;
}

static void udp_receive(RelayClient *c) {
        bool queued = false;

        for (unsigned i = 0; i < UDP_BURST; i++) {
                uint8_t buf[RELAY_FRAME_MAX + 1];
                union sockaddr_union from = {};
                socklen_t fromlen = sizeof(from);
                ssize_t n;

                n = recvfrom(c->udp_fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC, &from.sa, &fromlen);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_debug_errno(negative_errno(), "Loopback relay socket receive failed: %m");
                        break;
                }
                if (udp_take_datagram(c, buf, n, &from))
                        queued = true;
        }
        /* one flush per burst: several frames share a TLS record */
        if (queued)
                stream_flush(c);
}

static int on_udp_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        RelayClient *c = userdata;

        dispatch_begin(c);
        if (client_running(c))
                udp_receive(c);
        dispatch_end(c);
        return 0;
}

static void udp_deliver(RelayClient *c, const uint8_t *payload, size_t len) {
        union sockaddr_union wg;

        wg_address(c, &wg);
        /* a full socket buffer loses the datagram, as UDP would */
        if (sendto(c->udp_fd, payload, len, MSG_DONTWAIT | MSG_NOSIGNAL, &wg.sa, sizeof(wg.in)) < 0)
                log_debug_errno(negative_errno(), "Relayed datagram not handed to WireGuard: %m");
}

static int udp_open(RelayClient *c) {
        socklen_t len = sizeof(c->local);
        union sockaddr_union any = {
                .in.sin_family = AF_INET,
                .in.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        int r;

        c->udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->udp_fd < 0)
                return log_debug_errno(negative_errno(), "Failed to open the loopback relay socket: %m");
        if (bind(c->udp_fd, &any.sa, sizeof(any.in)) < 0)
                return log_debug_errno(negative_errno(), "Failed to bind the loopback relay socket: %m");
        if (getsockname(c->udp_fd, &c->local.sa, &len) < 0)
                return negative_errno();
        r = sd_event_add_io(c->event, &c->udp_io, c->udp_fd, EPOLLIN, on_udp_io, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(c->udp_io, "relay-client-udp");
        return 0;
}

/* ---- from the server: frames */

/* A server that sends anything but WireGuard messages is broken or hostile:
 * the stream is closed rather than resynchronised. */
static void stream_consume_frames(RelayClient *c, const uint8_t *data, size_t len) {
        while (len > 0 && client_running(c)) {
                const uint8_t *payload;
                size_t n;
                RelayFrameVerdict v;
                int r;

                r = relay_frame_reader_feed(&c->reader, &data, &len, &payload, &n);
                if (r == -EMSGSIZE) {
                        client_close(c, "bad frame from the control server: declared length 0 or above %d",
                                     RELAY_FRAME_MAX);
                        return;
                }
                if (r <= 0)
                        return;
                v = relay_frame_check(payload, n);
                if (v != RELAY_FRAME_OK) {
                        client_close(c, "bad frame from the control server: %s",
                                     relay_frame_verdict_to_string(v));
                        return;
                }
                udp_deliver(c, payload, n);
        }
}

/* ---- from the server: the reply to the upgrade */

static void stream_up(RelayClient *c, const char *rest, size_t len);

/* Takes bytes of the reply head; returns how many of data it used (the rest,
 * after a 101, is frames). */
static size_t reply_consume(RelayClient *c, const uint8_t *data, size_t len, bool eof) {
        size_t take = MIN(len, RELAY_UPGRADE_REPLY_MAX - c->reply_size), head_size = 0;
        _cleanup_free_ char *reason = NULL;
        int r;

        memcpy(c->reply + c->reply_size, data, take);
        c->reply_size += take;
        c->reply[c->reply_size] = 0;

        r = relay_upgrade_reply(c->reply, c->reply_size, eof, &head_size, &reason);
        if (r < 0)
                client_close(c, "%s", reason ?: "relay refused");
        else if (r > 0)
                stream_up(c, c->reply + head_size, c->reply_size - head_size);
        return take;
}

static void stream_consume(RelayClient *c, const uint8_t *data, size_t len, bool eof) {
        if (c->state == STATE_UPGRADING) {
                size_t used = reply_consume(c, data, len, eof);
                data += used;
                len -= used;
        }
        if (c->state != STATE_UP || c->free_requested)
                return;
        if (len > 0)
                stream_consume_frames(c, data, len);
        if (eof && client_running(c))
                client_close(c, "the control server ended the relay stream");
}

static void stream_receive(RelayClient *c);

static int on_read_more(sd_event_source *s, void *userdata) {
        RelayClient *c = userdata;

        dispatch_begin(c);
        if (client_running(c))
                stream_receive(c);
        dispatch_end(c);
        return 0;
}

static void stream_read_later(RelayClient *c) {
        int r;

        if (c->read_more)
                r = sd_event_source_set_enabled(c->read_more, SD_EVENT_ONESHOT);
        else {
                r = sd_event_add_defer(c->event, &c->read_more, on_read_more, c);
                if (r >= 0)
                        (void) sd_event_source_set_description(c->read_more, "relay-client-read-more");
        }
        if (r < 0)
                client_close(c, "cannot schedule reading the relay stream: %s", strerror(-r));
}

/* TLS buffers whole records: a readable socket may hide more than one read
 * returns, and data already decrypted never shows up as readable again, so
 * read until curl says there is nothing more. */
static void stream_receive(RelayClient *c) {
        for (unsigned i = 0; client_running(c); i++) {
                uint8_t buf[RECV_CHUNK];
                size_t n = 0;
                CURLcode cc;

                if (i == RECV_BURST) {
                        stream_read_later(c);
                        return;
                }
                cc = curl_easy_recv(c->easy, buf, sizeof(buf), &n);
                if (cc == CURLE_AGAIN)
                        return;
                if (cc != CURLE_OK) {
                        client_close(c, "connection to the control server lost: %s", curl_easy_strerror(cc));
                        return;
                }
                stream_consume(c, buf, n, n == 0);
                if (n == 0)
                        return;
        }
}

static int on_stream_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        RelayClient *c = userdata;

        dispatch_begin(c);
        if (client_running(c) && (revents & EPOLLOUT))
                stream_flush(c);
        /* errors and hangups surface as a failed or empty read */
        if (client_running(c) && (revents & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                stream_receive(c);
        dispatch_end(c);
        return 0;
}

/* ---- the UDP echo */

static void on_echo_reply(RelayEcho *e, void *userdata) {
        RelayClient *c = userdata;

        dispatch_begin(c);
        if (client_running(c)) {
                log_debug("UDP echo reply from the control server: UDP reaches it");
                client_notify(c, RELAY_CLIENT_UDP_WORKS, NULL);
        }
        dispatch_end(c);
}

static void stream_up(RelayClient *c, const char *rest, size_t len) {
        char buf[ENDPOINT_STRLEN];
        int r;

        c->state = STATE_UP;
        (void) sd_event_source_set_enabled(c->deadline, SD_EVENT_OFF);
        log_info("TLS relay through %s up", endpoint_format(&c->server, buf, sizeof(buf)));

        /* the echo answers on the API port, which the relay's own port is not */
        union sockaddr_union echo = c->server;
        if (c->echo_port != 0) {
                if (echo.sa.sa_family == AF_INET6)
                        echo.in6.sin6_port = htons(c->echo_port);
                else
                        echo.in.sin_port = htons(c->echo_port);
        }
        r = relay_echo_new(c->event, &echo, c->fwmark, on_echo_reply, c, &c->echo);
        if (r < 0)
                log_warning_errno(r, "Failed to start the UDP echo, staying on the TLS relay: %m");

        client_notify(c, RELAY_CLIENT_UP, NULL);
        if (client_running(c) && len > 0)
                stream_consume_frames(c, (const uint8_t *) rest, len);
}

/* ---- curl: the TCP connection and the TLS handshake */

static int server_address(RelayClient *c) {
        char *ip = NULL;
        long port = 0;
        union sockaddr_union sa = {};

        if (curl_easy_getinfo(c->easy, CURLINFO_PRIMARY_IP, &ip) != CURLE_OK || !ip ||
            curl_easy_getinfo(c->easy, CURLINFO_PRIMARY_PORT, &port) != CURLE_OK || port <= 0 || port > 65535)
                return -EADDRNOTAVAIL;
        if (inet_pton(AF_INET, ip, &sa.in.sin_addr) == 1) {
                sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons((uint16_t) port);
        } else if (inet_pton(AF_INET6, ip, &sa.in6.sin6_addr) == 1) {
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons((uint16_t) port);
        } else
                return -EADDRNOTAVAIL;
        c->server = sa;
        return 0;
}

/* TLS is up: from here on we drive the connection ourselves. */
static int stream_start(RelayClient *c) {
        curl_socket_t fd = CURL_SOCKET_BAD;
        int r;

        if (curl_easy_getinfo(c->easy, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK || fd == CURL_SOCKET_BAD)
                return -ENOTCONN;
        r = server_address(c);
        if (r < 0)
                return r;
        c->stream_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (c->stream_fd < 0)
                return negative_errno();
        r = sd_event_add_io(c->event, &c->stream_io, c->stream_fd, EPOLLIN | EPOLLOUT, on_stream_io, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(c->stream_io, "relay-client-stream");
        c->state = STATE_UPGRADING;
        stream_flush(c);
        return 0;
}

static void connect_failed(RelayClient *c, CURLcode code) {
        switch (code) {
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
                client_close(c, "the control server presented a different public key than its pin");
                break;
        case CURLE_OPERATION_TIMEDOUT:
                client_close(c, "no TLS connection to the control server in time");
                break;
        default:
                client_close(c, "cannot connect to the control server: %s",
                             c->error_buffer[0] ? c->error_buffer : curl_easy_strerror(code));
        }
}

static void on_curl_done(CurlEvent *ce, CURL *easy, CURLcode result, void *userdata) {
        RelayClient *c = userdata;
        int r;

        if (easy != c->easy)
                return;
        dispatch_begin(c);
        if (client_running(c) && c->state == STATE_CONNECTING) {
                if (result != CURLE_OK)
                        connect_failed(c, result);
                else {
                        r = stream_start(c);
                        if (r < 0)
                                client_close(c, "cannot use the connection to the control server: %s",
                                             strerror(-r));
                }
        }
        dispatch_end(c);
}

/* ---- setting up */

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        RelayClient *c = userdata;

        dispatch_begin(c);
        if (client_running(c) && c->state != STATE_UP)
                client_close(c, "no relay stream from the control server in time (%s)",
                             c->state == STATE_CONNECTING ? "no TLS connection" : "no reply to the upgrade");
        dispatch_end(c);
        return 0;
}

/* curl before 8.9 cannot set the number of keepalive probes; and keepalive
 * alone never notices a dead server while our data waits unacknowledged. */
static int relay_sockopt_cb(void *userdata, curl_socket_t fd, curlsocktype purpose) {
        const RelayClient *c = userdata;
        int probes = TCP_KEEPALIVE_PROBES;
        unsigned timeout = TCP_USER_TIMEOUT_MS;

        if (purpose == CURLSOCKTYPE_IPCXN) {
                (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
                (void) setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof(timeout));
                (void) exit_route_mark_socket(fd, c->fwmark);
        }
        return CURL_SOCKOPT_OK;
}

static int easy_setup(RelayClient *c, const RelayClientOptions *o, uint64_t timeout_usec) {
        c->easy = curl_easy_init();
        if (!c->easy)
                return -ENOMEM;
        if (curl_easy_setopt(c->easy, CURLOPT_URL, o->control_url) != CURLE_OK ||
            curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
            /* TCP and TLS only: the upgrade is ours to speak */
            curl_easy_setopt(c->easy, CURLOPT_CONNECT_ONLY, 1L) != CURLE_OK ||
            /* ALPN must not offer h2: the stream speaks HTTP/1.1 */
            curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1) != CURLE_OK ||
            curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->error_buffer) != CURLE_OK ||
            curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, (long) (timeout_usec / USEC_PER_MSEC)) !=
                    CURLE_OK ||
            curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
            curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPIDLE, TCP_KEEPALIVE_IDLE_SEC) != CURLE_OK ||
            curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPINTVL, TCP_KEEPALIVE_INTERVAL_SEC) != CURLE_OK ||
            curl_easy_setopt(c->easy, CURLOPT_SOCKOPTFUNCTION, relay_sockopt_cb) != CURLE_OK ||
            curl_easy_setopt(c->easy, CURLOPT_SOCKOPTDATA, c) != CURLE_OK ||
            /* as the control client: the pinned key is the trust anchor */
            curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK ||
            curl_easy_setopt(c->easy, CURLOPT_CAINFO, NULL) != CURLE_OK ||
            curl_easy_setopt(c->easy, CURLOPT_CAPATH, NULL) != CURLE_OK ||
            curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK ||
            curl_easy_setopt(c->easy, CURLOPT_PINNEDPUBLICKEY, o->pin) != CURLE_OK)
                return -EINVAL;
        return 0;
}

static int options_check(const RelayClientOptions *o) {
        if (!o->control_url || strncmp(o->control_url, "https://", 8) != 0 || !o->control_url[8])
                return log_debug_errno(-EINVAL, "Relay: control URL must start with https://: %s",
                                       strna(o->control_url));
        if (!o->pin || strncmp(o->pin, "sha256//", 8) != 0 || !o->pin[8])
                return log_debug_errno(-EINVAL, "Relay: control pin must be sha256//BASE64");
        if (o->wg_listen_port == 0)
                return log_debug_errno(-EINVAL, "Relay: no WireGuard listen port");
        return 0;
}

static int request_queue(RelayClient *c, const RelayClientOptions *o) {
        char *req = NULL;
        size_t n = 0;
        int r;

        r = relay_upgrade_request(o->control_url, o->token, &req, &n);
        if (r < 0)
                return log_debug_errno(r,
                                       "Relay: control URL without a host, or a token a header cannot carry");
        r = queue_append(c, req, n);
        erase_and_free(req, n); /* it carries the token */
        return r;
}

static int deadline_arm(RelayClient *c, uint64_t timeout_usec) {
        uint64_t now;
        int r;

        r = sd_event_now(c->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        r = sd_event_add_time(c->event, &c->deadline, CLOCK_MONOTONIC, now + timeout_usec,
                              DEADLINE_ACCURACY_USEC, on_deadline, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(c->deadline, "relay-client-deadline");
        return 0;
}

int relay_client_new(sd_event *e, const RelayClientOptions *o, RelayClientHandler h, void *userdata,
                     RelayClient **ret) {
        _cleanup_(relay_client_freep) RelayClient *c = NULL;
        uint64_t timeout_usec;
        int r;

        if (!e || !o || !h || !ret)
                return -EINVAL;
        r = options_check(o);
        if (r < 0)
                return r;
        timeout_usec = o->timeout_usec > 0 ? o->timeout_usec : RELAY_CLIENT_TIMEOUT_USEC;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->handler = h;
        c->userdata = userdata;
        c->wg_port = o->wg_listen_port;
        c->echo_port = o->echo_port;
        c->fwmark = o->fwmark;
        c->udp_fd = c->stream_fd = -EBADF;
        c->out = malloc(RELAY_CLIENT_QUEUE_MAX);
        if (!c->out)
                return -ENOMEM;

        r = udp_open(c);
        if (r < 0)
                return r;
        r = request_queue(c, o);
        if (r < 0)
                return r;
        r = curl_event_new(e, "relay-client-curl", on_curl_done, c, &c->curl);
        if (r < 0)
                return r;
        r = easy_setup(c, o, timeout_usec);
        if (r < 0)
                return log_debug_errno(r, "Relay: failed to set up the TLS connection");
        r = deadline_arm(c, timeout_usec);
        if (r < 0)
                return r;
        /* curl starts from its timer callback, in the event loop */
        r = curl_event_add(c->curl, c->easy);
        if (r < 0)
                return r;
        c->in_multi = true;

        *ret = TAKE_PTR(c);
        return 0;
}

int relay_client_local_endpoint(const RelayClient *c, union sockaddr_union *ret) {
        if (!c || !ret)
                return -EINVAL;
        *ret = c->local;
        return 0;
}

int relay_client_server_endpoint(const RelayClient *c, union sockaddr_union *ret) {
        if (!c || !ret)
                return -EINVAL;
        if (c->server.sa.sa_family == AF_UNSPEC)
                return -ENOTCONN;
        *ret = c->server;
        return 0;
}

bool relay_client_is_up(const RelayClient *c) {
        return c && c->state == STATE_UP && !c->free_requested;
}
