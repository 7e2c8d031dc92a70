/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "peer-path.h"

#define S(x) ((uint64_t) (x) *USEC_PER_SEC)
#define MS(x) ((uint64_t) (x) *USEC_PER_MSEC)
#define T0 S(1000)

/* A peer as peer.c sees it: probes every second while unanswered, every
 * 2 s while answered, replies when the current path works. */
typedef struct Sim {
        PeerPathState state;
        PeerPathInput in;
        bool direct_works, relay_works;
        uint64_t last_probe;
        unsigned punches, nudges, retries, reroutes;
} Sim;

static void sim_init(Sim *sim, uint64_t now) {
        *sim = (Sim) {
                .in = { .now = now,
                        .has_hub = true,
                        .hub_up = true,
                        .underlay_changed = now,
                        .punch_leader = true },
                .direct_works = true,
                .relay_works = true,
        };
        peer_path_init(&sim->state, now);
}

static void sim_probe(Sim *sim) {
        bool works = peer_path_is_relay(sim->state.path) ? sim->relay_works : sim->direct_works;

        sim->last_probe = sim->in.now;
        if (works) {
                sim->in.last_reply = sim->in.now + MS(1);
                sim->in.oldest_unanswered = 0;
        } else if (sim->in.oldest_unanswered == 0)
                sim->in.oldest_unanswered = sim->in.now;
}

/* Runs one-second ticks until until; returns when the path first changed (or until). */
static uint64_t sim_run(Sim *sim, uint64_t until, bool stop_on_change) {
        for (; sim->in.now <= until; sim->in.now += S(1)) {
                uint64_t interval = sim->in.oldest_unanswered ? S(1) : S(2);
                unsigned flags;

                if (sim->in.now - sim->last_probe >= interval)
                        sim_probe(sim);
                flags = peer_path_step(&sim->state, &sim->in);
                sim->punches += !!(flags & PEER_PATH_PUNCH);
                sim->nudges += !!(flags & PEER_PATH_NUDGE);
                sim->retries += !!(flags & PEER_PATH_RETRY_DIRECT);
                if ((flags & PEER_PATH_RETRY_DIRECT) && sim->direct_works)
                        sim->in.direct_heard = sim->in.now + MS(2);
                if (flags & PEER_PATH_REROUTE) {
                        sim->reroutes++;
                        sim->in.oldest_unanswered = 0;
                        sim_probe(sim);
                        if (stop_on_change)
                                return sim->in.now;
                }
        }
        return until;
}

static void test_healthy_direct_stays(void **state) {
        Sim sim;

        sim_init(&sim, T0);
        sim_run(&sim, T0 + S(120), false);
        assert_int_equal(sim.state.path, PEER_PATH_DIRECT);
        assert_int_equal(sim.state.reason, PEER_PATH_REASON_DIRECT_WORKS);
        assert_int_equal(sim.punches + sim.retries + sim.reroutes, 0);
}

/* No direct path from the start: punch every second during the grace,
 * then the relay, not before the grace ends. */
static void test_start_without_direct_path(void **state) {
        Sim sim;
        uint64_t at;

        sim_init(&sim, T0);
        sim.direct_works = false;
        at = sim_run(&sim, T0 + S(30), true);
        assert_int_equal(sim.state.path, PEER_PATH_RELAY);
        assert_int_equal(sim.state.reason, PEER_PATH_REASON_DIRECT_SILENT);
        assert_true(at >= T0 + PEER_PATH_GRACE_USEC);
        assert_true(at <= T0 + S(6));
        assert_true(sim.punches >= 3);
}

/* The side whose key sorts second never re-creates its entry: two sides
 * starting handshakes on the same beat would each end up a responder. */
static void test_only_the_leader_punches(void **state) {
        Sim sim;

        sim_init(&sim, T0);
        sim.in.punch_leader = false;
        sim.direct_works = false;
        sim_run(&sim, T0 + S(30), true);
        assert_int_equal(sim.punches, 0);
        assert_true(sim.nudges >= 3);
        assert_int_equal(sim.state.path, PEER_PATH_RELAY);
}

/* A working direct path that dies is given up within 6 s of its last
 * reply, and never while its probes are merely not yet due. */
static void test_direct_dies(void **state) {
        Sim sim;
        uint64_t died, at;

        sim_init(&sim, T0);
        sim_run(&sim, T0 + S(60), false);
        died = sim.in.last_reply;
        sim.direct_works = false;
        at = sim_run(&sim, T0 + S(120), true);
        assert_int_equal(sim.state.path, PEER_PATH_RELAY);
        assert_true(at - died >= PEER_PATH_DEAD_USEC);
        assert_true(at - died <= S(6));
        assert_int_equal(sim.punches, 0);
}

/* Just after the underlay moved, no verdict: the grace starts again. */
static void test_underlay_change_gives_grace(void **state) {
        Sim sim;
        uint64_t at;

        sim_init(&sim, T0);
        sim_run(&sim, T0 + S(30), false);
        sim.direct_works = false;
        sim.in.underlay_changed = sim.in.now + S(3);
        at = sim_run(&sim, T0 + S(60), true);
        assert_true(at >= sim.in.underlay_changed + PEER_PATH_GRACE_USEC);
}

/* Relayed, the direct entry heard again: back to direct, from both sides
 * alike (each only needs what its own WireGuard saw). */
static void test_relay_returns_to_direct(void **state) {
        Sim sim;
        uint64_t relayed, back;

        sim_init(&sim, T0);
        sim.direct_works = false;
        relayed = sim_run(&sim, T0 + S(30), true);
        assert_true(peer_path_is_relay(sim.state.path));
        sim.in.now += S(1);
        sim_run(&sim, relayed + S(20), false);
        assert_true(peer_path_is_relay(sim.state.path));
        assert_true(sim.retries >= 5);

        sim.direct_works = true;
        back = sim_run(&sim, relayed + S(60), true);
        assert_int_equal(sim.state.path, PEER_PATH_DIRECT);
        assert_int_equal(sim.state.reason, PEER_PATH_REASON_DIRECT_HEARD);
        assert_true(back - (relayed + S(20)) <= PEER_PATH_RETRY_USEC + S(1));
}

/* Packets in flight when the relay began prove nothing. */
static void test_evidence_margin(void **state) {
        PeerPathState s;
        PeerPathInput in = { .now = T0, .has_hub = true, .hub_up = true };

        peer_path_init(&s, T0);
        s.path = PEER_PATH_RELAY;
        s.last_retry = T0;
        in.direct_heard = T0 + MS(500);
        in.now = T0 + S(1);
        assert_int_equal(peer_path_step(&s, &in) & PEER_PATH_REROUTE, 0);
        in.direct_heard = T0 + PEER_PATH_EVIDENCE_MARGIN_USEC;
        in.now = T0 + S(3);
        assert_true(peer_path_step(&s, &in) & PEER_PATH_REROUTE);
}

/* The hub goes dark while relayed: the relay is no path, go direct at
 * once and let the direct path prove itself without the server. */
static void test_hub_lost_while_relayed(void **state) {
        Sim sim;
        unsigned flags;

        sim_init(&sim, T0);
        sim.direct_works = false;
        sim_run(&sim, T0 + S(30), true);
        sim.in.now += S(1);
        sim.in.hub_up = false;
        flags = peer_path_step(&sim.state, &sim.in);
        assert_true(flags & PEER_PATH_REROUTE);
        assert_int_equal(sim.state.path, PEER_PATH_DIRECT);
        assert_int_equal(sim.state.reason, PEER_PATH_REASON_HUB_LOST);
}

/* Neither path: stay direct, say why, keep waking the direct entry. */
static void test_no_path(void **state) {
        Sim sim;

        sim_init(&sim, T0);
        sim.direct_works = false;
        sim.in.hub_up = false;
        sim_run(&sim, T0 + S(30), false);
        assert_int_equal(sim.state.path, PEER_PATH_DIRECT);
        assert_int_equal(sim.state.reason, PEER_PATH_REASON_NO_PATH);
        assert_true(sim.retries >= 5);
        assert_int_equal(sim.reroutes, 0);

        sim.direct_works = true;
        sim_run(&sim, T0 + S(40), false);
        assert_int_equal(sim.state.reason, PEER_PATH_REASON_DIRECT_WORKS);
        assert_int_equal(sim.reroutes, 0);
}

static void test_no_hub_never_relays(void **state) {
        Sim sim;

        sim_init(&sim, T0);
        sim.in.has_hub = false;
        sim.direct_works = false;
        sim_run(&sim, T0 + S(30), false);
        assert_int_equal(sim.state.path, PEER_PATH_DIRECT);
        assert_int_equal(sim.state.reason, PEER_PATH_REASON_NO_HUB);
}

/* The hub's transport changes under a relayed peer: its path says so,
 * but nothing moves between WireGuard entries. */
static void test_hub_transport(void **state) {
        Sim sim;
        unsigned flags;

        sim_init(&sim, T0);
        sim.direct_works = false;
        sim_run(&sim, T0 + S(30), true);
        sim.in.now += S(1);
        sim.in.hub_tls = true;
        flags = peer_path_step(&sim.state, &sim.in);
        assert_int_equal(flags, PEER_PATH_CHANGED);
        assert_int_equal(sim.state.path, PEER_PATH_RELAY_TLS);
        assert_int_equal(sim.state.reason, PEER_PATH_REASON_HUB_TLS);
        sim.in.now += S(1);
        sim.in.hub_tls = false;
        flags = peer_path_step(&sim.state, &sim.in);
        assert_int_equal(flags, PEER_PATH_CHANGED);
        assert_int_equal(sim.state.path, PEER_PATH_RELAY);
}

/* A direct path that proves itself and then fails again at once: the
 * retries slow down instead of flapping every few seconds. */
static void test_flaps_back_off(void **state) {
        PeerPathState s;
        PeerPathInput in = { .has_hub = true, .hub_up = true };
        uint64_t now = T0 + S(10);

        peer_path_init(&s, T0);
        for (unsigned round = 0; round < 3; round++) {
                in.now = now;
                in.underlay_changed = T0;
                in.oldest_unanswered = now - S(10);
                in.last_reply = 0;
                assert_true(peer_path_step(&s, &in) & PEER_PATH_REROUTE);
                assert_true(peer_path_is_relay(s.path));
                in.direct_heard = now + S(3);
                in.now = now + S(3);
                assert_true(peer_path_step(&s, &in) & PEER_PATH_REROUTE);
                now += S(12);
        }
        assert_int_equal(s.flaps, 2);
        /* relayed again: the next retry waits 3 s << flaps */
        in.now = now;
        in.oldest_unanswered = now - S(10);
        assert_true(peer_path_step(&s, &in) & PEER_PATH_REROUTE);
        in.direct_heard = 0;
        in.now = now + PEER_PATH_RETRY_USEC;
        assert_int_equal(peer_path_step(&s, &in), 0);
        in.now = now + (PEER_PATH_RETRY_USEC << 3);
        assert_int_equal(peer_path_step(&s, &in), PEER_PATH_RETRY_DIRECT);
}

static void test_strings(void **state) {
        assert_string_equal(peer_path_to_string(PEER_PATH_RELAY_TLS), "relay-tls");
        for (int r = 0; r < _PEER_PATH_REASON_MAX; r++)
                assert_string_not_equal(peer_path_reason_to_string(r), "unknown");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_healthy_direct_stays),
                cmocka_unit_test(test_start_without_direct_path),
                cmocka_unit_test(test_only_the_leader_punches),
                cmocka_unit_test(test_direct_dies),
                cmocka_unit_test(test_underlay_change_gives_grace),
                cmocka_unit_test(test_relay_returns_to_direct),
                cmocka_unit_test(test_evidence_margin),
                cmocka_unit_test(test_hub_lost_while_relayed),
                cmocka_unit_test(test_no_path),
                cmocka_unit_test(test_no_hub_never_relays),
                cmocka_unit_test(test_hub_transport),
                cmocka_unit_test(test_flaps_back_off),
                cmocka_unit_test(test_strings),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
