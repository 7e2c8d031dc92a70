/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The store itself: opening the SQLite database, its schema and migrations,
 * settings, the versions that tell readers what changed, and the helpers
 * that every store-*.c shares (store-private.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store-private.h"

#define SCHEMA_VERSION 7
#define BUSY_TIMEOUT_MSEC 5000

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

int store_error(Store *s, int rc, const char *what) {
        return log_error_errno(sqlite_to_errno(rc) ?: -EIO, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

int store_exec(Store *s, const char *sql) {
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return store_error(s, rc, sql);
        return 0;
}

int store_prepare(Store *s, const char *sql, sqlite3_stmt **ret) {
        int rc = sqlite3_prepare_v2(s->db, sql, -1, ret, NULL);
        if (rc != SQLITE_OK)
                return store_error(s, rc, "Failed to prepare statement");
        return 0;
}

/* Steps a statement; returns 1 for a row, 0 when done. */
int store_step(Store *s, sqlite3_stmt *stmt) {
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        if ((rc & 0xff) == SQLITE_CONSTRAINT)
                return -EEXIST; /* callers turn this into their own message */
        return store_error(s, rc, sqlite3_sql(stmt));
}

int store_begin(Store *s, bool write) {
        return store_exec(s, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

void store_rollbackp(Store **tx) {
        if (*tx)
                (void) sqlite3_exec((*tx)->db, "ROLLBACK", NULL, NULL, NULL);
}

int store_commit(Store **tx) {
        int r = store_exec(*tx, "COMMIT");
        if (r < 0)
                return r;
        *tx = NULL;
        return 0;
}

static int store_migrate(Store *s, bool create) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int version, r;

        r = store_prepare(s, "PRAGMA user_version", &stmt);
        if (r < 0)
                return r;
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        version = r > 0 ? sqlite3_column_int(stmt, 0) : 0;

        if (version == SCHEMA_VERSION)
                return 0;
        if (version > SCHEMA_VERSION)
                return log_error_errno(-EPROTONOSUPPORT,
                                       "%s: database schema %i is newer than this program (%i).", s->path,
                                       version, SCHEMA_VERSION);
        if (version == 0 && !create)
                return log_error_errno(-ENOMEDIUM, "%s: database not initialised, run 'meshd-control init'.",
                                       s->path);

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;
        if (version < 1) {
                r = store_exec(s, schema_v1);
                if (r < 0)
                        return r;
        }
        if (version < 2) {
                r = store_exec(s, schema_v2);
                if (r < 0)
                        return r;
        }
        if (version < 3) {
                r = store_exec(s, schema_v3);
                if (r < 0)
                        return r;
        }
        if (version < 4) {
                r = store_exec(s, schema_v4);
                if (r < 0)
                        return r;
        }
        if (version < 5) {
                r = store_exec(s, schema_v5);
                if (r < 0)
                        return r;
        }
        if (version < 6) {
                r = store_exec(s, schema_v6);
                if (r < 0)
                        return r;
        }
        if (version < 7) {
                r = store_exec(s, schema_v7);
                if (r < 0)
                        return r;
        }
        /* PRAGMA takes no parameters; the value is our own constant. */
        r = store_exec(s, "PRAGMA user_version = 7");
        if (r < 0)
                return r;
        r = store_commit(&tx);
        if (r < 0)
                return r;
        if (version > 0)
                log_info("%s: database schema upgraded from version %i to %i.", s->path, version,
                         SCHEMA_VERSION);
        return 0;
}

int store_open(const char *path, bool create, Store **ret) {
        _cleanup_(store_freep) Store *s = NULL;
        int rc, r;

        if (create) {
                /* O_EXCL: never overwrite a mesh; 0600: it holds token hashes. */
                _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0)
                        return -errno;
        }

        s = calloc(1, sizeof(*s));
        if (!s)
                return log_oom();
        s->path = strdup(path);
        if (!s->path)
                return log_oom();

        rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                if (!s->db)
                        return log_oom();
                if ((rc & 0xff) == SQLITE_CANTOPEN && access(path, F_OK) < 0)
                        return -ENOENT;
                return store_error(s, rc, "Failed to open database");
        }
        (void) sqlite3_extended_result_codes(s->db, 1);
        rc = sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MSEC);
        if (rc != SQLITE_OK)
                return store_error(s, rc, "Failed to set busy timeout");

        /* WAL: the server reads while the CLI writes. NORMAL is durable
         * enough in WAL mode (a power cut may lose the last commit, never
         * corrupt). */
        r = store_exec(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON");
        if (r < 0)
                return r;

        r = store_migrate(s, create);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        (void) sqlite3_close_v2(s->db);
        free(s->path);
        free(s);
        return NULL;
}

int store_set_setting(Store *s, const char *key, const char *value) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s,
                          "INSERT INTO settings (key, value) VALUES (?1, ?2) "
                          "ON CONFLICT (key) DO UPDATE SET value = ?2",
                          &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, value, -1, SQLITE_STATIC);
        r = store_step(s, stmt);
        return r < 0 ? r : 0;
}

/* ---- store_set_setting_once(): SQLite's; pgstore has its own */

int store_set_setting_once(Store *s, const char *key, const char *value) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        /* one statement: two processes that race both try, one row wins */
        r = store_prepare(s, "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                          &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, value, -1, SQLITE_STATIC);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) > 0 ? 0 : -EEXIST;
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
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        const char *v;
        int r;

        r = store_prepare(s, "SELECT value FROM settings WHERE key = ?1", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        v = (const char *) sqlite3_column_text(stmt, 0);
        if (!v)
                return -ENOENT;
        *ret = strdup(v);
        return *ret ? 0 : log_oom();
}

int store_get_int_setting(Store *s, const char *key, int64_t *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s, "SELECT value FROM settings WHERE key = ?1", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return log_error_errno(-EBADMSG, "%s: setting '%s' missing.", s->path, key);
        *ret = sqlite3_column_int64(stmt, 0);
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

int store_watch_init(Store *s, StoreWatch *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        /* PRAGMA data_version: one cheap read that changes when another
         * connection (meshd-control nodes remove, …) committed. */
        r = store_prepare(s, "PRAGMA data_version", &stmt);
        if (r < 0)
                return r;
        r = store_step(s, stmt);
        if (r <= 0)
                return r < 0 ? r : -EIO;
        *ret = (StoreWatch) { .seen = sqlite3_column_int64(stmt, 0) };
        return 0;
}

int store_changed(Store *s, StoreWatch *w) {
        StoreWatch now;
        int r;

        r = store_watch_init(s, &now);
        if (r < 0)
                return r;
        if (now.seen == w->seen)
                return 0;
        *w = now;
        return 1;
}

/* Inside a write transaction: every change goes with exactly one bump. */
int store_bump_version(Store *s) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s, "UPDATE settings SET value = value + 1 WHERE key = 'version'", &stmt);
        if (r < 0)
                return r;
        r = store_step(s, stmt);
        return r < 0 ? r : 0;
}

/* With a node registered or removed, next to store_bump_version(). */
int store_bump_members(Store *s) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s, "UPDATE settings SET value = value + 1 WHERE key = 'members'", &stmt);
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
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_int64(stmt, 1, id);
        r = store_step(s, stmt);
        return r < 0 ? r : 0;
}

int store_exists(Store *s, const char *sql, const char *text, int64_t number) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        if (text)
                sqlite3_bind_text(stmt, 1, text, -1, SQLITE_STATIC);
        else
                sqlite3_bind_int64(stmt, 1, number);
        return store_step(s, stmt);
}

int store_check_integrity(Store *s) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        const char *v;
        int r;

        /* quick_check reads every page (not the index/table cross-checks of
         * integrity_check): seconds for a large mesh, once per start. */
        r = store_prepare(s, "PRAGMA quick_check(1)", &stmt);
        if (r < 0)
                return r;
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        v = r > 0 ? (const char *) sqlite3_column_text(stmt, 0) : NULL;
        if (!v || !streq(v, "ok"))
                return log_error_errno(-EBADMSG, "%s: database is damaged (%s); restore it from a backup.",
                                       s->path, v ?: "no answer to quick_check");
        return 0;
}
