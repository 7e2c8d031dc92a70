/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The node's end of the TLS relay against a real TLS server on loopback: a
 * minimal one in a thread (GnuTLS, blocking), scripted per test, that speaks
 * the upgrade and the frames of docs/protocol.md. The UDP echo server is a
 * plain socket the test answers by hand. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <cmocka.h>

#include "macro.h"
#include "relay-client.h"
#include "relay-frame.h"
#include "tls-test-cert.h"

#define SERVER_FRAMES 20
/* more than the client reads per wakeup (1 MiB) */
#define FLOOD_FRAMES 850
#define FLOOD_SIZE 1440

typedef enum Scenario {
        SCENARIO_UP,         /* 101, then SERVER_FRAMES frames, one TLS record each */
        SCENARIO_401,        /* refused with a JSON error */
        SCENARIO_503_HTML,   /* refused without one */
        SCENARIO_GARBAGE,    /* 101, then a frame that is not WireGuard */
        SCENARIO_OVERSIZED,  /* 101, then a declared length of 65535 */
        SCENARIO_SILENT,     /* reads the request, never answers */
        SCENARIO_NO_UPGRADE, /* 101 without Upgrade: meshd-relay/1 */
        SCENARIO_END,        /* 101 and a frame, then the server hangs up */
        SCENARIO_FLOOD,      /* 101, then FLOOD_FRAMES big frames at once */
} Scenario;

typedef struct Server {
        Scenario scenario;
        int listen_fd;
        uint16_t port;
        char url[64];
        pthread_t thread;
        bool joined;
        pthread_mutex_t lock;
        char request[4096];         /* the request head as it arrived */
        uint8_t stream[256 * 1024]; /* what came after it */
        size_t stream_size;
} Server;

typedef struct Context {
        sd_event *event;
        RelayClient *client;
        unsigned n_up, n_closed, n_udp_works;
        char reason[512];
        bool free_on_closed;
} Context;

static TlsTestCert tls;

static int make_cert(void **state) {
        tls_test_cert_make(&tls);
        return 0;
}

/* A WireGuard transport message of 32 bytes whose byte 4 says which one. */
static void wg_message(uint8_t mark, uint8_t buf[static 32]) {
        memset(buf, 0, 32);
        buf[0] = 4;
        buf[4] = mark;
        memset(buf + 5, mark, 27);
}

/* ---- the TLS server thread */

static bool tls_send(gnutls_session_t s, const void *data, size_t len) {
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t n = gnutls_record_send(s, p, len);
                if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                        continue;
                if (n < 0)
                        return false;
                p += n;
                len -= (size_t) n;
        }
        return true;
}

static bool server_read_request(Server *srv, gnutls_session_t s) {
        char buf[4096];
        size_t have = 0;

        while (have < sizeof(buf) - 1) {
                ssize_t n = gnutls_record_recv(s, buf + have, sizeof(buf) - 1 - have);
                if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                        continue;
                if (n <= 0)
                        return false;
                have += (size_t) n;
                buf[have] = 0;
                if (strstr(buf, "\r\n\r\n")) {
                        pthread_mutex_lock(&srv->lock);
                        memcpy(srv->request, buf, have + 1);
                        pthread_mutex_unlock(&srv->lock);
                        return true;
                }
        }
        return false;
}

#define UPGRADE_REPLY \
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: meshd-relay/1\r\n\r\n"

static bool server_flood(gnutls_session_t s) {
        uint8_t frame[2 + FLOOD_SIZE];

        gnutls_record_cork(s);
        if (!tls_send(s, UPGRADE_REPLY, strlen(UPGRADE_REPLY)))
                return false;
        relay_frame_header(FLOOD_SIZE, frame);
        memset(frame + 2, 0, FLOOD_SIZE);
        frame[2] = 4;
        for (unsigned i = 0; i < FLOOD_FRAMES; i++) {
                frame[2 + 4] = (uint8_t) (i >> 8);
                frame[2 + 5] = (uint8_t) i;
                if (!tls_send(s, frame, sizeof(frame)))
                        return false;
        }
        return gnutls_record_uncork(s, GNUTLS_RECORD_WAIT) >= 0;
}

static bool server_reply(Server *srv, gnutls_session_t s) {
        static const char body401[] = "{\"error\": \"unknown token\"}";
        char buf[512];
        uint8_t frame[2 + 32];

        switch (srv->scenario) {
        case SCENARIO_UP:
                /* One TLS record each, in one TCP segment: a read hands out
                 * one record, and the rest never make the socket readable. */
                gnutls_record_cork(s);
                if (!tls_send(s, UPGRADE_REPLY, strlen(UPGRADE_REPLY)))
                        return false;
                for (unsigned i = 0; i < SERVER_FRAMES; i++) {
                        relay_frame_header(32, frame);
                        wg_message((uint8_t) (0x10 + i), frame + 2);
                        if (!tls_send(s, frame, sizeof(frame)))
                                return false;
                }
                return gnutls_record_uncork(s, GNUTLS_RECORD_WAIT) >= 0;
        case SCENARIO_401:
                snprintf(buf, sizeof(buf),
                         "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n%s",
                         strlen(body401), body401);
                (void) tls_send(s, buf, strlen(buf));
                return false;
        case SCENARIO_503_HTML:
                snprintf(buf, sizeof(buf), "HTTP/1.1 503 Busy\r\nContent-Length: 13\r\n\r\n<html></html>");
                (void) tls_send(s, buf, strlen(buf));
                return false;
        case SCENARIO_GARBAGE:
                snprintf(buf, sizeof(buf), UPGRADE_REPLY "%c%chello", 0, 5);
                return tls_send(s, buf, strlen(UPGRADE_REPLY) + 7);
        case SCENARIO_OVERSIZED:
                snprintf(buf, sizeof(buf), UPGRADE_REPLY "\xff\xff");
                return tls_send(s, buf, strlen(buf));
        case SCENARIO_NO_UPGRADE:
                snprintf(buf, sizeof(buf), "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
                return tls_send(s, buf, strlen(buf));
        case SCENARIO_END:
                relay_frame_header(32, frame);
                wg_message(0x77, frame + 2);
                snprintf(buf, sizeof(buf), UPGRADE_REPLY);
                memcpy(buf + strlen(UPGRADE_REPLY), frame, sizeof(frame));
                (void) tls_send(s, buf, strlen(UPGRADE_REPLY) + sizeof(frame));
                return false;
        case SCENARIO_FLOOD:
                return server_flood(s);
        case SCENARIO_SILENT:
                return true;
        }
        return false;
}

/* Records what the client sends until it closes the connection. */
static void server_record(Server *srv, gnutls_session_t s) {
        for (;;) {
                uint8_t buf[16384];
                ssize_t n = gnutls_record_recv(s, buf, sizeof(buf));
                if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                        continue;
                if (n <= 0)
                        return;
                pthread_mutex_lock(&srv->lock);
                if ((size_t) n <= sizeof(srv->stream) - srv->stream_size) {
                        memcpy(srv->stream + srv->stream_size, buf, (size_t) n);
                        srv->stream_size += (size_t) n;
                }
                pthread_mutex_unlock(&srv->lock);
        }
}

static void server_session(Server *srv, int fd) {
        gnutls_certificate_credentials_t cred = NULL;
        gnutls_session_t s = NULL;
        gnutls_datum_t c = { (unsigned char *) tls.cert_pem, (unsigned) strlen(tls.cert_pem) };
        gnutls_datum_t k = { (unsigned char *) tls.key_pem, (unsigned) strlen(tls.key_pem) };
        int r;

        if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
            gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM) < 0 ||
            gnutls_init(&s, GNUTLS_SERVER) < 0 || gnutls_set_default_priority(s) < 0 ||
            gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0)
                goto out;
        gnutls_transport_set_int(s, fd);
        do
                r = gnutls_handshake(s);
        while (r < 0 && !gnutls_error_is_fatal(r));
        if (r < 0)
                goto out; /* a wrong pin: the client walks away */
        if (server_read_request(srv, s) && server_reply(srv, s))
                server_record(srv, s);
        (void) gnutls_bye(s, GNUTLS_SHUT_WR);
out:
        if (s)
                gnutls_deinit(s);
        if (cred)
                gnutls_certificate_free_credentials(cred);
}

static void *server_thread(void *userdata) {
        Server *srv = userdata;
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0)
                return NULL; /* shut down before a client came */
        server_session(srv, fd);
        close(fd);
        return NULL;
}

static Server *server_start(Scenario scenario) {
        Server *srv = calloc(1, sizeof(Server));
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);

        assert_non_null(srv);
        srv->scenario = scenario;
        pthread_mutex_init(&srv->lock, NULL);
        srv->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(srv->listen_fd >= 0);
        assert_int_equal(bind(srv->listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(srv->listen_fd, 4), 0);
        assert_int_equal(getsockname(srv->listen_fd, (struct sockaddr *) &sa, &len), 0);
        srv->port = ntohs(sa.sin_port);
        snprintf(srv->url, sizeof(srv->url), "https://127.0.0.1:%u", srv->port);
        assert_int_equal(pthread_create(&srv->thread, NULL, server_thread, srv), 0);
        return srv;
}

/* After the client is gone: its closed connection ends the thread. */
static void server_join(Server *srv) {
        if (srv->joined)
                return;
        (void) shutdown(srv->listen_fd, SHUT_RDWR); /* wakes an accept() that got nobody */
        assert_int_equal(pthread_join(srv->thread, NULL), 0);
        srv->joined = true;
}

static void server_stop(Server *srv) {
        server_join(srv);
        close(srv->listen_fd);
        pthread_mutex_destroy(&srv->lock);
        free(srv);
}

static size_t server_stream(Server *srv, uint8_t *buf, size_t size) {
        size_t n;

        pthread_mutex_lock(&srv->lock);
        n = MIN(size, srv->stream_size);
        memcpy(buf, srv->stream, n);
        pthread_mutex_unlock(&srv->lock);
        return n;
}

/* ---- the node's side */

static void on_event(RelayClient *c, RelayClientEvent event, const char *reason, void *userdata) {
        Context *ctx = userdata;

        assert_ptr_equal(c, ctx->client);
        switch (event) {
        case RELAY_CLIENT_UP:
                assert_null(reason);
                ctx->n_up++;
                break;
        case RELAY_CLIENT_CLOSED:
                assert_non_null(reason);
                ctx->n_closed++;
                snprintf(ctx->reason, sizeof(ctx->reason), "%s", reason);
                if (ctx->free_on_closed)
                        ctx->client = relay_client_free(c);
                break;
        case RELAY_CLIENT_UDP_WORKS:
                ctx->n_udp_works++;
                break;
        }
}

static int udp_socket(uint16_t port) {
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        return fd;
}

static uint16_t socket_port(int fd) {
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);

        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        return ntohs(sa.sin_port);
}

static void context_init(Context *ctx, const char *url, const char *the_pin, uint16_t wg_port,
                         uint64_t timeout_usec) {
        RelayClientOptions o = {
                .control_url = url,
                .pin = the_pin,
                .token = "tok",
                .wg_listen_port = wg_port,
                .timeout_usec = timeout_usec,
        };

        *ctx = (Context) {};
        assert_int_equal(sd_event_new(&ctx->event), 0);
        assert_int_equal(relay_client_new(ctx->event, &o, on_event, ctx, &ctx->client), 0);
        assert_false(relay_client_is_up(ctx->client));
}

static void context_done(Context *ctx) {
        ctx->client = relay_client_free(ctx->client);
        ctx->event = sd_event_unref(ctx->event);
}

typedef bool (*Condition)(Context *ctx, void *userdata);

static bool run_until(Context *ctx, Condition cond, void *userdata, uint64_t timeout_usec) {
        struct timespec ts;
        uint64_t start, now;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        start = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
        while (!cond(ctx, userdata)) {
                clock_gettime(CLOCK_MONOTONIC, &ts);
                now = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
                if (now - start > timeout_usec)
                        return false;
                assert_true(sd_event_run(ctx->event, 20 * USEC_PER_MSEC) >= 0);
        }
        return true;
}

/* Dispatches what is pending now, without waiting for anything new. */
static void run_pending(Context *ctx) {
        while (sd_event_run(ctx->event, 0) > 0)
                ;
}

static bool is_up(Context *ctx, void *userdata) {
        return ctx->n_up > 0 || ctx->n_closed > 0;
}

static bool is_closed(Context *ctx, void *userdata) {
        return ctx->n_closed > 0;
}

static bool udp_works(Context *ctx, void *userdata) {
        return ctx->n_udp_works > 0 || ctx->n_closed > 0;
}

static bool server_has(Context *ctx, void *userdata) {
        Server *srv = ((void **) userdata)[0];
        size_t want = *(size_t *) ((void **) userdata)[1];
        size_t n;

        pthread_mutex_lock(&srv->lock);
        n = srv->stream_size;
        pthread_mutex_unlock(&srv->lock);
        return n >= want;
}

typedef struct Datagram {
        int fd;
        uint8_t buf[2048];
        ssize_t size;
        struct sockaddr_in from;
} Datagram;

static bool datagram_arrived(Context *ctx, void *userdata) {
        Datagram *d = userdata;
        socklen_t len = sizeof(d->from);

        d->size = recvfrom(d->fd, d->buf, sizeof(d->buf), 0, (struct sockaddr *) &d->from, &len);
        return d->size >= 0;
}

static void send_to(int fd, const void *buf, size_t len, const union sockaddr_union *to) {
        assert_int_equal(sendto(fd, buf, len, 0, &to->sa, sizeof(to->in)), (ssize_t) len);
}

/* ---- tests */

static void test_new_invalid(void **state) {
        sd_event *e = NULL;
        RelayClient *c = NULL;
        RelayClientOptions o = {
                .control_url = "https://127.0.0.1:1",
                .pin = "sha256//AAAA",
                .token = "tok",
                .wg_listen_port = 51820,
        };
        RelayClientOptions bad;

        assert_int_equal(sd_event_new(&e), 0);
        bad = o;
        bad.control_url = "http://127.0.0.1:1";
        assert_int_equal(relay_client_new(e, &bad, on_event, NULL, &c), -EINVAL);
        bad = o;
        bad.pin = "AAAA";
        assert_int_equal(relay_client_new(e, &bad, on_event, NULL, &c), -EINVAL);
        /* a token must not smuggle headers into the request */
        bad = o;
        bad.token = "tok\r\nX-Evil: 1";
        assert_int_equal(relay_client_new(e, &bad, on_event, NULL, &c), -EINVAL);
        bad = o;
        bad.token = "";
        assert_int_equal(relay_client_new(e, &bad, on_event, NULL, &c), -EINVAL);
        bad = o;
        bad.wg_listen_port = 0;
        assert_int_equal(relay_client_new(e, &bad, on_event, NULL, &c), -EINVAL);
        assert_null(c);
        sd_event_unref(e);
}

/* The whole way: the upgrade request, the 101, frames in both directions,
 * and the loopback socket that only our WireGuard may use. */
static void test_up_and_frames(void **state) {
        Server *srv = server_start(SCENARIO_UP);
        int wg = udp_socket(0), other = udp_socket(0);
        Datagram d = { .fd = wg };
        union sockaddr_union local, server;
        uint8_t msg[32], got[256 * 1024], expect[2 + 32];
        size_t want = sizeof(expect), n;
        void *args[2] = { srv, &want };
        char host[64];
        Context ctx;

        context_init(&ctx, srv->url, tls.pin, socket_port(wg), 0);
        assert_int_equal(relay_client_local_endpoint(ctx.client, &local), 0);
        assert_int_equal(local.sa.sa_family, AF_INET);
        assert_int_equal(ntohl(local.in.sin_addr.s_addr), INADDR_LOOPBACK);
        assert_int_not_equal(local.in.sin_port, 0);
        assert_int_equal(relay_client_server_endpoint(ctx.client, &server), -ENOTCONN);

        assert_true(run_until(&ctx, is_up, NULL, 10 * USEC_PER_SEC));
        assert_int_equal(ctx.n_closed, 0);
        assert_int_equal(ctx.n_up, 1);
        assert_true(relay_client_is_up(ctx.client));
        assert_int_equal(relay_client_server_endpoint(ctx.client, &server), 0);
        assert_int_equal(ntohs(server.in.sin_port), srv->port);

        pthread_mutex_lock(&srv->lock);
        assert_non_null(strstr(srv->request, "GET /v1/relay HTTP/1.1\r\n"));
        snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%u\r\n", srv->port);
        assert_non_null(strstr(srv->request, host));
        assert_non_null(strstr(srv->request, "\r\nAuthorization: Bearer tok\r\n"));
        assert_non_null(strstr(srv->request, "\r\nConnection: Upgrade\r\n"));
        assert_non_null(strstr(srv->request, "\r\nUpgrade: meshd-relay/1\r\n"));
        pthread_mutex_unlock(&srv->lock);

        /* every frame from the server, in order, from the loopback socket */
        for (unsigned i = 0; i < SERVER_FRAMES; i++) {
                assert_true(run_until(&ctx, datagram_arrived, &d, 5 * USEC_PER_SEC));
                wg_message((uint8_t) (0x10 + i), msg);
                assert_int_equal(d.size, 32);
                assert_memory_equal(d.buf, msg, 32);
                assert_int_equal(d.from.sin_port, local.in.sin_port);
        }

        /* a stranger's datagram first, then WireGuard's: only the second
         * reaches the server (the socket keeps their order) */
        wg_message(0xAA, msg);
        send_to(other, msg, sizeof(msg), &local);
        wg_message(0xBB, msg);
        send_to(wg, msg, sizeof(msg), &local);
        assert_true(run_until(&ctx, server_has, args, 5 * USEC_PER_SEC));
        relay_frame_header(32, expect);
        memcpy(expect + 2, msg, 32);
        n = server_stream(srv, got, sizeof(got));
        assert_int_equal(n, sizeof(expect));
        assert_memory_equal(got, expect, sizeof(expect));

        /* a burst: all of it, in order, and nothing but WireGuard messages */
        for (unsigned i = 0; i < 100; i++) {
                wg_message((uint8_t) i, msg);
                send_to(wg, msg, sizeof(msg), &local);
        }
        send_to(wg, "not wireguard", 13, &local);
        wg_message(0xCC, msg);
        send_to(wg, msg, sizeof(msg), &local);
        want = 102 * sizeof(expect);
        assert_true(run_until(&ctx, server_has, args, 5 * USEC_PER_SEC));
        n = server_stream(srv, got, sizeof(got));
        assert_int_equal(n, want);
        for (unsigned i = 0; i < 101; i++) {
                wg_message(i < 100 ? (uint8_t) i : 0xCC, msg);
                assert_memory_equal(got + (i + 1) * sizeof(expect) + 2, msg, 32);
        }
        assert_int_equal(ctx.n_closed, 0);

        context_done(&ctx);
        server_stop(srv);
        close(wg);
        close(other);
}

/* More than one wakeup reads: all of it reaches WireGuard, in order. */
static void test_flood_from_server(void **state) {
        Server *srv = server_start(SCENARIO_FLOOD);
        int wg = udp_socket(0), size = 16 * 1024 * 1024;
        Datagram d = { .fd = wg };
        Context ctx;

        /* room for all of it: what is tested is the relay, not our reading */
        assert_int_equal(setsockopt(wg, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)), 0);
        context_init(&ctx, srv->url, tls.pin, socket_port(wg), 0);
        for (unsigned i = 0; i < FLOOD_FRAMES; i++) {
                assert_true(run_until(&ctx, datagram_arrived, &d, 5 * USEC_PER_SEC));
                assert_int_equal(d.size, FLOOD_SIZE);
                assert_int_equal(d.buf[0], 4);
                assert_int_equal(d.buf[4] << 8 | d.buf[5], i);
        }
        assert_int_equal(ctx.n_up, 1);
        assert_int_equal(ctx.n_closed, 0);
        context_done(&ctx);
        server_stop(srv);
        close(wg);
}

static void test_refused_401(void **state) {
        Server *srv = server_start(SCENARIO_401);
        Context ctx;

        context_init(&ctx, srv->url, tls.pin, 51820, 0);
        ctx.free_on_closed = true; /* the handler may free the client */
        assert_true(run_until(&ctx, is_closed, NULL, 10 * USEC_PER_SEC));
        assert_int_equal(ctx.n_up, 0);
        assert_int_equal(ctx.n_closed, 1);
        assert_string_equal(ctx.reason, "relay refused: 401 unknown token");
        assert_null(ctx.client);
        context_done(&ctx);
        server_stop(srv);
}

static void test_refused_without_json(void **state) {
        Server *srv = server_start(SCENARIO_503_HTML);
        Context ctx;

        context_init(&ctx, srv->url, tls.pin, 51820, 0);
        assert_true(run_until(&ctx, is_closed, NULL, 10 * USEC_PER_SEC));
        assert_int_equal(ctx.n_up, 0);
        assert_string_equal(ctx.reason, "relay refused: HTTP 503");
        assert_false(relay_client_is_up(ctx.client));
        context_done(&ctx);
        server_stop(srv);
}

static void test_101_without_upgrade(void **state) {
        Server *srv = server_start(SCENARIO_NO_UPGRADE);
        Context ctx;

        context_init(&ctx, srv->url, tls.pin, 51820, 0);
        assert_true(run_until(&ctx, is_closed, NULL, 10 * USEC_PER_SEC));
        assert_int_equal(ctx.n_up, 0);
        assert_string_equal(ctx.reason, "relay refused: 101 without Upgrade: meshd-relay/1");
        context_done(&ctx);
        server_stop(srv);
}

/* The 101 and a frame in one read, then the end of the stream: the frame
 * still reaches WireGuard, and the end is reported. */
static void test_server_ends_stream(void **state) {
        Server *srv = server_start(SCENARIO_END);
        int wg = udp_socket(0);
        Datagram d = { .fd = wg };
        uint8_t msg[32];
        Context ctx;

        context_init(&ctx, srv->url, tls.pin, socket_port(wg), 0);
        assert_true(run_until(&ctx, is_closed, NULL, 10 * USEC_PER_SEC));
        assert_int_equal(ctx.n_up, 1);
        assert_int_equal(ctx.n_closed, 1);
        assert_string_equal(ctx.reason, "the control server ended the relay stream");
        assert_true(datagram_arrived(&ctx, &d));
        wg_message(0x77, msg);
        assert_int_equal(d.size, 32);
        assert_memory_equal(d.buf, msg, 32);
        context_done(&ctx);
        server_stop(srv);
        close(wg);
}

static void test_attack_garbage_frame(void **state) {
        Server *srv = server_start(SCENARIO_GARBAGE);
        int wg = udp_socket(0);
        Datagram d = { .fd = wg };
        Context ctx;

        context_init(&ctx, srv->url, tls.pin, socket_port(wg), 0);
        assert_true(run_until(&ctx, is_closed, NULL, 10 * USEC_PER_SEC));
        assert_int_equal(ctx.n_up, 1);
        assert_int_equal(ctx.n_closed, 1);
        assert_string_equal(ctx.reason, "bad frame from the control server: frame is not a WireGuard message");
        assert_false(relay_client_is_up(ctx.client));
        /* nothing of it reached WireGuard */
        assert_false(datagram_arrived(&ctx, &d));
        context_done(&ctx);
        server_stop(srv);
        close(wg);
}

static void test_attack_oversized_frame(void **state) {
        Server *srv = server_start(SCENARIO_OVERSIZED);
        Context ctx;

        context_init(&ctx, srv->url, tls.pin, 51820, 0);
        assert_true(run_until(&ctx, is_closed, NULL, 10 * USEC_PER_SEC));
        assert_int_equal(ctx.n_up, 1);
        assert_string_equal(ctx.reason, "bad frame from the control server: declared length 0 or above 9216");
        context_done(&ctx);
        server_stop(srv);
}

static void test_attack_wrong_pin(void **state) {
        Server *srv = server_start(SCENARIO_UP);
        Context ctx;

        context_init(&ctx, srv->url, "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 51820, 0);
        ctx.free_on_closed = true; /* from inside curl's dispatch */
        assert_true(run_until(&ctx, is_closed, NULL, 10 * USEC_PER_SEC));
        assert_null(ctx.client);
        assert_int_equal(ctx.n_up, 0);
        assert_string_equal(ctx.reason, "the control server presented a different public key than its pin");
        context_done(&ctx);
        /* the request, and the token in it, never went out */
        server_join(srv);
        assert_string_equal(srv->request, "");
        server_stop(srv);
}

static void test_silent_server_times_out(void **state) {
        Server *srv = server_start(SCENARIO_SILENT);
        Context ctx;

        context_init(&ctx, srv->url, tls.pin, 51820, 500 * USEC_PER_MSEC);
        assert_true(run_until(&ctx, is_closed, NULL, 10 * USEC_PER_SEC));
        assert_int_equal(ctx.n_up, 0);
        assert_string_equal(ctx.reason,
                            "no relay stream from the control server in time (no reply to the upgrade)");
        context_done(&ctx);
        server_stop(srv);
}

static bool server_got_request(Context *ctx, void *userdata) {
        Server *srv = userdata;
        bool got;

        pthread_mutex_lock(&srv->lock);
        got = srv->request[0] != 0;
        pthread_mutex_unlock(&srv->lock);
        return got;
}

/* Freed half way, before any event: nothing is reported, nothing leaks. */
static void test_free_while_upgrading(void **state) {
        Server *srv = server_start(SCENARIO_SILENT);
        Context ctx;

        context_init(&ctx, srv->url, tls.pin, 51820, 0);
        assert_true(run_until(&ctx, server_got_request, srv, 10 * USEC_PER_SEC));
        ctx.client = relay_client_free(ctx.client);
        run_pending(&ctx);
        assert_int_equal(ctx.n_up + ctx.n_closed + ctx.n_udp_works, 0);
        context_done(&ctx);
        server_stop(srv);
}

static void test_connection_refused(void **state) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        char url[64];
        Context ctx;

        /* a port nobody listens on */
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        snprintf(url, sizeof(url), "https://127.0.0.1:%u", ntohs(sa.sin_port));
        context_init(&ctx, url, tls.pin, 51820, 0);
        assert_true(run_until(&ctx, is_closed, NULL, 10 * USEC_PER_SEC));
        assert_int_equal(ctx.n_up, 0);
        assert_non_null(strstr(ctx.reason, "cannot connect to the control server: "));
        context_done(&ctx);
        close(fd);
}

static void echo_reply(int fd, const uint8_t *request, uint8_t type, bool flip, const struct sockaddr_in *to) {
        uint8_t buf[RELAY_ECHO_SIZE];

        memcpy(buf, request, sizeof(buf));
        buf[4] = type;
        if (flip)
                buf[20] ^= 1;
        assert_int_equal(sendto(fd, buf, sizeof(buf), 0, (const struct sockaddr *) to, sizeof(*to)),
                         (ssize_t) sizeof(buf));
}

/* Only a reply from the server's address with our nonce says UDP works. */
static void test_attack_udp_echo(void **state) {
        Server *srv = server_start(SCENARIO_UP);
        int echo = udp_socket(srv->port), other = udp_socket(0);
        Datagram req = { .fd = echo };
        uint8_t type, nonce[RELAY_ECHO_NONCE_SIZE];
        Context ctx;

        context_init(&ctx, srv->url, tls.pin, 51820, 0);
        assert_true(run_until(&ctx, is_up, NULL, 10 * USEC_PER_SEC));
        assert_int_equal(ctx.n_up, 1);

        /* the first request goes out at once */
        assert_true(run_until(&ctx, datagram_arrived, &req, 5 * USEC_PER_SEC));
        assert_int_equal(req.size, RELAY_ECHO_SIZE);
        assert_int_equal(relay_echo_decode(req.buf, (size_t) req.size, &type, nonce), 0);
        assert_int_equal(type, RELAY_ECHO_REQUEST);

        /* a wrong nonce, the request itself reflected, and the right nonce
         * from another port: none of them counts */
        echo_reply(echo, req.buf, RELAY_ECHO_REPLY, true, &req.from);
        echo_reply(echo, req.buf, RELAY_ECHO_REQUEST, false, &req.from);
        echo_reply(other, req.buf, RELAY_ECHO_REPLY, false, &req.from);
        run_pending(&ctx);
        assert_int_equal(ctx.n_udp_works, 0);

        echo_reply(echo, req.buf, RELAY_ECHO_REPLY, false, &req.from);
        assert_true(run_until(&ctx, udp_works, NULL, 5 * USEC_PER_SEC));
        run_pending(&ctx);
        assert_int_equal(ctx.n_udp_works, 1);
        assert_int_equal(ctx.n_closed, 0);
        assert_true(relay_client_is_up(ctx.client));

        context_done(&ctx);
        server_stop(srv);
        close(echo);
        close(other);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_new_invalid),
                cmocka_unit_test(test_up_and_frames),
                cmocka_unit_test(test_flood_from_server),
                cmocka_unit_test(test_refused_401),
                cmocka_unit_test(test_refused_without_json),
                cmocka_unit_test(test_101_without_upgrade),
                cmocka_unit_test(test_server_ends_stream),
                cmocka_unit_test(test_attack_garbage_frame),
                cmocka_unit_test(test_attack_oversized_frame),
                cmocka_unit_test(test_attack_wrong_pin),
                cmocka_unit_test(test_silent_server_times_out),
                cmocka_unit_test(test_free_while_upgrading),
                cmocka_unit_test(test_connection_refused),
                cmocka_unit_test(test_attack_udp_echo),
        };
        int r;

        /* Loopback only: a proxy from the environment must not get these. */
        unsetenv("https_proxy");
        unsetenv("HTTPS_PROXY");
        unsetenv("all_proxy");
        unsetenv("ALL_PROXY");

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return 1;
        r = cmocka_run_group_tests(tests, make_cert, NULL);
        curl_global_cleanup();
        return r;
}
