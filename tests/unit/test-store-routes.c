/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Subnet routes in the store (store-routes.c): the advertised set per node,
 * the verdicts, and the approved routes in the mesh every netmap is
 * rendered from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <errno.h>
#include <stdlib.h>

#include "macro.h"
#include "netmap.h"
#include "store.h"
#include "strv.h"
#include "test-store-util.h"
#include "test-util.h"

#define NOW 1700000000

typedef StoreFixture Fixture;
#define HUB_KEY "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAk="

static int setup_range(void **state, const char *ipv4_range) {
        Fixture *f = store_fixture_new("test-store-routes", ipv4_range);

        assert_int_equal(store_set_setting(f->store, "hub_public_key", HUB_KEY), 0);
        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        *state = f;
        return 0;
}

static int setup(void **state) {
        return setup_range(state, "100.64.0.0/10");
}

static int teardown(void **state) {
        store_fixture_free(*state);
        return 0;
}

static int64_t reg(Store *s, const char *key, const char *name) {
        StoreNode n = {};
        int64_t id;

        assert_int_equal(store_test_register(s, "k", key, name, NOW, &n), 0);
        id = n.id;
        store_node_done(&n);
        return id;
}

static StoreRoute *list(Store *s, size_t *n) {
        StoreRoute *l = NULL;

        assert_int_equal(store_list_routes(s, &l, n), 0);
        return l;
}

static void assert_route(const StoreRoute *r, const char *node, const char *prefix, StoreRouteState state,
                         bool advertised) {
        assert_string_equal(r->node, node);
        assert_string_equal(r->prefix, prefix);
        assert_int_equal(r->state, state);
        assert_int_equal(r->advertised, advertised);
}

/* the routes of node id in the mesh the netmaps are rendered from */
static char **mesh_routes(Store *s, int64_t id) {
        NetmapMesh m = {};
        char **r = NULL;

        assert_int_equal(store_read_mesh(s, NULL, &m), 0);
        for (size_t i = 0; i < m.n_nodes; i++)
                if (m.nodes[i].id == id)
                        r = TAKE_PTR(m.nodes[i].routes);
        netmap_mesh_done(&m);
        return r;
}

static void test_advertise_approve_withdraw(void **state) {
        Fixture *f = *state;
        int64_t alpha = reg(f->store, store_test_keys[0], "alpha"),
                gw = reg(f->store, store_test_keys[1], "gw");
        char *lan[] = { (char *) "192.168.50.0/24", (char *) "10.1.0.0/16", NULL };
        StoreRoute *l;
        size_t n;
        uint64_t v;

        (void) alpha;
        v = store_test_version(f->store);
        assert_int_equal(store_set_routes(f->store, gw, lan), 1);
        assert_true(store_test_version(f->store) > v);
        v = store_test_version(f->store);
        /* the same set again (every start) moves nothing */
        assert_int_equal(store_set_routes(f->store, gw, lan), 0);
        assert_int_equal(store_test_version(f->store), v);

        l = list(f->store, &n);
        assert_int_equal(n, 2);
        assert_route(&l[0], "gw", "10.1.0.0/16", STORE_ROUTE_ADVERTISED, true);
        assert_route(&l[1], "gw", "192.168.50.0/24", STORE_ROUTE_ADVERTISED, true);
        store_routes_free(l, n);
        assert_null(mesh_routes(f->store, gw));

        assert_int_equal(store_set_route_state(f->store, "gw", "192.168.50.0/24", STORE_ROUTE_APPROVED), 1);
        assert_int_equal(store_set_route_state(f->store, "gw", "192.168.50.0/24", STORE_ROUTE_APPROVED), 0);
        assert_int_equal(store_set_route_state(f->store, "gw", "10.9.0.0/16", STORE_ROUTE_APPROVED), -ENXIO);
        assert_int_equal(store_set_route_state(f->store, "nobody", "10.1.0.0/16", STORE_ROUTE_APPROVED),
                         -ENOENT);
        char **r = mesh_routes(f->store, gw);
        assert_non_null(r);
        assert_string_equal(r[0], "192.168.50.0/24");
        assert_null(r[1]);
        strv_free(r);

        /* withdrawn: the verdict stays, the netmaps lose it; undecided ones go */
        char *none[] = { NULL };
        assert_int_equal(store_set_routes(f->store, gw, none), 1);
        l = list(f->store, &n);
        assert_int_equal(n, 1);
        assert_route(&l[0], "gw", "192.168.50.0/24", STORE_ROUTE_APPROVED, false);
        store_routes_free(l, n);
        assert_null(mesh_routes(f->store, gw));

        /* advertised again: approved at once */
        assert_int_equal(store_set_routes(f->store, gw, lan), 1);
        r = mesh_routes(f->store, gw);
        assert_non_null(r);
        assert_string_equal(r[0], "192.168.50.0/24");
        strv_free(r);

        assert_int_equal(store_set_route_state(f->store, "gw", "192.168.50.0/24", STORE_ROUTE_REJECTED), 1);
        assert_null(mesh_routes(f->store, gw));

        /* a removed node's routes are in no list */
        assert_int_equal(store_remove_node(f->store, "gw"), 0);
        l = list(f->store, &n);
        assert_int_equal(n, 0);
        store_routes_free(l, n);
        assert_int_equal(store_set_routes(f->store, gw, lan), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_advertise_approve_withdraw, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
