/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A fresh control database for the store's unit tests (test-store*.c):
 * a temporary directory, the database opened and initialised with the
 * given IPv4 range. Asserts (cmocka) instead of returning errors.
 *
 * With $MESHD_TEST_PG_HOST set (tests/pg/pgserver.py run -- …, the
 * *-pg tests of meson), the database is a fresh PostgreSQL database on
 * that server instead, dropped at the end: path is its URL. */

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

typedef struct StoreFixture {
        char *dir;
        char path[512];   /* the file, or the postgresql:// URL */
        char pg_name[40]; /* the PostgreSQL database, "" for SQLite */
        Store *store;
} StoreFixture;

/* Distinct valid-looking keys; the store does not decode them. */
extern const char *const store_test_keys[6];

StoreFixture *store_fixture_new(const char *prefix, const char *ipv4_range);
void store_fixture_free(StoreFixture *f);
/* Whether the fixtures use PostgreSQL. */
bool store_test_pg(void);
/* Runs sql on the fixture's PostgreSQL database, outside the store. */
void store_test_pg_exec(StoreFixture *f, const char *sql);

uint64_t store_test_version(Store *s);

/* Registers name with key through auth key authkey, with a fresh token. */
int store_test_register(Store *s, const char *authkey, const char *key, const char *name, int64_t now,
                        StoreNode *ret);
