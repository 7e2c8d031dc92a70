/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by db.c and its two engines (db-sqlite.c, db-pg.c) only: each
 * engine embeds Db and DbStmt as the first member of its own structs and
 * fills a DbOps. Parameters are kept here, copied, until the engine runs
 * the statement. */

#include "db.h"

typedef enum DbType {
        DB_TYPE_NULL,
        DB_TYPE_INT,
        DB_TYPE_TEXT,
        DB_TYPE_BLOB,
} DbType;

typedef struct DbParam {
        DbType type;
        int64_t i;
        char *data; /* TEXT (NUL-terminated) and BLOB, owned */
        size_t len;
} DbParam;

typedef struct DbOps {
        size_t stmt_size;
        void (*close)(Db *db);
        int (*exec)(Db *db, const char *sql);
        int (*begin)(Db *db, bool write);
        int (*commit)(Db *db);
        void (*rollback)(Db *db);
        int (*prepare)(Db *db, DbStmt *stmt);
        void (*stmt_close)(DbStmt *stmt);
        void (*reset)(DbStmt *stmt);
        int (*step)(DbStmt *stmt);
        int64_t (*column_int64)(DbStmt *stmt, int col);
        const char *(*column_text)(DbStmt *stmt, int col);
        bool (*column_is_null)(DbStmt *stmt, int col);
        int (*listen_fd)(Db *db, const char *channel);
        int (*listen_drain)(Db *db);
} DbOps;

struct Db {
        const DbOps *ops;
        DbBackend backend;
        char *name; /* path, or the URL masked */
        int64_t changes;
        bool unavailable;
};

struct DbStmt {
        Db *db;
        char *sql;
        DbParam *params;
        size_t n_params;
        bool started; /* stepped since the last reset */
        int error;    /* a bind that failed (OOM): db_step() returns it */
};

int db_sqlite_open(const char *path, bool create, Db **ret);
int db_pg_open(const char *url, Db **ret);
