/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include "probe.h"

static void test_round_trip(void **state) {
        uint8_t buf[PROBE_PACKET_SIZE];
        ProbePacket p;
        static const uint8_t expected[PROBE_PACKET_SIZE] = { 'M', 'S', 'H',  'P',  1,    0,
                                                             0,   0,   0xde, 0xad, 0xbe, 0xef };

        probe_packet_encode(&(ProbePacket) { .type = PROBE_REQUEST, .seq = 0xdeadbeef }, buf);
        assert_memory_equal(buf, expected, sizeof(expected));
        assert_int_equal(probe_packet_decode(buf, sizeof(buf), &p), 0);
        assert_int_equal(p.type, PROBE_REQUEST);
        assert_int_equal(p.seq, 0xdeadbeef);
}

static void test_rejects(void **state) {
        uint8_t buf[PROBE_PACKET_SIZE + 1];
        ProbePacket p;

        probe_packet_encode(&(ProbePacket) { .type = PROBE_REPLY, .seq = 7 }, buf);
        assert_int_equal(probe_packet_decode(buf, PROBE_PACKET_SIZE - 1, &p), -EBADMSG);
        assert_int_equal(probe_packet_decode(buf, PROBE_PACKET_SIZE + 1, &p), -EBADMSG);

        buf[4] = 3; /* unknown type */
        assert_int_equal(probe_packet_decode(buf, PROBE_PACKET_SIZE, &p), -EBADMSG);
        buf[4] = PROBE_REPLY;
        buf[6] = 1; /* reserved bytes must be zero */
        assert_int_equal(probe_packet_decode(buf, PROBE_PACKET_SIZE, &p), -EBADMSG);
        buf[6] = 0;
        buf[0] = 'X';
        assert_int_equal(probe_packet_decode(buf, PROBE_PACKET_SIZE, &p), -EBADMSG);
}

static void test_prefix_contains(void **state) {
        union in_addr_union range = {}, a = {};

        assert_int_equal(inet_pton(AF_INET, "100.64.0.0", &range.in), 1);
        assert_int_equal(inet_pton(AF_INET, "100.127.255.254", &a.in), 1);
        assert_true(in_addr_prefix_contains(AF_INET, &range, 10, &a));
        assert_int_equal(inet_pton(AF_INET, "100.128.0.1", &a.in), 1);
        assert_false(in_addr_prefix_contains(AF_INET, &range, 10, &a));
        assert_int_equal(inet_pton(AF_INET, "192.0.2.1", &a.in), 1);
        assert_false(in_addr_prefix_contains(AF_INET, &range, 10, &a));
        assert_false(in_addr_prefix_contains(AF_INET, &range, 33, &a));

        assert_int_equal(inet_pton(AF_INET6, "fd7a:115c:a1e0::", &range.in6), 1);
        assert_int_equal(inet_pton(AF_INET6, "fd7a:115c:a1e0::5", &a.in6), 1);
        assert_true(in_addr_prefix_contains(AF_INET6, &range, 48, &a));
        assert_int_equal(inet_pton(AF_INET6, "fd7a:115c:a1e1::5", &a.in6), 1);
        assert_false(in_addr_prefix_contains(AF_INET6, &range, 48, &a));
        assert_true(in_addr_prefix_contains(AF_INET6, &range, 0, &a));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_rejects),
                cmocka_unit_test(test_prefix_contains),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
