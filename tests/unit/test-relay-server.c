/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rate-limit.h"
#include "relay-frame.h"
#include "relay-server.h"
#include "udp-echo.h"

/* ---- the pure parts ---- */

static void test_queue(void **state) {
        RelayQueue q;
        uint8_t payload[1000], out[4096];
        int sv[2];
        size_t got = 0;

        assert_int_equal(relay_queue_init(&q, 2500), 0);
        memset(payload, 0xab, sizeof(payload));
        assert_int_equal(relay_queue_push_frame(&q, payload, 1000), 0);
        assert_int_equal(relay_queue_push_frame(&q, payload, 1000), 0);
        /* a third does not fit whole: nothing of it is queued (dropped like UDP) */
        assert_int_equal(relay_queue_push_frame(&q, payload, 1000), -ENOBUFS);
        assert_int_equal(q.used, 2004);
        assert_int_equal(relay_queue_push_frame(&q, payload, 0), -EINVAL);
        assert_int_equal(relay_queue_push_frame(&q, payload, RELAY_FRAME_MAX + 1), -EINVAL);

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        assert_int_equal(relay_queue_flush(&q, sv[0]), 2004);
        assert_int_equal(q.used, 0);
        assert_int_equal(read(sv[1], out, sizeof(out)), 2004);
        assert_int_equal(out[0], 0x03);
        assert_int_equal(out[1], 0xe8);
        assert_int_equal(out[1002], 0x03);
        assert_int_equal(out[2003], 0xab);
        /* the next frame wraps around the end of the ring: bytes stay in order */
        for (size_t i = 0; i < sizeof(payload); i++)
                payload[i] = (uint8_t) i;
        assert_int_equal(relay_queue_push_frame(&q, payload, 1000), 0);
        assert_int_equal(relay_queue_flush(&q, sv[0]), 1002);
        while (got < 1002) {
                ssize_t n = read(sv[1], out + got, sizeof(out) - got);
                assert_true(n > 0);
                got += (size_t) n;
        }
        assert_int_equal(out[0], 0x03);
        assert_int_equal(out[1], 0xe8);
        assert_memory_equal(out + 2, payload, 1000);
        /* the reader gone: flushing is an error, not a block */
        close(sv[1]);
        assert_int_equal(relay_queue_push_frame(&q, payload, 10), 0);
        assert_true(relay_queue_flush(&q, sv[0]) < 0);
        close(sv[0]);
        relay_queue_done(&q);
}

static void test_rate_limit(void **state) {
        RateLimit rl;
        unsigned ok = 0;

        rate_limit_init(&rl, 200, 200, 1000);
        for (int i = 0; i < 1000; i++)
                ok += rate_limit_take(&rl, 1000);
        assert_int_equal(ok, 200);
        /* 10 ms later: two more */
        ok = 0;
        for (int i = 0; i < 10; i++)
                ok += rate_limit_take(&rl, 1000 + 10 * USEC_PER_MSEC);
        assert_int_equal(ok, 2);
        /* a long pause saves up no more than the burst */
        ok = 0;
        for (int i = 0; i < 1000; i++)
                ok += rate_limit_take(&rl, 100 * USEC_PER_SEC);
        assert_int_equal(ok, 200);
}

static void test_echo_answer(void **state) {
        uint8_t nonce[RELAY_ECHO_NONCE_SIZE], buf[64], want[RELAY_ECHO_SIZE];

        memset(nonce, 7, sizeof(nonce));
        relay_echo_encode(RELAY_ECHO_REQUEST, nonce, buf);
        relay_echo_encode(RELAY_ECHO_REPLY, nonce, want);
        assert_true(udp_echo_answer(buf, RELAY_ECHO_SIZE));
        assert_memory_equal(buf, want, RELAY_ECHO_SIZE);
        /* a reply is not answered (two echoes cannot ping-pong) */
        assert_false(udp_echo_answer(buf, RELAY_ECHO_SIZE));
        relay_echo_encode(RELAY_ECHO_REQUEST, nonce, buf);
        assert_false(udp_echo_answer(buf, RELAY_ECHO_SIZE - 1));
        assert_false(udp_echo_answer(buf, RELAY_ECHO_SIZE + 1));
        buf[6] = 1;
        assert_false(udp_echo_answer(buf, RELAY_ECHO_SIZE));
        relay_echo_encode(RELAY_ECHO_REQUEST, nonce, buf);
        buf[0] = 'X';
        assert_false(udp_echo_answer(buf, RELAY_ECHO_SIZE));
}

/* ---- streams in an event loop, with a UDP socket as the hub ---- */

typedef struct Fixture {
        sd_event *event;
        RelayServer *rs;
        int hub_fd;
        uint16_t hub_port;
        unsigned closed;
        void *last_closed;
        WgKey restored_key;
        union sockaddr_union restored_to;
        unsigned restores;
        bool member;
} Fixture;

static void on_closed(void *connection, void *userdata) {
        Fixture *f = userdata;
        f->closed++;
        f->last_closed = connection;
}

static bool is_member(int64_t id, const WgKey *key, void *userdata) {
        Fixture *f = userdata;
        return f->member || id != 1;
}

static int restore(const WgKey *key, union sockaddr_union *endpoint, void *userdata) {
        Fixture *f = userdata;
        f->restored_key = *key;
        f->restored_to = *endpoint;
        f->restores++;
        return 0;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        union sockaddr_union sa = { .in = { .sin_family = AF_INET,
                                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK) } };
        socklen_t len = sizeof(sa.in);
        RelayServerHooks hooks = {
                .closed = on_closed,
                .is_member = is_member,
                .restore_endpoint = restore,
                .userdata = f,
        };

        f->member = true;
        assert_int_equal(sd_event_new(&f->event), 0);
        f->hub_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        assert_true(f->hub_fd >= 0);
        assert_int_equal(bind(f->hub_fd, &sa.sa, sizeof(sa.in)), 0);
        assert_int_equal(getsockname(f->hub_fd, &sa.sa, &len), 0);
        f->hub_port = ntohs(sa.in.sin_port);
        assert_int_equal(relay_server_new(f->event, f->hub_port, 3, &hooks, &f->rs), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        relay_server_free(f->rs);
        close(f->hub_fd);
        sd_event_unref(f->event);
        free(f);
        return 0;
}

static void run_loop(Fixture *f) {
        for (int i = 0; i < 20; i++)
                (void) sd_event_run(f->event, 10 * USEC_PER_MSEC);
}

static WgKey key_of(uint8_t b) {
        WgKey k;
        memset(k.data, b, sizeof(k.data));
        return k;
}

/* a stream of node id; returns the node's end of the socketpair */
static int add_stream(Fixture *f, int64_t id, void *conn) {
        int sv[2];
        WgKey k = key_of((uint8_t) id);
        char name[16];

        snprintf(name, sizeof(name), "node%i", (int) id);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        assert_int_equal(relay_server_add(f->rs, sv[0], -1, conn, id, name, &k, NULL, 0), 0);
        return sv[1];
}

static void send_frame(int fd, const uint8_t *p, size_t len) {
        uint8_t buf[2 + RELAY_FRAME_MAX];
        relay_frame_header(len, buf);
        memcpy(buf + 2, p, len);
        assert_int_equal(write(fd, buf, len + 2), (ssize_t) len + 2);
}

static void test_stream_forwards(void **state) {
        Fixture *f = *state;
        uint8_t data[48] = { 4 }, back[64], reply[32] = { 4 };
        union sockaddr_union from;
        socklen_t len = sizeof(from);
        int node = add_stream(f, 1, (void *) 0x1);

        send_frame(node, data, sizeof(data));
        run_loop(f);
        assert_int_equal(recvfrom(f->hub_fd, back, sizeof(back), 0, &from.sa, &len), 48);
        assert_memory_equal(back, data, 48);
        /* what the hub sends to the stream's socket comes back framed */
        reply[31] = 0x5a;
        assert_int_equal(sendto(f->hub_fd, reply, sizeof(reply), 0, &from.sa, len), 32);
        run_loop(f);
        assert_int_equal(read(node, back, sizeof(back)), 34);
        assert_int_equal(back[0], 0);
        assert_int_equal(back[1], 32);
        assert_memory_equal(back + 2, reply, 32);
        assert_int_equal(f->closed, 0);
        assert_int_equal(relay_server_n_streams(f->rs), 1);

        /* a new stream of the same node replaces it */
        int node2 = add_stream(f, 1, (void *) 0x2);
        assert_int_equal(f->closed, 1);
        assert_ptr_equal(f->last_closed, (void *) 0x1);
        assert_int_equal(relay_server_n_streams(f->rs), 1);
        close(node);
        close(node2);
}

typedef struct Owned {
        unsigned closed;
        void *last;
} Owned;

static void on_owned_closed(void *connection, void *userdata) {
        Owned *o = userdata;
        o->closed++;
        o->last = connection;
}

/* Streams of both kinds side by side: each close goes to its own owner. */
static void test_stream_owner(void **state) {
        Fixture *f = *state;
        Owned o = {};
        const RelayStreamOwner owner = { .closed = on_owned_closed,
                                         .connection = (void *) 0x7,
                                         .userdata = &o };
        WgKey k = key_of(7);
        int sv[2], plain = add_stream(f, 1, (void *) 0x1);

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        assert_int_equal(relay_server_add_owned(f->rs, sv[0], -1, &owner, 7, "node7", &k, NULL, 0), 0);
        /* the owned stream's peer hangs up: only its owner hears */
        close(sv[1]);
        run_loop(f);
        assert_int_equal(o.closed, 1);
        assert_ptr_equal(o.last, (void *) 0x7);
        assert_int_equal(f->closed, 0);
        close(sv[0]);

        /* bad first bytes: closed inside the add, through the owner */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        assert_int_equal(relay_server_add_owned(f->rs, sv[0], -1, &owner, 7, "node7", &k,
                                                (const uint8_t *) "\0\0", 2),
                         -EPIPE);
        assert_int_equal(o.closed, 2);
        assert_int_equal(f->closed, 0);
        close(sv[0]);
        close(sv[1]);
        close(plain);
        run_loop(f);
        assert_int_equal(f->closed, 1);
        assert_int_equal(o.closed, 2);
}

static void bad_input_closes(Fixture *f, const uint8_t *bytes, size_t len) {
        int good = add_stream(f, 2, (void *) 0x2);
        int bad = add_stream(f, 3, (void *) 0x3);
        uint8_t data[32] = { 4 }, back[64];

        assert_int_equal(write(bad, bytes, len), (ssize_t) len);
        run_loop(f);
        assert_int_equal(f->closed, 1);
        assert_ptr_equal(f->last_closed, (void *) 0x3);
        /* the other stream still works */
        send_frame(good, data, sizeof(data));
        run_loop(f);
        assert_int_equal(recv(f->hub_fd, back, sizeof(back), MSG_DONTWAIT), 32);
        close(good);
        close(bad);
}

static void test_zero_length(void **state) {
        bad_input_closes(*state, (const uint8_t[]) { 0, 0 }, 2);
}

static void test_oversized(void **state) {
        bad_input_closes(*state, (const uint8_t[]) { 0x24, 0x01 }, 2); /* 9217 */
}

static void test_not_wireguard(void **state) {
        uint8_t b[2 + 48] = { 0, 48, 'G', 'E', 'T', ' ' };
        bad_input_closes(*state, b, sizeof(b));
}

static void test_cap(void **state) {
        Fixture *f = *state;
        int a = add_stream(f, 2, (void *) 0x2), b = add_stream(f, 3, (void *) 0x3), c = add_stream(f, 5, NULL);
        int sv[2];
        WgKey k = key_of(4);

        assert_false(relay_server_has_room(f->rs, 4));
        assert_true(relay_server_has_room(f->rs, 3)); /* its own replaces */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        assert_int_equal(relay_server_add(f->rs, sv[0], -1, (void *) 0x4, 4, "node4", &k, NULL, 0), -EBUSY);
        assert_int_equal(f->closed, 1);
        assert_ptr_equal(f->last_closed, (void *) 0x4);
        close(a);
        close(b);
        close(c);
        close(sv[0]);
        close(sv[1]);
}

static void test_foreign_peer(void **state) {
        Fixture *f = *state;
        int victim = add_stream(f, 2, (void *) 0x2), attacker = add_stream(f, 3, (void *) 0x3);
        uint8_t data[32] = { 4 };
        union sockaddr_union a_sock, v_sock;
        socklen_t len = sizeof(a_sock);
        WgPeer peers[2] = {};
        WgDevice d = { .peers = peers, .n_peers = 2 };

        send_frame(attacker, data, sizeof(data));
        run_loop(f);
        assert_true(recvfrom(f->hub_fd, data, sizeof(data), 0, &a_sock.sa, &len) > 0);
        send_frame(victim, data, sizeof(data));
        run_loop(f);
        len = sizeof(v_sock);
        assert_true(recvfrom(f->hub_fd, data, sizeof(data), 0, &v_sock.sa, &len) > 0);

        /* each at its own socket: nothing happens */
        peers[0] = (WgPeer) { .public_key = key_of(2), .endpoint = v_sock };
        peers[1] = (WgPeer) { .public_key = key_of(3), .endpoint = a_sock };
        relay_server_check_peers(f->rs, &d);
        assert_int_equal(f->closed, 0);

        /* the victim's entry at the attacker's socket: the attacker's stream
         * goes, the victim's entry goes back to its own stream */
        peers[0].endpoint = a_sock;
        relay_server_check_peers(f->rs, &d);
        assert_int_equal(f->closed, 1);
        assert_ptr_equal(f->last_closed, (void *) 0x3);
        assert_int_equal(f->restores, 1);
        assert_memory_equal(f->restored_key.data, key_of(2).data, WG_KEY_LEN);
        assert_true(endpoint_equal(&f->restored_to, &v_sock));
        assert_int_equal(relay_server_n_streams(f->rs), 1);
        close(victim);
        close(attacker);
}

static void test_removed_member(void **state) {
        Fixture *f = *state;
        int a = add_stream(f, 1, (void *) 0x1), b = add_stream(f, 2, (void *) 0x2);

        f->member = false; /* node 1 removed */
        relay_server_check_members(f->rs);
        assert_int_equal(f->closed, 1);
        assert_ptr_equal(f->last_closed, (void *) 0x1);
        assert_int_equal(relay_server_n_streams(f->rs), 1);
        close(a);
        close(b);
}

static void test_node_hangs_up(void **state) {
        Fixture *f = *state;
        int a = add_stream(f, 1, (void *) 0x1);

        close(a);
        run_loop(f);
        assert_int_equal(f->closed, 1);
        assert_int_equal(relay_server_n_streams(f->rs), 0);
}

static void test_idle_and_stalled(void **state) {
        Fixture *f = *state;
        int idle = add_stream(f, 1, (void *) 0x1), busy = add_stream(f, 2, (void *) 0x2);
        int sloth = add_stream(f, 3, (void *) 0x3);
        uint8_t data[32] = { 4 }, big[1024] = { 4 };
        union sockaddr_union sloth_sock, busy_sock;
        socklen_t len = sizeof(sloth_sock);
        uint64_t t0 = clock_usec(CLOCK_MONOTONIC), t_full;
        int small = 4096;

        /* the sloth's socket buffer is small, and it never reads */
        assert_int_equal(setsockopt(sloth, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
        send_frame(sloth, data, sizeof(data));
        run_loop(f);
        assert_true(recvfrom(f->hub_fd, data, sizeof(data), 0, &sloth_sock.sa, &len) > 0);
        send_frame(busy, data, sizeof(data));
        run_loop(f);
        len = sizeof(busy_sock);
        assert_true(recvfrom(f->hub_fd, data, sizeof(data), 0, &busy_sock.sa, &len) > 0);
        /* the hub sends the sloth far more than its queue holds */
        for (int i = 0; i < 2000; i++) {
                (void) sendto(f->hub_fd, big, sizeof(big), MSG_DONTWAIT, &sloth_sock.sa, len);
                if (i % 100 == 0)
                        run_loop(f);
        }
        run_loop(f);
        assert_int_equal(f->closed, 0); /* dropped like UDP, not closed at once */
        /* the stall counts from when the queue filled, which under load may be
         * well after t0: measure from now, not from the start */
        t_full = clock_usec(CLOCK_MONOTONIC);

        /* 10 s on: the sloth made no progress; the busy one sent a frame */
        send_frame(busy, data, sizeof(data));
        run_loop(f);
        relay_server_check_timeouts(f->rs, t_full + RELAY_STALL_USEC + USEC_PER_SEC);
        assert_int_equal(f->closed, 1);
        assert_ptr_equal(f->last_closed, (void *) 0x3);
        /* not yet 90 s without a frame: both stay; past that, both go */
        relay_server_check_timeouts(f->rs, t0 + RELAY_IDLE_USEC - USEC_PER_SEC);
        assert_int_equal(f->closed, 1);
        relay_server_check_timeouts(f->rs, clock_usec(CLOCK_MONOTONIC) + RELAY_IDLE_USEC);
        assert_int_equal(f->closed, 3);
        assert_int_equal(relay_server_n_streams(f->rs), 0);
        close(idle);
        close(busy);
        close(sloth);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_queue),
                cmocka_unit_test_setup_teardown(test_stream_owner, setup, teardown),
                cmocka_unit_test(test_rate_limit),
                cmocka_unit_test(test_echo_answer),
                cmocka_unit_test_setup_teardown(test_stream_forwards, setup, teardown),
                cmocka_unit_test_setup_teardown(test_zero_length, setup, teardown),
                cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_wireguard, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_foreign_peer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_removed_member, setup, teardown),
                cmocka_unit_test_setup_teardown(test_node_hangs_up, setup, teardown),
                cmocka_unit_test_setup_teardown(test_idle_and_stalled, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
