/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static FirewallRule *rules_from_json(const char *json, size_t *ret_n) {
        _cleanup_free_ char *error = NULL;
        FirewallRule *rules = NULL;
        cJSON *j = cJSON_Parse(json);
        bool policy = false;

        assert_non_null(j);
        assert_int_equal(firewall_filter_parse(j, &policy, &rules, ret_n, &error), 0);
        assert_true(policy);
        cJSON_Delete(j);
        return rules;
}

static char *script(const FirewallSpec *spec) {
        char *s = NULL;

        assert_int_equal(firewall_script_install(spec, &s), 0);
        return s;
}

static const InAddrPrefix *mesh(void) {
        static InAddrPrefix m[2];

        m[0] = prefix("100.64.0.0/10");
        m[1] = prefix("fd7a:1:2::/48");
        return m;
}

#define HEAD                                                                                                    \
        "table inet meshd {}\n"                                                                                 \
        "delete table inet meshd\n"                                                                             \
        "table inet meshd {\n"                                                                                  \
        "\tcomment \"meshd: the mesh policy and forwarding of mesh0, replaced whole by meshd; see meshd(8)\"\n"

#define INPUT_HEAD                                                                                              \
        "\tchain input {\n"                                                                                     \
        "\t\ttype filter hook input priority filter - 5; policy accept;\n"                                     \
        "\t\tiifname \"mesh0\" jump mesh_input\n"                                                              \
        "\t}\n"                                                                                                 \
        "\tchain mesh_input {\n"                                                                                \
        "\t\tct state established,related accept\n"                                                            \
        "\t\tct state invalid drop\n"                                                                           \
        "\t\tudp dport 41642 accept comment \"meshd's path probes\"\n"

#define FORWARD_HEAD                                                                                            \
        "\tchain forward {\n"                                                                                   \
        "\t\ttype filter hook forward priority filter - 5; policy accept;\n"                                   \
        "\t\tiifname \"mesh0\" jump mesh_forward\n"                                                            \
        "\t}\n"                                                                                                 \
        "\tchain mesh_forward {\n"                                                                              \
        "\t\tct state established,related accept\n"                                                            \
        "\t\tct state invalid drop\n"

static void test_dump(void **state) {
        static const char filter[] =
                "[{\"src\": [\"100.64.0.2/32\", \"fd7a:1:2::2/128\", \"100.64.0.9/32\"], \"dst\": [\"100.64.0.3/32\", \"fd7a:1:2::3/128\"], \"ports\": [\"2049/tcp\", \"22/tcp\", \"icmp\", \"53/udp\", \"1000-2000/udp\", \"1500-2500/udp\"]},"
                " {\"src\": [\"100.64.0.4/32\"], \"dst\": [\"100.64.0.3/32\", \"fd7a:1:2::3/128\"], \"ports\": []}]";
        size_t n;
        FirewallRule *rules = rules_from_json(filter, &n);
        InAddrPrefix routes[] = { prefix("192.168.50.0/24"), prefix("fd00:50::/64") };
        FirewallSpec spec = { .ifname = "mesh0", .policy = true, .filter = rules, .n_filter = n, .routes = routes, .n_routes = 2, .subnet_snat = true, .exit_snat = true, .mesh = mesh(), .n_mesh = 2 };
        _cleanup_free_ char *s = script(&spec);
        fputs(s, stdout);
        spec.exit = true;
        free(s);
        s = script(&spec);
        fputs(s, stdout);
        firewall_rules_free(rules, n);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_dump),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
