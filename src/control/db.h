/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The thin SQL layer under the store (store*.c): the handful of calls the
 * store makes, with two engines behind them. db-sqlite.c is the embedded
 * default (a file), db-pg.c speaks to a PostgreSQL server through libpq
 * (a postgresql:// or postgres:// URL). The store writes its SQL once, in
 * the dialect both accept (?N placeholders, ON CONFLICT, RETURNING,
 * IS DISTINCT FROM, COALESCE, CASE instead of two-argument MIN/MAX), and
 * keeps the few places where they differ (schema, integrity check, change
 * watch) behind db_backend(). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef enum DbBackend {
        DB_SQLITE,
        DB_POSTGRES,
} DbBackend;

typedef struct Db Db;
typedef struct DbStmt DbStmt;

/* Whether database names a PostgreSQL server rather than an SQLite file. */
bool db_is_url(const char *database);
/* The URL (or path) for messages: a password in it becomes "***". NULL on OOM. */
char *db_mask_url(const char *database);
/* text (libpq's message) with url's password taken out wherever it shows,
 * the URL itself included. NULL on OOM. */
char *db_scrub(const char *text, const char *url);

/* SQLite: create makes the file (O_EXCL, 0600: -EEXIST when there is one),
 * else it must exist (-ENOENT). PostgreSQL: connects (-ECONNREFUSED, logged
 * with the URL masked, when that fails); create is the store's business. */
int db_open(const char *database, bool create, Db **ret);
Db *db_free(Db *db);
DEFINE_TRIVIAL_CLEANUP_FUNC(Db *, db_free);

DbBackend db_backend(Db *db);
/* The path, or the URL with its password masked: for messages. */
const char *db_name(Db *db);
/* false while a PostgreSQL server is out of reach (the last call failed on
 * the connection); SQLite: always true. */
bool db_is_available(Db *db);

/* One or more statements without parameters or rows. */
int db_exec(Db *db, const char *sql);
/* Transactions. write: SQLite BEGIN IMMEDIATE; PostgreSQL BEGIN and an
 * advisory lock that every writer takes, so writers serialize as with
 * SQLite while readers never wait. Read transactions see one snapshot
 * (PostgreSQL: REPEATABLE READ). A lost server connection is reset here. */
int db_begin(Db *db, bool write);
int db_commit(Db *db);
void db_rollback(Db *db);

int db_prepare(Db *db, const char *sql, DbStmt **ret);
DbStmt *db_stmt_free(DbStmt *stmt);
DEFINE_TRIVIAL_CLEANUP_FUNC(DbStmt *, db_stmt_free);
/* Back to before the first db_step(): bind again and step again. */
void db_reset(DbStmt *stmt);
const char *db_stmt_sql(DbStmt *stmt);

/* Parameters count from 1 (?1). Values are copied. */
int db_bind_int64(DbStmt *stmt, int i, int64_t v);
int db_bind_text(DbStmt *stmt, int i, const char *v);
int db_bind_blob(DbStmt *stmt, int i, const void *p, size_t n);
int db_bind_null(DbStmt *stmt, int i);

/* 1: a row is there to read; 0: done; -EEXIST: a constraint failed
 * (callers turn this into their own message); other -errno logged. */
int db_step(DbStmt *stmt);
/* Columns count from 0. NULL reads as 0 / NULL; a boolean (PostgreSQL's
 * "x IS NOT NULL", "kind = 'device'") as 1 or 0. */
int64_t db_column_int64(DbStmt *stmt, int col);
int db_column_int(DbStmt *stmt, int col);
const char *db_column_text(DbStmt *stmt, int col);
bool db_column_is_null(DbStmt *stmt, int col);
/* Rows the last statement run (its first db_step()) inserted, changed or deleted. */
int64_t db_changes(Db *db);

/* PostgreSQL's change wake-up (LISTEN): an fd that turns readable when a
 * notification on channel may be there; -EOPNOTSUPP for SQLite. Opens a
 * second connection the first time, and again after db_listen_drain()
 * failed. */
int db_listen_fd(Db *db, const char *channel);
/* Consumes what arrived: > 0 notifications, 0 none, -errno when the
 * listening connection broke (call db_listen_fd() again later). */
int db_listen_drain(Db *db);
