/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "endpoint.h"
#include "macro.h"

static void assert_roundtrip(const char *s, int family, uint16_t port) {
        union sockaddr_union sa, again;
        char buf[ENDPOINT_STRLEN];

        assert_int_equal(endpoint_parse(s, &sa), 0);
        assert_int_equal(sa.sa.sa_family, family);
        assert_int_equal(ntohs(family == AF_INET ? sa.in.sin_port : sa.in6.sin6_port), port);
        assert_int_equal(endpoint_socklen(&sa),
                         family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
        assert_non_null(endpoint_format(&sa, buf, sizeof(buf)));
        assert_string_equal(buf, s);
        assert_int_equal(endpoint_parse(buf, &again), 0);
        assert_true(endpoint_equal(&sa, &again));
}

static void test_endpoint_valid(void **state) {
        assert_roundtrip("192.0.2.1:41641", AF_INET, 41641);
        assert_roundtrip("0.0.0.0:1", AF_INET, 1);
        assert_roundtrip("255.255.255.255:65535", AF_INET, 65535);
        assert_roundtrip("[2001:db8::1]:51820", AF_INET6, 51820);
        assert_roundtrip("[::1]:1", AF_INET6, 1);
        assert_roundtrip("[::ffff:192.0.2.1]:443", AF_INET6, 443);
        assert_roundtrip("[fe80::1%1]:51820", AF_INET6, 51820); /* zone by index */

        union sockaddr_union sa;
        assert_int_equal(endpoint_parse("[fe80::1%lo]:51820", &sa), 0); /* zone by name */
        assert_int_equal(sa.in6.sin6_scope_id, 1);
}

static void test_endpoint_invalid(void **state) {
        static const char *const bad[] = {
                "",
                "192.0.2.1",
                "192.0.2.1:",
                "192.0.2.1:0",
                "192.0.2.1:65536",
                "192.0.2.1:100000",
                "192.0.2.1:+80",
                "192.0.2.1:-1",
                "192.0.2.1: 80",
                "192.0.2.1:80 ",
                "192.0.2.1:0x50",
                ":80",
                "192.0.2:80",
                "192.0.2.256:80",
                "example.com:80",
                "localhost:51820",
                "2001:db8::1:51820",
                "[2001:db8::1]",
                "[2001:db8::1]:",
                "[2001:db8::1]:0",
                "[2001:db8::1]:65536",
                "[2001:db8::1]51820",
                "[2001:db8::1:51820",
                "2001:db8::1]:51820",
                "[]:80",
                "[192.0.2.1]:80",
                "[fe80::1%]:80",
                "[fe80::1%nosuchif0]:80",
        };
        union sockaddr_union sa;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = endpoint_parse(bad[i], &sa);
                if (r != -EINVAL)
                        fail_msg("endpoint_parse(\"%s\") = %i, expected -EINVAL", bad[i], r);
        }
        assert_int_equal(endpoint_parse(NULL, &sa), -EINVAL);
}

static void test_endpoint_equal(void **state) {
        union sockaddr_union a, b, none = {}, none2 = {};

        assert_int_equal(endpoint_parse("192.0.2.1:1", &a), 0);
        assert_int_equal(endpoint_parse("192.0.2.1:2", &b), 0);
        assert_false(endpoint_equal(&a, &b));
        assert_int_equal(endpoint_parse("[::ffff:192.0.2.1]:1", &b), 0);
        assert_false(endpoint_equal(&a, &b));
        assert_true(endpoint_equal(&none, &none2));
        assert_false(endpoint_equal(&a, &none));
        assert_int_equal(endpoint_socklen(&none), 0);

        char small[8];
        assert_null(endpoint_format(&a, small, sizeof(small)));
        assert_null(endpoint_format(&none, small, sizeof(small)));
}

static void test_in_addr(void **state) {
        union in_addr_union a;
        char buf[INET6_ADDRSTRLEN];
        int family;

        assert_int_equal(in_addr_parse("100.64.0.1", &family, &a), 0);
        assert_int_equal(family, AF_INET);
        assert_string_equal(in_addr_format(family, &a, buf, sizeof(buf)), "100.64.0.1");
        assert_int_equal(in_addr_parse("fd7a:115c:a1e0::1", &family, &a), 0);
        assert_int_equal(family, AF_INET6);
        assert_string_equal(in_addr_format(family, &a, buf, sizeof(buf)), "fd7a:115c:a1e0::1");

        assert_int_equal(in_addr_parse("", &family, &a), -EINVAL);
        assert_int_equal(in_addr_parse("100.64.0", &family, &a), -EINVAL);
        assert_int_equal(in_addr_parse("100.64.0.1/32", &family, &a), -EINVAL);
        assert_int_equal(in_addr_parse("[::1]", &family, &a), -EINVAL);
        assert_int_equal(in_addr_parse("host", &family, &a), -EINVAL);
        assert_null(in_addr_format(AF_UNIX, &a, buf, sizeof(buf)));
        assert_null(in_addr_format(AF_INET6, &a, buf, 4));
}

static void test_in_addr_prefix(void **state) {
        union in_addr_union a;
        uint8_t len;
        int family;
        char buf[INET6_ADDRSTRLEN];

        assert_int_equal(in_addr_prefix_parse("100.64.0.0/10", &family, &a, &len), 0);
        assert_int_equal(family, AF_INET);
        assert_int_equal(len, 10);
        assert_string_equal(in_addr_format(family, &a, buf, sizeof(buf)), "100.64.0.0");
        assert_int_equal(in_addr_prefix_parse("0.0.0.0/0", &family, &a, &len), 0);
        assert_int_equal(len, 0);
        assert_int_equal(in_addr_prefix_parse("100.64.0.7/32", &family, &a, &len), 0);
        assert_int_equal(len, 32);
        assert_int_equal(in_addr_prefix_parse("fd00::/8", &family, &a, &len), 0);
        assert_int_equal(family, AF_INET6);
        assert_int_equal(len, 8);
        assert_int_equal(in_addr_prefix_parse("::/0", &family, &a, &len), 0);
        assert_int_equal(in_addr_prefix_parse("2001:db8::1/128", &family, &a, &len), 0);
        assert_int_equal(len, 128);

        static const char *const bad[] = {
                "100.64.0.0", "100.64.0.0/", "100.64.0.0/33", "100.64.0.0/-1", "100.64.0.0/+8",
                "100.64.0.0/ 8", "100.64.0.0/8 ", "100.64.0.0/1000", "100.64.0.0/a",
                "/8", "::/129", "fd00::/8/8", "100.64.0/10", "host/24",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = in_addr_prefix_parse(bad[i], &family, &a, &len);
                if (r != -EINVAL)
                        fail_msg("in_addr_prefix_parse(\"%s\") = %i, expected -EINVAL", bad[i], r);
        }
}

static bool announceable(const char *s) {
        union in_addr_union r4 = {}, r6 = {};
        union sockaddr_union sa;
        uint8_t l4, l6;
        int f;

        assert_int_equal(in_addr_prefix_parse("100.64.0.0/10", &f, &r4, &l4), 0);
        assert_int_equal(in_addr_prefix_parse("fd7a:115c:a1e0::/48", &f, &r6, &l6), 0);
        assert_int_equal(endpoint_parse(s, &sa), 0);
        return endpoint_is_announceable(&sa, &r4, l4, &r6, l6);
}

static void test_endpoint_is_announceable(void **state) {
        union sockaddr_union sa = {};

        assert_true(announceable("192.0.2.10:41641"));
        assert_true(announceable("198.51.100.7:1"));
        assert_true(announceable("[2001:db8::1]:41641"));
        assert_true(announceable("[fd00::1]:41641"));   /* ULA outside the mesh range */
        assert_true(announceable("100.128.0.1:41641")); /* just past 100.64.0.0/10 */
        assert_false(announceable("127.0.0.1:22"));
        assert_false(announceable("0.0.0.0:41641"));
        assert_false(announceable("224.0.0.1:41641"));
        assert_false(announceable("239.255.255.250:1900"));
        assert_false(announceable("255.255.255.255:41641"));
        assert_false(announceable("240.0.0.1:41641"));
        assert_false(announceable("169.254.1.1:41641"));
        assert_false(announceable("100.64.0.9:41641"));
        assert_false(announceable("100.127.255.255:41641"));
        assert_false(announceable("[::1]:41641"));
        assert_false(announceable("[::]:41641"));
        assert_false(announceable("[fe80::1]:41641"));
        assert_false(announceable("[ff02::1]:41641"));
        assert_false(announceable("[fd7a:115c:a1e0::9]:41641"));
        assert_false(announceable("[::ffff:127.0.0.1]:41641"));
        assert_false(announceable("[::ffff:100.64.0.1]:41641"));
        assert_true(announceable("[::ffff:192.0.2.1]:41641"));

        /* port 0, which endpoint_parse() already refuses */
        sa.in.sin_family = AF_INET;
        sa.in.sin_addr.s_addr = htonl(0xc0000201);
        assert_false(endpoint_is_announceable(&sa, NULL, 0, NULL, 0));
        sa.in.sin_port = htons(1);
        assert_true(endpoint_is_announceable(&sa, NULL, 0, NULL, 0));
        assert_false(endpoint_is_announceable(NULL, NULL, 0, NULL, 0));
}

static void test_in_addr_prefix_overlaps(void **state) {
        union in_addr_union a, b;
        uint8_t la, lb;
        int f;

        assert_int_equal(in_addr_prefix_parse("100.64.0.0/10", &f, &a, &la), 0);
        assert_int_equal(in_addr_prefix_parse("100.100.0.0/16", &f, &b, &lb), 0);
        assert_true(in_addr_prefix_overlaps(AF_INET, &a, la, &b, lb));
        assert_true(in_addr_prefix_overlaps(AF_INET, &b, lb, &a, la));
        assert_int_equal(in_addr_prefix_parse("100.128.0.0/16", &f, &b, &lb), 0);
        assert_false(in_addr_prefix_overlaps(AF_INET, &a, la, &b, lb));
        assert_int_equal(in_addr_prefix_parse("0.0.0.0/0", &f, &b, &lb), 0);
        assert_true(in_addr_prefix_overlaps(AF_INET, &a, la, &b, lb));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_endpoint_valid),
                cmocka_unit_test(test_endpoint_invalid),
                cmocka_unit_test(test_endpoint_equal),
                cmocka_unit_test(test_in_addr),
                cmocka_unit_test(test_in_addr_prefix),
                cmocka_unit_test(test_endpoint_is_announceable),
                cmocka_unit_test(test_in_addr_prefix_overlaps),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
