/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Devices in the store (store-devices.c) and in the netmaps rendered from
 * it (netmap-render.c): one namespace with nodes, errors that change
 * nothing, expiry, and the "devices" list of full netmaps and deltas. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "netmap.h"
#include "store.h"
#include "test-store-util.h"
#include "test-util.h"

#define NOW 1700000000

typedef StoreFixture Fixture;
#define HUB_KEY "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAk="

static int setup_range(void **state, const char *ipv4_range) {
        Fixture *f = store_fixture_new("test-store-devices", ipv4_range);

        assert_int_equal(store_set_setting(f->store, "hub_public_key", HUB_KEY), 0);
        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        *state = f;
        return 0;
}

static int setup(void **state) {
        return setup_range(state, "100.64.0.0/10");
}

/* hosts 2 and 3 only (network, hub, broadcast are not handed out) */
static int setup_tiny(void **state) {
        return setup_range(state, "10.0.0.0/29");
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

static int add(Store *s, const char *name, const char *key, int64_t expires) {
        StoreNode n = {};
        int r;

        r = store_add_device(s, &(StoreDevice) { .name = name, .public_key = key, .expires = expires }, NOW,
                             &n);
        if (r >= 0) {
                assert_true(n.device);
                assert_string_equal(n.name, name);
        }
        store_node_done(&n);
        return r;
}

static size_t count_devices(Store *s, bool include_expired) {
        StoreNode *l = NULL;
        size_t n = 0;

        assert_int_equal(store_list_devices(s, include_expired, &l, &n), 0);
        store_nodes_free(l, n);
        return n;
}

static size_t count_nodes(Store *s) {
        StoreNode *l = NULL;
        size_t n = 0;

        assert_int_equal(store_list_nodes(s, true, &l, &n), 0);
        store_nodes_free(l, n);
        return n;
}

static void test_add_remove(void **state) {
        Fixture *f = *state;
        StoreNode *l = NULL;
        size_t n = 0;
        uint64_t v;

        (void) reg(f->store, store_test_keys[0], "nas");
        assert_int_equal(add(f->store, "cam1", store_test_keys[1], 0), 0);
        assert_int_equal(store_list_devices(f->store, true, &l, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(l[0].name, "cam1");
        assert_string_equal(l[0].ipv4, "100.64.0.3");
        assert_string_equal(l[0].ipv6, "fd7a:115c:a1e0::3");
        assert_string_equal(l[0].public_key, store_test_keys[1]);
        assert_int_equal(l[0].expires, 0);
        assert_false(l[0].expired);
        store_nodes_free(l, n);
        /* nodes list keeps showing nodes only */
        assert_int_equal(count_nodes(f->store), 1);

        /* one namespace, and nothing changes on error */
        v = store_test_version(f->store);
        assert_int_equal(add(f->store, "cam1", store_test_keys[2], 0), -EEXIST);
        assert_int_equal(add(f->store, "nas", store_test_keys[2], 0), -EEXIST);
        assert_int_equal(add(f->store, "hub", store_test_keys[2], 0), -EEXIST);
        assert_int_equal(add(f->store, "cam2", store_test_keys[0], 0), -ENOTUNIQ);
        assert_int_equal(add(f->store, "cam2", store_test_keys[1], 0), -ENOTUNIQ);
        assert_int_equal(add(f->store, "cam2", HUB_KEY, 0), -EKEYREJECTED);
        assert_int_equal(store_test_version(f->store), v);
        assert_int_equal(count_devices(f->store, true), 1);

        /* a node cannot take a device's key or name */
        {
                _cleanup_free_ char *token = NULL;
                StoreNode node = {};

                assert_int_equal(store_secret_new(NULL, &token), 0);
                assert_int_equal(store_register_node(f->store,
                                                     &(StoreRegistration) { .authkey = "k",
                                                                            .public_key = store_test_keys[1],
                                                                            .name = "evil",
                                                                            .token = token },
                                                     NOW, &node),
                                 -ENOTUNIQ);
                assert_int_equal(store_test_version(f->store), v);
        }
        assert_int_equal(reg(f->store, store_test_keys[2], "cam1") > 0, true);
        {
                StoreNode *nodes = NULL;
                size_t n_nodes = 0;

                assert_int_equal(store_list_nodes(f->store, true, &nodes, &n_nodes), 0);
                assert_int_equal(n_nodes, 2);
                assert_string_equal(nodes[1].name, "cam1-2");
                store_nodes_free(nodes, n_nodes);
        }

        /* nodes remove never takes a device, devices remove never a node */
        assert_int_equal(store_remove_node(f->store, "cam1"), -ENOENT);
        assert_int_equal(store_remove_device(f->store, "nas"), -ENOENT);
        v = store_test_version(f->store);
        assert_int_equal(store_remove_device(f->store, "cam1"), 0);
        assert_true(store_test_version(f->store) > v);
        assert_int_equal(store_remove_device(f->store, "cam1"), -ENOENT);
        assert_int_equal(count_devices(f->store, true), 0);
        /* name and key are free again */
        assert_int_equal(add(f->store, "cam1", store_test_keys[1], 0), 0);
}

static void test_exhausted(void **state) {
        Fixture *f = *state;
        uint64_t v;

        assert_int_equal(add(f->store, "a", store_test_keys[0], 0), 0);
        assert_int_equal(add(f->store, "b", store_test_keys[1], 0), 0);
        /* 10.0.0.0/29: hosts 2 … 6 */
        assert_int_equal(add(f->store, "c", store_test_keys[2], 0), 0);
        assert_int_equal(add(f->store, "d", store_test_keys[3], 0), 0);
        assert_int_equal(add(f->store, "e", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAU=", 0), 0);
        v = store_test_version(f->store);
        assert_int_equal(add(f->store, "f", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAY=", 0), -ENOSPC);
        assert_int_equal(store_test_version(f->store), v);
        assert_int_equal(count_devices(f->store, true), 5);
}

static void test_expire(void **state) {
        Fixture *f = *state;
        uint64_t v, m0, m1;

        assert_int_equal(add(f->store, "cam1", store_test_keys[0], NOW + 10), 0);
        assert_int_equal(add(f->store, "cam2", store_test_keys[1], 0), 0);
        v = store_test_version(f->store);
        assert_int_equal(store_get_members_version(f->store, &m0), 0);
        assert_int_equal(store_expire_due_devices(f->store, NOW + 9), 0);
        assert_int_equal(store_test_version(f->store), v);
        assert_int_equal(store_expire_due_devices(f->store, NOW + 10), 1);
        assert_true(store_test_version(f->store) > v);
        assert_int_equal(store_get_members_version(f->store, &m1), 0);
        assert_true(m1 > m0);
        assert_int_equal(store_expire_due_devices(f->store, NOW + 3600), 0);
        assert_int_equal(count_devices(f->store, false), 1);
        assert_int_equal(count_devices(f->store, true), 2);
        /* an expired device keeps its name until removed */
        assert_int_equal(add(f->store, "cam1", store_test_keys[2], 0), -EEXIST);
        assert_int_equal(store_remove_device(f->store, "cam1"), 0);
}

/* A device's endpoint as the hub saw it is kept, but is in no netmap: no
 * version bump. */
static void test_observed_endpoint(void **state) {
        Fixture *f = *state;
        StoreNode n = {};
        StoreNode *l = NULL;
        size_t n_l = 0;
        int64_t id;
        uint64_t v;

        assert_int_equal(store_add_device(f->store,
                                          &(StoreDevice) { .name = "cam1", .public_key = store_test_keys[0] },
                                          NOW, &n),
                         0);
        id = n.id;
        store_node_done(&n);
        v = store_test_version(f->store);
        assert_int_equal(store_set_observed_endpoints(f->store,
                                                      (StoreObservation[]) { { id, "192.0.2.50:1234" } }, 1),
                         0);
        assert_int_equal(store_test_version(f->store), v);
        assert_int_equal(store_list_devices(f->store, true, &l, &n_l), 0);
        assert_int_equal(n_l, 1);
        assert_string_equal(l[0].observed_endpoint, "192.0.2.50:1234");
        store_nodes_free(l, n_l);
}

static char *render(Store *s, int64_t self, NetmapSnapshot **snap) {
        char *json = NULL;
        size_t len;

        assert_int_equal(netmap_snapshot_load(s, NULL, snap), 0);
        assert_int_equal(netmap_snapshot_render(*snap, self, &json, &len), 0);
        assert_int_equal(strlen(json), len);
        return json;
}

static char *delta(NetmapSnapshot *snap, const NetmapSnapshot *prev, int64_t self) {
        char *json = NULL;
        size_t len;

        assert_int_equal(netmap_snapshot_render_delta(snap, prev, self, &json, &len), 0);
        return json;
}

#define CAM1                                           \
        "{\"name\":\"cam1\",\"public_key\":\""         \
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAM=" \
        "\",\"ipv4\":\"100.64.0.4\",\"ipv6\":\"fd7a:115c:a1e0::4\"}"
#define CAM2                                           \
        "{\"name\":\"cam2\",\"public_key\":\""         \
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ=" \
        "\",\"ipv4\":\"100.64.0.5\",\"ipv6\":\"fd7a:115c:a1e0::5\"}"

static void test_netmap_devices(void **state) {
        Fixture *f = *state;
        NetmapSnapshot *s0 = NULL, *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL;
        _cleanup_free_ char *j0 = NULL, *j1 = NULL, *d1 = NULL, *j2 = NULL, *d2 = NULL, *d3 = NULL, *j4 = NULL,
                            *d4 = NULL;
        int64_t nas, laptop;

        nas = reg(f->store, store_test_keys[0], "nas");
        laptop = reg(f->store, store_test_keys[1], "laptop");

        /* no devices: no key at all (test-netmap-golden keeps its bytes) */
        j0 = render(f->store, nas, &s0);
        assert_null(strstr(j0, "devices"));

        assert_int_equal(add(f->store, "cam1", store_test_keys[2], 0), 0);
        j1 = render(f->store, nas, &s1);
        /* after the peers (and the hub), last */
        assert_non_null(strstr(j1, "\"relay\":false}],\"devices\":[" CAM1 "]}"));
        d1 = delta(s1, s0, nas);
        assert_non_null(strstr(d1, ",\"devices\":[" CAM1 "]}"));
        /* devices are no peers */
        assert_non_null(strstr(d1, "\"peers_changed\":[],\"peers_removed\":[]"));
        {
                _cleanup_(netmap_freep) Netmap *m = NULL;
                _cleanup_free_ char *error = NULL;

                assert_int_equal(netmap_parse(j1, strlen(j1), &m, &error), 0);
                assert_int_equal(m->n_peers, 1);
        }

        /* with a hub: after it, last */
        {
                const NetmapHub hub = { .public_key = HUB_KEY, .endpoint = "192.0.2.1:41640" };
                _cleanup_free_ char *json = NULL;
                NetmapSnapshot *snap = NULL;
                size_t len;

                assert_int_equal(netmap_snapshot_load(f->store, &hub, &snap), 0);
                assert_int_equal(netmap_snapshot_render(snap, nas, &json, &len), 0);
                assert_non_null(strstr(json, "\"endpoints\":[\"192.0.2.1:41640\"]},\"devices\":[" CAM1 "]}"));
                netmap_snapshot_free(snap);
        }

        /* a second device: the whole list, in id order */
        assert_int_equal(add(f->store, "cam2", store_test_keys[3], 0), 0);
        j2 = render(f->store, laptop, &s2);
        assert_non_null(strstr(j2, ",\"devices\":[" CAM1 "," CAM2 "]}"));
        d2 = delta(s2, s1, laptop);
        assert_non_null(strstr(d2, ",\"devices\":[" CAM1 "," CAM2 "]}"));

        /* a node's change only: the list is unchanged, so absent */
        assert_int_equal(store_set_endpoints(f->store, laptop, (char *[]) { (char *) "192.0.2.1:1", NULL }), 1);
        assert_int_equal(netmap_snapshot_load(f->store, NULL, &s3), 0);
        d3 = delta(s3, s2, nas);
        assert_null(strstr(d3, "devices"));
        assert_non_null(strstr(d3, "\"name\":\"laptop\""));

        /* the last device goes: [] in the delta, no key in the full netmap */
        assert_int_equal(store_remove_device(f->store, "cam1"), 0);
        assert_int_equal(store_remove_device(f->store, "cam2"), 0);
        j4 = render(f->store, nas, &s4);
        assert_null(strstr(j4, "devices"));
        d4 = delta(s4, s3, nas);
        assert_non_null(strstr(d4, ",\"devices\":[]}"));

        netmap_snapshot_free(s0);
        netmap_snapshot_free(s1);
        netmap_snapshot_free(s2);
        netmap_snapshot_free(s3);
        netmap_snapshot_free(s4);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_add_remove, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exhausted, setup_tiny, teardown),
                cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
                cmocka_unit_test_setup_teardown(test_observed_endpoint, setup, teardown),
                cmocka_unit_test_setup_teardown(test_netmap_devices, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
