/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The access policy in the netmap: rendered per node (netmap-render.c,
 * netmap-render-policy.c), parsed and bounded (netmap-parse-filter.c),
 * checked on the node (netmap-trust.c), and full netmaps instead of deltas
 * when a node's part changed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "macro.h"
#include "netmap-render.h"
#include "netmap-trust.h"
#include "netmap.h"
#include "strv.h"

static const char *const keys[] = {
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=",
        "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ=",
        "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=",
};

static char *xstrdup(const char *s) {
        char *p = s ? strdup(s) : NULL;
        assert_true(!s || p);
        return p;
}

static void node_init(NetmapMeshNode *n, int64_t id, const char *name, const char *tag, const char *route) {
        char buf[64];

        n->id = id;
        n->name = xstrdup(name);
        n->public_key = xstrdup(keys[id - 1]);
        snprintf(buf, sizeof(buf), "100.64.0.%" PRId64, id + 1);
        n->ipv4 = xstrdup(buf);
        snprintf(buf, sizeof(buf), "fd7a:1:2::%" PRId64, id + 1);
        n->ipv6 = xstrdup(buf);
        if (tag) {
                n->tags = calloc(2, sizeof(char *));
                n->tags[0] = xstrdup(tag);
        }
        if (route) {
                n->routes = calloc(2, sizeof(char *));
                n->routes[0] = xstrdup(route);
        }
}

/* alpha, beta, nas (tag:server, routes 192.168.50.0/24), device cam1 (tag:cam) */
static void mesh_init(NetmapMesh *m, uint64_t version, const char *policy) {
        *m = (NetmapMesh) { .version = version };
        m->domain = xstrdup("mesh.internal");
        m->ipv4_range = xstrdup("100.64.0.0/10");
        m->ipv6_range = xstrdup("fd7a:1:2::/48");
        m->nodes = calloc(3, sizeof(NetmapMeshNode));
        m->devices = calloc(1, sizeof(NetmapMeshNode));
        assert_non_null(m->nodes);
        assert_non_null(m->devices);
        node_init(&m->nodes[0], 1, "alpha", NULL, NULL);
        node_init(&m->nodes[1], 2, "beta", NULL, NULL);
        node_init(&m->nodes[2], 3, "nas", "server", "192.168.50.0/24");
        node_init(&m->devices[0], 4, "cam1", "cam", NULL);
        m->n_nodes = 3;
        m->n_devices = 1;
        m->policy = xstrdup(policy);
}

static const char policy_a[] = "{\"rules\": [\"allow alpha -> tag:server:22/tcp\", \"allow tag:cam -> alpha\","
                               " \"allow beta -> 192.168.50.0/24\"]}";
static const char policy_b[] =
        "{\"rules\": [\"allow alpha -> tag:server:22/tcp\", \"allow tag:cam -> alpha\"]}";

static Netmap *render(NetmapSnapshot *snap, int64_t id, char **ret_json) {
        _cleanup_free_ char *json = NULL, *error = NULL;
        Netmap *nm = NULL;
        size_t len;

        assert_int_equal(netmap_snapshot_render(snap, id, &json, &len), 0);
        if (netmap_parse(json, len, &nm, &error) < 0)
                fail_msg("%s\n%s", error, json);
        if (ret_json)
                *ret_json = TAKE_PTR(json);
        return nm;
}

static void test_render(void **state) {
        _cleanup_(netmap_mesh_done) NetmapMesh m = {};
        _cleanup_(netmap_snapshot_freep) NetmapSnapshot *snap = NULL;
        _cleanup_free_ char *json = NULL, *e = NULL;
        Netmap *nm;

        (void) state;
        mesh_init(&m, 5, policy_a);
        assert_int_equal(netmap_snapshot_new(&m, &snap), 0);

        /* alpha: nas (it reaches it), not beta; cam1 reaches it; no routes for it */
        nm = render(snap, 1, &json);
        assert_int_equal(nm->n_peers, 1);
        assert_string_equal(nm->peers[0].name, "nas");
        assert_null(strstr(json, "\"routes\""));
        assert_int_equal(nm->n_devices, 1);
        assert_non_null(nm->filter);
        assert_int_equal(nm->filter->n_entries, 1); /* from cam1, every port */
        assert_int_equal(nm->filter->entries[0].n_src, 2);
        assert_int_equal(nm->filter->entries[0].n_ports, 0);
        assert_int_equal(netmap_check_bounds(nm, NULL, 0, &e), 0);
        netmap_free(nm);
        json = mfree(json);

        /* beta: nas and its route, nothing reaches beta: "filter": [] */
        nm = render(snap, 2, &json);
        assert_int_equal(nm->n_peers, 1);
        assert_non_null(strstr(json, "\"routes\":[\"192.168.50.0/24\"]"));
        assert_int_equal(nm->n_devices, 0);
        assert_null(strstr(json, "devices"));
        assert_non_null(nm->filter);
        assert_int_equal(nm->filter->n_entries, 0);
        netmap_free(nm);
        json = mfree(json);

        /* nas: alpha on 22/tcp, beta into its route */
        nm = render(snap, 3, &json);
        assert_int_equal(nm->n_peers, 2);
        assert_int_equal(nm->filter->n_entries, 2);
        assert_int_equal(nm->filter->entries[0].n_ports, 1);
        assert_int_equal(nm->filter->entries[1].dst[0].prefixlen, 24);
        assert_non_null(strstr(json,
                               "\"filter\":[{\"src\":[\"100.64.0.2/32\",\"fd7a:1:2::2/128\"],"
                               "\"dst\":[\"100.64.0.4/32\",\"fd7a:1:2::4/128\"],\"ports\":[\"22/tcp\"]}"));
        assert_int_equal(netmap_check_bounds(nm, NULL, 0, &e), 0);
        netmap_free(nm);
}

static void test_no_policy_routes(void **state) {
        _cleanup_(netmap_mesh_done) NetmapMesh m = {};
        _cleanup_(netmap_snapshot_freep) NetmapSnapshot *snap = NULL;
        _cleanup_free_ char *json = NULL;
        Netmap *nm;

        (void) state;
        mesh_init(&m, 5, NULL);
        /* a route the store should never have held is left out, not the mesh */
        free(m.nodes[2].routes[0]);
        m.nodes[2].routes = realloc(m.nodes[2].routes, 3 * sizeof(char *));
        m.nodes[2].routes[0] = xstrdup("garbage");
        m.nodes[2].routes[1] = xstrdup("192.168.50.0/24");
        m.nodes[2].routes[2] = NULL;
        assert_int_equal(netmap_snapshot_new(&m, &snap), 0);
        nm = render(snap, 1, &json);
        assert_int_equal(nm->n_peers, 2);
        assert_int_equal(nm->n_devices, 1);
        assert_null(nm->filter);
        assert_non_null(strstr(json, "\"routes\":[\"192.168.50.0/24\"]"));
        netmap_free(nm);
}

static void test_delta(void **state) {
        _cleanup_(netmap_mesh_done) NetmapMesh ma = {}, mb = {};
        _cleanup_(netmap_snapshot_freep) NetmapSnapshot *a = NULL, *b = NULL;
        _cleanup_free_ char *base = NULL, *delta = NULL, *merged = NULL, *error = NULL;
        size_t len, base_len, merged_len;
        Netmap *nm;

        (void) state;
        mesh_init(&ma, 5, policy_a);
        mesh_init(&mb, 6, policy_b);
        assert_int_equal(netmap_snapshot_new(&ma, &a), 0);
        assert_int_equal(netmap_snapshot_new(&mb, &b), 0);
        /* beta loses nas, nas loses beta's filter entry: full netmaps */
        assert_int_equal(netmap_snapshot_render_delta(b, a, 2, &delta, &len), -ESTALE);
        assert_int_equal(netmap_snapshot_render_delta(b, a, 3, &delta, &len), -ESTALE);
        /* alpha's part is the same: a delta, and merged it keeps the filter */
        assert_int_equal(netmap_snapshot_render(a, 1, &base, &base_len), 0);
        assert_int_equal(netmap_snapshot_render_delta(b, a, 1, &delta, &len), 0);
        assert_null(strstr(delta, "filter"));
        assert_int_equal(netmap_delta_merge(base, base_len, delta, len, &merged, &merged_len, &error), 0);
        assert_int_equal(netmap_parse(merged, merged_len, &nm, &error), 0);
        assert_non_null(nm->filter);
        assert_int_equal(nm->filter->n_entries, 1);
        assert_int_equal(nm->n_peers, 1);
        netmap_free(nm);
}

#define NETMAP_HEAD                                                                                   \
        "{\"version\":3,\"domain\":\"mesh.internal\",\"ipv4_range\":\"100.64.0.0/10\","               \
        "\"self\":{\"name\":\"nas\",\"public_key\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"," \
        "\"ipv4\":\"100.64.0.2\",\"endpoints\":[]},\"peers\":[],"

static void expect_netmap(const char *filter, const char *parse_error, const char *trust_error) {
        _cleanup_free_ char *json = NULL, *e = NULL;
        Netmap *nm = NULL;
        int r;

        assert_true(asprintf(&json, NETMAP_HEAD "\"filter\":%s}", filter) > 0);
        r = netmap_parse(json, strlen(json), &nm, &e);
        if (parse_error) {
                assert_int_equal(r, -EBADMSG);
                if (!strstr(e, parse_error))
                        fail_msg("'%s' does not mention '%s'", e, parse_error);
                return;
        }
        if (r < 0)
                fail_msg("%s", e);
        r = netmap_check_bounds(nm, NULL, 0, &e);
        netmap_free(nm);
        if (!trust_error) {
                assert_int_equal(r, 0);
                return;
        }
        assert_int_equal(r, -EBADMSG);
        if (!strstr(e, trust_error))
                fail_msg("'%s' does not mention '%s'", e, trust_error);
}

static void test_parse_and_trust(void **state) {
        _cleanup_free_ char *many = NULL;
        size_t n = 0;

        (void) state;
        expect_netmap("[]", NULL, NULL);
        expect_netmap("[{\"src\":[\"100.64.0.3/32\"],\"dst\":[\"100.64.0.2/32\",\"0.0.0.0/0\"],"
                      "\"ports\":[\"22/tcp\",\"1-5/udp\",\"icmp\",\"tcp\"]}]",
                      NULL, NULL);
        expect_netmap("{}", "filter: not an array", NULL);
        expect_netmap("[{\"src\":[],\"dst\":[\"100.64.0.2/32\"],\"ports\":[]}]", "filter[0].src: empty", NULL);
        expect_netmap("[{\"src\":[\"100.64.0.3/24\"],\"dst\":[\"100.64.0.2/32\"],\"ports\":[]}]", "host bits",
                      NULL);
        expect_netmap("[{\"src\":[\"100.64.0.3/32\"],\"dst\":[\"100.64.0.2/32\"],\"ports\":[\"0/tcp\"]}]",
                      "ports[0]", NULL);
        expect_netmap("[{\"src\":[\"100.64.0.3/32\"],\"dst\":[\"100.64.0.2/32\"]}]", "ports: not an array",
                      NULL);
        expect_netmap("[{\"src\":[\"10.0.0.1/32\"],\"dst\":[\"100.64.0.2/32\"],\"ports\":[]}]", NULL,
                      "outside the mesh ranges");
        expect_netmap("[{\"src\":[\"100.64.0.3/32\"],\"dst\":[\"100.64.0.9/32\"],\"ports\":[]}]", NULL,
                      "not this node's");

        /* 65 port items: over the bound */
        many = strdup("[{\"src\":[\"100.64.0.3/32\"],\"dst\":[\"100.64.0.2/32\"],\"ports\":[");
        for (n = 0; n < 65; n++) {
                char *t = NULL;
                assert_true(asprintf(&t, "%s%s\"%zu/tcp\"", many, n ? "," : "", n + 1) > 0);
                free(many);
                many = t;
        }
        {
                char *t = NULL;
                assert_true(asprintf(&t, "%s]}]", many) > 0);
                free(many);
                many = t;
        }
        expect_netmap(many, "more than 64", NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_render),
                cmocka_unit_test(test_no_policy_routes),
                cmocka_unit_test(test_delta),
                cmocka_unit_test(test_parse_and_trust),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
