/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Exit nodes without the kernel: meshd.conf [Routes] ExitNode= and
 * ExitFwmark= (conf-routes.c), a peer's netmap "routes" (netmap-parse.c),
 * and which of them make it an exit node (exit-route.c). The policy
 * routing itself is proven in tests/integration/test_exit.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "exit-route.h"
#include "netmap.h"
#include "test-util.h"

static int load(const char *text, MeshdConfig *c, char **ret_error) {
        _cleanup_(test_tmpdir_freep) char *dir = test_tmpdir_new("test-exit-route");
        _cleanup_free_ char *path = test_path(dir, "meshd.conf");

        test_write_file(path, text, 0600);
        conf_init_defaults(c);
        return conf_load(path, c, ret_error);
}

static void test_conf_routes(void **state) {
        MeshdConfig c;
        char *error = NULL;

        assert_int_equal(load("[Mesh]\n", &c, &error), 0);
        assert_null(c.exit_node);
        assert_int_equal(c.exit_fwmark, MESHD_DEFAULT_EXIT_FWMARK);
        conf_done(&c);

        assert_int_equal(load("[Routes]\nExitNode=gw1\nExitFwmark=0x1234\n", &c, &error), 0);
        assert_string_equal(c.exit_node, "gw1");
        assert_int_equal(c.exit_fwmark, 0x1234);
        conf_done(&c);

        /* empty: back to none / the default */
        assert_int_equal(load("[Routes]\nExitNode=gw1\nExitNode=\nExitFwmark=7\nExitFwmark=\n", &c, &error), 0);
        assert_null(c.exit_node);
        assert_int_equal(c.exit_fwmark, MESHD_DEFAULT_EXIT_FWMARK);
        conf_done(&c);

        static const char *const bad[] = {
                "[Routes]\nExitNode=not a name\n", "[Routes]\nExitNode=-gw\n",
                "[Routes]\nExitFwmark=0\n",        "[Routes]\nExitFwmark=254\n",
                "[Routes]\nExitFwmark=x\n",        "[Routes]\nExitFwmark=4294967296\n",
                "[Routes]\nExitFwmark=-1\n",       "[Routes]\nAdvertiseNothing=1\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(load(bad[i], &c, &error), -EINVAL);
                assert_non_null(error);
                assert_non_null(strstr(error, ":2: "));
                error = mfree(error);
                conf_done(&c);
        }
}

#define KEY_SELF "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
#define KEY_PEER "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="

static int parse_with_routes(const char *routes_json, Netmap **ret, char **ret_error) {
        _cleanup_free_ char *json = NULL;

        assert_true(
                asprintf(&json,
                         "{\"version\": 3, \"domain\": \"mesh.internal\", \"ipv4_range\": \"100.64.0.0/10\","
                         " \"ipv6_range\": \"fd7a:115c:a1e0::/48\","
                         " \"self\": {\"name\": \"alpha\", \"public_key\": \"" KEY_SELF "\","
                         " \"ipv4\": \"100.64.0.2\"},"
                         " \"peers\": [{\"name\": \"gw1\", \"public_key\": \"" KEY_PEER "\","
                         " \"ipv4\": \"100.64.0.3\", \"routes\": %s}]}",
                         routes_json) > 0);
        return netmap_parse(json, strlen(json), ret, ret_error);
}

static void test_netmap_routes(void **state) {
        Netmap *m = NULL;
        char *error = NULL;
        bool v4, v6;

        assert_int_equal(parse_with_routes("[\"0.0.0.0/0\", \"::/0\", \"192.168.50.0/24\"]", &m, &error), 0);
        assert_int_equal(strv_length(m->peers[0].routes), 3);
        assert_true(exit_route_offered(&m->peers[0], &v4, &v6));
        assert_true(v4 && v6);
        assert_false(exit_route_offered(&m->self, &v4, &v6));
        m = netmap_free(m);

        assert_int_equal(parse_with_routes("[\"::/0\"]", &m, &error), 0);
        assert_true(exit_route_offered(&m->peers[0], &v4, &v6));
        assert_true(!v4 && v6);
        m = netmap_free(m);

        /* a subnet router is no exit node */
        assert_int_equal(parse_with_routes("[\"10.1.0.0/16\"]", &m, &error), 0);
        assert_false(exit_route_offered(&m->peers[0], &v4, &v6));
        m = netmap_free(m);
        /* the parser's refusals are test-msg-routes' and test-netmap's */
}

static void test_routes_change_peer(void **state) {
        Netmap *a = NULL, *b = NULL;
        NetmapDiff d;
        char *error = NULL;

        assert_int_equal(parse_with_routes("[\"10.1.0.0/16\"]", &a, &error), 0);
        assert_int_equal(parse_with_routes("[\"10.1.0.0/16\", \"0.0.0.0/0\"]", &b, &error), 0);
        assert_int_equal(netmap_diff(a, b, &d), 0);
        assert_int_equal(d.n_changed, 1);
        netmap_diff_done(&d);
        netmap_free(a);
        netmap_free(b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_conf_routes),
                cmocka_unit_test(test_netmap_routes),
                cmocka_unit_test(test_routes_change_peer),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
