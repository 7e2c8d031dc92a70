/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "macro.h"
#include "netmap.h"
#include "store.h"
#include "strv.h"
#include "test-store-util.h"
#include "test-util.h"

#define NOW 1700000000

typedef StoreFixture Fixture;

static int setup(void **state) {
        *state = store_fixture_new("test-store", "100.64.0.0/10");
        return 0;
}

static int setup_tiny(void **state) {
        *state = store_fixture_new("test-store", "10.0.0.0/30");
        return 0;
}

static int teardown(void **state) {
        store_fixture_free(*state);
        return 0;
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

        if (!store_test_pg()) {
                assert_int_equal(stat(f->path, &st), 0);
                assert_int_equal(st.st_mode & 0777, 0600);
        }
        assert_int_equal(store_test_version(f->store), 1);

        assert_int_equal(store_open("/tmp/does-not-exist-meshd/x.db", false, &other), -ENOENT);
}

/* What the server polls: a change committed by another connection (the
 * CLI) shows, once; plain reads and settings do not. */
static void test_watch(void **state) {
        Fixture *f = *state;
        Store *cli = NULL;
        StoreNode n = {};
        StoreWatch w;

        assert_int_equal(store_watch_init(f->store, &w), 0);
        assert_int_equal(store_changed(f->store, &w), 0);
        assert_int_equal(store_set_setting(f->store, "hub_endpoint", "192.0.2.1:41640"), 0);
        assert_int_equal(store_changed(f->store, &w), 0);

        assert_int_equal(store_open(f->path, false, &cli), 0);
        assert_int_equal(store_authkey_add(cli, "k", true, 0), 0);
        assert_int_equal(store_test_register(cli, "k", store_test_keys[0], "alpha", NOW, &n), 0);
        store_node_done(&n);
        assert_int_equal(store_changed(f->store, &w), 1);
        assert_int_equal(store_changed(f->store, &w), 0);
        store_free(cli);
}

/* The wake-up: on PostgreSQL a commit by another connection makes the
 * listening fd readable, at once; SQLite has none (inotify and the poll). */
static void test_notify(void **state) {
        Fixture *f = *state;
        Store *cli = NULL;
        int fd;

        fd = store_notify_fd(f->store);
        if (!store_test_pg()) {
                assert_int_equal(fd, -EOPNOTSUPP);
                return;
        }
        assert_true(fd >= 0);
        assert_int_equal(store_notify_drain(f->store), 0);
        assert_int_equal(store_open(f->path, false, &cli), 0);
        assert_int_equal(store_set_policy(cli, "{}"), 0);
        store_free(cli);
        assert_int_equal(poll(&(struct pollfd) { .fd = fd, .events = POLLIN }, 1, 5000), 1);
        assert_true(store_notify_drain(f->store) > 0);
        /* the same fd while the connection lives */
        assert_int_equal(store_notify_fd(f->store), fd);
}

/* PostgreSQL: a connection the server cuts fails calls with an error (no
 * crash, nothing half-written), and the store reconnects by itself. */
static void test_reconnect(void **state) {
        Fixture *f = *state;
        uint64_t v = 0;
        int r;

        if (!store_test_pg()) {
                assert_true(store_is_available(f->store));
                return;
        }
        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        store_test_pg_exec(f, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()");
        r = store_get_version(f->store, &v);
        assert_true(r == -ECONNRESET || r == -ENOTCONN);
        assert_false(store_is_available(f->store));
        /* a reset is tried at most once a second */
        usleep(1100 * 1000);
        assert_int_equal(store_get_version(f->store, &v), 0);
        assert_true(store_is_available(f->store));
        assert_int_equal(v, 1);
        /* writes work again, prepared statements included */
        assert_int_equal(store_set_policy(f->store, "{}"), 0);
        assert_int_equal(store_test_version(f->store), 2);
}

#define WRITERS 4
#define WRITES 15

/* Writers in several processes serialize (SQLite: BEGIN IMMEDIATE;
 * PostgreSQL: the advisory lock): all of them registering "n" at once
 * get unique names and addresses, and the version counts every change. */
static void test_concurrent_writers(void **state) {
        Fixture *f = *state;
        StoreNode *list = NULL;
        size_t n = 0;
        pid_t pids[WRITERS];

        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        for (int w = 0; w < WRITERS; w++) {
                pids[w] = fork();
                assert_true(pids[w] >= 0);
                if (pids[w] == 0) {
                        Store *s = NULL;
                        int bad = store_open(f->path, false, &s) < 0;

                        for (int i = 0; i < WRITES && !bad; i++) {
                                char key[64];
                                StoreNode node = {};

                                /* distinct valid-looking keys: 43 base64 characters and '=' */
                                snprintf(key, sizeof(key), "%042dA=", w * 1000 + i);
                                bad = store_test_register(s, "k", key, "n", NOW, &node) < 0;
                                store_node_done(&node);
                        }
                        store_free(s);
                        _exit(bad);
                }
        }
        for (int w = 0; w < WRITERS; w++) {
                int status = 0;

                assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        assert_int_equal(store_list_nodes(f->store, false, &list, &n), 0);
        assert_int_equal(n, WRITERS * WRITES);
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++) {
                        assert_string_not_equal(list[i].name, list[j].name);
                        assert_string_not_equal(list[i].ipv4, list[j].ipv4);
                }
        store_nodes_free(list, n);
        assert_int_equal(store_test_version(f->store), 1 + WRITERS * WRITES);
}

/* Of two writers of the same key, the first wins: the other learns it. */
static void test_setting_once(void **state) {
        Fixture *f = *state;
        Store *other = NULL;
        _cleanup_free_ char *v = NULL;

        assert_int_equal(store_open(f->path, false, &other), 0);
        assert_int_equal(store_set_setting_once(f->store, "ca_key", "first"), 0);
        assert_int_equal(store_set_setting_once(other, "ca_key", "second"), -EEXIST);
        assert_int_equal(store_set_setting_once(f->store, "ca_key", "third"), -EEXIST);
        assert_int_equal(store_get_setting(other, "ca_key", &v), 0);
        assert_string_equal(v, "first");
        store_free(other);
}

/* A wrong URL is one clear error at open, with the password masked. */
static void test_bad_url(void **state) {
        _cleanup_free_ char *m1 = db_mask_url("postgresql://meshd:s3cret@db.example:5432/mesh?sslmode=require"),
                            *m2 = db_mask_url("postgres:///mesh?host=/run/postgresql&password=s3cret"),
                            *m3 = db_mask_url("/var/lib/meshd-control/control.db");
        Store *s = NULL;

        assert_string_equal(m1, "postgresql://meshd:***@db.example:5432/mesh?sslmode=require");
        assert_string_equal(m2, "postgres:///mesh?host=/run/postgresql&password=***");
        assert_string_equal(m3, "/var/lib/meshd-control/control.db");
        assert_true(db_is_url("postgres://x") && db_is_url("postgresql://x"));
        assert_false(db_is_url("postgresql:x") || db_is_url("/tmp/postgresql://x"));
        assert_int_equal(store_open("postgresql://meshd:s3cret@/nodb?host=/nonexistent-meshd-pg", false, &s),
                         -ECONNREFUSED);
        assert_null(s);
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

        assert_int_equal(store_test_register(f->store, "mskey-multi", store_test_keys[0], "nas", NOW, &n), 0);
        assert_string_equal(n.name, "nas");
        assert_string_equal(n.ipv4, "100.64.0.2");
        assert_string_equal(n.ipv6, "fd7a:115c:a1e0::2");
        assert_non_null(n.endpoints);
        assert_false(n.removed);
        assert_int_equal(store_test_version(f->store), 2);
        store_node_done(&n);

        assert_int_equal(store_test_register(f->store, "mskey-multi", store_test_keys[1], "nas", NOW, &n), 0);
        assert_string_equal(n.name, "nas-2");
        assert_string_equal(n.ipv4, "100.64.0.3");
        assert_int_equal(store_test_version(f->store), 3);
        store_node_done(&n);

        assert_int_equal(store_test_register(f->store, "mskey-multi", store_test_keys[2], "nas", NOW, &n), 0);
        assert_string_equal(n.name, "nas-3");
        store_node_done(&n);

        assert_int_equal(store_test_register(f->store, "mskey-multi", store_test_keys[3], "laptop", NOW, &n),
                         0);
        assert_string_equal(n.name, "laptop");
        store_node_done(&n);
        assert_int_equal(store_test_version(f->store), 5);

        /* same public key again (its holder proved it, http.c): the same
         * node joins again, whatever hostname it brings */
        assert_int_equal(store_test_register(f->store, "mskey-multi", store_test_keys[0], "other", NOW, &n), 0);
        assert_string_equal(n.name, "nas");
        assert_string_equal(n.ipv4, "100.64.0.2");
        assert_int_equal(store_test_version(f->store), 6);
        store_node_done(&n);
}

static void test_long_name(void **state) {
        Fixture *f = *state;
        char label[64];
        StoreNode n = {};

        memset(label, 'a', 63);
        label[63] = 0;
        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[0], label, NOW, &n), 0);
        assert_string_equal(n.name, label);
        store_node_done(&n);
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[1], label, NOW, &n), 0);
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

        assert_int_equal(store_test_register(f->store, "mskey-unknown", store_test_keys[0], "a", NOW, &n),
                         -ENOKEY);
        assert_int_equal(store_test_register(f->store, "mskey-old", store_test_keys[0], "a", NOW, &n),
                         -EKEYEXPIRED);
        assert_int_equal(store_test_version(f->store), 1);

        /* a refused registration does not consume a single-use key */
        assert_int_equal(store_authkey_add(f->store, "mskey-x", true, 0), 0);
        assert_int_equal(store_test_register(f->store, "mskey-x", store_test_keys[0], "a", NOW, &n), 0);
        store_node_done(&n);
        assert_int_equal(store_set_setting(f->store, "hub_public_key", store_test_keys[5]), 0);
        assert_int_equal(store_test_register(f->store, "mskey-once", store_test_keys[5], "b", NOW, &n),
                         -EEXIST);

        assert_int_equal(store_test_register(f->store, "mskey-once", store_test_keys[1], "b", NOW, &n), 0);
        store_node_done(&n);
        assert_int_equal(store_test_register(f->store, "mskey-once", store_test_keys[2], "c", NOW, &n),
                         -EKEYREJECTED);

        /* valid until its expiry time, not after */
        assert_int_equal(store_test_register(f->store, "mskey-later", store_test_keys[2], "c", NOW + 61, &n),
                         -EKEYEXPIRED);
        assert_int_equal(store_test_register(f->store, "mskey-later", store_test_keys[2], "c", NOW + 59, &n),
                         0);
        store_node_done(&n);
        assert_int_equal(store_test_version(f->store), 4);
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
                                                     .public_key = store_test_keys[0],
                                                     .name = "nas",
                                                     .token = "token-of-nas",
                                             },
                                             NOW, &n),
                         0);
        store_node_done(&n);
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[1], "nas", NOW, &n),
                         0); /* nas-2, .3 */
        store_node_done(&n);
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[2], "box", NOW, &n), 0); /* .4 */
        store_node_done(&n);
        assert_int_equal(store_test_version(f->store), 4);

        assert_int_equal(store_node_by_token(f->store, "token-of-nas", &t), 0);
        assert_string_equal(t.name, "nas");
        assert_false(t.removed);
        store_node_done(&t);
        assert_int_equal(store_node_by_token(f->store, "no-such-token", &t), -ENOENT);

        assert_int_equal(store_remove_node(f->store, "nas"), 0);
        assert_int_equal(store_test_version(f->store), 5);
        assert_int_equal(store_remove_node(f->store, "nas"), -ENOENT);
        assert_int_equal(store_remove_node(f->store, "ghost"), -ENOENT);
        assert_int_equal(store_test_version(f->store), 5);

        /* the token is still known, as removed (403, not 401) */
        assert_int_equal(store_node_by_token(f->store, "token-of-nas", &t), 0);
        assert_true(t.removed);
        store_node_done(&t);

        assert_int_equal(store_list_nodes(f->store, true, &list, &n_list), 0);
        assert_int_equal(n_list, 2);
        assert_string_equal(list[0].name, "nas-2");
        assert_string_equal(list[1].name, "box");
        store_nodes_free(list, n_list);

        /* name and key are free again; the address is not reused yet */
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[0], "nas", NOW, &n), 0);
        assert_string_equal(n.name, "nas");
        assert_string_equal(n.ipv4, "100.64.0.5");
        store_node_done(&n);
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[3], "nas", NOW, &n), 0);
        assert_string_equal(n.name, "nas-3");
        store_node_done(&n);
}

static void test_exhaustion(void **state) {
        Fixture *f = *state;
        StoreNode n = {};

        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[0], "only", NOW, &n), 0);
        assert_string_equal(n.ipv4, "10.0.0.2");
        store_node_done(&n);
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[1], "more", NOW, &n), -ENOSPC);
        assert_int_equal(store_test_version(f->store), 2);

        /* once the range is exhausted, a freed address is handed out again */
        assert_int_equal(store_remove_node(f->store, "only"), 0);
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[1], "more", NOW, &n), 0);
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
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[0], "nas", NOW, &n), 0);
        id = n.id;
        store_node_done(&n);
        assert_int_equal(store_test_version(f->store), 2);

        assert_int_equal(store_set_endpoints(f->store, id, eps), 1);
        assert_int_equal(store_test_version(f->store), 3);
        /* the same again: no change, no version bump */
        assert_int_equal(store_set_endpoints(f->store, id, eps), 0);
        assert_int_equal(store_test_version(f->store), 3);
        assert_int_equal(store_set_endpoints(f->store, id, eps2), 1);
        assert_int_equal(store_test_version(f->store), 4);
        assert_int_equal(store_set_endpoints(f->store, id + 100, eps2), -ENOENT);

        assert_int_equal(store_list_nodes(f->store, true, &list, &n_list), 0);
        assert_int_equal(n_list, 1);
        assert_int_equal(strv_length(list[0].endpoints), 1);
        assert_string_equal(list[0].endpoints[0], "192.0.2.1:41641");
        store_nodes_free(list, n_list);

        assert_int_equal(store_remove_node(f->store, "nas"), 0);
        assert_int_equal(store_set_endpoints(f->store, id, eps), -ENOENT);
}

/* A register reply's netmap ("netmap_scope": "self"): the mesh's header at
 * the current version, read without the members, and the node's own row. */
static void test_mesh_self(void **state) {
        Fixture *f = *state;
        _cleanup_(netmap_mesh_done) NetmapMesh header = {};
        _cleanup_(netmap_freep) Netmap *m = NULL;
        _cleanup_free_ char *json = NULL, *error = NULL;
        const NetmapHub hub = { .public_key = store_test_keys[5], .endpoint = "192.0.2.1:51820" };
        char *eps[] = { (char *) "192.0.2.7:41641", NULL };
        uint64_t version;
        StoreNode n = {};
        size_t len;

        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        for (size_t i = 0; i < 2; i++) {
                store_node_done(&n);
                assert_int_equal(store_test_register(f->store, "k", store_test_keys[i], "nas", NOW, &n), 0);
        }
        assert_int_equal(store_get_version(f->store, &version), 0);
        assert_int_equal(store_read_mesh_header(f->store, &hub, &header), 0);
        assert_int_equal(header.version, version);
        assert_int_equal(header.n_nodes, 0);
        assert_true(header.has_hub);
        assert_string_equal(header.domain, "mesh.internal");

        assert_int_equal(netmap_mesh_render_self(&header,
                                                 &(NetmapMeshNode) { .id = n.id,
                                                                     .name = n.name,
                                                                     .public_key = n.public_key,
                                                                     .ipv4 = n.ipv4,
                                                                     .ipv6 = n.ipv6,
                                                                     .endpoints = eps },
                                                 &json, &len),
                         0);
        assert_int_equal(strlen(json), len);
        assert_int_equal(netmap_parse(json, len, &m, &error), 0);
        assert_int_equal(m->version, version);
        assert_string_equal(m->self.name, "nas-2");
        assert_true(strv_equal(m->self.endpoints, eps));
        assert_int_equal(m->n_peers, 0);
        assert_true(m->has_hub);
        assert_string_equal(m->hub.name, "hub");
        store_node_done(&n);
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
                assert_int_equal(store_test_register(f->store, "k", store_test_keys[i],
                                                     i == 1 ? "laptop" : "nas", NOW, &n),
                                 0);
                ids[i] = n.id;
                store_node_done(&n);
        }
        assert_int_equal(store_set_endpoints(f->store, ids[0], eps), 1);

        assert_int_equal(netmap_snapshot_load(f->store, NULL, &snap), 0);
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
        assert_string_equal(cJSON_GetObjectItem(p, "public_key")->valuestring, store_test_keys[0]);
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
        assert_int_equal(netmap_snapshot_load(f->store, NULL, &snap), 0);
        assert_int_equal(netmap_snapshot_render(snap, ids[1], &json, &len), 0);
        o = cJSON_Parse(json);
        assert_non_null(o);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "peers")), 0);
        assert_int_equal(cJSON_GetObjectItem(o, "version")->valuedouble, 7);
        cJSON_Delete(o);
        netmap_snapshot_free(snap);
}

static void test_endpoints_compose(void **state) {
        char *announced[] = { (char *) "192.0.2.10:41641", (char *) "198.51.100.7:3000",
                              (char *) "192.0.2.10:41641", NULL };
        char **l = NULL;

        /* observed first, then the announced ones, each once */
        assert_int_equal(netmap_endpoints_compose("198.51.100.7:3000", announced, &l), 0);
        assert_int_equal(strv_length(l), 2);
        assert_string_equal(l[0], "198.51.100.7:3000");
        assert_string_equal(l[1], "192.0.2.10:41641");
        strv_free(l);

        assert_int_equal(netmap_endpoints_compose(NULL, announced, &l), 0);
        assert_int_equal(strv_length(l), 2);
        assert_string_equal(l[0], "192.0.2.10:41641");
        assert_string_equal(l[1], "198.51.100.7:3000");
        strv_free(l);

        assert_int_equal(netmap_endpoints_compose("[2001:db8::1]:5", NULL, &l), 0);
        assert_int_equal(strv_length(l), 1);
        assert_string_equal(l[0], "[2001:db8::1]:5");
        strv_free(l);

        assert_int_equal(netmap_endpoints_compose(NULL, NULL, &l), 0);
        assert_int_equal(strv_length(l), 0);
        strv_free(l);
}

static void register_three(Fixture *f, int64_t ids[static 3]) {
        StoreNode n = {};

        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        for (size_t i = 0; i < 3; i++) {
                assert_int_equal(store_test_register(f->store, "k", store_test_keys[i], "node", NOW, &n), 0);
                ids[i] = n.id;
                store_node_done(&n);
        }
}

static int peer_relay(const char *json, const char *name) {
        cJSON *o = cJSON_Parse(json), *p;
        int r = -1;

        assert_non_null(o);
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(o, "peers"))
                if (streq(cJSON_GetObjectItem(p, "name")->valuestring, name))
                        r = cJSON_IsTrue(cJSON_GetObjectItem(p, "relay"));
        cJSON_Delete(o);
        return r;
}

/* test_path_reports' pairs (0,2) and (1,2) relayed, (0,1) not, as the
 * netmaps show them */
static void check_relayed_in_netmaps(Fixture *f, const int64_t ids[3]) {
        _cleanup_(netmap_freep) Netmap *m = NULL;
        _cleanup_free_ char *error = NULL;
        NetmapSnapshot *snap = NULL;
        char *json = NULL;
        size_t len;

        assert_int_equal(netmap_snapshot_load(f->store, NULL, &snap), 0);
        assert_true(netmap_snapshot_relayed(snap, ids[2], ids[0]));
        assert_true(netmap_snapshot_relayed(snap, ids[1], ids[2]));
        assert_false(netmap_snapshot_relayed(snap, ids[0], ids[1]));
        assert_int_equal(netmap_snapshot_render(snap, ids[0], &json, &len), 0);
        assert_int_equal(strlen(json), len);
        assert_int_equal(peer_relay(json, "node-2"), 0);
        assert_int_equal(peer_relay(json, "node-3"), 1);
        assert_int_equal(netmap_parse(json, len, &m, &error), 0);
        assert_false(m->has_hub);
        free(json);
        assert_int_equal(netmap_snapshot_render(snap, ids[2], &json, &len), 0);
        assert_int_equal(peer_relay(json, "node"), 1);
        assert_int_equal(peer_relay(json, "node-2"), 1);
        free(json);
        netmap_snapshot_free(snap);
}

static void test_path_reports(void **state) {
        Fixture *f = *state;
        int64_t ids[3];
        uint64_t v;

        register_three(f, ids);
        v = store_test_version(f->store);
        assert_int_equal(store_pair_relayed(f->store, ids[0], ids[1]), 0);

        /* node: direct=false about node-2 → the pair is relayed, both ways */
        assert_int_equal(store_report_paths(f->store, ids[0],
                                            (StorePathReport[]) { { store_test_keys[1], false } }, 1, NOW),
                         1);
        assert_int_equal(store_test_version(f->store), v + 1);
        assert_int_equal(store_pair_relayed(f->store, ids[0], ids[1]), 1);
        assert_int_equal(store_pair_relayed(f->store, ids[1], ids[0]), 1);
        assert_int_equal(store_pair_relayed(f->store, ids[0], ids[2]), 0);

        /* the same report again changes nothing: no version bump */
        assert_int_equal(store_report_paths(f->store, ids[0],
                                            (StorePathReport[]) { { store_test_keys[1], false } }, 1, NOW + 1),
                         0);
        assert_int_equal(store_test_version(f->store), v + 1);

        /* the other side says direct works: still relayed while one side says no */
        assert_int_equal(store_report_paths(f->store, ids[1],
                                            (StorePathReport[]) { { store_test_keys[0], true } }, 1, NOW + 2),
                         0);
        assert_int_equal(store_pair_relayed(f->store, ids[0], ids[1]), 1);
        assert_int_equal(store_test_version(f->store), v + 1);

        /* both direct: cleared, one bump */
        assert_int_equal(store_report_paths(f->store, ids[0],
                                            (StorePathReport[]) { { store_test_keys[1], true } }, 1, NOW + 3),
                         1);
        assert_int_equal(store_pair_relayed(f->store, ids[0], ids[1]), 0);
        assert_int_equal(store_test_version(f->store), v + 2);

        /* unknown keys and self are ignored; several pairs, one bump */
        assert_int_equal(store_report_paths(f->store, ids[2],
                                            (StorePathReport[]) { { store_test_keys[5], false },
                                                                  { store_test_keys[2], false },
                                                                  { store_test_keys[0], false },
                                                                  { store_test_keys[1], false } },
                                            4, NOW + 4),
                         2);
        assert_int_equal(store_test_version(f->store), v + 3);
        assert_int_equal(store_pair_relayed(f->store, ids[2], ids[2]), 0);

        /* in the netmaps: each side sees the other as relay, nobody else */
        check_relayed_in_netmaps(f, ids);

        /* a removed node takes its reports along; its token reports nothing */
        assert_int_equal(store_remove_node(f->store, "node-3"), 0);
        assert_int_equal(store_pair_relayed(f->store, ids[0], ids[2]), 0);
        assert_int_equal(store_report_paths(f->store, ids[2],
                                            (StorePathReport[]) { { store_test_keys[0], false } }, 1, NOW + 5),
                         -ENOENT);
        assert_int_equal(store_report_paths(f->store, ids[0], NULL, 0, NOW + 5), 0);
}

static void test_observed_endpoints(void **state) {
        Fixture *f = *state;
        char *eps[] = { (char *) "192.0.2.10:41641", (char *) "10.0.0.5:41641", NULL };
        NetmapSnapshot *snap = NULL;
        StoreNode *list = NULL;
        size_t n_list = 0, len;
        char *json = NULL;
        int64_t ids[3];
        uint64_t v;
        cJSON *o;

        register_three(f, ids);
        assert_int_equal(store_set_endpoints(f->store, ids[0], eps), 1);
        v = store_test_version(f->store);

        /* one transaction, one bump for all changes of a round */
        assert_int_equal(store_set_observed_endpoints(f->store,
                                                      (StoreObservation[]) { { ids[0], "203.0.113.5:6000" },
                                                                             { ids[1], "203.0.113.6:6001" },
                                                                             { 999, "203.0.113.7:1" } },
                                                      3),
                         2);
        assert_int_equal(store_test_version(f->store), v + 1);
        /* the same again: nothing */
        assert_int_equal(store_set_observed_endpoints(f->store,
                                                      (StoreObservation[]) { { ids[0], "203.0.113.5:6000" } },
                                                      1),
                         0);
        assert_int_equal(store_test_version(f->store), v + 1);
        /* roaming */
        assert_int_equal(store_set_observed_endpoints(f->store,
                                                      (StoreObservation[]) { { ids[0], "192.0.2.10:41641" } },
                                                      1),
                         1);
        assert_int_equal(store_test_version(f->store), v + 2);

        assert_int_equal(store_list_nodes(f->store, true, &list, &n_list), 0);
        assert_string_equal(list[0].observed_endpoint, "192.0.2.10:41641");
        assert_null(list[2].observed_endpoint);
        store_nodes_free(list, n_list);

        assert_int_equal(netmap_snapshot_load(f->store,
                                              &(NetmapHub) { .public_key = store_test_keys[4],
                                                             .endpoint = "192.0.2.1:41640" },
                                              &snap),
                         0);
        assert_int_equal(netmap_snapshot_render(snap, ids[2], &json, &len), 0);
        {
                _cleanup_(netmap_freep) Netmap *m = NULL;
                _cleanup_free_ char *error = NULL;

                assert_int_equal(netmap_parse(json, len, &m, &error), 0);
                assert_true(m->has_hub);
                assert_int_equal(strv_length(m->hub.endpoints), 1);
                assert_string_equal(m->hub.endpoints[0], "192.0.2.1:41640");
        }
        o = cJSON_Parse(json);
        assert_non_null(o);
        {
                cJSON *peers = cJSON_GetObjectItem(o, "peers"), *hub = cJSON_GetObjectItem(o, "hub");
                cJSON *e0 = cJSON_GetObjectItem(cJSON_GetArrayItem(peers, 0), "endpoints");
                cJSON *e1 = cJSON_GetObjectItem(cJSON_GetArrayItem(peers, 1), "endpoints");

                /* observed first, the same announced one not repeated */
                assert_int_equal(cJSON_GetArraySize(e0), 2);
                assert_string_equal(cJSON_GetArrayItem(e0, 0)->valuestring, "192.0.2.10:41641");
                assert_string_equal(cJSON_GetArrayItem(e0, 1)->valuestring, "10.0.0.5:41641");
                assert_int_equal(cJSON_GetArraySize(e1), 1);
                assert_string_equal(cJSON_GetArrayItem(e1, 0)->valuestring, "203.0.113.6:6001");

                assert_non_null(hub);
                assert_string_equal(cJSON_GetObjectItem(hub, "public_key")->valuestring, store_test_keys[4]);
                assert_string_equal(cJSON_GetObjectItem(hub, "ipv4")->valuestring, "100.64.0.1");
                assert_string_equal(cJSON_GetObjectItem(hub, "ipv6")->valuestring, "fd7a:115c:a1e0::1");
                assert_null(cJSON_GetObjectItem(hub, "name"));
        }
        cJSON_Delete(o);
        free(json);
        netmap_snapshot_free(snap);
}

static void test_hub_key_and_members(void **state) {
        Fixture *f = *state;
        uint64_t m0, m1;
        StoreNode n = {};
        int64_t id;

        assert_int_equal(store_get_members_version(f->store, &m0), 0);
        assert_int_equal(store_set_setting(f->store, "hub_public_key", store_test_keys[3]), 0);
        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        /* nobody may register with the hub's key */
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[3], "evil", NOW, &n), -EEXIST);
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[0], "nas", NOW, &n), 0);
        id = n.id;
        store_node_done(&n);
        assert_int_equal(store_get_members_version(f->store, &m1), 0);
        assert_true(m1 > m0);
        /* an endpoint change is no membership change */
        assert_int_equal(store_set_endpoints(f->store, id, (char *[]) { (char *) "192.0.2.3:1", NULL }), 1);
        assert_int_equal(store_get_members_version(f->store, &m0), 0);
        assert_int_equal(m0, m1);
        assert_int_equal(store_remove_node(f->store, "nas"), 0);
        assert_int_equal(store_get_members_version(f->store, &m0), 0);
        assert_true(m0 > m1);
}

/* PostgreSQL starts at the current schema, or upgrades one made at 7 (the
 * first it had): a newer one is refused, a database without one is no mesh
 * (init makes it). */
static void test_migrate_pg(Fixture *f) {
        Store *s = NULL;
        StoreNode n = {};

        store_free(f->store);
        f->store = NULL;
        assert_int_equal(store_open(f->path, true, &s), -EEXIST);
        store_test_pg_exec(f, "DROP INDEX nodes_name_any; DROP INDEX nodes_host_any;"
                              "UPDATE schema_version SET version = 7");
        assert_int_equal(store_open(f->path, false, &s), 0);
        assert_int_equal(store_test_register(s, "k", store_test_keys[3], "late", NOW, &n), 0);
        store_node_done(&n);
        s = store_free(s);
        store_test_pg_exec(f, "SELECT 'nodes_name_any'::regclass, 'nodes_host_any'::regclass");
        store_test_pg_exec(f, "DO $$ BEGIN IF (SELECT version FROM schema_version) <> 8 THEN "
                              "RAISE 'schema_version not 8'; END IF; END $$");
        store_test_pg_exec(f, "UPDATE schema_version SET version = 99");
        assert_int_equal(store_open(f->path, false, &s), -EPROTONOSUPPORT);
        store_test_pg_exec(f, "DROP TABLE schema_version");
        assert_int_equal(store_open(f->path, false, &s), -ENOMEDIUM);
        assert_null(s);
}

/* A database made before the hub (schema 1) is upgraded when opened. */
static void test_migrate_v1(void **state) {
        Fixture *f = *state;
        Store *s = NULL;
        sqlite3 *db = NULL;
        StoreNode n = {};
        uint64_t m;
        int64_t ids[3];

        register_three(f, ids);
        if (store_test_pg()) {
                test_migrate_pg(f);
                return;
        }
        store_free(f->store);
        f->store = NULL;

        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "DROP TABLE path_reports;"
                                      "DROP TABLE routes;"
                                      "DROP INDEX nodes_name_any;"
                                      "DROP INDEX nodes_host_any;"
                                      "ALTER TABLE nodes DROP COLUMN observed_endpoint;"
                                      "ALTER TABLE nodes DROP COLUMN expired;"
                                      "ALTER TABLE nodes DROP COLUMN cert_not_after;"
                                      "ALTER TABLE nodes DROP COLUMN kind;"
                                      "ALTER TABLE nodes DROP COLUMN expires;"
                                      "ALTER TABLE nodes DROP COLUMN tags;"
                                      "ALTER TABLE authkeys DROP COLUMN tags;"
                                      "DELETE FROM settings WHERE key = 'members';"
                                      "PRAGMA user_version = 1;",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);

        assert_int_equal(store_open(f->path, false, &s), 0);
        f->store = s;
        assert_int_equal(store_get_members_version(s, &m), 0);
        assert_int_equal(store_report_paths(s, ids[0], (StorePathReport[]) { { store_test_keys[1], false } }, 1,
                                            NOW),
                         1);
        assert_int_equal(
                store_set_observed_endpoints(s, (StoreObservation[]) { { ids[0], "203.0.113.5:6000" } }, 1), 1);
        assert_int_equal(store_authkey_add(s, "k2", false, 0), 0);
        assert_int_equal(store_test_register(s, "k2", store_test_keys[4], "late", NOW, &n), 0);
        store_node_done(&n);
        /* the old rows are nodes (schema_v5's default), not devices */
        {
                StoreNode *list = NULL;
                size_t n_list = 0;

                assert_int_equal(store_list_nodes(s, true, &list, &n_list), 0);
                assert_int_equal(n_list, 4);
                assert_false(list[0].device);
                store_nodes_free(list, n_list);
                assert_int_equal(store_list_devices(s, true, &list, &n_list), 0);
                assert_int_equal(n_list, 0);
                store_nodes_free(list, n_list);
        }
}

/* An expired node leaves the netmaps but keeps its name and addresses; its
 * key registering again renews the same node with the new token. */
static void test_expire(void **state) {
        Fixture *f = *state;
        _cleanup_(netmap_snapshot_freep) NetmapSnapshot *snap = NULL;
        StoreNode n = {}, again = {};
        int64_t ids[3];

        register_three(f, ids);
        assert_int_equal(store_expire_node(f->store, "nope"), -ENOENT);
        assert_int_equal(store_expire_node(f->store, "node-2"), 0);
        assert_int_equal(store_expire_node(f->store, "node-2"), -EALREADY);

        assert_int_equal(netmap_snapshot_load(f->store, NULL, &snap), 0);
        assert_true(netmap_snapshot_has_node(snap, ids[0]));
        assert_false(netmap_snapshot_has_node(snap, ids[1]));

        /* the name stays taken: a newcomer called node-2 gets another */
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[3], "node-2", NOW, &n), 0);
        assert_string_not_equal(n.name, "node-2");
        store_node_done(&n);

        {
                StoreNode *list = NULL;
                size_t n_list = 0, n_expired = 0;

                assert_int_equal(store_list_nodes(f->store, false, &list, &n_list), 0);
                assert_int_equal(n_list, 3);
                store_nodes_free(list, n_list);
                assert_int_equal(store_list_nodes(f->store, true, &list, &n_list), 0);
                assert_int_equal(n_list, 4);
                for (size_t i = 0; i < n_list; i++)
                        n_expired += list[i].expired;
                assert_int_equal(n_expired, 1);
                store_nodes_free(list, n_list);
        }

        assert_int_equal(store_test_register(f->store, "k", store_test_keys[1], "renamed", NOW, &again), 0);
        assert_int_equal(again.id, ids[1]);
        assert_string_equal(again.name, "node-2");
        assert_false(again.expired);
        store_node_done(&again);
        assert_int_equal(store_expire_node(f->store, "node-2"), 0);

        /* --expired-nodes=admin: the key holder cannot renew it alone */
        {
                _cleanup_free_ char *token = NULL;
                uint64_t v = store_test_version(f->store);

                assert_int_equal(store_secret_new(NULL, &token), 0);
                assert_int_equal(store_register_node(f->store,
                                                     &(StoreRegistration) {
                                                             .authkey = "k",
                                                             .public_key = store_test_keys[1],
                                                             .name = "node-2",
                                                             .token = token,
                                                             .expired_needs_admin = true,
                                                     },
                                                     NOW, &n),
                                 -ESTALE);
                assert_int_equal(store_test_version(f->store), v);
                assert_int_equal(store_node_by_token(f->store, token, &n), -ENOENT);
        }
        assert_int_equal(store_renew_node(f->store, "nope"), -ENOENT);
        assert_int_equal(store_renew_node(f->store, "node"), -EALREADY);
        assert_int_equal(store_renew_node(f->store, "node-2"), 0);
        assert_int_equal(store_renew_node(f->store, "node-2"), -EALREADY);
        netmap_snapshot_free(TAKE_PTR(snap));
        assert_int_equal(netmap_snapshot_load(f->store, NULL, &snap), 0);
        assert_true(netmap_snapshot_has_node(snap, ids[1]));
}

/* An active member's key joining again: the same node with a new token; the
 * old token is unknown from then on. */
static void test_rejoin_active(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *t1 = NULL, *t2 = NULL;
        StoreNode a = {}, b = {}, by = {};

        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        assert_int_equal(store_secret_new(NULL, &t1), 0);
        assert_int_equal(store_secret_new(NULL, &t2), 0);
        assert_int_equal(store_register_node(f->store,
                                             &(StoreRegistration) { .authkey = "k",
                                                                    .public_key = store_test_keys[0],
                                                                    .name = "nas",
                                                                    .token = t1 },
                                             NOW, &a),
                         0);
        assert_int_equal(store_register_node(f->store,
                                             &(StoreRegistration) { .authkey = "k",
                                                                    .public_key = store_test_keys[0],
                                                                    .name = "nas",
                                                                    .token = t2 },
                                             NOW, &b),
                         0);
        assert_int_equal(a.id, b.id);
        assert_string_equal(a.name, b.name);
        assert_string_equal(a.ipv4, b.ipv4);
        assert_string_equal(a.ipv6, b.ipv6);
        assert_int_equal(store_node_by_token(f->store, t1, &by), -ENOENT);
        assert_int_equal(store_node_by_token(f->store, t2, &by), 0);
        assert_int_equal(by.id, a.id);
        store_node_done(&a);
        store_node_done(&b);
        store_node_done(&by);
}

/* Reserved labels are never a node's name: they get a suffix. */
static void test_reserved_names(void **state) {
        Fixture *f = *state;
        static const char *const names[] = { "localhost", "wpad", "isatap", "hub" };
        StoreNode n = {};

        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char want[64];

                assert_int_equal(store_test_register(f->store, "k", store_test_keys[i], names[i], NOW, &n), 0);
                snprintf(want, sizeof(want), "%s-2", names[i]);
                assert_string_equal(n.name, want);
                store_node_done(&n);
        }
}

/* Hold-back: a removed node's name and addresses stay taken until its last
 * certificate expires, then they are free again. */
static void test_hold_back(void **state) {
        Fixture *f = *state;
        StoreNode n = {};
        StoreHeld *held = NULL;
        size_t n_held = 0;
        int64_t id;
        char ipv4[64];

        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[0], "svc", NOW, &n), 0);
        id = n.id;
        snprintf(ipv4, sizeof(ipv4), "%s", n.ipv4);
        store_node_done(&n);
        assert_int_equal(store_note_certificate(f->store, id, NOW + 100), 0);
        assert_int_equal(store_note_certificate(f->store, id, NOW + 50), 0); /* the latest counts */
        assert_int_equal(store_note_certificate(f->store, 9999, NOW + 50), -ENOENT);

        /* a node removed with no certificate frees its name at once */
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[1], "plain", NOW, &n), 0);
        store_node_done(&n);
        assert_int_equal(store_remove_node(f->store, "plain"), 0);
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[2], "plain", NOW, &n), 0);
        assert_string_equal(n.name, "plain");
        store_node_done(&n);

        assert_int_equal(store_remove_node(f->store, "svc"), 0);
        assert_int_equal(store_list_held(f->store, NOW, &held, &n_held), 0);
        assert_int_equal(n_held, 1);
        assert_string_equal(held[0].name, "svc");
        assert_int_equal(held[0].until, NOW + 100);
        store_held_free(held, n_held);

        /* before: the name and the address are held */
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[3], "svc", NOW + 99, &n), 0);
        assert_string_equal(n.name, "svc-2");
        assert_string_not_equal(n.ipv4, ipv4);
        store_node_done(&n);

        /* after: both free again (the address when the allocator comes round) */
        assert_int_equal(store_list_held(f->store, NOW + 100, &held, &n_held), 0);
        assert_int_equal(n_held, 0);
        store_held_free(held, n_held);
        assert_int_equal(store_test_register(f->store, "k", store_test_keys[4], "svc", NOW + 100, &n), 0);
        assert_string_equal(n.name, "svc");
        store_node_done(&n);
}

/* A damaged file is found when the store is checked, not request by request. */
static void test_integrity(void **state) {
        Fixture *f = *state;
        StoreNode n = {};
        Store *s = NULL;
        char junk[4096];
        FILE *fp;

        assert_int_equal(store_check_integrity(f->store), 0);
        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        for (size_t i = 0; i < ELEMENTSOF(store_test_keys); i++) {
                assert_int_equal(store_test_register(f->store, "k", store_test_keys[i], "n", NOW, &n), 0);
                store_node_done(&n);
        }
        if (store_test_pg())
                return; /* the server looks after its pages */
        store_free(f->store);
        f->store = NULL;

        /* page 3 onwards (the header and schema on page 1 stay intact) */
        memset(junk, 0x5a, sizeof(junk));
        fp = fopen(f->path, "r+");
        assert_non_null(fp);
        assert_int_equal(fseek(fp, 2 * 4096, SEEK_SET), 0);
        assert_int_equal(fwrite(junk, 1, sizeof(junk), fp), sizeof(junk));
        assert_int_equal(fwrite(junk, 1, sizeof(junk), fp), sizeof(junk));
        fclose(fp);

        if (store_open(f->path, false, &s) < 0)
                return; /* refused already: as good */
        f->store = s;
        assert_int_equal(store_check_integrity(s), -EBADMSG);
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
                cmocka_unit_test_setup_teardown(test_mesh_self, setup, teardown),
                cmocka_unit_test(test_endpoints_compose),
                cmocka_unit_test_setup_teardown(test_path_reports, setup, teardown),
                cmocka_unit_test_setup_teardown(test_observed_endpoints, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hub_key_and_members, setup, teardown),
                cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rejoin_active, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reserved_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hold_back, setup, teardown),
                cmocka_unit_test_setup_teardown(test_integrity, setup, teardown),
                cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
                cmocka_unit_test(test_bad_url),
                cmocka_unit_test_setup_teardown(test_setting_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
        };

        log_setup("test-store", LOG_TARGET_CONSOLE);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
