/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firewall-sets.h"
#include "macro.h"

/* The sets say what the filter says: random filters over a small universe
 * of addresses, prefixes and ports (so that destinations nest and ranges
 * overlap, the cases the disjoint elements are cut for), random packets;
 * the entries' own meaning against the sets' lookups (and the rules of
 * their own for entries that fit no set). Every set disjoint, as the
 * kernel demands. Fixed seed: the same cases every run. */

static const char *const SRC[] = { "100.64.0.1/32", "100.64.0.2/32", "100.64.0.3/32",
                                   "fd7a::1/128",   "fd7a::2/128",   "100.64.0.0/30" /* no set: own rules */ };
static const char *const DST[] = { "100.64.0.9/32", "100.64.0.8/29",  "100.64.0.0/24",
                                   "0.0.0.0/0",     "192.168.1.0/24", "192.168.1.7/32",
                                   "fd7a::9/128",   "fd7a::/120",     "::/0" };
static const FirewallPort PORTS[] = {
        { FIREWALL_PROTO_TCP, 20, 30 },   { FIREWALL_PROTO_TCP, 25, 25 }, { FIREWALL_PROTO_TCP, 25, 40 },
        { FIREWALL_PROTO_TCP, 0, 65535 }, { FIREWALL_PROTO_UDP, 53, 53 }, { FIREWALL_PROTO_UDP, 50, 60 },
        { FIREWALL_PROTO_ICMP, 0, 0 },
};
static const char *const PACKET_SRC[] = { "100.64.0.1", "100.64.0.2", "100.64.0.3", "100.64.0.4",
                                          "fd7a::1",    "fd7a::2",    "fd7a::3" };
static const char *const PACKET_DST[] = { "100.64.0.9",  "100.64.0.10", "100.64.0.200",
                                          "192.168.1.7", "192.168.1.8", "8.8.8.8",
                                          "fd7a::9",     "fd7a::20",    "2001:db8::1" };
static const uint16_t PACKET_PORT[] = { 20, 25, 30, 35, 41, 53, 55, 80 };

static uint32_t rnd(uint32_t *state) {
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;
        return *state;
}

static InAddrPrefix prefix(const char *s) {
        InAddrPrefix p = {};

        assert_int_equal(in_addr_prefix_parse(s, &p.family, &p.address, &p.prefixlen), 0);
        return p;
}

static bool in_list(const InAddrPrefix *l, size_t n, int family, const union in_addr_union *a) {
        for (size_t i = 0; i < n; i++)
                if (l[i].family == family && in_addr_prefix_contains(family, &l[i].address, l[i].prefixlen, a))
                        return true;
        return false;
}

/* What one entry means (netmap-filter.h). */
static bool rule_matches(const FirewallRule *r, int family, const union in_addr_union *src,
                         const union in_addr_union *dst, FirewallProto proto, uint16_t port) {
        if (!in_list(r->src, r->n_src, family, src) || !in_list(r->dst, r->n_dst, family, dst))
                return false;
        if (r->n_ports == 0)
                return true;
        for (size_t i = 0; i < r->n_ports; i++)
                if (r->ports[i].proto == proto &&
                    (proto == FIREWALL_PROTO_ICMP || (port >= r->ports[i].from && port <= r->ports[i].to)))
                        return true;
        return false;
}

static void random_rule(uint32_t *state, FirewallRule *r) {
        r->n_src = 1 + rnd(state) % 3;
        r->n_dst = 1 + rnd(state) % 3;
        r->n_ports = rnd(state) % 4;
        r->src = calloc(r->n_src, sizeof(InAddrPrefix));
        r->dst = calloc(r->n_dst, sizeof(InAddrPrefix));
        r->ports = calloc(MAX(r->n_ports, (size_t) 1), sizeof(FirewallPort));
        assert_true(r->src && r->dst && r->ports);
        for (size_t i = 0; i < r->n_src; i++)
                /* the non-host source rarely, so most entries go into sets */
                r->src[i] =
                        prefix(SRC[rnd(state) % (rnd(state) % 8 == 0 ? ELEMENTSOF(SRC) : ELEMENTSOF(SRC) - 1)]);
        for (size_t i = 0; i < r->n_dst; i++)
                r->dst[i] = prefix(DST[rnd(state) % ELEMENTSOF(DST)]);
        for (size_t i = 0; i < r->n_ports; i++)
                r->ports[i] = PORTS[rnd(state) % ELEMENTSOF(PORTS)];
}

static void check_packets(uint32_t *state, const FirewallRule *rules, size_t n, const FirewallSets *sets) {
        for (unsigned t = 0; t < 200; t++) {
                union in_addr_union src, dst;
                int family, family_dst;
                FirewallProto proto = rnd(state) % _FIREWALL_PROTO_MAX;
                uint16_t port = PACKET_PORT[rnd(state) % ELEMENTSOF(PACKET_PORT)];
                bool want = false, got;

                assert_int_equal(in_addr_parse(PACKET_SRC[rnd(state) % ELEMENTSOF(PACKET_SRC)], &family, &src),
                                 0);
                do
                        assert_int_equal(in_addr_parse(PACKET_DST[rnd(state) % ELEMENTSOF(PACKET_DST)],
                                                       &family_dst, &dst),
                                         0);
                while (family_dst != family);
                for (size_t i = 0; i < n; i++)
                        want |= rule_matches(&rules[i], family, &src, &dst, proto, port);
                got = firewall_sets_match(sets, family, &src, &dst, proto, port);
                for (size_t i = 0; i < n; i++)
                        got |= sets->own_rules[i] && rule_matches(&rules[i], family, &src, &dst, proto, port);
                assert_int_equal(got, want);
        }
}

static void test_sets_mean_the_filter(void **state) {
        uint32_t seed = 0x5eed1234;
        size_t elements = 0;

        for (unsigned round = 0; round < 3000; round++) {
                FirewallRule rules[6] = {};
                size_t n = 1 + rnd(&seed) % ELEMENTSOF(rules);
                FirewallSpec spec = { .ifname = "mesh0", .policy = true, .filter = rules, .n_filter = n };
                _cleanup_(firewall_sets_done) FirewallSets sets = {};

                for (size_t i = 0; i < n; i++)
                        random_rule(&seed, &rules[i]);
                assert_int_equal(firewall_sets_build(&spec, &sets), 0);
                assert_true(firewall_sets_disjoint(&sets));
                check_packets(&seed, rules, n, &sets);
                for (size_t f = 0; f < 2; f++)
                        for (size_t k = 0; k < _FIREWALL_SET_MAX; k++)
                                elements += sets.n[f][k];
                for (size_t i = 0; i < n; i++) {
                        free(rules[i].src);
                        free(rules[i].dst);
                        free(rules[i].ports);
                }
        }
        assert_true(elements > 3000); /* the sets were used, not only own rules */
}

static InAddrPrefix host(const char *a) {
        char buf[64];

        snprintf(buf, sizeof(buf), "%s/%d", a, strchr(a, ':') ? 128 : 32);
        return prefix(buf);
}

static bool accepts(const FirewallSets *sets, const char *src, const char *dst) {
        InAddrPrefix s = host(src), d = host(dst);

        return firewall_sets_match(sets, s.family, &s.address, &d.address, FIREWALL_PROTO_TCP, 22);
}

/* A routed destination never covers a mesh address (policy.c): "0.0.0.0/0"
 * granted through an exit node must not open the exit node's own address
 * in the input chain (fuzz-policy found it). The node's own address in the
 * same entry, and the internet, stay open. */
static void test_sets_exit_leaves_mesh_out(void **state) {
        InAddrPrefix mesh[] = { prefix("100.64.0.0/10"), prefix("fd7a::/48") };
        InAddrPrefix src[] = { host("100.64.0.2"), host("fd7a::2") };
        InAddrPrefix dst[] = { prefix("0.0.0.0/0"), prefix("::/0"), prefix("100.64.0.9/32") };
        FirewallRule rule = { .src = src, .n_src = 2, .dst = dst, .n_dst = 3 };
        FirewallSpec spec = { .ifname = "mesh0", .policy = true, .filter = &rule, .n_filter = 1, .mesh = mesh };
        _cleanup_(firewall_sets_done) FirewallSets open = {}, cut = {};

        assert_int_equal(firewall_sets_build(&spec, &open), 0);
        assert_true(accepts(&open, "100.64.0.2", "100.64.0.4")); /* without ranges: as before */
        spec.n_mesh = ELEMENTSOF(mesh);
        assert_int_equal(firewall_sets_build(&spec, &cut), 0);
        assert_true(firewall_sets_disjoint(&cut));
        assert_false(accepts(&cut, "100.64.0.2", "100.64.0.4"));
        assert_false(accepts(&cut, "100.64.0.2", "100.127.255.255"));
        assert_false(accepts(&cut, "fd7a::2", "fd7a::4"));
        assert_true(accepts(&cut, "100.64.0.2", "100.64.0.9"));
        assert_true(accepts(&cut, "100.64.0.2", "100.63.255.255"));
        assert_true(accepts(&cut, "100.64.0.2", "100.128.0.0"));
        assert_true(accepts(&cut, "100.64.0.2", "8.8.8.8"));
        assert_true(accepts(&cut, "fd7a::2", "fd7a:0:1::1"));
        assert_true(accepts(&cut, "fd7a::2", "2001:db8::1"));
        assert_int_equal(cut.n[0][FIREWALL_SET_ALL], 11); /* 10 pieces of 0.0.0.0/0 and the /32 */
        assert_int_equal(cut.n[1][FIREWALL_SET_ALL], 48);
}

static size_t set_elements(const FirewallSets *sets) {
        size_t n = 0;

        for (size_t f = 0; f < 2; f++)
                for (size_t k = 0; k < _FIREWALL_SET_MAX; k++)
                        n += sets->n[f][k];
        return n;
}

/* Whether the one entry of spec went into the sets (true) or got rules of
 * its own (false, the sets empty). */
static bool entry_in_sets(const FirewallSpec *spec, size_t expect_elements) {
        _cleanup_(firewall_sets_done) FirewallSets sets = {};

        assert_int_equal(firewall_sets_build(spec, &sets), 0);
        if (sets.own_rules[0]) {
                assert_int_equal(set_elements(&sets), 0);
                return false;
        }
        assert_int_equal(set_elements(&sets), expect_elements);
        return true;
}

/* FIREWALL_ENTRY_ELEMENTS_MAX counts what goes into the sets: the
 * destinations after the mesh's ranges are cut out (0.0.0.0/0 around a /10
 * is 10 prefixes, ::/0 around a /48 is 48), both families. Counted before
 * the cut, the entries below would be 4,097 × 8 and 1,366 × 1 and go into
 * the sets with 65,537 and 65,568 elements. */
static void test_sets_entry_limit_after_cut(void **state) {
        InAddrPrefix mesh[] = { prefix("100.64.0.0/10"), prefix("fd7a::/48") };
        InAddrPrefix *src = calloc(4097, sizeof(InAddrPrefix));
        InAddrPrefix dst[8] = { prefix("0.0.0.0/0") };
        FirewallRule rule = { .src = src, .dst = dst };
        FirewallSpec spec = { .ifname = "mesh0",
                              .policy = true,
                              .filter = &rule,
                              .n_filter = 1,
                              .mesh = mesh,
                              .n_mesh = ELEMENTSOF(mesh) };
        char a[48];

        assert_non_null(src);
        /* IPv4: 4,096 members × (10 pieces of 0.0.0.0/0 + 6 members' own addresses) = 65,536: fits */
        for (size_t i = 0; i < 4096; i++) {
                snprintf(a, sizeof(a), "100.64.%zu.%zu", 16 + i / 256, i % 256);
                src[i] = host(a);
        }
        for (size_t i = 1; i < 7; i++) {
                snprintf(a, sizeof(a), "100.64.0.%zu", i);
                dst[i] = host(a);
        }
        rule.n_src = 4096;
        rule.n_dst = 7;
        assert_true(entry_in_sets(&spec, FIREWALL_ENTRY_ELEMENTS_MAX));
        /* one IPv6 element more: 65,537, rules of its own */
        src[4096] = host("fd7a::2");
        dst[7] = host("fd7a::9");
        rule.n_src = 4097;
        rule.n_dst = 8;
        assert_false(entry_in_sets(&spec, 0));

        /* IPv6: ::/0 is 48 prefixes; 1,365 × 48 = 65,520 fits, 1,366 × 48 = 65,568 does not */
        dst[0] = prefix("::/0");
        for (size_t i = 0; i < 1366; i++) {
                snprintf(a, sizeof(a), "fd7a::1:%zx", i);
                src[i] = host(a);
        }
        rule.n_dst = 1;
        rule.n_src = 1365;
        assert_true(entry_in_sets(&spec, 1365 * 48));
        rule.n_src = 1366;
        assert_false(entry_in_sets(&spec, 0));
        free(src);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sets_mean_the_filter),
                cmocka_unit_test(test_sets_exit_leaves_mesh_out),
                cmocka_unit_test(test_sets_entry_limit_after_cut),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
