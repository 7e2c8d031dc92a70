/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub-firewall.h"
#include "macro.h"

/* Members from text, normalized; freed by the caller. */
static HubFirewallMembers members(const char *const *v4, size_t n4, const char *const *v6, size_t n6) {
        HubFirewallMembers m = {
                .ipv4 = calloc(n4 + 1, sizeof(struct in_addr)),
                .ipv6 = calloc(n6 + 1, sizeof(struct in6_addr)),
                .n_ipv4 = n4,
                .n_ipv6 = n6,
        };

        assert_non_null(m.ipv4);
        assert_non_null(m.ipv6);
        for (size_t i = 0; i < n4; i++)
                assert_int_equal(inet_pton(AF_INET, v4[i], &m.ipv4[i]), 1);
        for (size_t i = 0; i < n6; i++)
                assert_int_equal(inet_pton(AF_INET6, v6[i], &m.ipv6[i]), 1);
        hub_firewall_members_normalize(&m);
        return m;
}

static HubFirewallConfig config(const HubAllow *allow, size_t n_allow) {
        HubFirewallConfig c = { .ifname = "meshhub", .listen_port = 41640, .allow = allow, .n_allow = n_allow };

        assert_int_equal(inet_pton(AF_INET, "100.64.0.1", &c.hub_ipv4), 1);
        assert_int_equal(inet_pton(AF_INET6, "fd00:1::1", &c.hub_ipv6), 1);
        return c;
}

static size_t count(const char *haystack, const char *needle) {
        size_t n = 0;

        for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
                n++;
        return n;
}

static void test_allow_parse(void **state) {
        HubAllow a;

        assert_int_equal(hub_allow_parse("tcp/443", &a), 0);
        assert_int_equal(a.protocol, IPPROTO_TCP);
        assert_int_equal(a.port, 443);
        assert_int_equal(hub_allow_parse("udp/53", &a), 0);
        assert_int_equal(a.protocol, IPPROTO_UDP);
        assert_int_equal(hub_allow_parse("udp/65535", &a), 0);

        static const char *const bad[] = { "tcp",    "tcp/",   "tcp/0",   "tcp/65536", "tcp/-1",
                                           "tcp/+1", "tcp/ 1", "tcp/1x",  "TCP/1",     "icmp/1",
                                           "/1",     "tcp/01", "tcp/1/2", "" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(hub_allow_parse(bad[i], &a), -EINVAL);
        assert_int_equal(hub_allow_parse(NULL, &a), -EINVAL);
}

static void test_table_name(void **state) {
        char t[HUB_FIREWALL_TABLE_MAX];

        assert_int_equal(hub_firewall_table_name("meshhub", t), 0);
        assert_string_equal(t, "meshd_hub_meshhub");
        assert_int_equal(hub_firewall_table_name("m1a2z", t), 0);
        assert_string_equal(t, "meshd_hub_m1a2z");
        assert_int_equal(hub_firewall_table_name("wg-hub.0_x", t), 0);
        assert_int_equal(hub_firewall_table_name("123456789012345", t), 0);

        /* would break out of the quoted name in the rules, or is no ifname */
        static const char *const bad[] = { "a\"b", "a b", "a\\b", "a;b", "a{", "", "1234567890123456", "a\nb" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(hub_firewall_table_name(bad[i], t), -EINVAL);
}

static void test_normalize(void **state) {
        static const char *const v4[] = { "100.64.0.9", "100.64.0.2", "100.64.0.9", "100.64.1.0" };
        static const char *const v6[] = { "fd00:1::9", "fd00:1::2", "fd00:1::2" };
        HubFirewallMembers m = members(v4, 4, v6, 3);
        char buf[INET6_ADDRSTRLEN];

        assert_int_equal(m.n_ipv4, 3);
        assert_string_equal(inet_ntop(AF_INET, &m.ipv4[0], buf, sizeof(buf)), "100.64.0.2");
        assert_string_equal(inet_ntop(AF_INET, &m.ipv4[1], buf, sizeof(buf)), "100.64.0.9");
        assert_string_equal(inet_ntop(AF_INET, &m.ipv4[2], buf, sizeof(buf)), "100.64.1.0");
        assert_int_equal(m.n_ipv6, 2);
        hub_firewall_members_done(&m);
        assert_null(m.ipv4);
}

static void test_install(void **state) {
        static const char *const v4[] = { "100.64.0.3", "100.64.0.2" };
        static const char *const v6[] = { "fd00:1::2" };
        HubAllow allow[] = { { IPPROTO_TCP, 443 }, { IPPROTO_UDP, 53 } };
        HubFirewallConfig c = config(allow, ELEMENTSOF(allow));
        HubFirewallMembers m = members(v4, 2, v6, 1);
        _cleanup_free_ char *s = NULL;

        assert_int_equal(hub_firewall_script_install(&c, &m, &s), 0);
        /* one transaction that replaces a stale table: add, delete, create */
        assert_true(strncmp(s,
                            "table inet meshd_hub_meshhub {}\n"
                            "delete table inet meshd_hub_meshhub\n"
                            "table inet meshd_hub_meshhub {\n",
                            strlen("table inet meshd_hub_meshhub {}\n"
                                   "delete table inet meshd_hub_meshhub\n"
                                   "table inet meshd_hub_meshhub {\n")) == 0);
        /* only our table: every table named is ours */
        assert_int_equal(count(s, "table "), 3);
        assert_int_equal(count(s, "table inet meshd_hub_meshhub"), 3);
        assert_non_null(strstr(s, "elements = { 100.64.0.2, 100.64.0.3 }"));
        assert_non_null(strstr(s, "elements = { fd00:1::2 }"));

        /* forward: into the hub from elsewhere dropped, from the hub only
         * back into it and between members, both families */
        assert_non_null(strstr(s, "hook forward priority filter - 10; policy accept;"));
        assert_non_null(strstr(s, "oifname \"meshhub\" iifname != \"meshhub\" counter drop"));
        assert_non_null(strstr(s, "iifname \"meshhub\" jump from_hub"));
        assert_non_null(strstr(s, "oifname != \"meshhub\" counter drop"));
        assert_non_null(strstr(s, "ip saddr @members4 ip daddr @members4 return"));
        assert_non_null(strstr(s, "ip6 saddr @members6 ip6 daddr @members6 return"));
        assert_non_null(strstr(s, "counter drop comment \"not between two members\""));
        /* the into-the-hub rule comes before the jump: a relayed packet
         * returns from from_hub and must not meet it */
        assert_true(strstr(s, "iifname != \"meshhub\" counter drop") < strstr(s, "jump from_hub"));

        /* input: replies, probes, the allowed services, from members to the
         * hub's own addresses; everything else dropped */
        assert_non_null(strstr(s, "hook input priority filter - 10; policy accept;"));
        assert_non_null(strstr(s, "iifname \"meshhub\" jump to_hub"));
        assert_non_null(strstr(s, "ct state established,related return"));
        assert_non_null(strstr(s, "ip saddr @members4 ip daddr 100.64.0.1 udp dport 41642 return"));
        assert_non_null(strstr(s, "ip6 saddr @members6 ip6 daddr fd00:1::1 udp dport 41642 return"));
        assert_non_null(strstr(s, "ip saddr @members4 ip daddr 100.64.0.1 tcp dport 443 return"));
        assert_non_null(strstr(s, "ip6 saddr @members6 ip6 daddr fd00:1::1 tcp dport 443 return"));
        assert_non_null(strstr(s, "ip saddr @members4 ip daddr 100.64.0.1 udp dport 53 return"));
        assert_non_null(strstr(s, "counter drop comment \"not a hub service\""));
        /* no rule of ours ever accepts: other tables' rules keep their say */
        assert_null(strstr(s, "accept\n"));
        assert_int_equal(count(s, " accept"), 2); /* the two chain policies */

        /* the TLS relay's streams on loopback: limited per stream, not here */
        assert_non_null(strstr(s, "iifname \"lo\" udp dport 41640 counter return"));
        assert_true(strstr(s, "iifname \"lo\" udp dport 41640 counter return") <
                    strstr(s, "update @handshakes4"));
        /* handshake rate limit on the hub's port, per source, both families */
        assert_non_null(strstr(s, "udp dport 41640 udp length 156 @th,64,32 0x01000000 update @handshakes4 "
                                  "{ ip saddr limit rate over 50/second burst 100 packets } counter drop"));
        assert_non_null(strstr(s, "update @handshakes6 { ip6 saddr & ffff:ffff:ffff:ffff:: limit rate"));

        hub_firewall_members_done(&m);
}

static void test_install_empty_and_no_port(void **state) {
        HubFirewallConfig c = config(NULL, 0);
        HubFirewallMembers m = {};
        _cleanup_free_ char *s = NULL;
        HubAllow bad = { IPPROTO_ICMP, 1 };

        c.listen_port = 0;
        assert_int_equal(hub_firewall_script_install(&c, &m, &s), 0);
        assert_null(strstr(s, "elements")); /* "{ }" is a syntax error */
        assert_null(strstr(s, "handshakes"));
        assert_null(strstr(s, "--hub-allow"));
        s = mfree(s);

        c.ifname = "bad\"name";
        assert_int_equal(hub_firewall_script_install(&c, &m, &s), -EINVAL);
        c = config(&bad, 1);
        assert_int_equal(hub_firewall_script_install(&c, &m, &s), -EINVAL);
        assert_null(s);
}

static void test_update(void **state) {
        static const char *const old4[] = { "100.64.0.2", "100.64.0.3", "100.64.0.4" };
        static const char *const new4[] = { "100.64.0.3", "100.64.0.5", "100.64.0.2", "100.64.0.6" };
        static const char *const old6[] = { "fd00:1::2", "fd00:1::3", "fd00:1::4" };
        static const char *const new6[] = { "fd00:1::2", "fd00:1::3", "fd00:1::4" };
        HubFirewallMembers o = members(old4, 3, old6, 3), n = members(new4, 4, new6, 3);
        _cleanup_free_ char *s = NULL;

        assert_int_equal(hub_firewall_script_update("meshd_hub_x", &o, &n, &s), 0);
        assert_string_equal(s, "delete element inet meshd_hub_x members4 { 100.64.0.4 }\n"
                               "add element inet meshd_hub_x members4 { 100.64.0.5, 100.64.0.6 }\n");
        s = mfree(s);

        /* nothing changed: no script at all */
        assert_int_equal(hub_firewall_script_update("meshd_hub_x", &n, &n, &s), 0);
        assert_null(s);

        /* IPv6 only, deletions before additions */
        hub_firewall_members_done(&o);
        hub_firewall_members_done(&n);
        static const char *const a6[] = { "fd00:1::2" }, *const b6[] = { "fd00:1::3" };
        o = members(NULL, 0, a6, 1);
        n = members(NULL, 0, b6, 1);
        assert_int_equal(hub_firewall_script_update("meshd_hub_x", &o, &n, &s), 0);
        assert_string_equal(s, "delete element inet meshd_hub_x members6 { fd00:1::2 }\n"
                               "add element inet meshd_hub_x members6 { fd00:1::3 }\n");
        hub_firewall_members_done(&o);
        hub_firewall_members_done(&n);
}

static void test_update_large(void **state) {
        /* 10,000 members; one joins and one leaves: two short lines */
        HubFirewallMembers o = { .ipv4 = calloc(10000, sizeof(struct in_addr)), .n_ipv4 = 10000 };
        HubFirewallMembers n = { .ipv4 = calloc(10000, sizeof(struct in_addr)), .n_ipv4 = 10000 };
        _cleanup_free_ char *s = NULL;

        assert_non_null(o.ipv4);
        assert_non_null(n.ipv4);
        for (uint32_t i = 0; i < 10000; i++) {
                o.ipv4[i].s_addr = htonl(0x64400002 + i);
                n.ipv4[i].s_addr = htonl(0x64400003 + i);
        }
        hub_firewall_members_normalize(&o);
        hub_firewall_members_normalize(&n);
        assert_int_equal(hub_firewall_script_update("t", &o, &n, &s), 0);
        assert_string_equal(s, "delete element inet t members4 { 100.64.0.2 }\n"
                               "add element inet t members4 { 100.64.39.18 }\n");
        hub_firewall_members_done(&o);
        hub_firewall_members_done(&n);
}

static void test_reload_and_remove(void **state) {
        static const char *const v4[] = { "100.64.0.2" };
        HubFirewallMembers m = members(v4, 1, NULL, 0);
        _cleanup_free_ char *s = NULL, *r = NULL;

        assert_int_equal(hub_firewall_script_reload("t", &m, &s), 0);
        assert_string_equal(s, "flush set inet t members4\n"
                               "flush set inet t members6\n"
                               "add element inet t members4 { 100.64.0.2 }\n");
        assert_int_equal(hub_firewall_script_remove("t", &r), 0);
        /* add-then-delete: succeeds whether or not the table exists */
        assert_string_equal(r, "table inet t {}\ndelete table inet t\n");
        hub_firewall_members_done(&m);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_allow_parse),
                cmocka_unit_test(test_table_name),
                cmocka_unit_test(test_normalize),
                cmocka_unit_test(test_install),
                cmocka_unit_test(test_install_empty_and_no_port),
                cmocka_unit_test(test_update),
                cmocka_unit_test(test_update_large),
                cmocka_unit_test(test_reload_and_remove),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
