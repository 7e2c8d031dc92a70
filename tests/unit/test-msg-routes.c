/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Subnet routes (msg-routes.h): prefixes, the POST /v1/routes body, and a
 * netmap node's "routes" (parsed with the netmap, rendered by the server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "msg-routes.h"
#include "netmap-render.h"
#include "netmap.h"
#include "strv.h"

static InAddrPrefix prefix(const char *s) {
        InAddrPrefix p;

        assert_int_equal(route_prefix_parse(s, &p), 0);
        return p;
}

static void test_prefix_parse(void **state) {
        InAddrPrefix p;
        char buf[ROUTE_PREFIX_STRLEN];

        p = prefix("192.168.50.0/24");
        assert_string_equal(route_prefix_format(&p, buf, sizeof(buf)), "192.168.50.0/24");
        p = prefix("fd00:1::/64");
        assert_string_equal(route_prefix_format(&p, buf, sizeof(buf)), "fd00:1::/64");
        p = prefix("10.1.2.3/32");
        assert_int_equal(p.prefixlen, 32);
        assert_int_equal(route_prefix_parse("192.168.50.1/24", &p), -EDOM);
        assert_int_equal(route_prefix_parse("11.0.0.0/7", &p), -EDOM);
        assert_int_equal(route_prefix_parse("fd00:1::1/64", &p), -EDOM);
        assert_int_equal(route_prefix_parse("192.168.50.0", &p), -EINVAL);
        assert_int_equal(route_prefix_parse("192.168.50.0/33", &p), -EINVAL);
        assert_int_equal(route_prefix_parse("nas/24", &p), -EINVAL);
        assert_int_equal(route_prefix_parse("", &p), -EINVAL);

        InAddrPrefix a = prefix("10.0.0.0/8"), b = prefix("10.1.0.0/16"), c = prefix("11.0.0.0/8");
        assert_true(route_prefix_contains(&a, &b));
        assert_false(route_prefix_contains(&b, &a));
        assert_true(route_prefix_overlaps(&b, &a));
        assert_false(route_prefix_overlaps(&a, &c));
        InAddrPrefix host = { .family = AF_INET, .prefixlen = 24 };
        host.address.bytes[0] = 192, host.address.bytes[1] = 168, host.address.bytes[2] = 1,
        host.address.bytes[3] = 7;
        InAddrPrefix net = route_prefix_network(&host);
        assert_string_equal(route_prefix_format(&net, buf, sizeof(buf)), "192.168.1.0/24");
}

static void test_unroutable(void **state) {
        InAddrPrefix mesh[2] = { prefix("100.64.0.0/10"), prefix("fd7a:115c:a1e0::/48") };

        InAddrPrefix p = prefix("192.168.50.0/24");
        assert_null(route_prefix_unroutable_reason(&p, mesh, 2));
        p = prefix("0.0.0.0/0");
        assert_null(route_prefix_unroutable_reason(&p, mesh, 2));
        p = prefix("::/0");
        assert_null(route_prefix_unroutable_reason(&p, mesh, 2));
        p = prefix("100.64.5.0/24");
        assert_string_equal(route_prefix_unroutable_reason(&p, mesh, 2), "overlaps the mesh range");
        p = prefix("100.0.0.0/8");
        assert_string_equal(route_prefix_unroutable_reason(&p, mesh, 2), "overlaps the mesh range");
        p = prefix("fd7a:115c:a1e0:5::/64");
        assert_string_equal(route_prefix_unroutable_reason(&p, mesh, 2), "overlaps the mesh range");
        p = prefix("127.0.0.0/8");
        assert_string_equal(route_prefix_unroutable_reason(&p, mesh, 2), "loopback");
        p = prefix("224.0.0.0/4");
        assert_non_null(route_prefix_unroutable_reason(&p, mesh, 2));
        p = prefix("fe80::/64");
        assert_string_equal(route_prefix_unroutable_reason(&p, mesh, 2), "link-local");
        p = prefix("0.0.0.0/1");
        assert_non_null(route_prefix_unroutable_reason(&p, NULL, 0));
}

static int parse_body(const char *text, InAddrPrefix **l, size_t *n, char *error, size_t size) {
        InAddrPrefix mesh[1] = { prefix("100.64.0.0/10") };
        cJSON *body = cJSON_Parse(text);
        int r;

        assert_non_null(body);
        r = routes_request_parse(body, mesh, 1, l, n, error, size);
        cJSON_Delete(body);
        return r;
}

static void test_request(void **state) {
        _cleanup_free_ InAddrPrefix *l = NULL;
        _cleanup_free_ char *text = NULL;
        char error[160];
        size_t n = 0;

        assert_int_equal(parse_body("{\"routes\":[\"192.168.50.0/24\",\"0.0.0.0/0\",\"::/0\"]}", &l, &n, error,
                                    sizeof(error)),
                         0);
        assert_int_equal(n, 3);
        assert_int_equal(routes_request_render(l, n, &text), 0);
        assert_string_equal(text, "{\"routes\":[\"192.168.50.0/24\",\"0.0.0.0/0\",\"::/0\"]}");
        l = mfree(l);
        assert_int_equal(parse_body("{\"routes\":[]}", &l, &n, error, sizeof(error)), 0);
        assert_int_equal(n, 0);
        l = mfree(l);

        static const struct {
                const char *body, *error;
        } bad[] = {
                { "{}", "routes: missing" },
                { "{\"routes\":\"10.0.0.0/8\"}", "routes: not an array" },
                { "{\"routes\":[1]}", "routes[0]: not a string" },
                { "{\"routes\":[\"10.0.0.0/8\",\"100.64.1.0/24\"]}",
                  "routes[1]: 100.64.1.0/24: overlaps the mesh range" },
                { "{\"routes\":[\"10.0.0.1/8\"]}", "routes[0]: '10.0.0.1/8' has host bits set" },
                { "{\"routes\":[\"10.0.0.0/8\",\"10.0.0.0/8\"]}", "routes[1]: 10.0.0.0/8: listed twice" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(parse_body(bad[i].body, &l, &n, error, sizeof(error)), -EINVAL);
                assert_string_equal(error, bad[i].error);
        }

        /* 64 is the limit */
        cJSON *body = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(body, "routes");
        for (int i = 0; i < ROUTES_MSG_MAX + 1; i++) {
                char p[32];
                snprintf(p, sizeof(p), "10.%d.0.0/16", i);
                cJSON_AddItemToArray(a, cJSON_CreateString(p));
        }
        assert_int_equal(routes_request_parse(body, NULL, 0, &l, &n, error, sizeof(error)), -EINVAL);
        assert_string_equal(error, "routes: more than 64 prefixes");
        cJSON_DeleteItemFromArray(a, 0);
        assert_int_equal(routes_request_parse(body, NULL, 0, &l, &n, error, sizeof(error)), 0);
        assert_int_equal(n, ROUTES_MSG_MAX);
        cJSON_Delete(body);
}

#define KEY_A "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
#define KEY_B "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="

static int parse_with_routes(const char *routes_json, Netmap **ret, char **error) {
        _cleanup_free_ char *text = NULL;

        assert_true(asprintf(&text,
                             "{\"version\":3,\"domain\":\"mesh.internal\",\"ipv4_range\":\"100.64.0.0/10\","
                             "\"ipv6_range\":\"fd7a:115c:a1e0::/48\","
                             "\"self\":{\"name\":\"alpha\",\"public_key\":\"" KEY_A
                             "\",\"ipv4\":\"100.64.0.2\"},"
                             "\"peers\":[{\"name\":\"gw\",\"public_key\":\"" KEY_B
                             "\",\"ipv4\":\"100.64.0.3\"%s%s}]}",
                             routes_json ? ",\"routes\":" : "", routes_json ?: "") > 0);
        return netmap_parse(text, strlen(text), ret, error);
}

static void test_netmap_routes(void **state) {
        Netmap *m = NULL;
        char *error = NULL;

        assert_int_equal(parse_with_routes(NULL, &m, &error), 0);
        assert_null(m->peers[0].routes);
        m = netmap_free(m);

        assert_int_equal(parse_with_routes("[\"198.51.100.0/24\",\"0.0.0.0/0\",\"::/0\"]", &m, &error), 0);
        assert_int_equal(strv_length(m->peers[0].routes), 3);
        assert_string_equal(m->peers[0].routes[0], "198.51.100.0/24");
        assert_string_equal(m->peers[0].routes[2], "::/0");
        m = netmap_free(m);
        /* canonical text */
        assert_int_equal(parse_with_routes("[\"fd00:0001::/64\"]", &m, &error), 0);
        assert_string_equal(m->peers[0].routes[0], "fd00:1::/64");
        m = netmap_free(m);

        static const struct {
                const char *routes, *error;
        } bad[] = {
                { "\"198.51.100.0/24\"", "peers[0].routes: not an array" },
                { "[\"198.51.100.1/24\"]", "peers[0].routes[0]: '198.51.100.1/24' has host bits set" },
                { "[\"100.64.0.0/16\"]", "peers[0].routes[0]: 100.64.0.0/16: overlaps the mesh range" },
                { "[\"fd7a:115c:a1e0:1::/64\"]",
                  "peers[0].routes[0]: fd7a:115c:a1e0:1::/64: overlaps the mesh range" },
                { "[\"10.0.0.0/8\",\"10.0.0.0/8\"]", "peers[0].routes[1]: 10.0.0.0/8: listed twice" },
                { "[\"gw\"]", "peers[0].routes[0]: 'gw' is not an IP prefix" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(parse_with_routes(bad[i].routes, &m, &error), -EBADMSG);
                assert_null(m);
                assert_string_equal(error, bad[i].error);
                error = mfree(error);
        }

        /* 65 routes make the whole netmap invalid */
        _cleanup_free_ char *many = strdup("[");
        for (int i = 0; i <= ROUTES_MSG_MAX; i++) {
                char *s = NULL;
                assert_true(asprintf(&s, "%s%s\"10.%d.0.0/16\"", many, i ? "," : "", i) > 0);
                free(many);
                many = s;
        }
        char *s = NULL;
        assert_true(asprintf(&s, "%s]", many) > 0);
        assert_int_equal(parse_with_routes(s, &m, &error), -EBADMSG);
        assert_string_equal(error, "peers[0].routes: more than 64 prefixes");
        free(s);
        free(error);
}

/* The server renders approved routes after "endpoints"; none: no key at all. */
static void test_render(void **state) {
        char *routes[] = { (char *) "198.51.100.0/24", NULL };
        NetmapMeshNode nodes[2] = {
                { .id = 1,
                  .name = (char *) "alpha",
                  .public_key = (char *) KEY_A,
                  .ipv4 = (char *) "100.64.0.2",
                  .ipv6 = (char *) "fd7a:115c:a1e0::2" },
                { .id = 2,
                  .name = (char *) "gw",
                  .public_key = (char *) KEY_B,
                  .ipv4 = (char *) "100.64.0.3",
                  .ipv6 = (char *) "fd7a:115c:a1e0::3",
                  .routes = routes },
        };
        NetmapMesh mesh = { .version = 4,
                            .domain = (char *) "mesh.internal",
                            .ipv4_range = (char *) "100.64.0.0/10",
                            .ipv6_range = (char *) "fd7a:115c:a1e0::/48",
                            .nodes = nodes,
                            .n_nodes = 2 };
        NetmapSnapshot *snap = NULL;
        _cleanup_free_ char *text = NULL;
        size_t len;
        Netmap *m = NULL;
        char *error = NULL;

        assert_int_equal(netmap_snapshot_new(&mesh, &snap), 0);
        assert_int_equal(netmap_snapshot_render(snap, 1, &text, &len), 0);
        assert_non_null(
                strstr(text,
                       "\"name\":\"gw\",\"public_key\":\"" KEY_B "\",\"ipv4\":\"100.64.0.3\","
                       "\"ipv6\":\"fd7a:115c:a1e0::3\",\"endpoints\":[],\"routes\":[\"198.51.100.0/24\"]"));
        assert_null(strstr(strstr(text, "\"self\""), "\"routes\":[]"));
        assert_int_equal(netmap_parse(text, len, &m, &error), 0);
        assert_null(m->self.routes);
        assert_int_equal(strv_length(m->peers[0].routes), 1);
        netmap_free(m);
        netmap_snapshot_free(snap);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_prefix_parse), cmocka_unit_test(test_unroutable),
                cmocka_unit_test(test_request),      cmocka_unit_test(test_netmap_routes),
                cmocka_unit_test(test_render),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
