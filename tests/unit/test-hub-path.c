/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "hub-path.h"
#include "peer-path.h"

#define S(x) ((uint64_t) (x) *USEC_PER_SEC)
#define T0 S(1000)

static HubPathInput udp_silent_since(uint64_t now, uint64_t silent) {
        return (HubPathInput) {
                .now = now, .relay_possible = true, .last_reply = silent - S(1), .oldest_unanswered = silent
        };
}

static void test_udp_healthy(void **state) {
        HubPathState s;

        hub_path_init(&s, T0);
        for (uint64_t t = T0 + S(1); t < T0 + S(60); t += S(1))
                assert_int_equal(hub_path_step(&s, &(HubPathInput) { .now = t,
                                                                     .relay_possible = true,
                                                                     .last_reply = t - S(1) }),
                                 0);
        assert_int_equal(s.transport, HUB_TRANSPORT_UDP);
}

/* UDP dead: ask for the relay once (not again while it connects), use it
 * once it is up. */
static void test_udp_dead_opens_relay(void **state) {
        HubPathState s;
        HubPathInput in;

        hub_path_init(&s, T0);
        in = udp_silent_since(T0 + S(10), T0 + S(9));
        assert_int_equal(hub_path_step(&s, &in), 0); /* not dead yet */
        in.now = T0 + S(8) + PEER_PATH_GRACE_USEC;   /* last reply + grace */
        assert_int_equal(hub_path_step(&s, &in), HUB_PATH_CONNECT_RELAY);
        in.relay_connecting = true;
        in.now += S(1);
        assert_int_equal(hub_path_step(&s, &in), 0);
        in.relay_connecting = false;
        in.relay_up = true;
        assert_int_equal(hub_path_step(&s, &in), HUB_PATH_USE_TLS);
        assert_int_equal(s.transport, HUB_TRANSPORT_TLS);
}

/* The relay could not be opened: try again after HUB_PATH_RELAY_RETRY_USEC, not before. */
static void test_relay_retry(void **state) {
        HubPathState s;
        HubPathInput in;

        hub_path_init(&s, T0);
        in = udp_silent_since(T0 + S(20), T0 + S(5));
        assert_int_equal(hub_path_step(&s, &in), HUB_PATH_CONNECT_RELAY);
        in.now += HUB_PATH_RELAY_RETRY_USEC - S(1);
        assert_int_equal(hub_path_step(&s, &in), 0);
        in.now += S(1);
        assert_int_equal(hub_path_step(&s, &in), HUB_PATH_CONNECT_RELAY);
}

static void test_no_relay_without_membership(void **state) {
        HubPathState s;
        HubPathInput in;

        hub_path_init(&s, T0);
        in = udp_silent_since(T0 + S(30), T0 + S(5));
        in.relay_possible = false;
        assert_int_equal(hub_path_step(&s, &in), 0);
}

/* On TLS: an echo reply newer than the switch moves back to UDP; the
 * relay stays until UDP answers probes, then goes. */
static void test_echo_returns_to_udp(void **state) {
        HubPathState s;
        HubPathInput in = { .relay_possible = true, .relay_up = true };

        hub_path_init(&s, T0);
        s.transport = HUB_TRANSPORT_TLS;
        s.since = T0;
        in.now = T0 + S(2);
        in.udp_echo = T0 - S(1);
        assert_int_equal(hub_path_step(&s, &in), 0);
        in.udp_echo = T0 + S(2);
        in.now = T0 + S(3);
        assert_int_equal(hub_path_step(&s, &in), HUB_PATH_USE_UDP);
        assert_int_equal(s.transport, HUB_TRANSPORT_UDP);
        in.now = T0 + S(4);
        in.last_reply = T0 + S(3) + 1;
        assert_int_equal(hub_path_step(&s, &in), HUB_PATH_CLOSE_RELAY);
}

static void test_relay_lost_falls_back_to_udp(void **state) {
        HubPathState s;

        hub_path_init(&s, T0);
        s.transport = HUB_TRANSPORT_TLS;
        assert_int_equal(hub_path_step(&s, &(HubPathInput) { .now = T0 + S(5), .relay_possible = true }),
                         HUB_PATH_USE_UDP);
        assert_false(s.returned);
}

/* The echo got through but the hub's port does not: back to TLS, and
 * the next return waits, longer each time. */
static void test_failed_return_holds(void **state) {
        HubPathState s;
        HubPathInput in = { .relay_possible = true, .relay_up = true };
        uint64_t t = T0;

        hub_path_init(&s, T0);
        s.transport = HUB_TRANSPORT_TLS;
        s.since = T0;
        for (unsigned round = 1; round <= 2; round++) {
                in.now = t + S(1);
                in.udp_echo = in.now;
                assert_int_equal(hub_path_step(&s, &in), HUB_PATH_USE_UDP);
                in.oldest_unanswered = in.now;
                in.last_reply = 0;
                in.now += PEER_PATH_GRACE_USEC;
                assert_int_equal(hub_path_step(&s, &in), HUB_PATH_USE_TLS);
                assert_int_equal(s.failures, round);
                /* an echo during the hold changes nothing */
                in.oldest_unanswered = 0;
                in.udp_echo = in.now + S(1);
                in.now += S(2);
                assert_int_equal(hub_path_step(&s, &in), 0);
                t = s.hold_until;
        }
        assert_int_equal(s.hold_until - s.since, HUB_PATH_HOLD_USEC << 2);
        in.now = s.hold_until;
        in.udp_echo = in.now;
        assert_int_equal(hub_path_step(&s, &in), HUB_PATH_USE_UDP);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_udp_healthy),         cmocka_unit_test(test_udp_dead_opens_relay),
                cmocka_unit_test(test_relay_retry),         cmocka_unit_test(test_no_relay_without_membership),
                cmocka_unit_test(test_echo_returns_to_udp), cmocka_unit_test(test_relay_lost_falls_back_to_udp),
                cmocka_unit_test(test_failed_return_holds),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
