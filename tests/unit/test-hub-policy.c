/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hub-policy.c: the hub's chain for devices under an access policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "hub-policy.h"
#include "macro.h"

static const char head[] =
        "add chain inet meshd_hub_m0 device_policy { type filter hook forward priority filter - 10; policy accept; }\n"
        "flush chain inet meshd_hub_m0 device_policy\n";

static void test_no_policy(void **state) {
        _cleanup_free_ char *s = NULL;

        (void) state;
        assert_int_equal(hub_policy_script("m0", "meshd_hub_m0", NULL, 0, false, &s), 0);
        assert_string_equal(s, head);
}

static void test_device_rules(void **state) {
        InAddrPrefix src[2] = {}, dst[2] = {};
        NetmapFilterPort ports[2];
        NetmapFilterEntry e = { .src = src, .n_src = 2, .dst = dst, .n_dst = 2, .ports = ports, .n_ports = 2 };
        NetmapFilter f = { .entries = &e, .n_entries = 1 };
        HubPolicyDevice d = { .filter = &f, .has_ipv6 = false };
        _cleanup_free_ char *s = NULL;
        int family;

        (void) state;
        assert_int_equal(in_addr_prefix_parse("100.64.0.2/32", &family, &src[0].address, &src[0].prefixlen), 0);
        src[0].family = family;
        assert_int_equal(in_addr_prefix_parse("fd7a::2/128", &family, &src[1].address, &src[1].prefixlen), 0);
        src[1].family = family;
        assert_int_equal(in_addr_prefix_parse("100.64.0.9/32", &family, &dst[0].address, &dst[0].prefixlen), 0);
        dst[0].family = family;
        assert_int_equal(in_addr_prefix_parse("fd7a::9/128", &family, &dst[1].address, &dst[1].prefixlen), 0);
        dst[1].family = family;
        assert_int_equal(netmap_filter_port_parse("80/tcp", &ports[0]), 0);
        assert_int_equal(netmap_filter_port_parse("icmp", &ports[1]), 0);
        assert_int_equal(inet_pton(AF_INET, "100.64.0.9", &d.ipv4), 1);

        assert_int_equal(hub_policy_script("m0", "meshd_hub_m0", &d, 1, true, &s), 0);
        assert_non_null(strstr(s, head));
        assert_non_null(strstr(s, "device_policy oifname != \"m0\" accept\n"));
        assert_non_null(strstr(s, "device_policy ct state established,related accept\n"));
        assert_non_null(
                strstr(s, "ip saddr { 100.64.0.2/32 } ip daddr { 100.64.0.9/32 } tcp dport 80 accept\n"));
        assert_non_null(strstr(s, "ip6 saddr { fd7a::2/128 } ip6 daddr { fd7a::9/128 } meta l4proto { icmp, "
                                  "ipv6-icmp } accept\n"));
        assert_non_null(strstr(s, "device_policy ip daddr 100.64.0.9 counter drop"));
        assert_null(strstr(s, "ip6 daddr fd7a::9 counter drop")); /* has_ipv6 false */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_policy),
                cmocka_unit_test(test_device_rules),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
