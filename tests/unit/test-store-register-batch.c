/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* store_register_batch(): the group commit of registrations keeps every
 * guarantee of store_register_node() (unique names and addresses, auth key
 * use counts, re-join of a member's key, the -errno contract), one
 * registration's refusal undoes only itself, and the versions move once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "store.h"
#include "test-store-util.h"

#define NOW 1700000000

typedef StoreFixture Fixture;

static int setup(void **state) {
        *state = store_fixture_new("test-store-register-batch", "100.64.0.0/10");
        return 0;
}

static int teardown(void **state) {
        store_fixture_free(*state);
        return 0;
}

static StoreRegistration reg(const char *authkey, int key, const char *name, const char *token) {
        return (StoreRegistration) {
                .authkey = authkey,
                .public_key = store_test_keys[key],
                .name = name,
                .token = token,
        };
}

static void test_batch(void **state) {
        Fixture *f = *state;
        StoreNode nodes[6] = {};
        int results[6];
        uint64_t before, members;
        StoreNode n = {};

        assert_int_equal(store_authkey_add(f->store, "mskey-many", true, 0), 0);
        assert_int_equal(store_authkey_add(f->store, "mskey-once", false, 0), 0);
        assert_int_equal(store_set_setting(f->store, "hub_public_key", store_test_keys[5]), 0);
        before = store_test_version(f->store);

        StoreRegistration regs[6] = {
                reg("mskey-many", 0, "web", "token-0"),
                reg("mskey-unknown", 1, "web", "token-1"), /* refused, undone alone */
                reg("mskey-once", 1, "web", "token-2"),
                reg("mskey-once", 2, "db", "token-3"),    /* single use: taken by the one before */
                reg("mskey-many", 5, "hub", "token-4"),   /* the hub's key */
                reg("mskey-many", 0, "again", "token-5"), /* the first one's key: re-joins */
        };
        assert_int_equal(store_register_batch(f->store, regs, ELEMENTSOF(regs), NOW, nodes, results), 0);
        assert_int_equal(results[0], 0);
        assert_int_equal(results[1], -ENOKEY);
        assert_int_equal(results[2], 0);
        assert_int_equal(results[3], -EKEYREJECTED);
        assert_int_equal(results[4], -EEXIST);
        assert_int_equal(results[5], 0);

        /* unique names and addresses inside one transaction */
        assert_string_equal(nodes[0].name, "web");
        assert_string_equal(nodes[2].name, "web-2");
        assert_string_not_equal(nodes[0].ipv4, nodes[2].ipv4);
        assert_string_not_equal(nodes[0].ipv6, nodes[2].ipv6);
        /* the re-join keeps id, name and addresses; the old token stops working */
        assert_int_equal(nodes[5].id, nodes[0].id);
        assert_string_equal(nodes[5].name, "web");
        assert_string_equal(nodes[5].ipv4, nodes[0].ipv4);
        assert_int_equal(store_node_by_token(f->store, "token-0", &n), -ENOENT);
        assert_int_equal(store_node_by_token(f->store, "token-5", &n), 0);
        assert_int_equal(n.id, nodes[0].id);
        store_node_done(&n);
        assert_int_equal(store_node_by_token(f->store, "token-2", &n), 0);
        store_node_done(&n);
        assert_int_equal(store_node_by_token(f->store, "token-1", &n), -ENOENT);

        /* one version for the whole batch; two members more */
        assert_int_equal(store_test_version(f->store), before + 1);
        assert_int_equal(store_get_members_version(f->store, &members), 0);
        assert_true(members >= 2);

        /* the single-use key counted its use */
        assert_int_equal(store_test_register(f->store, "mskey-once", store_test_keys[3], "c", NOW, &n),
                         -EKEYREJECTED);
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++)
                if (results[i] >= 0)
                        store_node_done(&nodes[i]);
}

static void test_batch_all_refused(void **state) {
        Fixture *f = *state;
        StoreNode nodes[2] = {};
        int results[2];
        uint64_t before = store_test_version(f->store);
        StoreRegistration regs[2] = {
                reg("mskey-nope", 0, "a", "token-a"),
                reg("mskey-nope", 1, "b", "token-b"),
        };

        assert_int_equal(store_register_batch(f->store, regs, 2, NOW, nodes, results), 0);
        assert_int_equal(results[0], -ENOKEY);
        assert_int_equal(results[1], -ENOKEY);
        /* nothing changed: no bump */
        assert_int_equal(store_test_version(f->store), before);
        assert_int_equal(store_register_batch(f->store, regs, 0, NOW, nodes, results), 0);
}

/* More new members than one INSERT takes, names that collide with rows
 * not inserted yet ("x" and its suffixes, "x-2" as a name of its own) and
 * a member of the database: every name and host unique, each node's row
 * the one reported. */
#define MANY 150

static void test_batch_many(void **state) {
        Fixture *f = *state;
        static StoreNode nodes[MANY];
        static int results[MANY];
        static char keys[MANY][48], tokens[MANY][24];
        StoreRegistration regs[MANY];
        StoreNode n = {};

        assert_int_equal(store_authkey_add(f->store, "mskey-many", true, 0), 0);
        assert_int_equal(store_test_register(f->store, "mskey-many", store_test_keys[0], "x", NOW, &n), 0);
        store_node_done(&n);
        for (size_t i = 0; i < MANY; i++) {
                snprintf(keys[i], sizeof(keys[i]), "key-%03zu", i);
                snprintf(tokens[i], sizeof(tokens[i]), "token-%03zu", i);
                regs[i] = (StoreRegistration) {
                        .authkey = "mskey-many",
                        .public_key = keys[i],
                        .name = i % 10 == 0   ? "x"
                                : i % 10 == 1 ? "x-2"
                                              : "y",
                        .token = tokens[i],
                };
        }
        assert_int_equal(store_register_batch(f->store, regs, MANY, NOW, nodes, results), 0);

        for (size_t i = 0; i < MANY; i++) {
                assert_int_equal(results[i], 0);
                assert_true(nodes[i].id > 0);
                assert_string_equal(nodes[i].public_key, keys[i]);
                for (size_t j = 0; j < i; j++) {
                        assert_string_not_equal(nodes[i].name, nodes[j].name);
                        assert_string_not_equal(nodes[i].ipv4, nodes[j].ipv4);
                        assert_int_not_equal(nodes[i].id, nodes[j].id);
                }
                assert_string_not_equal(nodes[i].name, "x"); /* the member's */
                assert_int_equal(store_node_by_token(f->store, tokens[i], &n), 0);
                assert_int_equal(n.id, nodes[i].id);
                assert_string_equal(n.name, nodes[i].name);
                assert_string_equal(n.ipv4, nodes[i].ipv4);
                store_node_done(&n);
        }
        for (size_t i = 0; i < MANY; i++)
                store_node_done(&nodes[i]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_batch_all_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_batch_many, setup, teardown),
        };

        log_setup("test-store-register-batch", LOG_TARGET_CONSOLE);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
