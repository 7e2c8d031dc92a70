/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "firewall-filter.h"
#include "firewall.h"
#include "macro.h"

/* The script of "table inet meshd" for a few specs, byte for byte: what
 * reaches libnftables is exactly this text (firewall.c runs it as is). */

static InAddrPrefix prefix(const char *s) {
        InAddrPrefix p = {};

        assert_int_equal(in_addr_prefix_parse(s, &p.family, &p.address, &p.prefixlen), 0);
        return p;
}

/* The netmap's filter, parsed by netmap-filter.c, as the manager hands it
 * over; it lives until drop_rules(). */
static NetmapFilter *held = NULL;

static FirewallRule *rules_from_json(const char *json, size_t *ret_n) {
        _cleanup_free_ char *error = NULL;
        FirewallRule *rules = NULL;
        cJSON *j = cJSON_Parse(json);

        assert_non_null(j);
        assert_null(held);
        assert_int_equal(netmap_filter_from_json(j, "", &held, &error), 0);
        assert_int_equal(firewall_filter_rules(held, &rules), 0);
        *ret_n = held->n_entries;
        cJSON_Delete(j);
        return rules;
}

static void drop_rules(FirewallRule *rules) {
        firewall_filter_rules_free(rules);
        held = netmap_filter_free(held);
}

/* FIREWALL_SCRIPT_DUMP=DIR writes every script to DIR/N.nft, so that
 * they can be loaded into a scratch namespace by hand (nft -f). */
static char *script(const FirewallSpec *spec) {
        static unsigned n = 0;
        const char *dir = getenv("FIREWALL_SCRIPT_DUMP");
        char *s = NULL;

        assert_int_equal(firewall_script_install(spec, &s), 0);
        if (dir && s) {
                _cleanup_free_ char *path = NULL;
                FILE *f;

                assert_true(asprintf(&path, "%s/%u.nft", dir, n++) > 0);
                f = fopen(path, "we");
                assert_non_null(f);
                fputs(s, f);
                fclose(f);
        }
        return s;
}

static const InAddrPrefix *mesh(void) {
        static InAddrPrefix m[2];

        m[0] = prefix("100.64.0.0/10");
        m[1] = prefix("fd7a:1:2::/48");
        return m;
}

#define HEAD                        \
        "table inet meshd {}\n"     \
        "delete table inet meshd\n" \
        "table inet meshd {\n"      \
        "\tcomment \"meshd: the mesh policy and forwarding of mesh0, replaced whole by meshd; see meshd(8)\"\n"

#define INPUT_HEAD                                                         \
        "\tchain input {\n"                                                \
        "\t\ttype filter hook input priority filter - 5; policy accept;\n" \
        "\t\tiifname \"mesh0\" jump mesh_input\n"                          \
        "\t}\n"                                                            \
        "\tchain mesh_input {\n"                                           \
        "\t\tct state established,related accept\n"                        \
        "\t\tct state invalid drop\n"                                      \
        "\t\tudp dport 41642 accept comment \"meshd's path probes\"\n"

#define FORWARD_HEAD                                                         \
        "\tchain forward {\n"                                                \
        "\t\ttype filter hook forward priority filter - 5; policy accept;\n" \
        "\t\tiifname \"mesh0\" jump mesh_forward\n"                          \
        "\t}\n"                                                              \
        "\tchain mesh_forward {\n"                                           \
        "\t\tct state established,related accept\n"                          \
        "\t\tct state invalid drop\n"

static const char FILTER[] =
        "[{\"src\": [\"100.64.0.2/32\", \"fd7a:1:2::2/128\", \"100.64.0.9/32\"],"
        "  \"dst\": [\"100.64.0.3/32\", \"fd7a:1:2::3/128\"],"
        "  \"ports\": [\"2049/tcp\", \"22/tcp\", \"icmp\", \"53/udp\", \"1000-2000/udp\", \"1500-2500/udp\"]},"
        " {\"src\": [\"100.64.0.4/32\"], \"dst\": [\"100.64.0.3/32\", \"fd7a:1:2::3/128\"], \"ports\": []}]";

/* FILTER as sets: sources × destinations × ports, one set per family
 * and protocol; ports merged (1000-2000 and 1500-2500), a family only
 * where both lists have it */
#define FILTER_SETS                                            \
        "\tset in4_tcp {\n"                                    \
        "\t\ttype ipv4_addr . ipv4_addr . inet_service\n"      \
        "\t\tflags interval\n"                                 \
        "\t\telements = { 100.64.0.2 . 100.64.0.3 . 22,\n"     \
        "\t\t\t     100.64.0.2 . 100.64.0.3 . 2049,\n"         \
        "\t\t\t     100.64.0.9 . 100.64.0.3 . 22,\n"           \
        "\t\t\t     100.64.0.9 . 100.64.0.3 . 2049 }\n"        \
        "\t}\n"                                                \
        "\tset in4_udp {\n"                                    \
        "\t\ttype ipv4_addr . ipv4_addr . inet_service\n"      \
        "\t\tflags interval\n"                                 \
        "\t\telements = { 100.64.0.2 . 100.64.0.3 . 53,\n"     \
        "\t\t\t     100.64.0.2 . 100.64.0.3 . 1000-2500,\n"    \
        "\t\t\t     100.64.0.9 . 100.64.0.3 . 53,\n"           \
        "\t\t\t     100.64.0.9 . 100.64.0.3 . 1000-2500 }\n"   \
        "\t}\n"                                                \
        "\tset in4_icmp {\n"                                   \
        "\t\ttype ipv4_addr . ipv4_addr\n"                     \
        "\t\tflags interval\n"                                 \
        "\t\telements = { 100.64.0.2 . 100.64.0.3,\n"          \
        "\t\t\t     100.64.0.9 . 100.64.0.3 }\n"               \
        "\t}\n"                                                \
        "\tset in4_all {\n"                                    \
        "\t\ttype ipv4_addr . ipv4_addr\n"                     \
        "\t\tflags interval\n"                                 \
        "\t\telements = { 100.64.0.4 . 100.64.0.3 }\n"         \
        "\t}\n"                                                \
        "\tset in6_tcp {\n"                                    \
        "\t\ttype ipv6_addr . ipv6_addr . inet_service\n"      \
        "\t\tflags interval\n"                                 \
        "\t\telements = { fd7a:1:2::2 . fd7a:1:2::3 . 22,\n"   \
        "\t\t\t     fd7a:1:2::2 . fd7a:1:2::3 . 2049 }\n"      \
        "\t}\n"                                                \
        "\tset in6_udp {\n"                                    \
        "\t\ttype ipv6_addr . ipv6_addr . inet_service\n"      \
        "\t\tflags interval\n"                                 \
        "\t\telements = { fd7a:1:2::2 . fd7a:1:2::3 . 53,\n"   \
        "\t\t\t     fd7a:1:2::2 . fd7a:1:2::3 . 1000-2500 }\n" \
        "\t}\n"                                                \
        "\tset in6_icmp {\n"                                   \
        "\t\ttype ipv6_addr . ipv6_addr\n"                     \
        "\t\tflags interval\n"                                 \
        "\t\telements = { fd7a:1:2::2 . fd7a:1:2::3 }\n"       \
        "\t}\n"

#define FILTER_RULES                                                   \
        "\t\tip saddr . ip daddr . tcp dport @in4_tcp accept\n"        \
        "\t\tip saddr . ip daddr . udp dport @in4_udp accept\n"        \
        "\t\tmeta l4proto icmp ip saddr . ip daddr @in4_icmp accept\n" \
        "\t\tip saddr . ip daddr @in4_all accept\n"                    \
        "\t\tip6 saddr . ip6 daddr . tcp dport @in6_tcp accept\n"      \
        "\t\tip6 saddr . ip6 daddr . udp dport @in6_udp accept\n"      \
        "\t\tmeta l4proto ipv6-icmp ip6 saddr . ip6 daddr @in6_icmp accept\n"

#define POLICY_DROP "\t\tcounter drop comment \"not allowed by the mesh policy\"\n"

/* A policy with ports (merged, sorted, per protocol, both families) on a
 * subnet router: input and forward both filtered, forwarding only to the
 * routes, their traffic masqueraded. */
static void test_policy_and_routes(void **state) {
        size_t n;
        FirewallRule *rules = rules_from_json(FILTER, &n);
        InAddrPrefix routes[] = { prefix("192.168.50.0/24"), prefix("fd00:50::/64") };
        FirewallSpec spec = { .ifname = "mesh0",
                              .policy = true,
                              .filter = rules,
                              .n_filter = n,
                              .routes = routes,
                              .n_routes = 2,
                              .subnet_snat = true,
                              .exit_snat = true,
                              .mesh = mesh(),
                              .n_mesh = 2 };
        _cleanup_free_ char *s = script(&spec);

        assert_string_equal(
                s, HEAD FILTER_SETS INPUT_HEAD FILTER_RULES POLICY_DROP
                "\t}\n" FORWARD_HEAD
                "\t\tmeta nfproto ipv4 ip daddr != { 192.168.50.0/24 } counter drop comment \"not a route of this "
                "node\"\n"
                "\t\tmeta nfproto ipv6 ip6 daddr != { fd00:50::/64 } counter drop comment \"not a route of this "
                "node\"\n" FILTER_RULES POLICY_DROP "\t}\n"
                "\tchain postrouting {\n"
                "\t\ttype nat hook postrouting priority srcnat + 5; policy accept;\n"
                "\t\tiifname \"mesh0\" oifname != \"mesh0\" ip saddr { 100.64.0.0/10 } ip daddr { 192.168.50.0/24 } "
                "masquerade comment \"SubnetSNAT=yes\"\n"
                "\t\tiifname \"mesh0\" oifname != \"mesh0\" ip6 saddr { fd7a:1:2::/48 } ip6 daddr { fd00:50::/64 } "
                "masquerade comment \"SubnetSNAT=yes\"\n"
                "\t}\n"
                "}\n");
        drop_rules(rules);
}

/* No policy, no routes: no table at all (firewall.c deletes ours). */
static void test_nothing_wanted(void **state) {
        FirewallSpec spec = { .ifname = "mesh0", .subnet_snat = true, .exit_snat = true };
        char *s = (char *) "x";

        assert_false(firewall_spec_wanted(&spec));
        assert_int_equal(firewall_script_install(&spec, &s), 0);
        assert_null(s);
        assert_int_equal(firewall_script_remove(&s), 0);
        assert_string_equal(s, "table inet meshd {}\ndelete table inet meshd\n");
        free(s);
        /* an interface name that could break out of the quoted string */
        spec.policy = true;
        spec.ifname = "mesh0\" accept";
        assert_int_equal(firewall_script_install(&spec, &s), -EINVAL);
        spec.ifname = "";
        assert_int_equal(firewall_script_install(&spec, &s), -EINVAL);
}

/* "filter": []: a policy that lets nothing in; replies and probes pass, and
 * a node routing nothing forwards nothing from the mesh. */
static void test_policy_empty(void **state) {
        FirewallSpec spec = { .ifname = "mesh0", .policy = true, .mesh = mesh(), .n_mesh = 2 };
        _cleanup_free_ char *s = script(&spec);

        assert_string_equal(s, HEAD INPUT_HEAD POLICY_DROP
                            "\t}\n" FORWARD_HEAD
                            "\t\tmeta nfproto ipv4 counter drop comment \"not a route of this node\"\n"
                            "\t\tmeta nfproto ipv6 counter drop comment \"not a route of this node\"\n"
                            "\t}\n"
                            "}\n");
}

/* An exit node without a policy: forwards everything from the mesh, masquerades
 * what leaves for the internet, not what goes to its LAN (SubnetSNAT=no). */
static void test_exit_no_policy(void **state) {
        InAddrPrefix routes[] = { prefix("192.168.50.0/24"), prefix("0.0.0.0/0"), prefix("::/0") };
        FirewallSpec spec = { .ifname = "mesh0",
                              .routes = routes,
                              .n_routes = 3,
                              .exit_snat = true,
                              .mesh = mesh(),
                              .n_mesh = 2 };
        _cleanup_free_ char *s = script(&spec);

        assert_string_equal(s, HEAD FORWARD_HEAD
                            "\t}\n"
                            "\tchain postrouting {\n"
                            "\t\ttype nat hook postrouting priority srcnat + 5; policy accept;\n"
                            "\t\tiifname \"mesh0\" oifname != \"mesh0\" ip saddr { 100.64.0.0/10 } ip daddr "
                            "!= { 192.168.50.0/24 } masquerade comment \"ExitSNAT=yes\"\n"
                            "\t\tiifname \"mesh0\" oifname != \"mesh0\" ip6 saddr { fd7a:1:2::/48 } "
                            "masquerade comment \"ExitSNAT=yes\"\n"
                            "\t}\n"
                            "}\n");
}

/* Sets as nft wants them: sorted, no duplicates, nothing inside another
 * element (nft refuses overlapping intervals), host bits cleared; a /0
 * matches the family only. */
static void test_set_normalization(void **state) {
        size_t n;
        FirewallRule *rules = rules_from_json(
                "[{\"src\": [\"10.0.0.0/8\", \"10.9.0.0/16\", \"0.0.0.0/0\", \"fd00::5/128\", \"fd00::/64\", "
                "\"fd00::5/128\"], \"dst\": [\"100.64.0.3/32\", \"100.64.0.3/32\", \"fd7a:1:2::3/128\"], "
                "\"ports\": [\"80/tcp\", \"tcp\", \"81-90/udp\", \"91/udp\", \"80-85/udp\"]}]",
                &n);
        FirewallSpec spec = { .ifname = "m", .policy = true, .filter = rules, .n_filter = n };
        _cleanup_free_ char *s = script(&spec);

        assert_non_null(strstr(s,
                               "\t\tip daddr { 100.64.0.3 } meta l4proto tcp accept comment \"filter 0\"\n"
                               "\t\tip daddr { 100.64.0.3 } udp dport { 80-91 } accept comment \"filter 0\"\n"
                               "\t\tip6 saddr { fd00::/64 } ip6 daddr { fd7a:1:2::3 } meta l4proto tcp accept "
                               "comment \"filter 0\"\n"));
        drop_rules(rules);
        rules = rules_from_json("[{\"src\": [\"::/0\"], \"dst\": [\"::/0\", \"10.0.0.0/8\"], \"ports\": []},"
                                " {\"src\": [\"100.64.0.2/32\"], \"dst\": [\"fd00::1/128\"], \"ports\": []}]",
                                &n);
        spec.filter = rules;
        spec.n_filter = n;
        free(s);
        s = script(&spec);
        /* one family only when both sides have it; rule 1 has none */
        assert_non_null(strstr(s, "\t\tmeta nfproto ipv6 accept comment \"filter 0\"\n"));
        assert_null(strstr(s, "filter 1"));
        drop_rules(rules);
}

/* Elements of a set of concatenated intervals must not overlap (the kernel
 * refuses them): where a destination lies inside a wider one of the same
 * source (an exit node's 0.0.0.0/0), the wider one's ports are taken out. */
static void test_sets_disjoint(void **state) {
        size_t n;
        FirewallRule *rules = rules_from_json(
                "[{\"src\": [\"100.64.0.2/32\"], \"dst\": [\"100.64.0.3/32\"], \"ports\": [\"22/tcp\", \"80/tcp\"]},"
                " {\"src\": [\"100.64.0.2/32\", \"100.64.0.5/32\"], \"dst\": [\"0.0.0.0/0\", \"192.168.50.0/24\"],"
                "  \"ports\": [\"80-90/tcp\", \"icmp\"]},"
                " {\"src\": [\"100.64.0.2/32\"], \"dst\": [\"192.168.50.7/32\"], \"ports\": []},"
                " {\"src\": [\"100.64.0.2/32\"], \"dst\": [\"192.168.50.0/24\"], \"ports\": [\"icmp\", \"85-100/tcp\"]}]",
                &n);
        InAddrPrefix routes[] = { prefix("192.168.50.0/24") };
        FirewallSpec spec = {
                .ifname = "mesh0",
                .policy = true,
                .filter = rules,
                .n_filter = n,
                .routes = routes,
                .n_routes = 1,
                .exit = true,
        };
        _cleanup_free_ char *s = script(&spec);

        assert_non_null(strstr(s, "\tset in4_tcp {\n"
                                  "\t\ttype ipv4_addr . ipv4_addr . inet_service\n"
                                  "\t\tflags interval\n"
                                  "\t\telements = { 100.64.0.2 . 0.0.0.0/0 . 80-90,\n"
                                  "\t\t\t     100.64.0.2 . 100.64.0.3 . 22,\n"
                                  "\t\t\t     100.64.0.2 . 192.168.50.0/24 . 91-100,\n"
                                  "\t\t\t     100.64.0.5 . 0.0.0.0/0 . 80-90 }\n"
                                  "\t}\n"
                                  "\tset in4_icmp {\n"
                                  "\t\ttype ipv4_addr . ipv4_addr\n"
                                  "\t\tflags interval\n"
                                  "\t\telements = { 100.64.0.2 . 0.0.0.0/0,\n"
                                  "\t\t\t     100.64.0.5 . 0.0.0.0/0 }\n"
                                  "\t}\n"
                                  "\tset in4_all {\n"
                                  "\t\ttype ipv4_addr . ipv4_addr\n"
                                  "\t\tflags interval\n"
                                  "\t\telements = { 100.64.0.2 . 192.168.50.7 }\n"
                                  "\t}\n"
                                  "\tchain input {\n"));
        /* an exit node forwards to everything: no route guard */
        assert_null(strstr(s, "not a route of this node"));
        assert_null(strstr(s, "comment \"filter "));
        drop_rules(rules);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_policy_and_routes), cmocka_unit_test(test_nothing_wanted),
                cmocka_unit_test(test_policy_empty),      cmocka_unit_test(test_exit_no_policy),
                cmocka_unit_test(test_set_normalization), cmocka_unit_test(test_sets_disjoint),

        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
