/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "dns-resolv-watch.h"
#include "dns-server.h"
#include "macro.h"
#include "test-util.h"
#include "time-util.h"

/* The server's upstreams follow its resolv.conf: replaced by a rename,
 * rewritten in place, removed, and through a symlink whose target
 * changes or which is pointed elsewhere; its own address never becomes an
 * upstream. */

typedef struct Fixture {
        char *dir;
        sd_event *event;
        DnsServer *server;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        union sockaddr_union listen = {
                .in.sin_family = AF_INET,
                .in.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };

        assert_non_null(f);
        f->dir = test_tmpdir_new("test-dns-resolv-watch");
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(dns_server_new(f->event, &listen, 1, &f->server), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        dns_server_free(f->server);
        sd_event_unref(f->event);
        test_tmpdir_free(f->dir);
        free(f);
        return 0;
}

/* The first upstream as text, "" for none. */
static const char *first_upstream(Fixture *f, char buf[static INET6_ADDRSTRLEN]) {
        union sockaddr_union u[DNS_SERVER_UPSTREAMS_MAX];

        if (dns_server_get_upstreams(f->server, u) == 0)
                return "";
        assert_int_equal(u[0].sa.sa_family, AF_INET);
        assert_int_equal(ntohs(u[0].in.sin_port), 53);
        return inet_ntop(AF_INET, &u[0].in.sin_addr, buf, INET6_ADDRSTRLEN);
}

/* Runs the loop until the first upstream is want (at most 2 s). */
static void expect_upstream(Fixture *f, const char *want) {
        char buf[INET6_ADDRSTRLEN];
        uint64_t deadline = clock_usec(CLOCK_MONOTONIC) + 2 * USEC_PER_SEC;

        while (!streq(first_upstream(f, buf), want)) {
                if (clock_usec(CLOCK_MONOTONIC) > deadline)
                        fail_msg("upstream '%s', expected '%s'", first_upstream(f, buf), want);
                assert_true(sd_event_run(f->event, 100 * USEC_PER_MSEC) >= 0);
        }
}

static void replace(const char *dir, const char *path, const char *text) {
        _cleanup_free_ char *tmp = test_path(dir, ".resolv.conf.tmp");

        test_write_file(tmp, text, 0644);
        assert_int_equal(rename(tmp, path), 0);
}

static void test_file(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *path = test_path(f->dir, "resolv.conf");
        char buf[INET6_ADDRSTRLEN];

        test_write_file(path, "nameserver 127.0.0.1\nnameserver 192.0.2.1\n", 0644);
        assert_int_equal(dns_server_watch_resolv_conf(f->server, path), 0);
        /* read at once; the server's own address left out */
        assert_string_equal(first_upstream(f, buf), "192.0.2.1");

        replace(f->dir, path, "nameserver 192.0.2.2\n");
        expect_upstream(f, "192.0.2.2");
        test_write_file(path, "nameserver 192.0.2.3\n", 0644); /* in place */
        expect_upstream(f, "192.0.2.3");
        assert_int_equal(unlink(path), 0);
        expect_upstream(f, "");
        test_write_file(path, "nameserver 192.0.2.4\n", 0644); /* back */
        expect_upstream(f, "192.0.2.4");

        /* another file in the directory changes nothing */
        _cleanup_free_ char *other = test_path(f->dir, "hosts");
        test_write_file(other, "nameserver 192.0.2.9\n", 0644);
        assert_true(sd_event_run(f->event, 100 * USEC_PER_MSEC) >= 0);
        assert_string_equal(first_upstream(f, buf), "192.0.2.4");
}

static void test_symlink(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *etc = test_path(f->dir, "etc"), *run = test_path(f->dir, "run"),
                            *run2 = test_path(f->dir, "run2");
        _cleanup_free_ char *path = test_path(etc, "resolv.conf"), *target = test_path(run, "resolv.conf"),
                            *target2 = test_path(run2, "resolv.conf");

        assert_int_equal(mkdir(etc, 0755), 0);
        assert_int_equal(mkdir(run, 0755), 0);
        assert_int_equal(mkdir(run2, 0755), 0);
        test_write_file(target, "nameserver 192.0.2.1\n", 0644);
        test_write_file(target2, "nameserver 192.0.2.7\n", 0644);
        assert_int_equal(symlink(target, path), 0);
        assert_int_equal(dns_server_watch_resolv_conf(f->server, path), 0);
        expect_upstream(f, "192.0.2.1");

        /* the target replaced, as NetworkManager or resolved do */
        replace(run, target, "nameserver 192.0.2.2\n");
        expect_upstream(f, "192.0.2.2");

        /* the link pointed elsewhere: read, and the new target watched */
        _cleanup_free_ char *tmp = test_path(etc, ".link");
        assert_int_equal(symlink(target2, tmp), 0);
        assert_int_equal(rename(tmp, path), 0);
        expect_upstream(f, "192.0.2.7");
        replace(run2, target2, "nameserver 192.0.2.8\n");
        expect_upstream(f, "192.0.2.8");
}

static void test_missing_directory(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *path = test_path(f->dir, "nowhere/resolv.conf");
        char buf[INET6_ADDRSTRLEN];

        /* not fatal: no upstreams, the server answers SERVFAIL for the rest */
        assert_int_equal(dns_server_watch_resolv_conf(f->server, path), 0);
        assert_string_equal(first_upstream(f, buf), "");
        assert_int_equal(dns_server_watch_resolv_conf(NULL, path), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlink, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_directory, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
