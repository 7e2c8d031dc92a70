/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "dns-server.h"
#include "macro.h"
#include "time-util.h"

/* The server on 127.0.0.1 with a fake upstream (a socket of the test) on
 * 127.0.0.1: forwarding with a new ID, only the matching reply taken,
 * SERVFAIL after the timeout, TCP framing and the connection cap. */

typedef struct Fixture {
        sd_event *event;
        DnsServer *server;
        union sockaddr_union listen;
        int upstream;     /* the fake upstream's socket */
        int upstream_tcp; /* and its TCP listener, on the same port */
        union sockaddr_union upstream_address;
} Fixture;

static union sockaddr_union loopback(uint16_t port) {
        return (union sockaddr_union) {
                .in.sin_family = AF_INET,
                .in.sin_port = htons(port),
                .in.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
}

static int udp_bound(union sockaddr_union *sa) {
        socklen_t len = sizeof(*sa);
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, &sa->sa, sizeof(sa->in)), 0);
        assert_int_equal(getsockname(fd, &sa->sa, &len), 0);
        return fd;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        DnsNameTable *t = NULL;
        struct in_addr r4 = { htonl(0x64400000) }, a4 = { htonl(0x64400002) };
        int probe;

        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->event), 0);
        /* a free port: taken by a probe socket, let go, then ours */
        f->listen = loopback(0);
        probe = udp_bound(&f->listen);
        close(probe);
        assert_int_equal(dns_server_new(f->event, &f->listen, 1, &f->server), 0);

        f->upstream_address = loopback(0);
        f->upstream = udp_bound(&f->upstream_address);
        f->upstream_tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(f->upstream_tcp >= 0);
        assert_int_equal(bind(f->upstream_tcp, &f->upstream_address.sa, sizeof(f->upstream_address.in)), 0);
        assert_int_equal(listen(f->upstream_tcp, 4), 0);
        assert_int_equal(dns_server_set_upstreams(f->server, &f->upstream_address, 1), 0);

        assert_int_equal(dns_name_table_new("mesh.internal", &r4, 10, NULL, 0, &t), 0);
        assert_int_equal(dns_name_table_add(t, "alpha", &a4, NULL), 0);
        assert_int_equal(dns_name_table_seal(t), 0);
        dns_server_set_names(f->server, t);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        dns_server_free(f->server);
        sd_event_unref(f->event);
        close(f->upstream);
        close(f->upstream_tcp);
        free(f);
        return 0;
}

static size_t query(const char *name, uint16_t id, uint8_t *buf) {
        ldns_pkt *q = NULL;
        uint8_t *wire = NULL;
        size_t size = 0;

        assert_int_equal(ldns_pkt_query_new_frm_str(&q, name, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD),
                         LDNS_STATUS_OK);
        ldns_pkt_set_id(q, id);
        assert_int_equal(ldns_pkt2wire(&wire, q, &size), LDNS_STATUS_OK);
        memcpy(buf, wire, size);
        free(wire);
        ldns_pkt_free(q);
        return size;
}

/* Runs the loop until fd is readable (or timeout_usec passed); returns what was read, 0 for nothing. */
static ssize_t pump_recv(Fixture *f, int fd, uint8_t *buf, size_t size, uint64_t timeout_usec,
                         union sockaddr_union *from) {
        uint64_t end = clock_usec(CLOCK_MONOTONIC) + timeout_usec;

        while (clock_usec(CLOCK_MONOTONIC) < end) {
                socklen_t len = sizeof(*from);
                ssize_t n = recvfrom(fd, buf, size, MSG_DONTWAIT, from ? &from->sa : NULL, from ? &len : NULL);

                if (n >= 0)
                        return n;
                assert_int_equal(errno, EAGAIN);
                assert_true(sd_event_run(f->event, 10 * USEC_PER_MSEC) >= 0);
        }
        return 0;
}

static int udp_client(Fixture *f) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(connect(fd, &f->listen.sa, sizeof(f->listen.in)), 0);
        return fd;
}

static void test_forward(void **state) {
        Fixture *f = *state;
        uint8_t q[512], got[512], reply[512];
        union sockaddr_union from;
        int client = udp_client(f), stranger;
        size_t size = query("example.test", 0x4242, q);
        ssize_t n;

        assert_int_equal(send(client, q, size, 0), (ssize_t) size);
        n = pump_recv(f, f->upstream, got, sizeof(got), 2 * USEC_PER_SEC, &from);
        assert_int_equal(n, (ssize_t) size);
        /* the question as asked, under an ID of the server's */
        assert_memory_equal(got + 2, q + 2, size - 2);

        /* a reply with another ID, and one from another port: not taken */
        memcpy(reply, got, size);
        reply[2] |= 0x80;
        reply[0] ^= 0xff;
        assert_int_equal(sendto(f->upstream, reply, size, 0, &from.sa, sizeof(from.in)), (ssize_t) size);
        reply[0] ^= 0xff;
        union sockaddr_union other = loopback(0);
        stranger = udp_bound(&other);
        assert_int_equal(sendto(stranger, reply, size, 0, &from.sa, sizeof(from.in)), (ssize_t) size);
        assert_int_equal(pump_recv(f, client, got, sizeof(got), 200 * USEC_PER_MSEC, NULL), 0);

        /* the upstream's own: back to the client with the client's ID */
        assert_int_equal(sendto(f->upstream, reply, size, 0, &from.sa, sizeof(from.in)), (ssize_t) size);
        n = pump_recv(f, client, got, sizeof(got), 2 * USEC_PER_SEC, NULL);
        assert_int_equal(n, (ssize_t) size);
        assert_int_equal(got[0] << 8 | got[1], 0x4242);
        assert_memory_equal(got + 2, reply + 2, size - 2);
        close(stranger);
        close(client);
}

static void test_forward_timeout(void **state) {
        Fixture *f = *state;
        uint8_t q[512], got[512];
        int client = udp_client(f);
        size_t size = query("example.test", 0x1111, q);
        ldns_pkt *p = NULL;
        ssize_t n;

        assert_int_equal(send(client, q, size, 0), (ssize_t) size);
        assert_true(pump_recv(f, f->upstream, got, sizeof(got), 2 * USEC_PER_SEC, NULL) > 0);
        /* no reply from the upstream: SERVFAIL after the timeout */
        n = pump_recv(f, client, got, sizeof(got), DNS_SERVER_FORWARD_TIMEOUT_USEC + USEC_PER_SEC, NULL);
        assert_true(n > 0);
        assert_int_equal(ldns_wire2pkt(&p, got, (size_t) n), LDNS_STATUS_OK);
        assert_int_equal(ldns_pkt_id(p), 0x1111);
        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_SERVFAIL);
        ldns_pkt_free(p);
        close(client);
}

static int tcp_client(Fixture *f) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        assert_true(fd >= 0);
        assert_true(connect(fd, &f->listen.sa, sizeof(f->listen.in)) == 0 || errno == EINPROGRESS);
        return fd;
}

static void test_tcp(void **state) {
        Fixture *f = *state;
        uint8_t q[514], got[1024];
        int fds[DNS_SERVER_TCP_MAX + 1];
        size_t size = query("alpha.mesh.internal", 0x2222, q + 2);
        ldns_pkt *p = NULL;
        ssize_t n;

        q[0] = (uint8_t) (size >> 8);
        q[1] = (uint8_t) size;
        /* the loop accepts them all; the one over the cap is closed at once */
        for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
                fds[i] = tcp_client(f);
                (void) sd_event_run(f->event, 10 * USEC_PER_MSEC);
        }
        for (int i = 0; i < 20; i++)
                (void) sd_event_run(f->event, 10 * USEC_PER_MSEC);

        /* two queries in one write, the second cut in two writes */
        assert_int_equal(send(fds[0], q, 2 + size, 0), (ssize_t) (2 + size));
        assert_int_equal(send(fds[0], q, 5, 0), 5);
        (void) sd_event_run(f->event, 10 * USEC_PER_MSEC);
        assert_int_equal(send(fds[0], q + 5, 2 + size - 5, 0), (ssize_t) (2 + size - 5));

        /* two replies of the same length */
        size_t have = 0, len = 0;
        uint64_t end = clock_usec(CLOCK_MONOTONIC) + 2 * USEC_PER_SEC;
        while ((have < 2 || have < 2 * (2 + len)) && clock_usec(CLOCK_MONOTONIC) < end) {
                n = recv(fds[0], got + have, sizeof(got) - have, MSG_DONTWAIT);
                if (n > 0)
                        have += (size_t) n;
                if (have >= 2)
                        len = (size_t) got[0] << 8 | got[1];
                (void) sd_event_run(f->event, 10 * USEC_PER_MSEC);
        }
        assert_true(have >= 2 && have == 2 * (2 + len));
        assert_int_equal(ldns_wire2pkt(&p, got + 2, len), LDNS_STATUS_OK);
        assert_int_equal(ldns_pkt_id(p), 0x2222);
        assert_int_equal(ldns_pkt_ancount(p), 1);
        ldns_pkt_free(p);

        /* exactly one connection was refused: it reads end of file */
        size_t closed = 0;
        for (size_t i = 1; i < ELEMENTSOF(fds); i++) {
                char c;
                if (recv(fds[i], &c, 1, MSG_DONTWAIT) == 0)
                        closed++;
        }
        assert_int_equal(closed, 1);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
}

/* Runs the loop until n bytes came from fd. */
static void pump_read(Fixture *f, int fd, uint8_t *buf, size_t n) {
        size_t have = 0;
        uint64_t end = clock_usec(CLOCK_MONOTONIC) + 2 * USEC_PER_SEC;

        while (have < n && clock_usec(CLOCK_MONOTONIC) < end) {
                ssize_t r = recv(fd, buf + have, n - have, MSG_DONTWAIT);
                if (r > 0)
                        have += (size_t) r;
                (void) sd_event_run(f->event, 10 * USEC_PER_MSEC);
        }
        assert_int_equal(have, n);
}

/* A TCP client's query whose upstream reply over UDP is truncated is asked
 * again over TCP; the client gets that whole reply. */
static void test_tcp_client_truncated_upstream(void **state) {
        Fixture *f = *state;
        uint8_t q[514], got[600], reply[600];
        union sockaddr_union from;
        size_t size = query("example.test", 0x3333, q + 2);
        int client, up = -EBADF;
        ssize_t n;

        q[0] = (uint8_t) (size >> 8);
        q[1] = (uint8_t) size;
        client = tcp_client(f);
        for (int i = 0; i < 5; i++)
                (void) sd_event_run(f->event, 10 * USEC_PER_MSEC);
        assert_int_equal(send(client, q, 2 + size, 0), (ssize_t) (2 + size));

        n = pump_recv(f, f->upstream, got, sizeof(got), 2 * USEC_PER_SEC, &from);
        assert_int_equal(n, (ssize_t) size);
        memcpy(reply, got, size);
        reply[2] |= 0x82; /* QR, TC */
        assert_int_equal(sendto(f->upstream, reply, size, 0, &from.sa, sizeof(from.in)), (ssize_t) size);

        /* the same query (the server's ID) arrives framed over TCP */
        uint64_t end = clock_usec(CLOCK_MONOTONIC) + 2 * USEC_PER_SEC;
        while (up < 0 && clock_usec(CLOCK_MONOTONIC) < end) {
                up = accept4(f->upstream_tcp, NULL, NULL, SOCK_CLOEXEC);
                (void) sd_event_run(f->event, 10 * USEC_PER_MSEC);
        }
        assert_true(up >= 0);
        pump_read(f, up, got, 2 + size);
        assert_int_equal((size_t) got[0] << 8 | got[1], size);
        assert_memory_equal(got + 2, reply, 2);
        assert_memory_equal(got + 4 + 2, q + 2 + 4, size - 4);

        /* the whole reply (an extra byte of payload marks it) goes to the client */
        reply[2] = (reply[2] | 0x80) & ~0x02;
        reply[size] = 0;
        uint8_t frame[602] = { (uint8_t) ((size + 1) >> 8), (uint8_t) (size + 1) };
        memcpy(frame + 2, reply, size + 1);
        assert_int_equal(send(up, frame, size + 3, 0), (ssize_t) (size + 3));
        pump_read(f, client, got, size + 3);
        assert_int_equal((size_t) got[0] << 8 | got[1], size + 1);
        assert_int_equal(got[2] << 8 | got[3], 0x3333);
        assert_false(got[4] & 0x02);
        close(up);
        close(client);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_forward, setup, teardown),
                cmocka_unit_test_setup_teardown(test_forward_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tcp, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tcp_client_truncated_upstream, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
