/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd-control migrate's copy (store-migrate.c): an SQLite mesh into an
 * empty PostgreSQL database. The refusals of a bad source run everywhere
 * (the source is checked before the server is reached); the copy itself
 * runs as test-store-migrate-pg, against tests/pg/pgserver.py's server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "macro.h"
#include "store.h"
#include "test-store-util.h"
#include "test-util.h"

#define NOW 1700000000
/* never reached: every source below is refused first */
#define NO_SERVER "postgresql:///nowhere?host=/nonexistent-meshd-test"

/* An SQLite mesh in dir: three nodes joined with one key, one removed. */
static char *sqlite_mesh(const char *dir, uint64_t *ret_version) {
        _cleanup_(store_freep) Store *s = NULL;
        char *path = test_path(dir, "control.db");
        static const char *const names[] = { "alpha", "bravo", "charlie" };

        assert_int_equal(store_open(path, true, &s), 0);
        assert_int_equal(store_init_settings(s, "https://127.0.0.1:8443", "mesh.internal", "100.64.0.0/10",
                                             "fd7a:115c:a1e0::/48"),
                         0);
        assert_int_equal(store_set_setting(s, "tls_pem", "-----BEGIN PRIVATE KEY-----\nx\n"), 0);
        assert_int_equal(store_authkey_add(s, "k", true, 0), 0);
        assert_int_equal(store_authkey_add(s, "left", false, 0), 0);
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                StoreNode n = {};

                assert_int_equal(store_test_register(s, "k", store_test_keys[i], names[i], NOW, &n), 0);
                assert_int_equal(n.id, (int64_t) i + 1);
                store_node_done(&n);
        }
        assert_int_equal(store_remove_node(s, "charlie"), 0);
        *ret_version = store_test_version(s);
        return path;
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

static void sqlite_exec(const char *path, const char *sql) {
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_bad_source(void **state) {
        _cleanup_(test_tmpdir_freep) char *dir = test_tmpdir_new("test-store-migrate");
        _cleanup_free_ char *missing = test_path(dir, "missing.db"), *garbage = test_path(dir, "garbage.db"),
                            *other = test_path(dir, "other.db"), *mesh = NULL;
        StoreCopyCounts c = {};
        uint64_t version;

        (void) state;
        assert_int_equal(store_copy_to_postgresql(missing, NO_SERVER, &c), -ENOENT);
        write_file(garbage, "this is not an SQLite database, not even its header\n");
        assert_int_equal(store_copy_to_postgresql(garbage, NO_SERVER, &c), -EBADMSG);
        sqlite_exec(other, "CREATE TABLE t (x)"); /* some other program's database */
        assert_int_equal(store_copy_to_postgresql(other, NO_SERVER, &c), -EBADMSG);

        mesh = sqlite_mesh(dir, &version);
        sqlite_exec(mesh, "PRAGMA user_version = 99");
        assert_int_equal(store_copy_to_postgresql(mesh, NO_SERVER, &c), -EPROTONOSUPPORT);
        sqlite_exec(mesh, "PRAGMA user_version = 7");
        assert_int_equal(store_copy_to_postgresql(mesh, NO_SERVER, &c), -EPROTONOSUPPORT);
        /* a good source: now the server is the problem */
        sqlite_exec(mesh, "PRAGMA user_version = 8");
        assert_true(store_copy_to_postgresql(mesh, NO_SERVER, &c) < 0);
}

static void copy_into_postgresql(void) {
        _cleanup_(test_tmpdir_freep) char *dir = test_tmpdir_new("test-store-migrate");
        _cleanup_free_ char *mesh = NULL, *tls = NULL;
        _cleanup_(store_freep) Store *s = NULL;
        StoreFixture *target;
        StoreCopyCounts c = {};
        StoreNode n = {};
        uint64_t version;

        mesh = sqlite_mesh(dir, &version);

        /* a database with a mesh: refused, and left as it was */
        target = store_fixture_new("test-store-migrate", "10.0.0.0/8");
        assert_int_equal(store_copy_to_postgresql(mesh, target->path, &c), -EEXIST);
        assert_int_equal(store_test_version(target->store), 1);
        /* emptied: a copy that fails half-way (a value SQLite took and
         * PostgreSQL refuses, in the last node) leaves it empty */
        assert_int_equal(store_destroy(target->store), 0);
        sqlite_exec(mesh, "UPDATE nodes SET created = 'yesterday' WHERE name = 'charlie'");
        assert_true(store_copy_to_postgresql(mesh, target->path, &c) < 0);
        assert_int_equal(store_open(target->path, false, &s), -ENOMEDIUM);
        sqlite_exec(mesh, "UPDATE nodes SET created = 1700000000 WHERE name = 'charlie'");
        /* the copy goes in */
        assert_int_equal(store_copy_to_postgresql(mesh, target->path, &c), 0);
        assert_int_equal(c.nodes, 3);
        assert_int_equal(c.authkeys, 2);
        assert_int_equal(c.version, (int64_t) version);
        assert_true(c.settings >= 8);

        assert_int_equal(store_open(target->path, false, &s), 0);
        assert_int_equal(store_test_version(s), version);
        assert_int_equal(store_get_setting(s, "tls_pem", &tls), 0);
        assert_string_equal(tls, "-----BEGIN PRIVATE KEY-----\nx\n");
        /* the ids go on after the copied ones; the single-use key left over joins once */
        assert_int_equal(store_test_register(s, "left", store_test_keys[3], "delta", NOW, &n), 0);
        assert_int_equal(n.id, 4);
        store_node_done(&n);
        assert_int_equal(store_test_register(s, "left", store_test_keys[4], "echo", NOW, &n), -EKEYREJECTED);
        /* bravo kept its name: a new node asking for it gets another */
        assert_int_equal(store_test_register(s, "k", store_test_keys[5], "bravo", NOW, &n), 0);
        assert_string_not_equal(n.name, "bravo");
        store_node_done(&n);

        /* the target holds a mesh now: a second copy is refused */
        assert_int_equal(store_copy_to_postgresql(mesh, target->path, &c), -EEXIST);
        s = store_free(s);
        store_fixture_free(target);
}

static void test_copy(void **state) {
        (void) state;
        /* before anything is allocated: skip() jumps past every cleanup */
        if (!store_test_pg())
                skip(); /* test-store-migrate-pg runs it */
        copy_into_postgresql();
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bad_source),
                cmocka_unit_test(test_copy),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
