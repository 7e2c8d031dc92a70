/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The store itself: opening the database (db.h: an SQLite file or a
 * PostgreSQL server; store-schema.c migrates it), settings, the versions
 * that tell readers what changed and the wake-up that says so at once, and
 * the helpers that every store-*.c shares (store-private.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store-private.h"

int store_exec(Store *s, const char *sql) {
        return db_exec(s->db, sql);
}

int store_prepare(Store *s, const char *sql, DbStmt **ret) {
        return db_prepare(s->db, sql, ret);
}

/* Steps a statement; returns 1 for a row, 0 when done. */
int store_step(Store *s, DbStmt *stmt) {
        return db_step(stmt);
}

int store_begin(Store *s, bool write) {
        return db_begin(s->db, write);
}

void store_rollbackp(Store **tx) {
        if (*tx)
                db_rollback((*tx)->db);
}

int store_commit(Store **tx) {
        int r = db_commit((*tx)->db);
        if (r < 0)
                return r;
        *tx = NULL;
        return 0;
}

int store_open(const char *path, bool create, Store **ret) {
        _cleanup_(store_freep) Store *s = NULL;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return log_oom();
        r = db_open(path, create, &s->db);
        if (r < 0)
                return r;
        s->path = db_name(s->db);

        r = store_migrate(s, create);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        db_free(s->db);
        free(s);
        return NULL;
}

bool store_is_available(Store *s) {
        return db_is_available(s->db);
}

int store_set_setting(Store *s, const char *key, const char *value) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(s,
                          "INSERT INTO settings (key, value) VALUES (?1, ?2) "
                          "ON CONFLICT (key) DO UPDATE SET value = ?2",
                          &stmt);
        if (r < 0)
                return r;
        db_bind_text(stmt, 1, key);
        db_bind_text(stmt, 2, value);
        r = store_step(s, stmt);
        return r < 0 ? r : 0;
}

int store_set_setting_once(Store *s, const char *key, const char *value) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        /* one statement is one transaction: the first writer wins, every
         * later one learns that the key is set */
        r = store_prepare(s,
                          "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING "
                          "RETURNING key",
                          &stmt);
        if (r < 0)
                return r;
        db_bind_text(stmt, 1, key);
        db_bind_text(stmt, 2, value);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        return r > 0 ? 0 : -EEXIST;
}

int store_init_settings(Store *s, const char *url, const char *domain, const char *ipv4_range,
                        const char *ipv6_range) {
        const char *const pairs[][2] = {
                { "url", url },
                { "domain", domain },
                { "ipv4_range", ipv4_range },
                { "ipv6_range", ipv6_range },
        };
        int r;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;
        for (size_t i = 0; i < ELEMENTSOF(pairs); i++) {
                r = store_set_setting(s, pairs[i][0], pairs[i][1]);
                if (r < 0)
                        return r;
        }
        return store_commit(&tx);
}

int store_get_setting(Store *s, const char *key, char **ret) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        const char *v;
        int r;

        r = store_prepare(s, "SELECT value FROM settings WHERE key = ?1", &stmt);
        if (r < 0)
                return r;
        db_bind_text(stmt, 1, key);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        v = db_column_text(stmt, 0);
        if (!v)
                return -ENOENT;
        *ret = strdup(v);
        return *ret ? 0 : log_oom();
}

int store_get_int_setting(Store *s, const char *key, int64_t *ret) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(s, "SELECT value FROM settings WHERE key = ?1", &stmt);
        if (r < 0)
                return r;
        db_bind_text(stmt, 1, key);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return log_error_errno(-EBADMSG, "%s: setting '%s' missing.", s->path, key);
        *ret = db_column_int64(stmt, 0);
        return 0;
}

int store_get_version(Store *s, uint64_t *ret) {
        int64_t v = 0;
        int r;

        r = store_get_int_setting(s, "version", &v);
        if (r < 0)
                return r;
        *ret = (uint64_t) v;
        return 0;
}

/* SQLite: PRAGMA data_version, one cheap read that changes when another
 * connection (meshd-control nodes remove, …) committed. PostgreSQL has no
 * such counter: the two counters every change moves (our own commits too,
 * which only costs a spurious look). */
int store_watch_init(Store *s, StoreWatch *ret) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        bool pg = db_backend(s->db) == DB_POSTGRES;
        int r;

        r = store_prepare(s,
                          pg ? "SELECT (SELECT value FROM settings WHERE key = 'version'), "
                               "(SELECT value FROM settings WHERE key = 'members')"
                             : "PRAGMA data_version",
                          &stmt);
        if (r < 0)
                return r;
        r = store_step(s, stmt);
        if (r <= 0)
                return r < 0 ? r : -EIO;
        *ret = (StoreWatch) {
                .seen = db_column_int64(stmt, 0),
                .seen_members = pg ? db_column_int64(stmt, 1) : 0,
        };
        return 0;
}

int store_changed(Store *s, StoreWatch *w) {
        StoreWatch now;
        int r;

        r = store_watch_init(s, &now);
        if (r < 0)
                return r;
        if (now.seen == w->seen && now.seen_members == w->seen_members)
                return 0;
        *w = now;
        return 1;
}

int store_notify_fd(Store *s) {
        return db_listen_fd(s->db, STORE_CHANNEL);
}

int store_notify_drain(Store *s) {
        return db_listen_drain(s->db);
}

/* Inside a write transaction: every change goes with exactly one bump.
 * CAST: PostgreSQL keeps settings as text; SQLite's stays an integer. On
 * PostgreSQL the notification goes out with the commit, never before. */
int store_bump_version(Store *s) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(s, "UPDATE settings SET value = CAST(value AS BIGINT) + 1 WHERE key = 'version'",
                          &stmt);
        if (r < 0)
                return r;
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (db_backend(s->db) == DB_POSTGRES)
                return store_exec(s, "SELECT pg_notify('" STORE_CHANNEL "', '')");
        return 0;
}

/* With a node registered or removed, next to store_bump_version(). */
int store_bump_members(Store *s) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(s, "UPDATE settings SET value = CAST(value AS BIGINT) + 1 WHERE key = 'members'",
                          &stmt);
        if (r < 0)
                return r;
        r = store_step(s, stmt);
        return r < 0 ? r : 0;
}

int store_get_members_version(Store *s, uint64_t *ret) {
        int64_t v = 0;
        int r;

        r = store_get_int_setting(s, "members", &v);
        if (r < 0)
                return r;
        *ret = (uint64_t) v;
        return 0;
}

/* One statement whose only parameter ?1 is an id, run to its end. */
int store_exec_id(Store *s, const char *sql, int64_t id) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        db_bind_int64(stmt, 1, id);
        r = store_step(s, stmt);
        return r < 0 ? r : 0;
}

/* The same with ?2 the time now (epoch seconds). */
int store_exec_id_now(Store *s, const char *sql, int64_t id) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        db_bind_int64(stmt, 1, id);
        db_bind_int64(stmt, 2, (int64_t) time(NULL));
        r = store_step(s, stmt);
        return r < 0 ? r : 0;
}

int store_exists(Store *s, const char *sql, const char *text, int64_t number) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        if (text)
                db_bind_text(stmt, 1, text);
        else
                db_bind_int64(stmt, 1, number);
        return store_step(s, stmt);
}

int store_check_integrity(Store *s) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        bool pg = db_backend(s->db) == DB_POSTGRES;
        const char *v;
        int r;

        /* quick_check reads every page (not the index/table cross-checks of
         * integrity_check): seconds for a large mesh, once per start. The
         * PostgreSQL server looks after its own pages: a round trip shows
         * that it answers. */
        r = store_prepare(s, pg ? "SELECT 'ok'" : "PRAGMA quick_check(1)", &stmt);
        if (r < 0)
                return r;
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        v = r > 0 ? db_column_text(stmt, 0) : NULL;
        if (!v || !streq(v, "ok"))
                return log_error_errno(-EBADMSG, "%s: database is damaged (%s); restore it from a backup.",
                                       s->path, v ?: "no answer to quick_check");
        return 0;
}
