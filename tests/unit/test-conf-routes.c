/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd.conf [Routes] (conf-routes.c) and the prefix lists of meshctl up. */
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
#include "macro.h"
#include "msg-routes.h"
#include "test-util.h"

static char *write_conf(const char *dir, const char *text) {
        char *path = NULL;
        FILE *fp;

        assert_true(asprintf(&path, "%s/meshd.conf", dir) > 0);
        fp = fopen(path, "we");
        assert_non_null(fp);
        assert_true(fputs(text, fp) >= 0);
        assert_int_equal(fclose(fp), 0);
        return path;
}

static const char *fmt(const InAddrPrefix *p, char buf[static ROUTE_PREFIX_STRLEN]) {
        return route_prefix_format(p, buf, ROUTE_PREFIX_STRLEN);
}

static void test_section(void **state) {
        char *dir = test_tmpdir_new("test-conf-routes");
        _cleanup_free_ char *path = NULL, *error = NULL;
        char buf[ROUTE_PREFIX_STRLEN];
        MeshdConfig c;

        path = write_conf(dir, "[Routes]\nAdvertise=192.168.50.0/24 fd00:1::/64\nAdvertise=10.1.0.0/16\n"
                               "AdvertiseExitNode=yes\nAcceptRoutes=all\nExitNode=gw\nSubnetSNAT=no\n");
        conf_init_defaults(&c);
        assert_true(c.subnet_snat && c.exit_snat);
        assert_int_equal(conf_load(path, &c, &error), 0);
        assert_int_equal(c.n_advertise_routes, 3);
        assert_string_equal(fmt(&c.advertise_routes[1], buf), "fd00:1::/64");
        assert_string_equal(fmt(&c.advertise_routes[2], buf), "10.1.0.0/16");
        assert_true(c.advertise_exit_node);
        assert_int_equal(c.n_accept_routes, 2);
        assert_string_equal(fmt(&c.accept_routes[0], buf), "0.0.0.0/0");
        assert_string_equal(fmt(&c.accept_routes[1], buf), "::/0");
        assert_string_equal(c.exit_node, "gw");
        assert_false(c.subnet_snat);
        assert_true(c.exit_snat);
        conf_done(&c);

        /* an empty value empties the list */
        free(path);
        path = write_conf(dir, "[Routes]\nAdvertise=192.168.50.0/24\nAdvertise=\nAcceptRoutes=none\n");
        conf_init_defaults(&c);
        assert_int_equal(conf_load(path, &c, &error), 0);
        assert_int_equal(c.n_advertise_routes, 0);
        assert_int_equal(c.n_accept_routes, 0);
        conf_done(&c);

        static const struct {
                const char *text, *error;
        } bad[] = {
                { "[Routes]\nAdvertise=192.168.50.1/24\n",
                  ":2: invalid Advertise= value '192.168.50.1/24': host bits set (use the network address, e.g. "
                  "192.168.50.0/24)" },
                { "[Routes]\nAdvertise=0.0.0.0/0\n",
                  ":2: invalid Advertise= value '0.0.0.0/0': 0.0.0.0/0 and ::/0 are advertised with "
                  "AdvertiseExitNode= (--advertise-exit-node)" },
                { "[Routes]\nAdvertise=nas\n",
                  ":2: invalid Advertise= value 'nas': not an IP prefix (ADDRESS/LENGTH)" },
                { "[Routes]\nAcceptRoutes=127.0.0.0/8\n",
                  ":2: invalid AcceptRoutes= value '127.0.0.0/8': loopback" },
                { "[Routes]\nAdvertiseExitNode=maybe\n",
                  ":2: invalid AdvertiseExitNode= value 'maybe': yes or no" },
                { "[Routes]\nExitNode=gw.example\n",
                  ":2: invalid ExitNode= value 'gw.example': a node's name" },
                { "[Routes]\nRoutes=x\n", ":2: unknown key 'Routes' in section [Routes]" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *expected = NULL;

                free(path);
                path = write_conf(dir, bad[i].text);
                conf_init_defaults(&c);
                error = mfree(error);
                assert_int_equal(conf_load(path, &c, &error), -EINVAL);
                assert_true(asprintf(&expected, "%s%s", path, bad[i].error) > 0);
                assert_string_equal(error, expected);
                assert_int_equal(c.n_advertise_routes, 0);
        }
        test_tmpdir_free(dir);
}

static void test_list(void **state) {
        _cleanup_free_ InAddrPrefix *l = NULL;
        const char *entry = NULL, *why = NULL;
        size_t n = 0, len = 0;

        assert_int_equal(route_list_parse("10.0.0.0/8,192.168.1.0/24,10.0.0.0/8", ",", true, &l, &n, &entry,
                                          &len, &why),
                         0);
        assert_int_equal(n, 2);
        assert_int_equal(route_list_parse("10.1.0.0/16,10.2.0.1/16", ",", true, &l, &n, &entry, &len, &why),
                         -EINVAL);
        assert_int_equal(len, strlen("10.2.0.1/16"));
        assert_memory_equal(entry, "10.2.0.1/16", len);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_section),
                cmocka_unit_test(test_list),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
