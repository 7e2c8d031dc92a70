/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include "netmap.h"
#include "store.h"

#define NOW 1700000000

typedef struct Fixture {
        char dir[64];
        char path[128];
        Store *store;
} Fixture;

/* Distinct valid-looking keys; the store does not decode them. */
static const char *const keys[] = {
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAM=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAU=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAY=",
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup_range(void **state, const char *ipv4_range) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        strcpy(f->dir, "/tmp/test-store-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, STORE_DB_FILE);
        assert_int_equal(store_open(f->path, true, &f->store), 0);
        assert_int_equal(store_init_settings(f->store, "https://127.0.0.1:8443", "mesh.internal",
                                             ipv4_range, "fd7a:115c:a1e0::/48"), 0);
        *state = f;
        return 0;
}

static int setup(void **state) {
        return setup_range(state, "100.64.0.0/10");
}

static int setup_tiny(void **state) {
        return setup_range(state, "10.0.0.0/30");
}

static int teardown(void **state) {
        Fixture *f = *state;

        store_free(f->store);
        (void) nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

static uint64_t version(Store *s) {
        uint64_t v = 0;

        assert_int_equal(store_get_version(s, &v), 0);
        return v;
}

static int reg(Store *s, const char *authkey, const char *key, const char *name, int64_t now, StoreNode *ret) {
        _cleanup_free_ char *token = NULL;

        assert_int_equal(store_secret_new(NULL, &token), 0);
        return store_register_node(s,
                                   &(StoreRegistration) {
                                           .authkey = authkey,
                                           .public_key = key,
                                           .name = name,
                                           .token = token,
                                   },
                                   now, ret);
}

static void test_open(void **state) {
        Fixture *f = *state;
        Store *other = NULL;
        struct stat st;
        char *v = NULL;

        /* never overwrite */
        assert_int_equal(store_open(f->path, true, &other), -EEXIST);
        assert_null(other);
        /* a second connection, as the CLI has while the server runs */
        assert_int_equal(store_open(f->path, false, &other), 0);
        assert_int_equal(store_get_setting(other, "domain", &v), 0);
        assert_string_equal(v, "mesh.internal");
        free(v);
        assert_int_equal(store_get_setting(other, "nonexistent", &v), -ENOENT);
        store_free(other);

        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(version(f->store), 1);

        assert_int_equal(store_open("/tmp/does-not-exist-meshd/x.db", false, &other), -ENOENT);
}

static void test_secret(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL;

        assert_int_equal(store_secret_new("mskey-", &a), 0);
        assert_int_equal(store_secret_new("mskey-", &b), 0);
        assert_int_equal(strlen(a), 6 + 43);
        assert_true(strncmp(a, "mskey-", 6) == 0);
        assert_null(strpbrk(a + 6, "+/="));
        assert_string_not_equal(a, b);
}

static void test_register_unique_names(void **state) {
        Fixture *f = *state;
        StoreNode n = {};

        assert_int_equal(store_authkey_add(f->store, "mskey-multi", true, 0), 0);

        assert_int_equal(reg(f->store, "mskey-multi", keys[0], "nas", NOW, &n), 0);
        assert_string_equal(n.name, "nas");
        assert_string_equal(n.ipv4, "100.64.0.2");
        assert_string_equal(n.ipv6, "fd7a:115c:a1e0::2");
        assert_non_null(n.endpoints);
        assert_false(n.removed);
        assert_int_equal(version(f->store), 2);
        store_node_done(&n);

        assert_int_equal(reg(f->store, "mskey-multi", keys[1], "nas", NOW, &n), 0);
        assert_string_equal(n.name, "nas-2");
        assert_string_equal(n.ipv4, "100.64.0.3");
        assert_int_equal(version(f->store), 3);
        store_node_done(&n);

        assert_int_equal(reg(f->store, "mskey-multi", keys[2], "nas", NOW, &n), 0);
        assert_string_equal(n.name, "nas-3");
        store_node_done(&n);

        assert_int_equal(reg(f->store, "mskey-multi", keys[3], "laptop", NOW, &n), 0);
        assert_string_equal(n.name, "laptop");
        store_node_done(&n);
        assert_int_equal(version(f->store), 5);

        /* same public key again: refused, nothing changes */
        assert_int_equal(reg(f->store, "mskey-multi", keys[0], "other", NOW, &n), -EEXIST);
        assert_int_equal(version(f->store), 5);
}

static void test_long_name(void **state) {
        Fixture *f = *state;
        char label[64];
        StoreNode n = {};

        memset(label, 'a', 63);
        label[63] = 0;
        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        assert_int_equal(reg(f->store, "k", keys[0], label, NOW, &n), 0);
        assert_string_equal(n.name, label);
        store_node_done(&n);
        assert_int_equal(reg(f->store, "k", keys[1], label, NOW, &n), 0);
        assert_int_equal(strlen(n.name), 63);
        assert_string_equal(n.name + 61, "-2");
        store_node_done(&n);
}

static void test_authkeys(void **state) {
        Fixture *f = *state;
        StoreNode n = {};

        assert_int_equal(store_authkey_add(f->store, "mskey-once", false, 0), 0);
        assert_int_equal(store_authkey_add(f->store, "mskey-old", true, NOW - 1), 0);
        assert_int_equal(store_authkey_add(f->store, "mskey-later", false, NOW + 60), 0);

        assert_int_equal(reg(f->store, "mskey-unknown", keys[0], "a", NOW, &n), -ENOKEY);
        assert_int_equal(reg(f->store, "mskey-old", keys[0], "a", NOW, &n), -EKEYEXPIRED);
        assert_int_equal(version(f->store), 1);

        /* a refused registration does not consume a single-use key */
        assert_int_equal(store_authkey_add(f->store, "mskey-x", true, 0), 0);
        assert_int_equal(reg(f->store, "mskey-x", keys[0], "a", NOW, &n), 0);
        store_node_done(&n);
        assert_int_equal(reg(f->store, "mskey-once", keys[0], "b", NOW, &n), -EEXIST);

        assert_int_equal(reg(f->store, "mskey-once", keys[1], "b", NOW, &n), 0);
        store_node_done(&n);
        assert_int_equal(reg(f->store, "mskey-once", keys[2], "c", NOW, &n), -EKEYREJECTED);

        /* valid until its expiry time, not after */
        assert_int_equal(reg(f->store, "mskey-later", keys[2], "c", NOW + 61, &n), -EKEYEXPIRED);
        assert_int_equal(reg(f->store, "mskey-later", keys[2], "c", NOW + 59, &n), 0);
        store_node_done(&n);
        assert_int_equal(version(f->store), 4);
}

static void test_token_remove_and_reuse(void **state) {
        Fixture *f = *state;
        StoreNode n = {}, t = {};
        StoreNode *list = NULL;
        size_t n_list = 0;

        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        assert_int_equal(store_register_node(f->store,
                                             &(StoreRegistration) {
                                                     .authkey = "k",
                                                     .public_key = keys[0],
                                                     .name = "nas",
                                                     .token = "token-of-nas",
                                             },
                                             NOW, &n),
                         0);
        store_node_done(&n);
        assert_int_equal(reg(f->store, "k", keys[1], "nas", NOW, &n), 0); /* nas-2, .3 */
        store_node_done(&n);
        assert_int_equal(reg(f->store, "k", keys[2], "box", NOW, &n), 0); /* .4 */
        store_node_done(&n);
        assert_int_equal(version(f->store), 4);

        assert_int_equal(store_node_by_token(f->store, "token-of-nas", &t), 0);
        assert_string_equal(t.name, "nas");
        assert_false(t.removed);
        store_node_done(&t);
        assert_int_equal(store_node_by_token(f->store, "no-such-token", &t), -ENOENT);

        assert_int_equal(store_remove_node(f->store, "nas"), 0);
        assert_int_equal(version(f->store), 5);
        assert_int_equal(store_remove_node(f->store, "nas"), -ENOENT);
        assert_int_equal(store_remove_node(f->store, "ghost"), -ENOENT);
        assert_int_equal(version(f->store), 5);

        /* the token is still known, as removed (403, not 401) */
        assert_int_equal(store_node_by_token(f->store, "token-of-nas", &t), 0);
        assert_true(t.removed);
        store_node_done(&t);

        assert_int_equal(store_list_nodes(f->store, &list, &n_list), 0);
        assert_int_equal(n_list, 2);
        assert_string_equal(list[0].name, "nas-2");
        assert_string_equal(list[1].name, "box");
        store_nodes_free(list, n_list);

        /* name and key are free again; the address is not reused yet */
        assert_int_equal(reg(f->store, "k", keys[0], "nas", NOW, &n), 0);
        assert_string_equal(n.name, "nas");
        assert_string_equal(n.ipv4, "100.64.0.5");
        store_node_done(&n);
        assert_int_equal(reg(f->store, "k", keys[3], "nas", NOW, &n), 0);
        assert_string_equal(n.name, "nas-3");
        store_node_done(&n);
}

static void test_exhaustion(void **state) {
        Fixture *f = *state;
        StoreNode n = {};

        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        assert_int_equal(reg(f->store, "k", keys[0], "only", NOW, &n), 0);
        assert_string_equal(n.ipv4, "10.0.0.2");
        store_node_done(&n);
        assert_int_equal(reg(f->store, "k", keys[1], "more", NOW, &n), -ENOSPC);
        assert_int_equal(version(f->store), 2);

        /* once the range is exhausted, a freed address is handed out again */
        assert_int_equal(store_remove_node(f->store, "only"), 0);
        assert_int_equal(reg(f->store, "k", keys[1], "more", NOW, &n), 0);
        assert_string_equal(n.ipv4, "10.0.0.2");
        store_node_done(&n);
}

static void test_endpoints(void **state) {
        Fixture *f = *state;
        char *eps[] = { (char *) "192.0.2.1:41641", (char *) "[2001:db8::1]:41641", NULL };
        char *eps2[] = { (char *) "192.0.2.1:41641", NULL };
        StoreNode n = {};
        StoreNode *list = NULL;
        size_t n_list = 0;
        int64_t id;

        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        assert_int_equal(reg(f->store, "k", keys[0], "nas", NOW, &n), 0);
        id = n.id;
        store_node_done(&n);
        assert_int_equal(version(f->store), 2);

        assert_int_equal(store_set_endpoints(f->store, id, eps), 1);
        assert_int_equal(version(f->store), 3);
        /* the same again: no change, no version bump */
        assert_int_equal(store_set_endpoints(f->store, id, eps), 0);
        assert_int_equal(version(f->store), 3);
        assert_int_equal(store_set_endpoints(f->store, id, eps2), 1);
        assert_int_equal(version(f->store), 4);
        assert_int_equal(store_set_endpoints(f->store, id + 100, eps2), -ENOENT);

        assert_int_equal(store_list_nodes(f->store, &list, &n_list), 0);
        assert_int_equal(n_list, 1);
        assert_int_equal(strv_length(list[0].endpoints), 1);
        assert_string_equal(list[0].endpoints[0], "192.0.2.1:41641");
        store_nodes_free(list, n_list);

        assert_int_equal(store_remove_node(f->store, "nas"), 0);
        assert_int_equal(store_set_endpoints(f->store, id, eps), -ENOENT);
}

static void test_snapshot(void **state) {
        Fixture *f = *state;
        char *eps[] = { (char *) "192.0.2.1:41641", NULL };
        _cleanup_free_ char *json = NULL;
        NetmapSnapshot *snap = NULL;
        int64_t ids[3];
        StoreNode n = {};
        cJSON *o, *peers, *p;
        size_t len;

        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        for (size_t i = 0; i < 3; i++) {
                assert_int_equal(reg(f->store, "k", keys[i], i == 1 ? "laptop" : "nas", NOW, &n), 0);
                ids[i] = n.id;
                store_node_done(&n);
        }
        assert_int_equal(store_set_endpoints(f->store, ids[0], eps), 1);

        assert_int_equal(netmap_snapshot_load(f->store, &snap), 0);
        assert_int_equal(netmap_snapshot_version(snap), 5);
        assert_true(netmap_snapshot_has_node(snap, ids[2]));
        assert_false(netmap_snapshot_has_node(snap, 9999));
        assert_int_equal(netmap_snapshot_render(snap, 9999, &json, &len), -ENOENT);

        assert_int_equal(netmap_snapshot_render(snap, ids[1], &json, &len), 0);
        assert_int_equal(strlen(json), len);

        /* what the node's parser (src/shared/netmap.c) accepts, whole */
        {
                _cleanup_(netmap_freep) Netmap *m = NULL;
                _cleanup_free_ char *error = NULL;

                assert_int_equal(netmap_parse(json, len, &m, &error), 0);
                assert_int_equal(m->version, 5);
                assert_string_equal(m->self.name, "laptop");
                assert_int_equal(m->n_peers, 2);
        }
        o = cJSON_Parse(json);
        assert_non_null(o);
        assert_int_equal(cJSON_GetObjectItem(o, "version")->valuedouble, 5);
        assert_string_equal(cJSON_GetObjectItem(o, "domain")->valuestring, "mesh.internal");
        assert_string_equal(cJSON_GetObjectItem(o, "ipv4_range")->valuestring, "100.64.0.0/10");
        assert_string_equal(cJSON_GetObjectItem(o, "ipv6_range")->valuestring, "fd7a:115c:a1e0::/48");
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "self"), "name")->valuestring, "laptop");
        assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "self"), "relay"));
        peers = cJSON_GetObjectItem(o, "peers");
        assert_int_equal(cJSON_GetArraySize(peers), 2);
        p = cJSON_GetArrayItem(peers, 0);
        assert_string_equal(cJSON_GetObjectItem(p, "name")->valuestring, "nas");
        assert_string_equal(cJSON_GetObjectItem(p, "public_key")->valuestring, keys[0]);
        assert_string_equal(cJSON_GetObjectItem(p, "ipv4")->valuestring, "100.64.0.2");
        assert_string_equal(cJSON_GetObjectItem(p, "ipv6")->valuestring, "fd7a:115c:a1e0::2");
        assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(p, "endpoints"), 0)->valuestring,
                            "192.0.2.1:41641");
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(p, "relay")));
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(peers, 1), "name")->valuestring, "nas-2");
        cJSON_Delete(o);
        free(json);
        json = NULL;

        /* a node alone in the mesh has no peers */
        netmap_snapshot_free(snap);
        assert_int_equal(store_remove_node(f->store, "nas"), 0);
        assert_int_equal(store_remove_node(f->store, "nas-2"), 0);
        assert_int_equal(netmap_snapshot_load(f->store, &snap), 0);
        assert_int_equal(netmap_snapshot_render(snap, ids[1], &json, &len), 0);
        o = cJSON_Parse(json);
        assert_non_null(o);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "peers")), 0);
        assert_int_equal(cJSON_GetObjectItem(o, "version")->valuedouble, 7);
        cJSON_Delete(o);
        netmap_snapshot_free(snap);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open, setup, teardown),
                cmocka_unit_test(test_secret),
                cmocka_unit_test_setup_teardown(test_register_unique_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_long_name, setup, teardown),
                cmocka_unit_test_setup_teardown(test_authkeys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_token_remove_and_reuse, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exhaustion, setup_tiny, teardown),
                cmocka_unit_test_setup_teardown(test_endpoints, setup, teardown),
                cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
        };

        log_setup("test-store", LOG_TARGET_CONSOLE);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
