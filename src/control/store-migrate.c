/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd-control migrate's copy: an SQLite mesh into an empty PostgreSQL
 * database, row by row with the same ids, in one PostgreSQL transaction.
 * The source is read through SQLite itself, opened read-only and in one
 * read transaction (one snapshot), never through store_open(), which
 * would upgrade an older schema in place: the source is never written. */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store-private.h"

typedef struct CopyTable {
        const char *name;
        const char *columns;
        int n_columns;
        bool as_text;        /* SQLite keeps numbers in settings as numbers, PostgreSQL's column is TEXT */
        size_t count_offset; /* into StoreCopyCounts */
} CopyTable;

/* In the order the foreign keys need: authkeys before nodes before path reports. */
static const CopyTable copy_tables[] = {
        { "settings", "key, value", 2, true, offsetof(StoreCopyCounts, settings) },
        { "authkeys", "id, hash, reusable, expires, used, created, tags", 7, false,
          offsetof(StoreCopyCounts, authkeys) },
        { "nodes",
          "id, name, public_key, host, ipv4, ipv6, token_hash, endpoints, authkey_id, created, removed, "
          "observed_endpoint, expired, cert_not_after, kind, expires, tags",
          17, false, offsetof(StoreCopyCounts, nodes) },
        { "path_reports", "reporter_id, peer_id, direct, updated", 4, false,
          offsetof(StoreCopyCounts, path_reports) },
        { "routes", "node_id, prefix, state, advertised", 4, false, offsetof(StoreCopyCounts, routes) },
};

static void sqlite_closep(sqlite3 **db) {
        if (*db)
                (void) sqlite3_close_v2(*db);
}

static void sqlite_finalizep(sqlite3_stmt **stmt) {
        if (*stmt)
                (void) sqlite3_finalize(*stmt);
}

typedef struct Source {
        sqlite3 *db;
        const char *path;
} Source;

/* Whatever SQLite says about the source makes it unusable: one line. */
static int source_error(const Source *src, const char *what) {
        return log_error_errno(-EBADMSG, "%s: damaged, or not a meshd-control database (%s: %s).", src->path,
                               what, sqlite3_errmsg(src->db));
}

/* The first column of sql's first row as an integer; 0 without a row. */
static int source_int(const Source *src, const char *sql, int64_t *ret) {
        _cleanup_(sqlite_finalizep) sqlite3_stmt *stmt = NULL;
        int rc;

        if (sqlite3_prepare_v2(src->db, sql, -1, &stmt, NULL) != SQLITE_OK)
                return source_error(src, sql);
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return source_error(src, sql);
        *ret = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
        return 0;
}

static int source_open(const char *path, Source *ret) {
        _cleanup_(sqlite_closep) sqlite3 *db = NULL;

        if (access(path, R_OK) < 0)
                return log_error_errno(-errno, "%s: cannot read the SQLite database: %m", path);
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
                return log_error_errno(-EBADMSG, "%s: cannot open the SQLite database: %s", path,
                                       db ? sqlite3_errmsg(db) : "out of memory");
        *ret = (Source) { .db = TAKE_PTR(db), .path = path };
        return 0;
}

/* The schema must be this program's (an older one is upgraded by any verb
 * on it first; we never write the source), the file intact, and every
 * reference in it resolved. Inside the source's read transaction. */
static int source_check(const Source *src) {
        _cleanup_(sqlite_finalizep) sqlite3_stmt *stmt = NULL;
        int64_t version, broken;
        int r;

        r = source_int(src, "PRAGMA user_version", &version);
        if (r < 0)
                return r;
        if (version == 0)
                return log_error_errno(-EBADMSG, "%s: holds no meshd-control mesh (no schema).", src->path);
        if (version != store_schema_version())
                return log_error_errno(-EPROTONOSUPPORT,
                                       "%s: database schema %" PRIi64 ", this program migrates schema %i%s.",
                                       src->path, version, store_schema_version(),
                                       version < store_schema_version()
                                               ? " (run 'meshd-control nodes list' on it once to upgrade it)"
                                               : "");

        if (sqlite3_prepare_v2(src->db, "PRAGMA integrity_check(1)", -1, &stmt, NULL) != SQLITE_OK ||
            sqlite3_step(stmt) != SQLITE_ROW)
                return source_error(src, "integrity check");
        if (!streq_ptr((const char *) sqlite3_column_text(stmt, 0), "ok")) {
                /* SQLite's report spans lines: one for the terminal */
                _cleanup_free_ char *m = strdup(strna((const char *) sqlite3_column_text(stmt, 0)));
                for (char *p = m; p && *p; p++)
                        if (*p == '\n')
                                *p = ' ';
                return log_error_errno(-EBADMSG, "%s: damaged: %s", src->path, strna(m));
        }

        r = source_int(src, "SELECT COUNT(*) FROM pragma_foreign_key_check", &broken);
        if (r < 0)
                return r;
        if (broken > 0)
                return log_error_errno(-EBADMSG, "%s: damaged: %" PRIi64 " rows refer to rows that are gone.",
                                       src->path, broken);
        return 0;
}

static int target_open(const char *url, Store **ret) {
        _cleanup_(store_freep) Store *s = NULL;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return log_oom();
        /* not store_open(): that would create the schema in a transaction of its own */
        r = db_open(url, false, &s->db);
        if (r < 0)
                return r;
        s->path = db_name(s->db);
        *ret = TAKE_PTR(s);
        return 0;
}

/* Inside the write transaction: no table of a mesh may be there. */
static int target_check_empty(Store *s) {
        static const char *const names[] = {
                "schema_version", "settings", "authkeys", "nodes", "path_reports", "routes",
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                int r = store_exists(s, "SELECT 1 WHERE to_regclass(?1) IS NOT NULL", names[i], 0);
                if (r < 0)
                        return r;
                if (r > 0)
                        return log_error_errno(-EEXIST,
                                               "%s: holds a mesh already (table '%s'); migrate copies only "
                                               "into an empty database.",
                                               s->path, names[i]);
        }
        return 0;
}

static int bind_value(DbStmt *stmt, int i, sqlite3_stmt *row, bool as_text) {
        int type = sqlite3_column_type(row, i - 1);

        if (type == SQLITE_NULL)
                return db_bind_null(stmt, i);
        if (as_text || type == SQLITE_TEXT || type == SQLITE_FLOAT)
                return db_bind_text(stmt, i, (const char *) sqlite3_column_text(row, i - 1));
        if (type == SQLITE_INTEGER)
                return db_bind_int64(stmt, i, sqlite3_column_int64(row, i - 1));
        const void *blob = sqlite3_column_blob(row, i - 1);
        return db_bind_blob(stmt, i, blob ?: "", (size_t) sqlite3_column_bytes(row, i - 1));
}

static int copy_insert_sql(const CopyTable *t, char **ret) {
        char values[256] = "", *p = values;

        for (int i = 1; i <= t->n_columns; i++)
                p += snprintf(p, sizeof(values) - (size_t) (p - values), "%s?%i", i > 1 ? ", " : "", i);
        return asprintf(ret, "INSERT INTO %s (%s) VALUES (%s)", t->name, t->columns, values) < 0 ? log_oom()
                                                                                                 : 0;
}

static int copy_table(const Source *src, Store *s, const CopyTable *t, int64_t *ret_n) {
        _cleanup_(sqlite_finalizep) sqlite3_stmt *row = NULL;
        _cleanup_(db_stmt_freep) DbStmt *insert = NULL;
        _cleanup_free_ char *select = NULL, *sql = NULL;
        int64_t n = 0;
        int r, rc;

        if (asprintf(&select, "SELECT %s FROM %s ORDER BY 1", t->columns, t->name) < 0)
                return log_oom();
        r = copy_insert_sql(t, &sql);
        if (r < 0)
                return r;
        if (sqlite3_prepare_v2(src->db, select, -1, &row, NULL) != SQLITE_OK)
                return source_error(src, t->name);
        r = store_prepare(s, sql, &insert);
        if (r < 0)
                return r;

        while ((rc = sqlite3_step(row)) == SQLITE_ROW) {
                db_reset(insert);
                for (int i = 1; i <= t->n_columns; i++) {
                        r = bind_value(insert, i, row, t->as_text);
                        if (r < 0)
                                return r;
                }
                r = store_step(s, insert);
                if (r == -EEXIST)
                        return log_error_errno(-EBADMSG,
                                               "%s: a row of '%s' breaks a constraint of the mesh's schema "
                                               "(damaged source?).",
                                               src->path, t->name);
                if (r < 0)
                        return r;
                n++;
        }
        if (rc != SQLITE_DONE)
                return source_error(src, t->name);
        *ret_n = n;
        return 0;
}

/* The identity of table.id hands out ids after every id SQLite ever gave
 * (its sqlite_sequence: a node id is never reused, not even a deleted
 * row's). */
static int move_identity(const Source *src, Store *s, const char *table) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        _cleanup_free_ char *sql = NULL;
        int64_t last;
        int r;

        if (asprintf(&sql,
                     "SELECT MAX(COALESCE((SELECT MAX(id) FROM %1$s), 0), "
                     "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '%1$s'), 0))",
                     table) < 0)
                return log_oom();
        r = source_int(src, sql, &last);
        if (r < 0)
                return r;
        r = store_prepare(s, "SELECT setval(pg_get_serial_sequence(?1, 'id'), ?2, ?3)", &stmt);
        if (r < 0)
                return r;
        db_bind_text(stmt, 1, table);
        db_bind_int64(stmt, 2, MAX(last, (int64_t) 1));
        db_bind_text(stmt, 3, last > 0 ? "true" : "false"); /* false: the next id is 1 itself */
        r = store_step(s, stmt);
        return r < 0 ? r : 0;
}

/* Each table counted on both sides (the source in its snapshot), and the
 * netmap version the same: what nodes resume their long-poll from. */
static int copy_verify(const Source *src, Store *s, StoreCopyCounts *c) {
        int64_t version;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(copy_tables); i++) {
                const CopyTable *t = copy_tables + i;
                int64_t copied = *(int64_t *) ((uint8_t *) c + t->count_offset), there = -1, here = -1;
                _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
                _cleanup_free_ char *sql = NULL;

                if (asprintf(&sql, "SELECT COUNT(*) FROM %s", t->name) < 0)
                        return log_oom();
                r = source_int(src, sql, &here);
                if (r < 0)
                        return r;
                r = store_prepare(s, sql, &stmt);
                if (r < 0)
                        return r;
                r = store_step(s, stmt);
                if (r < 0)
                        return r;
                there = r > 0 ? db_column_int64(stmt, 0) : -1;
                if (copied != here || there != here)
                        return log_error_errno(-EIO,
                                               "%s: '%s' has %" PRIi64 " rows, %" PRIi64
                                               " copied, %s has %" PRIi64 "; nothing changed.",
                                               src->path, t->name, here, copied, s->path, there);
        }
        r = source_int(src, "SELECT value FROM settings WHERE key = 'version'", &c->version);
        if (r < 0)
                return r;
        r = store_get_int_setting(s, "version", &version);
        if (r < 0)
                return r;
        if (c->version < 1 || version != c->version)
                return log_error_errno(-EIO,
                                       "%s: netmap version %" PRIi64 ", %s has %" PRIi64 "; nothing changed.",
                                       src->path, c->version, s->path, version);
        return 0;
}

static int copy_all(const Source *src, Store *s, StoreCopyCounts *c) {
        int r;

        r = target_check_empty(s);
        if (r < 0)
                return r;
        r = store_create_pg_schema(s);
        if (r < 0)
                return r;
        /* the schema's first settings give way to the source's, all of them */
        r = store_exec(s, "DELETE FROM settings");
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(copy_tables); i++) {
                const CopyTable *t = copy_tables + i;

                r = copy_table(src, s, t, (int64_t *) ((uint8_t *) c + t->count_offset));
                if (r < 0)
                        return r;
        }
        r = move_identity(src, s, "authkeys");
        if (r < 0)
                return r;
        r = move_identity(src, s, "nodes");
        if (r < 0)
                return r;
        return copy_verify(src, s, c);
}

int store_copy_to_postgresql(const char *from, const char *url, StoreCopyCounts *ret) {
        _cleanup_(sqlite_closep) sqlite3 *keep = NULL;
        _cleanup_(store_freep) Store *s = NULL;
        StoreCopyCounts c = {};
        Source src;
        int r;

        r = source_open(from, &src);
        if (r < 0)
                return r;
        keep = src.db;
        /* one snapshot of the source for the checks, the copy and the counts */
        if (sqlite3_exec(src.db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
                return source_error(&src, "BEGIN");
        r = source_check(&src);
        if (r < 0)
                return r;

        r = target_open(url, &s);
        if (r < 0)
                return r;
        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;
        r = copy_all(&src, s, &c);
        if (r < 0)
                return r;
        r = store_commit(&tx);
        if (r < 0)
                return r;
        *ret = c;
        return 0;
}
