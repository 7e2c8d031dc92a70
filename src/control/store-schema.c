/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The store's schema on both engines, and its migrations. SQLite keeps the
 * steps it grew by (PRAGMA user_version counts them), so every database
 * made since the first release opens; PostgreSQL starts at the current
 * version in one script and counts in the table schema_version. Both carry
 * the same version numbers: a later change adds one step for each. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "store-private.h"

#define SCHEMA_VERSION 8

static const char schema_v1[] =
        "CREATE TABLE settings ("
        "        key TEXT PRIMARY KEY NOT NULL,"
        "        value NOT NULL);"
        "CREATE TABLE authkeys ("
        "        id INTEGER PRIMARY KEY,"
        "        hash BLOB NOT NULL UNIQUE,"
        "        reusable INTEGER NOT NULL,"
        "        expires INTEGER NOT NULL DEFAULT 0," /* 0: never */
        "        used INTEGER NOT NULL DEFAULT 0,"
        "        created INTEGER NOT NULL);"
        /* A removed node keeps its row, so its token can be told apart from an
         * unknown one (403, not 401); names, keys and addresses are unique
         * among members only. AUTOINCREMENT: node ids are never reused. */
        "CREATE TABLE nodes ("
        "        id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "        name TEXT NOT NULL,"
        "        public_key TEXT NOT NULL,"
        "        host INTEGER NOT NULL,"
        "        ipv4 TEXT NOT NULL,"
        "        ipv6 TEXT NOT NULL,"
        "        token_hash BLOB NOT NULL UNIQUE,"
        "        endpoints TEXT NOT NULL DEFAULT '[]',"
        "        authkey_id INTEGER REFERENCES authkeys(id),"
        "        created INTEGER NOT NULL,"
        "        removed INTEGER);" /* NULL while a member, else the time of removal */
        "CREATE UNIQUE INDEX nodes_name ON nodes(name) WHERE removed IS NULL;"
        "CREATE UNIQUE INDEX nodes_public_key ON nodes(public_key) WHERE removed IS NULL;"
        "CREATE UNIQUE INDEX nodes_host ON nodes(host) WHERE removed IS NULL;"
        "CREATE UNIQUE INDEX nodes_ipv4 ON nodes(ipv4) WHERE removed IS NULL;"
        "CREATE UNIQUE INDEX nodes_ipv6 ON nodes(ipv6) WHERE removed IS NULL;"
        "INSERT INTO settings (key, value) VALUES ('version', 1), ('ipam_next', 2);";

/* The hub (issue 5): each node's endpoint as the hub's device saw it, the
 * latest direct/relay report per ordered pair, and a counter that changes
 * only with membership, so the hub re-reads the member list only then. */
static const char schema_v2[] = "ALTER TABLE nodes ADD COLUMN observed_endpoint TEXT;"
                                "CREATE TABLE path_reports ("
                                "        reporter_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,"
                                "        peer_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,"
                                "        direct INTEGER NOT NULL,"
                                "        updated INTEGER NOT NULL,"
                                "        PRIMARY KEY (reporter_id, peer_id)) WITHOUT ROWID;"
                                "CREATE INDEX path_reports_peer ON path_reports(peer_id);"
                                "INSERT INTO settings (key, value) VALUES ('members', 1);";

/* Node expiry (issue 6): an expired node keeps its name and addresses but
 * leaves every netmap and gets 403 for everything, a certificate included,
 * until it registers again with the same public key. */
static const char schema_v3[] =
        "ALTER TABLE nodes ADD COLUMN expired INTEGER;"; /* NULL while valid, else when it expired */

/* Hold-back (issue 11): the latest not_after of the certificates issued to
 * a node. A removed node's name and addresses stay taken until then, so no
 * new node gets a name that a still-valid certificate of another machine
 * names: most TLS clients check no CRL or OCSP. */
static const char schema_v4[] = "ALTER TABLE nodes ADD COLUMN cert_not_after INTEGER;"; /* NULL: none issued */

/* Devices (issue 14): plain WireGuard peers of the hub (phones, cameras)
 * are rows of nodes too, so names and addresses share one namespace and one
 * set of unique indexes; kind tells them apart. A device has no token (a
 * random hash nobody knows fills token_hash) and may expire at a time set
 * when it was added. */
static const char schema_v5[] =
        "ALTER TABLE nodes ADD COLUMN kind TEXT NOT NULL DEFAULT 'node';" /* 'node' | 'device' */
        "ALTER TABLE nodes ADD COLUMN expires INTEGER;"; /* devices: NULL never, else epoch seconds */

/* Subnet routes (issue 16): the prefixes a node advertises (POST
 * /v1/routes) and the admin's verdict on each. A route the node stops
 * advertising keeps its verdict (advertised = 0), so a restart with a
 * shorter list does not need a new approval; only an approved route that is
 * advertised reaches the netmaps. */
static const char schema_v6[] = "CREATE TABLE routes ("
                                "        node_id INTEGER NOT NULL,"
                                "        prefix TEXT NOT NULL," /* canonical, msg-routes.h */
                                "        state TEXT NOT NULL DEFAULT 'advertised'," /* |'approved'|'rejected' */
                                "        advertised INTEGER NOT NULL DEFAULT 1,"
                                "        PRIMARY KEY (node_id, prefix)) WITHOUT ROWID;";

/* Tags (issue 16): an auth key may carry tags, and a node that joins with
 * it (or a device added with --tag) carries them; the access policy selects
 * members by them. Comma-separated, sorted, each a DNS label; '' none. The
 * policy itself is the setting 'policy' (absent: everyone reaches
 * everyone). */
static const char schema_v7[] = "ALTER TABLE authkeys ADD COLUMN tags TEXT NOT NULL DEFAULT '';"
                                "ALTER TABLE nodes ADD COLUMN tags TEXT NOT NULL DEFAULT '';";

/* Name and host lookups at registration ask for rows "removed IS NULL OR
 * cert_not_after > now" (a removed node's name and address stay taken while
 * its certificate is valid): the partial indexes of v1 cannot serve that,
 * and each registration scanned every row (issue 17: ~80/s at 10,000). */
#define SCHEMA_V8_INDEXES                             \
        "CREATE INDEX nodes_name_any ON nodes(name);" \
        "CREATE INDEX nodes_host_any ON nodes(host);"
static const char schema_v8[] = SCHEMA_V8_INDEXES;

/* SQLite: schema_v<i + 1> takes a database from version i to i + 1. */
static const char *const sqlite_steps[SCHEMA_VERSION] = {
        schema_v1, schema_v2, schema_v3, schema_v4, schema_v5, schema_v6, schema_v7, schema_v8,
};

/* PostgreSQL: the schema that the SQLite steps build, at once (version 8;
 * databases made at 7 take pg_steps).
 * Integers are BIGINT (SQLite's are 64-bit), blobs BYTEA, settings' values
 * TEXT (numbers in them are cast where they are counted). */
static const char pg_schema[] =
        "CREATE TABLE settings ("
        "        key TEXT COLLATE \"C\" PRIMARY KEY NOT NULL,"
        "        value TEXT COLLATE \"C\" NOT NULL);"
        "CREATE TABLE authkeys ("
        "        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        "        hash BYTEA NOT NULL UNIQUE,"
        "        reusable BIGINT NOT NULL,"
        "        expires BIGINT NOT NULL DEFAULT 0,"
        "        used BIGINT NOT NULL DEFAULT 0,"
        "        created BIGINT NOT NULL,"
        "        tags TEXT COLLATE \"C\" NOT NULL DEFAULT '');"
        /* identity columns never hand out an id twice, as AUTOINCREMENT */
        "CREATE TABLE nodes ("
        "        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        "        name TEXT COLLATE \"C\" NOT NULL,"
        "        public_key TEXT COLLATE \"C\" NOT NULL,"
        "        host BIGINT NOT NULL,"
        "        ipv4 TEXT COLLATE \"C\" NOT NULL,"
        "        ipv6 TEXT COLLATE \"C\" NOT NULL,"
        "        token_hash BYTEA NOT NULL UNIQUE,"
        "        endpoints TEXT COLLATE \"C\" NOT NULL DEFAULT '[]',"
        "        authkey_id BIGINT REFERENCES authkeys(id),"
        "        created BIGINT NOT NULL,"
        "        removed BIGINT,"
        "        observed_endpoint TEXT COLLATE \"C\","
        "        expired BIGINT,"
        "        cert_not_after BIGINT,"
        "        kind TEXT COLLATE \"C\" NOT NULL DEFAULT 'node',"
        "        expires BIGINT,"
        "        tags TEXT COLLATE \"C\" NOT NULL DEFAULT '');"
        "CREATE UNIQUE INDEX nodes_name ON nodes(name) WHERE removed IS NULL;"
        "CREATE UNIQUE INDEX nodes_public_key ON nodes(public_key) WHERE removed IS NULL;"
        "CREATE UNIQUE INDEX nodes_host ON nodes(host) WHERE removed IS NULL;"
        "CREATE UNIQUE INDEX nodes_ipv4 ON nodes(ipv4) WHERE removed IS NULL;"
        "CREATE UNIQUE INDEX nodes_ipv6 ON nodes(ipv6) WHERE removed IS NULL;"
        "CREATE TABLE path_reports ("
        "        reporter_id BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,"
        "        peer_id BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,"
        "        direct BIGINT NOT NULL,"
        "        updated BIGINT NOT NULL,"
        "        PRIMARY KEY (reporter_id, peer_id));"
        "CREATE INDEX path_reports_peer ON path_reports(peer_id);"
        "CREATE TABLE routes ("
        "        node_id BIGINT NOT NULL,"
        "        prefix TEXT COLLATE \"C\" NOT NULL,"
        "        state TEXT COLLATE \"C\" NOT NULL DEFAULT 'advertised',"
        "        advertised BIGINT NOT NULL DEFAULT 1,"
        "        PRIMARY KEY (node_id, prefix));"
        "INSERT INTO settings (key, value) VALUES ('version', '1'), ('ipam_next', '2'), ('members', '1');" SCHEMA_V8_INDEXES
        "CREATE TABLE schema_version (version BIGINT NOT NULL);"
        "INSERT INTO schema_version (version) VALUES (8);";

/* PostgreSQL from version 7 (the first it had) on: pg_steps[i - 7] takes a
 * database from version i to i + 1. */
#define PG_FIRST_VERSION 7
static const char *const pg_steps[SCHEMA_VERSION - PG_FIRST_VERSION] = {
        SCHEMA_V8_INDEXES "UPDATE schema_version SET version = 8;",
};

static int schema_check_version(Store *s, int64_t version, bool create) {
        if (version > SCHEMA_VERSION)
                return log_error_errno(-EPROTONOSUPPORT,
                                       "%s: database schema %" PRIi64 " is newer than this program (%i).",
                                       s->path, version, SCHEMA_VERSION);
        if (version == 0 && !create)
                return log_error_errno(-ENOMEDIUM, "%s: database not initialised, run 'meshd-control init'.",
                                       s->path);
        return 0;
}

static int store_read_int(Store *s, const char *sql, int64_t *ret) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        *ret = r > 0 ? db_column_int64(stmt, 0) : 0;
        return 0;
}

static int store_migrate_sqlite(Store *s, bool create) {
        char sql[64];
        int64_t version;
        int r;

        r = store_read_int(s, "PRAGMA user_version", &version);
        if (r < 0)
                return r;
        if (version == SCHEMA_VERSION)
                return 0;
        r = schema_check_version(s, version, create);
        if (r < 0)
                return r;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;
        for (int64_t i = version; i < SCHEMA_VERSION; i++) {
                r = store_exec(s, sqlite_steps[i]);
                if (r < 0)
                        return r;
        }
        /* PRAGMA takes no parameters; the value is our own constant. */
        (void) snprintf(sql, sizeof(sql), "PRAGMA user_version = %i", SCHEMA_VERSION);
        r = store_exec(s, sql);
        if (r < 0)
                return r;
        r = store_commit(&tx);
        if (r < 0)
                return r;
        if (version > 0)
                log_info("%s: database schema upgraded from version %" PRIi64 " to %i.", s->path, version,
                         SCHEMA_VERSION);
        return 0;
}

/* Under the writers' lock, so that two processes creating or upgrading the
 * same database take turns. create: -EEXIST when there is a schema already
 * (init never takes over a mesh). */
static int store_migrate_pg(Store *s, bool create) {
        int64_t exists = 0, version = 0;
        int r;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_read_int(s, "SELECT to_regclass('schema_version') IS NOT NULL", &exists);
        if (r < 0)
                return r;
        if (exists && create)
                return -EEXIST;
        if (exists) {
                r = store_read_int(s, "SELECT COALESCE(MAX(version), 0) FROM schema_version", &version);
                if (r < 0)
                        return r;
        }
        r = schema_check_version(s, version, create);
        if (r < 0)
                return r;
        if (version == SCHEMA_VERSION)
                return 0; /* rolls back the empty transaction */
        if (version > 0 && version < PG_FIRST_VERSION)
                return log_error_errno(-EPROTONOSUPPORT, "%s: unknown database schema %" PRIi64 ".", s->path,
                                       version);
        if (version == 0)
                r = store_exec(s, pg_schema);
        else
                for (size_t i = (size_t) (version - PG_FIRST_VERSION); i < ELEMENTSOF(pg_steps) && r >= 0; i++)
                        r = store_exec(s, pg_steps[i]);
        if (r < 0)
                return r;
        r = store_commit(&tx);
        if (r >= 0 && version > 0)
                log_info("%s: database schema upgraded from version %" PRIi64 " to %i.", s->path, version,
                         SCHEMA_VERSION);
        return r;
}

int store_migrate(Store *s, bool create) {
        if (db_backend(s->db) == DB_POSTGRES)
                return store_migrate_pg(s, create);
        return store_migrate_sqlite(s, create);
}

int store_schema_version(void) {
        return SCHEMA_VERSION;
}

int store_create_pg_schema(Store *s) {
        return store_exec(s, pg_schema);
}

int store_destroy(Store *s) {
        if (db_backend(s->db) != DB_POSTGRES)
                return -EOPNOTSUPP;
        return store_exec(
                s, "DROP TABLE IF EXISTS routes, path_reports, nodes, authkeys, settings, schema_version");
}
