/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include <inttypes.h>
#include <libpq-fe.h>
#include <string.h>
#include <sys/random.h>

#include "macro.h"
#include "test-store-util.h"
#include "test-util.h"

const char *const store_test_keys[6] = {
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAM=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAU=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAY=",
};

bool store_test_pg(void) {
        const char *h = getenv("MESHD_TEST_PG_HOST");
        return h && *h;
}

static void pg_admin(const char *dbname, const char *sql) {
        char conninfo[512];
        PGconn *c;
        PGresult *res;

        snprintf(conninfo, sizeof(conninfo), "postgresql:///%s?host=%s&user=%s", dbname,
                 getenv("MESHD_TEST_PG_HOST"), getenv("MESHD_TEST_PG_USER") ?: "postgres");
        c = PQconnectdb(conninfo);
        if (PQstatus(c) != CONNECTION_OK)
                fail_msg("%s: %s", conninfo, PQerrorMessage(c));
        res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
                fail_msg("%s: %s", sql, PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(c);
}

void store_test_pg_exec(StoreFixture *f, const char *sql) {
        assert_true(f->pg_name[0] != 0);
        pg_admin(f->pg_name, sql);
}

StoreFixture *store_fixture_new(const char *prefix, const char *ipv4_range) {
        StoreFixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        f->dir = test_tmpdir_new(prefix);
        if (store_test_pg()) {
                uint64_t id;
                char sql[80];

                /* each test case its own database: nothing carries over */
                assert_int_equal(getrandom(&id, sizeof(id), 0), (ssize_t) sizeof(id));
                snprintf(f->pg_name, sizeof(f->pg_name), "t_%016" PRIx64, id);
                snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->pg_name);
                pg_admin("postgres", sql);
                snprintf(f->path, sizeof(f->path), "postgresql:///%s?host=%s&user=%s", f->pg_name,
                         getenv("MESHD_TEST_PG_HOST"), getenv("MESHD_TEST_PG_USER") ?: "postgres");
        } else
                snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, STORE_DB_FILE);
        assert_int_equal(store_open(f->path, true, &f->store), 0);
        assert_int_equal(store_init_settings(f->store, "https://127.0.0.1:8443", "mesh.internal", ipv4_range,
                                             "fd7a:115c:a1e0::/48"),
                         0);
        return f;
}

void store_fixture_free(StoreFixture *f) {
        if (!f)
                return;
        store_free(f->store);
        if (f->pg_name[0] != 0) {
                char sql[80];

                snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", f->pg_name);
                pg_admin("postgres", sql);
        }
        test_tmpdir_free(f->dir);
        free(f);
}

uint64_t store_test_version(Store *s) {
        uint64_t v = 0;

        assert_int_equal(store_get_version(s, &v), 0);
        return v;
}

int store_test_register(Store *s, const char *authkey, const char *key, const char *name, int64_t now,
                        StoreNode *ret) {
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
