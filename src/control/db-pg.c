/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The PostgreSQL engine of db.h, through libpq: one connection for the
 * store's statements (text parameters, bytea binary), a second one opened
 * on demand that LISTENs for the store's change notifications. A lost
 * connection fails the call with a -errno, and the next call outside a
 * transaction tries PQreset(), at most once a second. */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db-internal.h"
#include "log.h"
#include "time-util.h"

#define BYTEA_OID 17
/* Every writer takes this transaction-scoped advisory lock first, so
 * writers serialize exactly as with SQLite's BEGIN IMMEDIATE. The number
 * is ours ("meshd" in ASCII); nothing else on the server should use it. */
#define WRITE_LOCK_KEY "469853497444" /* 0x6d65736864 */
#define RESET_INTERVAL_USEC USEC_PER_SEC

/* A statement prepared on the connection, by its SQL text: the store runs
 * a few dozen texts over and over, and parsing and planning each again is
 * most of a short statement's cost. */
typedef struct PgPrepared {
        char *sql; /* $N form */
        uint64_t hash;
} PgPrepared;

typedef struct DbPg {
        Db db;
        char *url; /* unmasked: libpq needs the password */
        PGconn *conn, *listen;
        bool in_tx;
        uint64_t last_reset;
        PgPrepared *prepared; /* index i is the statement "m<i>" of this connection */
        size_t n_prepared;
} DbPg;

typedef struct DbPgStmt {
        DbStmt stmt;
        char *sql; /* ?N → $N */
        PGresult *result;
        int row; /* the current one; -1 before the first */
} DbPgStmt;

static DbPg *pg_of(Db *db) {
        return (DbPg *) db;
}

static void trim_newline(char *s);

static void notice_ignore(void *arg, const char *message) {
        _cleanup_free_ char *m = strdup(message);

        if (m)
                trim_newline(m);
        log_debug("PostgreSQL: %s", strna(m));
}

/* libpq's messages span lines ("…failed: …\n\tIs the server running…"):
 * one line for the journal and the terminal. */
static void trim_newline(char *s) {
        char *o = s;

        for (const char *p = s; *p; p++) {
                bool space = *p == '\n' || *p == '\r' || *p == '\t' || *p == ' ';

                if (space && (o == s || o[-1] == ' '))
                        continue;
                *o++ = space ? ' ' : *p;
        }
        while (o > s && o[-1] == ' ')
                o--;
        *o = 0;
}

/* Logs what the server or libpq said, and returns the -errno for it. */
static int pg_error(Db *db, const PGresult *res, const char *what) {
        DbPg *d = pg_of(db);
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        _cleanup_free_ char *message = strdup(res ? PQresultErrorMessage(res) : PQerrorMessage(d->conn));
        int r = -EIO;

        if (PQstatus(d->conn) == CONNECTION_BAD) {
                db->unavailable = true;
                r = -ECONNRESET;
        } else if (state && strncmp(state, "23", 2) == 0)
                return -EEXIST; /* callers turn this into their own message */
        else if (state && (streq(state, "40001") || streq(state, "40P01") || streq(state, "55P03")))
                r = -EBUSY;
        else if (state && strncmp(state, "42", 2) == 0)
                r = -EINVAL;
        if (message)
                trim_newline(message);
        return log_error_errno(r, "%s: %s: %s", db->name, what, strna(message));
}

static void prepared_clear(DbPg *d) {
        for (size_t i = 0; i < d->n_prepared; i++)
                free(d->prepared[i].sql);
        d->prepared = mfree(d->prepared);
        d->n_prepared = 0;
}

static uint64_t fnv1a(const char *s) {
        uint64_t h = 14695981039346656037ULL;

        for (; *s; s++)
                h = (h ^ (uint8_t) *s) * 1099511628211ULL;
        return h;
}

/* The name of sql's prepared statement, preparing it the first time. */
static int pg_prepared(Db *db, const char *sql, int n, const unsigned *types, char name[static 24]) {
        DbPg *d = pg_of(db);
        uint64_t h = fnv1a(sql);
        PgPrepared *l;
        PGresult *res;
        int r;

        for (size_t i = 0; i < d->n_prepared; i++)
                if (d->prepared[i].hash == h && streq(d->prepared[i].sql, sql)) {
                        (void) snprintf(name, 24, "m%zu", i);
                        return 0;
                }
        l = reallocarray(d->prepared, d->n_prepared + 1, sizeof(PgPrepared));
        if (!l)
                return log_oom();
        d->prepared = l;
        (void) snprintf(name, 24, "m%zu", d->n_prepared);
        res = PQprepare(d->conn, name, sql, n, types);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                r = pg_error(db, res, sql);
                PQclear(res);
                return r;
        }
        PQclear(res);
        l[d->n_prepared].sql = strdup(sql);
        if (!l[d->n_prepared].sql) {
                /* prepared but not remembered: deallocate, or the name would be taken */
                char dealloc[48];
                (void) snprintf(dealloc, sizeof(dealloc), "DEALLOCATE %s", name);
                PQclear(PQexec(d->conn, dealloc));
                return log_oom();
        }
        l[d->n_prepared++].hash = h;
        return 0;
}

/* Before a call: a connection that broke outside a transaction is reset
 * (at most once a second: a server that is gone should not stall every
 * request on a connect). Inside one, the transaction is lost anyway. */
static int pg_ensure(Db *db) {
        DbPg *d = pg_of(db);
        uint64_t now;

        if (PQstatus(d->conn) == CONNECTION_OK)
                return 0;
        db->unavailable = true;
        if (d->in_tx)
                return -ECONNRESET;
        now = clock_usec(CLOCK_MONOTONIC);
        if (d->last_reset != 0 && now - d->last_reset < RESET_INTERVAL_USEC)
                return -ENOTCONN;
        d->last_reset = now;
        PQreset(d->conn);
        if (PQstatus(d->conn) != CONNECTION_OK) {
                _cleanup_free_ char *m = db_scrub(PQerrorMessage(d->conn), d->url);
                if (m)
                        trim_newline(m);
                /* the failure that cut it was logged; one try a second is not news */
                return log_debug_errno(-ENOTCONN, "%s: database still unreachable: %s", db->name, strna(m));
        }
        log_info("%s: connection to the database restored.", db->name);
        prepared_clear(d); /* a new session knows none of them */
        db->unavailable = false;
        return 0;
}

/* Runs sql (no parameters); its result (any) is handed back in ret or freed. */
static int pg_run(Db *db, const char *sql, ExecStatusType want, PGresult **ret) {
        PGresult *res;
        int r;

        r = pg_ensure(db);
        if (r < 0)
                return r;
        res = PQexec(pg_of(db)->conn, sql);
        if (PQresultStatus(res) != want) {
                r = pg_error(db, res, sql);
                PQclear(res);
                return r;
        }
        db->unavailable = false;
        if (ret)
                *ret = res;
        else
                PQclear(res);
        return 0;
}

static int pg_exec(Db *db, const char *sql) {
        PGresult *res = NULL;
        int r;

        r = pg_ensure(db);
        if (r < 0)
                return r;
        res = PQexec(pg_of(db)->conn, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = pg_error(db, res, sql);
                PQclear(res);
                return r;
        }
        PQclear(res);
        db->unavailable = false;
        return 0;
}

static int pg_begin(Db *db, bool write) {
        int r;

        r = pg_run(db,
                   write ? "BEGIN; SELECT pg_advisory_xact_lock(" WRITE_LOCK_KEY ")"
                         : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                   write ? PGRES_TUPLES_OK : PGRES_COMMAND_OK, NULL);
        if (r < 0) {
                /* the BEGIN may have gone through before the lock failed */
                if (PQstatus(pg_of(db)->conn) == CONNECTION_OK)
                        PQclear(PQexec(pg_of(db)->conn, "ROLLBACK"));
                return r;
        }
        pg_of(db)->in_tx = true;
        return 0;
}

static int pg_commit(Db *db) {
        PGresult *res = NULL;
        int r;

        r = pg_run(db, "COMMIT", PGRES_COMMAND_OK, &res);
        pg_of(db)->in_tx = false;
        if (r < 0)
                return r;
        /* a transaction that had failed ends in ROLLBACK, quietly */
        if (!streq(PQcmdStatus(res), "COMMIT"))
                r = log_error_errno(-EIO, "%s: transaction rolled back at COMMIT.", db->name);
        PQclear(res);
        return r;
}

static void pg_rollback(Db *db) {
        DbPg *d = pg_of(db);

        if (d->in_tx && PQstatus(d->conn) == CONNECTION_OK)
                PQclear(PQexec(d->conn, "ROLLBACK"));
        d->in_tx = false;
}

static void pg_close(Db *db) {
        DbPg *d = pg_of(db);

        PQfinish(d->conn);
        PQfinish(d->listen);
        prepared_clear(d);
        if (d->url)
                explicit_bzero(d->url, strlen(d->url));
        free(d->url);
        free(d);
}

/* ?N → $N, except inside string literals and quoted identifiers. */
static char *rewrite_placeholders(const char *sql) {
        char *out = strdup(sql), quote = 0;

        if (!out)
                return NULL;
        for (char *p = out; *p; p++) {
                if (quote) {
                        if (*p == quote)
                                quote = 0;
                } else if (*p == '\'' || *p == '"')
                        quote = *p;
                else if (*p == '?' && p[1] >= '0' && p[1] <= '9')
                        *p = '$';
        }
        return out;
}

static int pg_prepare(Db *db, DbStmt *stmt) {
        DbPgStmt *p = (DbPgStmt *) stmt;

        p->sql = rewrite_placeholders(stmt->sql);
        if (!p->sql)
                return log_oom();
        p->row = -1;
        return 0;
}

static void pg_reset(DbStmt *stmt) {
        DbPgStmt *p = (DbPgStmt *) stmt;

        PQclear(p->result);
        p->result = NULL;
        p->row = -1;
}

static void pg_stmt_close(DbStmt *stmt) {
        pg_reset(stmt);
        free(((DbPgStmt *) stmt)->sql);
}

static int pg_execute(DbStmt *stmt) {
        DbPgStmt *p = (DbPgStmt *) stmt;
        size_t n = stmt->n_params;
        _cleanup_free_ const char **values = calloc(MAX(n, (size_t) 1), sizeof(char *));
        _cleanup_free_ int *lengths = calloc(MAX(n, (size_t) 1), sizeof(int));
        _cleanup_free_ int *formats = calloc(MAX(n, (size_t) 1), sizeof(int));
        _cleanup_free_ unsigned *types = calloc(MAX(n, (size_t) 1), sizeof(unsigned));
        _cleanup_free_ char *numbers = calloc(MAX(n, (size_t) 1), 24);
        char name[24];
        ExecStatusType status;
        int r;

        if (!values || !lengths || !formats || !types || !numbers)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                const DbParam *v = stmt->params + i;

                if (v->type == DB_TYPE_INT) {
                        (void) snprintf(numbers + i * 24, 24, "%" PRId64, v->i);
                        values[i] = numbers + i * 24;
                } else if (v->type != DB_TYPE_NULL)
                        values[i] = v->data;
                if (v->type == DB_TYPE_BLOB) {
                        types[i] = BYTEA_OID;
                        lengths[i] = (int) v->len;
                        formats[i] = 1;
                }
        }
        r = pg_ensure(stmt->db);
        if (r < 0)
                return r;
        r = pg_prepared(stmt->db, p->sql, (int) n, types, name);
        if (r < 0)
                return r;
        p->result = PQexecPrepared(pg_of(stmt->db)->conn, name, (int) n, values, lengths, formats, 0);
        status = PQresultStatus(p->result);
        if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
                r = pg_error(stmt->db, p->result, stmt->sql);
                PQclear(p->result);
                p->result = NULL;
                return r;
        }
        stmt->db->unavailable = false;
        stmt->db->changes = strtoll(PQcmdTuples(p->result), NULL, 10);
        return 0;
}

static int pg_step(DbStmt *stmt) {
        DbPgStmt *p = (DbPgStmt *) stmt;
        int r;

        if (!stmt->started) {
                pg_reset(stmt);
                r = pg_execute(stmt);
                if (r < 0)
                        return r;
        }
        if (!p->result)
                return 0;
        if (p->row + 1 >= PQntuples(p->result)) {
                p->row = PQntuples(p->result);
                return 0;
        }
        p->row++;
        return 1;
}

static bool pg_has_cell(DbStmt *stmt, int col) {
        DbPgStmt *p = (DbPgStmt *) stmt;

        return p->result && p->row >= 0 && p->row < PQntuples(p->result) && col >= 0 &&
               col < PQnfields(p->result) && !PQgetisnull(p->result, p->row, col);
}

static const char *pg_column_text(DbStmt *stmt, int col) {
        DbPgStmt *p = (DbPgStmt *) stmt;

        return pg_has_cell(stmt, col) ? PQgetvalue(p->result, p->row, col) : NULL;
}

static int64_t pg_column_int64(DbStmt *stmt, int col) {
        const char *v = pg_column_text(stmt, col);

        if (!v)
                return 0;
        /* booleans ("x IS NOT NULL", "kind = 'device'") come back as t/f */
        if (streq(v, "t"))
                return 1;
        if (streq(v, "f"))
                return 0;
        return strtoll(v, NULL, 10);
}

static bool pg_column_is_null(DbStmt *stmt, int col) {
        return !pg_has_cell(stmt, col);
}

static PGconn *pg_connect(const char *url, const char *name, int *ret_error) {
        /* The server runs every statement in its event loop: a database
         * host that vanished from the network must fail a call in seconds,
         * not after TCP's minutes. The URL's own settings win (dbname's
         * expansion comes last). Ignored on unix sockets. */
        static const char *const keywords[] = { "connect_timeout", "tcp_user_timeout", "dbname", NULL };
        const char *const values[] = { "5", "10000", url, NULL };
        PGconn *c = PQconnectdbParams(keywords, values, 1);

        if (!c) {
                *ret_error = log_oom();
                return NULL;
        }
        if (PQstatus(c) != CONNECTION_OK) {
                _cleanup_free_ char *m = db_scrub(PQerrorMessage(c), url);
                if (m)
                        trim_newline(m);
                *ret_error =
                        log_error_errno(-ECONNREFUSED, "Cannot connect to the database %s: %s", name, strna(m));
                PQfinish(c);
                return NULL;
        }
        PQsetNoticeProcessor(c, notice_ignore, NULL);
        return c;
}

static int pg_listen_fd(Db *db, const char *channel) {
        DbPg *d = pg_of(db);
        _cleanup_free_ char *sql = NULL;
        PGresult *res;
        int r = 0;

        if (d->listen && PQstatus(d->listen) == CONNECTION_OK)
                return PQsocket(d->listen);
        /* while the store's own connection is down, so is this one: the
         * caller polls, and would log a failed connect each time */
        if (db->unavailable)
                return -ENOTCONN;
        PQfinish(d->listen);
        d->listen = pg_connect(d->url, db->name, &r);
        if (!d->listen)
                return r;
        if (asprintf(&sql, "LISTEN \"%s\"", channel) < 0)
                return log_oom();
        res = PQexec(d->listen, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                r = log_error_errno(-EIO, "%s: %s: %s", db->name, sql, PQresultErrorMessage(res));
                PQclear(res);
                PQfinish(d->listen);
                d->listen = NULL;
                return r;
        }
        PQclear(res);
        return PQsocket(d->listen);
}

static int pg_listen_drain(Db *db) {
        DbPg *d = pg_of(db);
        PGnotify *n;
        int count = 0;

        if (!d->listen)
                return -ENOTCONN;
        if (!PQconsumeInput(d->listen) || PQstatus(d->listen) != CONNECTION_OK)
                return log_warning_errno(-ECONNRESET, "%s: lost the LISTEN connection.", db->name);
        while ((n = PQnotifies(d->listen))) {
                PQfreemem(n);
                count++;
        }
        return count;
}

static const DbOps pg_ops = {
        .stmt_size = sizeof(DbPgStmt),
        .close = pg_close,
        .exec = pg_exec,
        .begin = pg_begin,
        .commit = pg_commit,
        .rollback = pg_rollback,
        .prepare = pg_prepare,
        .stmt_close = pg_stmt_close,
        .reset = pg_reset,
        .step = pg_step,
        .column_int64 = pg_column_int64,
        .column_text = pg_column_text,
        .column_is_null = pg_column_is_null,
        .listen_fd = pg_listen_fd,
        .listen_drain = pg_listen_drain,
};

static void pg_free(DbPg *d) {
        if (d)
                db_free(&d->db);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(DbPg *, pg_free);

int db_pg_open(const char *url, Db **ret) {
        _cleanup_(pg_freep) DbPg *d = NULL;
        int r = 0;

        d = calloc(1, sizeof(*d));
        if (!d)
                return log_oom();
        d->db = (Db) { .ops = &pg_ops, .backend = DB_POSTGRES, .name = db_mask_url(url) };
        d->url = strdup(url);
        if (!d->db.name || !d->url)
                return log_oom();
        d->conn = pg_connect(url, d->db.name, &r);
        if (!d->conn)
                return r;
        /* the store's SQL counts on these, whatever the server's defaults */
        /* lock_timeout: a writer waits for another at most as long as
         * SQLite's busy timeout (then -EBUSY), never forever */
        r = pg_exec(&d->db, "SET client_min_messages = warning; SET TIME ZONE 'UTC'; SET lock_timeout = '5s'");
        if (r < 0)
                return r;
        *ret = &TAKE_PTR(d)->db;
        return 0;
}
