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
                "100.64.0.0",    "100.64.0.0/",   "100.64.0.0/33",   "100.64.0.0/-1", "100.64.0.0/+8",
                "100.64.0.0/ 8", "100.64.0.0/8 ", "100.64.0.0/1000", "100.64.0.0/a",  "/8",
                "::/129",        "fd00::/8/8",    "100.64.0/10",     "host/24",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = in_addr_prefix_parse(bad[i], &family, &a, &len);
                if (r != -EINVAL)
                        fail_msg("in_addr_prefix_parse(\"%s\") = %i, expected -EINVAL", bad[i], r);
        }
}

static const char *reason(const char *endpoint, const InAddrPrefix *mesh, size_t n) {
        union sockaddr_union sa;

        assert_int_equal(endpoint_parse(endpoint, &sa), 0);
        return endpoint_unannounceable_reason(&sa, mesh, n);
}

static void test_announceable(void **state) {
        InAddrPrefix mesh[2] = {};
        static const struct {
                const char *endpoint, *why;
        } refused[] = {
                { "127.0.0.1:22", "loopback address" },
                { "127.255.0.9:41641", "loopback address" },
                { "0.0.0.0:41641", "unspecified address" },
                { "0.1.2.3:41641", "unspecified address" },
                { "255.255.255.255:41641", "broadcast address" },
                { "224.0.0.1:41641", "multicast address" },
                { "239.255.255.250:1900", "multicast address" },
                { "240.0.0.1:41641", "reserved address" },
                { "169.254.169.254:80", "link-local address" },
                { "[::1]:41641", "loopback address" },
                { "[::]:41641", "unspecified address" },
                { "[ff02::1]:41641", "multicast address" },
                { "[fe80::1]:41641", "link-local address" },
                { "[::ffff:127.0.0.1]:22", "loopback address" },
                { "[::ffff:255.255.255.255]:22", "broadcast address" },
                { "[::ffff:100.64.0.9]:41641", "inside the mesh's range" },
                { "[::7f00:1]:22", "reserved address" },
                { "100.64.0.9:41641", "inside the mesh's range" },
                { "100.127.255.254:41641", "inside the mesh's range" },
                { "[fd7a:115c:a1e0::9]:41641", "inside the mesh's range" },
        };
        static const char *const allowed[] = {
                "192.0.2.1:41641",          "10.0.0.1:1",
                "192.168.1.1:65535",        "100.128.0.1:41641",
                "100.63.255.255:1",         "203.0.113.9:41641",
                "[2001:db8::1]:41641",      "[fd7a:115c:a1e1::1]:41641",
                "[::ffff:192.0.2.1]:41641", "[64:ff9b::c000:201]:41641",
        };
        union sockaddr_union sa = {};

        assert_int_equal(in_addr_prefix_parse("100.64.0.0/10", &mesh[0].family, &mesh[0].address,
                                              &mesh[0].prefixlen),
                         0);
        assert_int_equal(in_addr_prefix_parse("fd7a:115c:a1e0::/48", &mesh[1].family, &mesh[1].address,
                                              &mesh[1].prefixlen),
                         0);
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                const char *why = reason(refused[i].endpoint, mesh, ELEMENTSOF(mesh));
                if (!why || !streq(why, refused[i].why))
                        fail_msg("%s: %s, expected %s", refused[i].endpoint, why ?: "announceable",
                                 refused[i].why);
        }
        for (size_t i = 0; i < ELEMENTSOF(allowed); i++) {
                const char *why = reason(allowed[i], mesh, ELEMENTSOF(mesh));
                if (why)
                        fail_msg("%s: %s, expected announceable", allowed[i], why);
        }
        /* without the ranges the mesh's addresses are no longer refused */
        assert_null(reason("100.64.0.9:41641", NULL, 0));
        assert_string_equal(reason("127.0.0.1:1", NULL, 0), "loopback address");

        /* port 0, which endpoint_parse() never produces */
        sa.in.sin_family = AF_INET;
        sa.in.sin_addr.s_addr = htonl(0xc0000201);
        assert_string_equal(endpoint_unannounceable_reason(&sa, NULL, 0), "port 0");
        assert_false(endpoint_is_announceable(&sa, NULL, 0));
        sa.in.sin_port = htons(1);
        assert_true(endpoint_is_announceable(&sa, NULL, 0));
        assert_string_equal(endpoint_unannounceable_reason(NULL, NULL, 0), "no address");
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
                cmocka_unit_test(test_endpoint_valid),          cmocka_unit_test(test_endpoint_invalid),
                cmocka_unit_test(test_endpoint_equal),          cmocka_unit_test(test_in_addr),
                cmocka_unit_test(test_in_addr_prefix),          cmocka_unit_test(test_announceable),
                cmocka_unit_test(test_in_addr_prefix_overlaps),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
