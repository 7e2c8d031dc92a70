/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The SQLite engine of db.h: one file in WAL mode, shared by the server and
 * the CLI verbs; BEGIN IMMEDIATE serializes the writers. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db-internal.h"
#include "log.h"

#define BUSY_TIMEOUT_MSEC 5000

typedef struct DbSqlite {
        Db db;
        sqlite3 *handle;
} DbSqlite;

typedef struct DbSqliteStmt {
        DbStmt stmt;
        sqlite3_stmt *handle;
} DbSqliteStmt;

static sqlite3 *handle_of(Db *db) {
        return ((DbSqlite *) db)->handle;
}

static sqlite3_stmt *stmt_of(DbStmt *stmt) {
        return ((DbSqliteStmt *) stmt)->handle;
}

static int sqlite_to_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_NOTADB:
        case SQLITE_CORRUPT:
                return -EBADMSG;
        default:
                return -EIO;
        }
}

/* Logs "<path>: <what>: <sqlite message>" and returns the matching -errno. */
static int sqlite_error(Db *db, int rc, const char *what) {
        return log_error_errno(sqlite_to_errno(rc) ?: -EIO, "%s: %s: %s", db->name, what,
                               sqlite3_errmsg(handle_of(db)));
}

static int sqlite_exec(Db *db, const char *sql) {
        int rc = sqlite3_exec(handle_of(db), sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return sqlite_error(db, rc, sql);
        return 0;
}

static int sqlite_begin(Db *db, bool write) {
        return sqlite_exec(db, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

static int sqlite_commit(Db *db) {
        return sqlite_exec(db, "COMMIT");
}

static void sqlite_rollback(Db *db) {
        (void) sqlite3_exec(handle_of(db), "ROLLBACK", NULL, NULL, NULL);
}

static void sqlite_close(Db *db) {
        (void) sqlite3_close_v2(handle_of(db));
        free(db);
}

static int sqlite_prepare(Db *db, DbStmt *stmt) {
        int rc = sqlite3_prepare_v2(handle_of(db), stmt->sql, -1, &((DbSqliteStmt *) stmt)->handle, NULL);
        if (rc != SQLITE_OK)
                return sqlite_error(db, rc, "Failed to prepare statement");
        return 0;
}

static void sqlite_stmt_close(DbStmt *stmt) {
        (void) sqlite3_finalize(stmt_of(stmt));
}

static void sqlite_reset(DbStmt *stmt) {
        (void) sqlite3_reset(stmt_of(stmt));
        (void) sqlite3_clear_bindings(stmt_of(stmt));
}

static int sqlite_bind_all(DbStmt *stmt) {
        sqlite3_stmt *h = stmt_of(stmt);
        int rc = SQLITE_OK;

        for (size_t i = 0; i < stmt->n_params && rc == SQLITE_OK; i++) {
                const DbParam *p = stmt->params + i;
                int k = (int) i + 1;

                switch (p->type) {
                case DB_TYPE_NULL:
                        rc = sqlite3_bind_null(h, k);
                        break;
                case DB_TYPE_INT:
                        rc = sqlite3_bind_int64(h, k, p->i);
                        break;
                case DB_TYPE_TEXT:
                        rc = sqlite3_bind_text(h, k, p->data, (int) p->len, SQLITE_STATIC);
                        break;
                case DB_TYPE_BLOB:
                        rc = sqlite3_bind_blob(h, k, p->data, (int) p->len, SQLITE_STATIC);
                        break;
                }
        }
        if (rc != SQLITE_OK)
                return sqlite_error(stmt->db, rc, "Failed to bind a parameter");
        return 0;
}

static int sqlite_step(DbStmt *stmt) {
        int rc, r;

        if (!stmt->started) {
                r = sqlite_bind_all(stmt);
                if (r < 0)
                        return r;
        }
        rc = sqlite3_step(stmt_of(stmt));
        stmt->db->changes = sqlite3_changes64(handle_of(stmt->db));
        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        if ((rc & 0xff) == SQLITE_CONSTRAINT)
                return -EEXIST;
        return sqlite_error(stmt->db, rc, stmt->sql);
}

static int64_t sqlite_column_int64(DbStmt *stmt, int col) {
        return sqlite3_column_int64(stmt_of(stmt), col);
}

static const char *sqlite_column_text(DbStmt *stmt, int col) {
        return (const char *) sqlite3_column_text(stmt_of(stmt), col);
}

static bool sqlite_column_is_null(DbStmt *stmt, int col) {
        return sqlite3_column_type(stmt_of(stmt), col) == SQLITE_NULL;
}

static const DbOps sqlite_ops = {
        .stmt_size = sizeof(DbSqliteStmt),
        .close = sqlite_close,
        .exec = sqlite_exec,
        .begin = sqlite_begin,
        .commit = sqlite_commit,
        .rollback = sqlite_rollback,
        .prepare = sqlite_prepare,
        .stmt_close = sqlite_stmt_close,
        .reset = sqlite_reset,
        .step = sqlite_step,
        .column_int64 = sqlite_column_int64,
        .column_text = sqlite_column_text,
        .column_is_null = sqlite_column_is_null,
};

static void sqlite_free(DbSqlite *d) {
        if (d)
                db_free(&d->db);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(DbSqlite *, sqlite_free);

int db_sqlite_open(const char *path, bool create, Db **ret) {
        _cleanup_(sqlite_freep) DbSqlite *d = NULL;
        int rc, r;

        if (create) {
                /* O_EXCL: never overwrite a mesh; 0600: it holds token hashes. */
                _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0)
                        return -errno;
        }

        d = calloc(1, sizeof(*d));
        if (!d)
                return log_oom();
        d->db = (Db) { .ops = &sqlite_ops, .backend = DB_SQLITE, .name = strdup(path) };
        if (!d->db.name)
                return log_oom();

        rc = sqlite3_open_v2(path, &d->handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                if (!d->handle)
                        return log_oom();
                if ((rc & 0xff) == SQLITE_CANTOPEN && access(path, F_OK) < 0)
                        return -ENOENT;
                return sqlite_error(&d->db, rc, "Failed to open database");
        }
        (void) sqlite3_extended_result_codes(d->handle, 1);
        rc = sqlite3_busy_timeout(d->handle, BUSY_TIMEOUT_MSEC);
        if (rc != SQLITE_OK)
                return sqlite_error(&d->db, rc, "Failed to set busy timeout");

        /* WAL: the server reads while the CLI writes. NORMAL is durable
         * enough in WAL mode (a power cut may lose the last commit, never
         * corrupt). */
        r = sqlite_exec(&d->db,
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON");
        if (r < 0)
                return r;

        *ret = &TAKE_PTR(d)->db;
        return 0;
}
