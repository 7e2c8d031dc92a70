/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dns-server.h"
#include "macro.h"
#include "test-util.h"

static union sockaddr_union v4(const char *s) {
        union sockaddr_union sa = { .in.sin_family = AF_INET, .in.sin_port = htons(53) };

        assert_int_equal(inet_pton(AF_INET, s, &sa.in.sin_addr), 1);
        return sa;
}

static void check_text(const char *sa_text, const union sockaddr_union *sa) {
        char buf[ENDPOINT_STRLEN];

        assert_string_equal(endpoint_format(sa, buf, sizeof(buf)), sa_text);
}

static void test_resolv_conf(void **state) {
        _cleanup_(test_tmpdir_freep) char *dir = test_tmpdir_new("test-dns-upstreams");
        _cleanup_free_ char *path = test_path(dir, "resolv.conf");
        _cleanup_free_ union sockaddr_union *list = NULL;
        union sockaddr_union self = v4("100.64.0.2");
        size_t n = 99;

        /* comments, search and options are not ours; our own address would
         * loop; a link-local IPv6 address needs a zone we do not keep; a
         * fourth server is never asked (glibc's MAXNS) */
        test_write_file(path,
                        "# generated\n"
                        "search example.net\n"
                        "nameserver 100.64.0.2\n"
                        "nameserver 192.0.2.53\n"
                        "nameserver   2001:db8::53\n"
                        "nameserver fe80::1%eth0\n"
                        "nameserver not-an-address\n"
                        "nameserver 192.0.2.53\n"
                        "options edns0\n"
                        "nameserver 198.51.100.53\n"
                        "nameserver 203.0.113.53\n",
                        0644);
        assert_int_equal(dns_upstreams_from_resolv_conf(path, &self, 1, &list, &n), 0);
        assert_int_equal(n, 3);
        check_text("192.0.2.53:53", &list[0]);
        check_text("[2001:db8::53]:53", &list[1]);
        check_text("198.51.100.53:53", &list[2]);
        list = mfree(list);

        /* no file: no upstreams, no error */
        assert_int_equal(dns_upstreams_from_resolv_conf("/nonexistent/resolv.conf", NULL, 0, &list, &n), 0);
        assert_int_equal(n, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_resolv_conf),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
