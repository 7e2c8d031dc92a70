/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The SQL layer's front (db.h): which engine a --database names, the
 * masked URL for messages, the parameters a statement carries until it
 * runs, and the calls handed to the engine (db-sqlite.c, db-pg.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db-internal.h"
#include "log.h"

bool db_is_url(const char *database) {
        return database &&
               (strncmp(database, "postgresql://", 13) == 0 || strncmp(database, "postgres://", 11) == 0);
}

/* "postgresql://user:secret@host/db?password=x" → "postgresql://user:***@host/db?password=***" */
char *db_mask_url(const char *database) {
        const char *p, *at, *slash, *colon;
        char *out, *o;

        if (!db_is_url(database))
                return strdup(database ?: "");
        /* the result is never longer than the input plus three per secret */
        out = o = malloc(strlen(database) * 2 + 8);
        if (!out)
                return NULL;
        p = strstr(database, "://") + 3;
        o = mempcpy(o, database, p - database);
        slash = p + strcspn(p, "/?");
        at = memrchr(p, '@', slash - p);
        colon = at ? memchr(p, ':', at - p) : NULL;
        if (colon) {
                o = mempcpy(o, p, colon + 1 - p);
                o = stpcpy(o, "***");
                p = at;
        }
        while (*p) {
                const char *key = p;
                size_t n = strcspn(p, "&?#");

                if (strncmp(key, "password=", 9) == 0) {
                        o = stpcpy(o, "password=***");
                        p += n;
                } else {
                        o = mempcpy(o, p, n);
                        p += n;
                }
                if (*p)
                        *o++ = *p++;
        }
        *o = 0;
        return out;
}

/* The password of a URL: after "user:" before '@', or a password= parameter. */
static char *url_password(const char *url) {
        const char *p, *at, *slash, *colon, *q;

        if (!db_is_url(url))
                return NULL;
        p = strstr(url, "://") + 3;
        slash = p + strcspn(p, "/?");
        at = memrchr(p, '@', slash - p);
        colon = at ? memchr(p, ':', at - p) : NULL;
        if (colon && at > colon + 1)
                return strndup(colon + 1, at - colon - 1);
        for (q = strstr(url, "password="); q; q = strstr(q + 1, "password="))
                if (q[-1] == '?' || q[-1] == '&') {
                        q += 9;
                        return strndup(q, strcspn(q, "&#"));
                }
        return NULL;
}

static char *replace_all(const char *text, const char *what, const char *with) {
        size_t n = 0, wl = strlen(what);
        char *out, *o;

        if (wl == 0)
                return strdup(text);
        for (const char *p = strstr(text, what); p; p = strstr(p + wl, what))
                n++;
        out = o = malloc(strlen(text) + n * strlen(with) + 1);
        if (!out)
                return NULL;
        for (const char *p = text, *hit; *p; p = hit + wl) {
                hit = strstr(p, what);
                if (!hit) {
                        o = stpcpy(o, p);
                        break;
                }
                o = mempcpy(o, p, hit - p);
                o = stpcpy(o, with);
        }
        *o = 0;
        return out;
}

char *db_scrub(const char *text, const char *url) {
        _cleanup_free_ char *masked = db_mask_url(url), *password = url_password(url), *step = NULL;

        if (!masked)
                return NULL;
        step = replace_all(text, url, masked);
        if (!step || !password || !*password)
                return TAKE_PTR(step);
        /* libpq may quote a part of the URL, not the whole */
        return replace_all(step, password, "***");
}

int db_open(const char *database, bool create, Db **ret) {
        if (db_is_url(database))
                return db_pg_open(database, ret);
        return db_sqlite_open(database, create, ret);
}

Db *db_free(Db *db) {
        if (!db)
                return NULL;
        char *name = db->name;
        db->ops->close(db); /* frees db */
        free(name);
        return NULL;
}

DbBackend db_backend(Db *db) {
        return db->backend;
}

const char *db_name(Db *db) {
        return db->name;
}

bool db_is_available(Db *db) {
        return !db->unavailable;
}

int db_exec(Db *db, const char *sql) {
        return db->ops->exec(db, sql);
}

int db_begin(Db *db, bool write) {
        return db->ops->begin(db, write);
}

int db_commit(Db *db) {
        return db->ops->commit(db);
}

void db_rollback(Db *db) {
        db->ops->rollback(db);
}

static void params_clear(DbStmt *stmt) {
        for (size_t i = 0; i < stmt->n_params; i++) {
                free(stmt->params[i].data);
                stmt->params[i] = (DbParam) {};
        }
}

int db_prepare(Db *db, const char *sql, DbStmt **ret) {
        DbStmt *stmt;
        int r;

        stmt = calloc(1, db->ops->stmt_size);
        if (!stmt)
                return log_oom();
        stmt->db = db;
        stmt->sql = strdup(sql);
        if (!stmt->sql) {
                free(stmt);
                return log_oom();
        }
        r = db->ops->prepare(db, stmt);
        if (r < 0) {
                free(stmt->sql);
                free(stmt);
                return r;
        }
        *ret = stmt;
        return 0;
}

DbStmt *db_stmt_free(DbStmt *stmt) {
        if (!stmt)
                return NULL;
        stmt->db->ops->stmt_close(stmt);
        params_clear(stmt);
        free(stmt->params);
        free(stmt->sql);
        free(stmt);
        return NULL;
}

void db_reset(DbStmt *stmt) {
        stmt->db->ops->reset(stmt);
        stmt->started = false;
        stmt->error = 0;
}

const char *db_stmt_sql(DbStmt *stmt) {
        return stmt->sql;
}

static DbParam *param_slot(DbStmt *stmt, int i) {
        /* the statement fails at db_step() rather than run with a NULL */
        stmt->error = -ENOMEM;
        if (i < 1 || i > 999) {
                stmt->error = -EINVAL;
                return NULL;
        }
        if ((size_t) i > stmt->n_params) {
                DbParam *p = reallocarray(stmt->params, i, sizeof(DbParam));
                if (!p)
                        return NULL;
                memset(p + stmt->n_params, 0, (i - stmt->n_params) * sizeof(DbParam));
                stmt->params = p;
                stmt->n_params = i;
        }
        free(stmt->params[i - 1].data);
        stmt->params[i - 1] = (DbParam) {};
        stmt->error = 0;
        return stmt->params + i - 1;
}

int db_bind_int64(DbStmt *stmt, int i, int64_t v) {
        DbParam *p = param_slot(stmt, i);

        if (!p)
                return log_oom();
        *p = (DbParam) { .type = DB_TYPE_INT, .i = v };
        return 0;
}

int db_bind_text(DbStmt *stmt, int i, const char *v) {
        DbParam *p;

        if (!v)
                return db_bind_null(stmt, i);
        p = param_slot(stmt, i);
        if (!p)
                return log_oom();
        p->data = strdup(v);
        if (!p->data) {
                stmt->error = -ENOMEM;
                return log_oom();
        }
        p->type = DB_TYPE_TEXT;
        p->len = strlen(v);
        return 0;
}

int db_bind_blob(DbStmt *stmt, int i, const void *data, size_t n) {
        DbParam *p = param_slot(stmt, i);

        if (!p)
                return log_oom();
        p->data = malloc(MAX(n, (size_t) 1));
        if (!p->data) {
                stmt->error = -ENOMEM;
                return log_oom();
        }
        memcpy(p->data, data, n);
        p->type = DB_TYPE_BLOB;
        p->len = n;
        return 0;
}

int db_bind_null(DbStmt *stmt, int i) {
        DbParam *p = param_slot(stmt, i);

        if (!p)
                return log_oom();
        return 0;
}

int db_step(DbStmt *stmt) {
        int r;

        if (stmt->error < 0)
                return log_error_errno(stmt->error, "%s: failed to bind a parameter of '%s': %m",
                                       stmt->db->name, stmt->sql);
        r = stmt->db->ops->step(stmt);

        stmt->started = true;
        return r;
}

int64_t db_column_int64(DbStmt *stmt, int col) {
        return stmt->db->ops->column_int64(stmt, col);
}

int db_column_int(DbStmt *stmt, int col) {
        return (int) db_column_int64(stmt, col);
}

const char *db_column_text(DbStmt *stmt, int col) {
        return stmt->db->ops->column_text(stmt, col);
}

bool db_column_is_null(DbStmt *stmt, int col) {
        return stmt->db->ops->column_is_null(stmt, col);
}

int64_t db_changes(Db *db) {
        return db->changes;
}

int db_listen_fd(Db *db, const char *channel) {
        if (!db->ops->listen_fd)
                return -EOPNOTSUPP;
        return db->ops->listen_fd(db, channel);
}

int db_listen_drain(Db *db) {
        if (!db->ops->listen_drain)
                return -EOPNOTSUPP;
        return db->ops->listen_drain(db);
}
