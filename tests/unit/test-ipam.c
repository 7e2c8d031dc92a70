/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include "ipam.h"
#include "macro.h"

/* a set of taken host numbers, small enough for tests */
typedef struct Taken {
        uint64_t hosts[64];
        size_t n;
        size_t calls;
} Taken;

static int taken_in_use(uint64_t host, void *userdata) {
        Taken *t = userdata;

        t->calls++;
        for (size_t i = 0; i < t->n; i++)
                if (t->hosts[i] == host)
                        return 1;
        return 0;
}

static int failing_in_use(uint64_t host, void *userdata) {
        return -EIO;
}

static IpamRange range(const char *v4, const char *v6) {
        IpamRange r;

        assert_int_equal(ipam_range_parse(v4, v6, &r), 0);
        return r;
}

static void test_parse(void **state) {
        struct in_addr a4;
        struct in6_addr a6;
        uint8_t len;

        assert_int_equal(ipam_parse_ipv4_range("100.64.0.0/10", &a4, &len), 0);
        assert_int_equal(len, 10);
        assert_int_equal(ntohl(a4.s_addr), 0x64400000);
        assert_int_equal(ipam_parse_ipv4_range("10.0.0.0/30", &a4, &len), 0);

        assert_int_equal(ipam_parse_ipv4_range("100.64.0.1/10", &a4, &len), -EINVAL); /* host bits */
        assert_int_equal(ipam_parse_ipv4_range("10.0.0.0/31", &a4, &len), -ERANGE);   /* no room */
        assert_int_equal(ipam_parse_ipv4_range("10.0.0.0/7", &a4, &len), -ERANGE);
        assert_int_equal(ipam_parse_ipv4_range("10.0.0.0", &a4, &len), -EINVAL);
        assert_int_equal(ipam_parse_ipv4_range("10.0.0.0/", &a4, &len), -EINVAL);
        assert_int_equal(ipam_parse_ipv4_range("10.0.0.0/1x", &a4, &len), -EINVAL);
        assert_int_equal(ipam_parse_ipv4_range("fd00::/48", &a4, &len), -EINVAL);
        assert_int_equal(ipam_parse_ipv4_range(NULL, &a4, &len), -EINVAL);

        assert_int_equal(ipam_parse_ipv6_range("fd7a:115c:a1e0::/48", &a6, &len), 0);
        assert_int_equal(len, 48);
        assert_int_equal(ipam_parse_ipv6_range("fd7a:115c:a1e0::1/48", &a6, &len), -EINVAL);
        assert_int_equal(ipam_parse_ipv6_range("fd7a:115c:a1e0::/120", &a6, &len), -ERANGE);
        assert_int_equal(ipam_parse_ipv6_range("100.64.0.0/10", &a6, &len), -EINVAL);
}

static void test_sequential(void **state) {
        IpamRange r = range("100.64.0.0/10", "fd7a:115c:a1e0::/48");
        Taken t = {};
        uint64_t host;

        assert_int_equal(ipam_max_host(&r), (UINT64_C(1) << 22) - 2);

        /* the first node gets .2: .0 is the network, .1 the hub */
        assert_int_equal(ipam_allocate(&r, IPAM_HOST_FIRST, taken_in_use, &t, &host), 0);
        assert_int_equal(host, 2);
        /* a "next" below the first usable host is raised to it, the hub is never handed out */
        assert_int_equal(ipam_allocate(&r, 0, taken_in_use, &t, &host), 0);
        assert_int_equal(host, 2);
        assert_int_equal(ipam_allocate(&r, IPAM_HOST_HUB, taken_in_use, &t, &host), 0);
        assert_int_equal(host, 2);

        t.hosts[t.n++] = 2;
        t.hosts[t.n++] = 3;
        assert_int_equal(ipam_allocate(&r, 2, taken_in_use, &t, &host), 0);
        assert_int_equal(host, 4);
        assert_int_equal(ipam_allocate(&r, 5, taken_in_use, &t, &host), 0);
        assert_int_equal(host, 5);
}

static void test_no_reuse_before_exhaustion(void **state) {
        /* /29: hosts 2…6 */
        IpamRange r = range("10.0.0.0/29", "fd00:1:2::/48");
        Taken t = { .hosts = { 2, 4, 5 }, .n = 3 };
        uint64_t host;

        assert_int_equal(ipam_max_host(&r), 6);
        /* 3 was given up, but next is 6: hand out 6 first */
        assert_int_equal(ipam_allocate(&r, 6, taken_in_use, &t, &host), 0);
        assert_int_equal(host, 6);
        t.hosts[t.n++] = 6;
        /* now the end is reached: wrap around to the freed 3 */
        assert_int_equal(ipam_allocate(&r, 7, taken_in_use, &t, &host), 0);
        assert_int_equal(host, 3);
}

static void test_exhaustion(void **state) {
        /* /30: .0 network, .1 hub, .2 the only node, .3 broadcast */
        IpamRange r = range("10.9.8.0/30", "fd00:1:2::/48");
        Taken t = {};
        uint64_t host = 0;

        assert_int_equal(ipam_max_host(&r), 2);
        assert_int_equal(ipam_allocate(&r, 2, taken_in_use, &t, &host), 0);
        assert_int_equal(host, 2);
        t.hosts[t.n++] = 2;
        t.calls = 0;
        assert_int_equal(ipam_allocate(&r, 3, taken_in_use, &t, &host), -ENOSPC);
        assert_int_equal(t.calls, 1);

        /* /29 full */
        r = range("10.0.0.0/29", "fd00:1:2::/48");
        t = (Taken) { .hosts = { 2, 3, 4, 5, 6 }, .n = 5 };
        assert_int_equal(ipam_allocate(&r, 4, taken_in_use, &t, &host), -ENOSPC);
        assert_int_equal(t.calls, 5);

        /* errors of the callback are passed on */
        assert_int_equal(ipam_allocate(&r, 2, failing_in_use, NULL, &host), -EIO);
}

static void check_addresses(const IpamRange *r, uint64_t host, const char *v4, const char *v6) {
        char a4[INET6_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];

        assert_int_equal(ipam_host_format(r, host, a4, a6), 0);
        assert_string_equal(a4, v4);
        assert_string_equal(a6, v6);
}

static void test_addresses(void **state) {
        IpamRange r = range("100.64.0.0/10", "fd7a:115c:a1e0::/48");
        char a4[INET6_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];

        check_addresses(&r, 1, "100.64.0.1", "fd7a:115c:a1e0::1");
        check_addresses(&r, 2, "100.64.0.2", "fd7a:115c:a1e0::2");
        check_addresses(&r, 3, "100.64.0.3", "fd7a:115c:a1e0::3");
        check_addresses(&r, 256, "100.64.1.0", "fd7a:115c:a1e0::100");
        check_addresses(&r, 65538, "100.65.0.2", "fd7a:115c:a1e0::1:2");
        check_addresses(&r, ipam_max_host(&r), "100.127.255.254", "fd7a:115c:a1e0::3f:fffe");

        /* out of range: 0 (network), broadcast */
        assert_int_equal(ipam_host_format(&r, 0, a4, a6), -ERANGE);
        assert_int_equal(ipam_host_format(&r, ipam_max_host(&r) + 1, a4, a6), -ERANGE);

        r = range("192.168.77.0/24", "fd00:aaaa:bbbb::/48");
        check_addresses(&r, 254, "192.168.77.254", "fd00:aaaa:bbbb::fe");
}

static void test_random_ula(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        struct in6_addr addr;
        uint8_t len;

        assert_int_equal(ipam_random_ula(&a), 0);
        assert_int_equal(ipam_random_ula(&b), 0);
        assert_int_equal(ipam_parse_ipv6_range(a, &addr, &len), 0);
        assert_int_equal(len, 48);
        assert_int_equal(addr.s6_addr[0], 0xfd);
        assert_true(strncmp(a, "fd", 2) == 0);
        assert_string_not_equal(a, b); /* 40 random bits */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_sequential),
                cmocka_unit_test(test_no_reuse_before_exhaustion),
                cmocka_unit_test(test_exhaustion),
                cmocka_unit_test(test_addresses),
                cmocka_unit_test(test_random_ula),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
