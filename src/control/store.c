/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "dns-label.h"
#include "ipam.h"
#include "log.h"
#include "store.h"
#include "strv.h"

#define SCHEMA_VERSION 4
#define BUSY_TIMEOUT_MSEC 5000
#define SECRET_BYTES 32
#define HASH_BYTES 32

struct Store {
        sqlite3 *db;
        char *path;
};

typedef struct SnapshotNode {
        int64_t id;
        char *body;  /* the node's JSON object without its closing brace */
        size_t len;
        char *public_key;
} SnapshotNode;

/* A pair of node ids, lo < hi, whose traffic goes through the hub. */
typedef struct RelayPair {
        int64_t lo, hi;
} RelayPair;

struct NetmapSnapshot {
        uint64_t version;
        char *header;  /* {"version":…,"domain":…,"ipv4_range":…,"ipv6_range":… */
        size_t header_len;
        char *hub;     /* ,"hub":{…} or NULL without a hub */
        size_t hub_len;
        SnapshotNode *nodes;  /* ordered by id */
        size_t n_nodes;
        size_t bodies_len;
        RelayPair *relays;    /* ordered by (lo, hi): one lookup per (self, peer) */
        size_t n_relays;

        /* What changed since the snapshot of version delta_base, computed
         * once for all the long-pollers that get a delta */
        bool has_delta;
        uint64_t delta_base;
        int64_t *changed_ids;     /* ordered: nodes new or with another body */
        size_t n_changed_ids;
        char **removed_keys;      /* strv: public keys of nodes gone */
        size_t removed_len;       /* their rendered length, quotes and commas included */
        RelayPair *relay_changes; /* pairs relayed in one snapshot but not the other */
        size_t n_relay_changes;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize);
DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

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
static const char schema_v2[] =
        "ALTER TABLE nodes ADD COLUMN observed_endpoint TEXT;"
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
static const char schema_v4[] =
        "ALTER TABLE nodes ADD COLUMN cert_not_after INTEGER;"; /* NULL: none issued */

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

static int store_error(Store *s, int rc, const char *what) {
        return log_error_errno(sqlite_to_errno(rc) ?: -EIO, "%s: %s: %s",
                               s->path, what, sqlite3_errmsg(s->db));
}

static int store_exec(Store *s, const char *sql) {
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return store_error(s, rc, sql);
        return 0;
}

static int store_prepare(Store *s, const char *sql, sqlite3_stmt **ret) {
        int rc = sqlite3_prepare_v2(s->db, sql, -1, ret, NULL);
        if (rc != SQLITE_OK)
                return store_error(s, rc, "Failed to prepare statement");
        return 0;
}

/* Steps a statement; returns 1 for a row, 0 when done. */
static int store_step(Store *s, sqlite3_stmt *stmt) {
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        if ((rc & 0xff) == SQLITE_CONSTRAINT)
                return -EEXIST; /* callers turn this into their own message */
        return store_error(s, rc, sqlite3_sql(stmt));
}

/* Transactions: store_begin(), then `_cleanup_(store_rollbackp) Store *tx = s;`
 * and store_commit(&tx) at the end: every early return rolls back. */
static int store_begin(Store *s, bool write) {
        return store_exec(s, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

static void store_rollbackp(Store **tx) {
        if (*tx)
                (void) sqlite3_exec((*tx)->db, "ROLLBACK", NULL, NULL, NULL);
}

static int store_commit(Store **tx) {
        int r = store_exec(*tx, "COMMIT");
        if (r < 0)
                return r;
        *tx = NULL;
        return 0;
}

static int hash_secret(const char *secret, uint8_t ret[static HASH_BYTES]) {
        int rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, secret, strlen(secret), ret);
        if (rc < 0)
                return log_error_errno(-EIO, "Failed to hash secret: %s", gnutls_strerror(rc));
        return 0;
}

int store_secret_new(const char *prefix, char **ret) {
        uint8_t bytes[SECRET_BYTES];
        char b64[sodium_base64_ENCODED_LEN(SECRET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
        char *s;

        if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t) sizeof(bytes))
                return log_error_errno(negative_errno(), "Failed to get random bytes: %m");
        sodium_bin2base64(b64, sizeof(b64), bytes, sizeof(bytes), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        explicit_bzero(bytes, sizeof(bytes));
        if (asprintf(&s, "%s%s", prefix ?: "", b64) < 0)
                return log_oom();
        explicit_bzero(b64, sizeof(b64));
        *ret = s;
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
                                       "%s: database schema %i is newer than this program (%i).",
                                       s->path, version, SCHEMA_VERSION);
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
        /* PRAGMA takes no parameters; the value is our own constant. */
        r = store_exec(s, "PRAGMA user_version = 4");
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

        r = store_prepare(s, "INSERT INTO settings (key, value) VALUES (?1, ?2) "
                             "ON CONFLICT (key) DO UPDATE SET value = ?2", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, value, -1, SQLITE_STATIC);
        r = store_step(s, stmt);
        return r < 0 ? r : 0;
}

int store_init_settings(Store *s, const char *url, const char *domain,
                        const char *ipv4_range, const char *ipv6_range) {
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

static int store_get_int_setting(Store *s, const char *key, int64_t *ret) {
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

int store_data_version(Store *s, int64_t *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s, "PRAGMA data_version", &stmt);
        if (r < 0)
                return r;
        r = store_step(s, stmt);
        if (r <= 0)
                return r < 0 ? r : -EIO;
        *ret = sqlite3_column_int64(stmt, 0);
        return 0;
}

/* Inside a write transaction: every change goes with exactly one bump. */
static int store_bump_version(Store *s) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s, "UPDATE settings SET value = value + 1 WHERE key = 'version'", &stmt);
        if (r < 0)
                return r;
        r = store_step(s, stmt);
        return r < 0 ? r : 0;
}

/* With a node registered or removed, next to store_bump_version(). */
static int store_bump_members(Store *s) {
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

int store_authkey_add(Store *s, const char *key, bool reusable, int64_t expires) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        uint8_t hash[HASH_BYTES];
        int r;

        r = hash_secret(key, hash);
        if (r < 0)
                return r;
        r = store_prepare(s, "INSERT INTO authkeys (hash, reusable, expires, created) "
                             "VALUES (?1, ?2, ?3, unixepoch())", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_blob(stmt, 1, hash, sizeof(hash), SQLITE_TRANSIENT);
        sqlite3_bind_int(stmt, 2, reusable);
        sqlite3_bind_int64(stmt, 3, expires);
        r = store_step(s, stmt);
        return r < 0 ? r : 0;
}

static int store_check_authkey(Store *s, const char *key, int64_t now, int64_t *ret_id) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        uint8_t hash[HASH_BYTES];
        int64_t expires;
        int r;

        r = hash_secret(key, hash);
        if (r < 0)
                return r;
        r = store_prepare(s, "SELECT id, reusable, expires, used FROM authkeys WHERE hash = ?1", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_blob(stmt, 1, hash, sizeof(hash), SQLITE_TRANSIENT);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOKEY;

        expires = sqlite3_column_int64(stmt, 2);
        if (expires != 0 && expires <= now)
                return -EKEYEXPIRED;
        if (!sqlite3_column_int(stmt, 1) && sqlite3_column_int64(stmt, 3) > 0)
                return -EKEYREJECTED;

        *ret_id = sqlite3_column_int64(stmt, 0);
        return 0;
}

/* One statement whose only parameter ?1 is an id, run to its end. */
static int store_exec_id(Store *s, const char *sql, int64_t id) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_int64(stmt, 1, id);
        r = store_step(s, stmt);
        return r < 0 ? r : 0;
}

static int store_use_authkey(Store *s, int64_t id) {
        return store_exec_id(s, "UPDATE authkeys SET used = used + 1 WHERE id = ?1", id);
}

static int store_exists(Store *s, const char *sql, const char *text, int64_t number) {
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

/* A name or address is taken by a member, and by a removed node until its
 * last certificate expires (the hold-back of schema_v4). */
#define TAKEN_AT_NOW "(removed IS NULL OR cert_not_after > ?2)"

static int store_taken(Store *s, const char *sql, const char *text, int64_t number, int64_t now) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        if (text)
                sqlite3_bind_text(stmt, 1, text, -1, SQLITE_STATIC);
        else
                sqlite3_bind_int64(stmt, 1, number);
        sqlite3_bind_int64(stmt, 2, now);
        return store_step(s, stmt);
}

static int name_in_use(Store *s, const char *name, int64_t now) {
        if (dns_label_is_reserved(name))
                return 1;
        return store_taken(s, "SELECT 1 FROM nodes WHERE name = ?1 AND " TAKEN_AT_NOW, name, 0, now);
}

typedef struct HostQuery {
        Store *store;
        int64_t now;
} HostQuery;

static int host_in_use(uint64_t host, void *userdata) {
        HostQuery *q = userdata;
        return store_taken(q->store, "SELECT 1 FROM nodes WHERE host = ?1 AND " TAKEN_AT_NOW, NULL,
                           (int64_t) host, q->now);
}

/* Smallest n such that "base" (n = 1) or "base-n" is free. One query over the
 * members that share the base name, not one per candidate. */
static int store_lowest_free_suffix(Store *s, const char *base, int64_t now, uint64_t *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        _cleanup_free_ uint8_t *taken = NULL;
        size_t n_taken = 0, base_len = strlen(base);
        uint64_t n;
        int r;

        r = store_prepare(s, "SELECT name FROM nodes WHERE " TAKEN_AT_NOW " AND "
                             "(name = ?1 OR name GLOB ?1 || '-[1-9]*')", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_text(stmt, 1, base, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, now);

        /* "localhost", "wpad", "hub", …: never a node's, so "localhost-2" */
        if (dns_label_is_reserved(base)) {
                taken = calloc(1, 1);
                if (!taken)
                        return log_oom();
                taken[0] = 1;
                n_taken = 1;
        }

        /* taken[i] marks suffix i + 1; at most one more than the rows */
        for (;;) {
                const char *name, *digits;
                char *end;
                unsigned long long k;

                r = store_step(s, stmt);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                name = (const char *) sqlite3_column_text(stmt, 0);
                if (!name)
                        continue;
                if (streq(name, base))
                        k = 1;
                else {
                        digits = name + base_len + 1;
                        errno = 0;
                        k = strtoull(digits, &end, 10);
                        if (errno != 0 || *end != 0 || k < 2)
                                continue;
                }
                if (k > n_taken) {
                        if (k > 1000000)
                                continue; /* far beyond anything we hand out */
                        uint8_t *t = realloc(taken, k);
                        if (!t)
                                return log_oom();
                        memset(t + n_taken, 0, k - n_taken);
                        taken = t;
                        n_taken = k;
                }
                taken[k - 1] = 1;
        }

        for (n = 1; n <= n_taken && taken[n - 1]; n++)
                ;
        *ret = n;
        return 0;
}

static int store_unique_name(Store *s, const char *label, int64_t now, char **ret) {
        char base[STORE_NAME_MAX + 1], name[STORE_NAME_MAX + 1];
        uint64_t n = 0;
        int r;

        if (strlen(label) > STORE_NAME_MAX)
                return -EINVAL;
        strcpy(base, label);

        r = store_lowest_free_suffix(s, base, now, &n);
        if (r < 0)
                return r;
        if (n == 1) {
                *ret = strdup(base);
                return *ret ? 0 : log_oom();
        }

        for (;; n++) {
                char suffix[24];
                size_t room;

                (void) snprintf(suffix, sizeof(suffix), "-%" PRIu64, n);
                room = STORE_NAME_MAX - strlen(suffix);
                if (strlen(base) > room) {
                        /* Long names: shorten the base so the suffix fits, and
                         * probe, since the shortened base has members of its own. */
                        base[room] = 0;
                        while (room > 0 && base[room - 1] == '-')
                                base[--room] = 0;
                }
                if (snprintf(name, sizeof(name), "%s%s", base, suffix) >= (int) sizeof(name))
                        return -ENAMETOOLONG; /* cannot happen: base was shortened to fit */
                r = name_in_use(s, name, now);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
        }

        *ret = strdup(name);
        return *ret ? 0 : log_oom();
}

static char *endpoints_to_json(char *const *endpoints) {
        _cleanup_(cJSON_Deletep) cJSON *a = cJSON_CreateArray();

        if (!a)
                return NULL;
        for (size_t i = 0; endpoints && endpoints[i]; i++) {
                cJSON *e = cJSON_CreateString(endpoints[i]);
                if (!e || !cJSON_AddItemToArray(a, e)) {
                        cJSON_Delete(e);
                        return NULL;
                }
        }
        return cJSON_PrintUnformatted(a);
}

static int endpoints_from_json(const char *json, char ***ret) {
        _cleanup_(cJSON_Deletep) cJSON *a = NULL;
        _cleanup_strv_free_ char **l = NULL;
        const cJSON *e;
        size_t n = 0;

        a = cJSON_Parse(json ?: "[]");
        if (!cJSON_IsArray(a))
                return -EBADMSG;
        l = calloc(cJSON_GetArraySize(a) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        cJSON_ArrayForEach(e, a) {
                if (!cJSON_IsString(e))
                        return -EBADMSG;
                l[n] = strdup(e->valuestring);
                if (!l[n])
                        return -ENOMEM;
                n++;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int store_read_range(Store *s, IpamRange *ret) {
        _cleanup_free_ char *v4 = NULL, *v6 = NULL;
        int r;

        r = store_get_setting(s, "ipv4_range", &v4);
        if (r < 0)
                return log_error_errno(r, "%s: no IPv4 range set: %m", s->path);
        r = store_get_setting(s, "ipv6_range", &v6);
        if (r < 0)
                return log_error_errno(r, "%s: no IPv6 range set: %m", s->path);
        r = ipam_range_parse(v4, v6, ret);
        if (r < 0)
                return log_error_errno(r, "%s: invalid address ranges '%s', '%s': %m", s->path, v4, v6);
        return 0;
}

static int store_allocate_host(Store *s, int64_t now, uint64_t *ret_host, char ipv4[static INET6_ADDRSTRLEN],
                               char ipv6[static INET6_ADDRSTRLEN]) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        IpamRange range;
        int64_t next = 0;
        uint64_t host;
        int r;

        r = store_read_range(s, &range);
        if (r < 0)
                return r;
        r = store_get_int_setting(s, "ipam_next", &next);
        if (r < 0)
                return r;
        r = ipam_allocate(&range, next > 0 ? (uint64_t) next : IPAM_HOST_FIRST, host_in_use,
                          &(HostQuery) { .store = s, .now = now }, &host);
        if (r < 0)
                return r;
        r = ipam_host_format(&range, host, ipv4, ipv6);
        if (r < 0)
                return r;

        r = store_prepare(s, "UPDATE settings SET value = ?1 WHERE key = 'ipam_next'", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_int64(stmt, 1, (int64_t) host + 1);
        r = store_step(s, stmt);
        if (r < 0)
                return r;

        *ret_host = host;
        return 0;
}

#define NODE_COLUMNS                                                                    \
        "id, name, public_key, ipv4, ipv6, endpoints, created, removed IS NOT NULL, " \
        "observed_endpoint, expired IS NOT NULL"
static int node_from_row(sqlite3_stmt *stmt, StoreNode *ret);

/* Inside store_register_node()'s transaction: when reg's key is a member's,
 * that member joins again with the new token (same id, name and addresses;
 * the old token stops working): an expired one is renewed unless the policy
 * wants an admin (-ESTALE), an active one re-joins after losing its state.
 * The caller has checked the proof of key possession. 1 when done. */
static int store_rejoin(Store *s, const StoreRegistration *reg, int64_t authkey_id,
                        const uint8_t token_hash[static HASH_BYTES], const char *endpoints_json,
                        StoreNode *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *find = NULL, *stmt = NULL;
        bool expired;
        int64_t id;
        int r;

        r = store_prepare(s, "SELECT id, expired IS NOT NULL FROM nodes WHERE public_key = ?1 AND removed IS NULL",
                          &find);
        if (r < 0)
                return r;
        sqlite3_bind_text(find, 1, reg->public_key, -1, SQLITE_STATIC);
        r = store_step(s, find);
        if (r <= 0)
                return r;
        id = sqlite3_column_int64(find, 0);
        expired = sqlite3_column_int(find, 1);
        if (expired && reg->expired_needs_admin)
                return -ESTALE;

        r = store_prepare(s, "UPDATE nodes SET expired = NULL, token_hash = ?2, endpoints = ?3, authkey_id = ?4 "
                             "WHERE id = ?1 RETURNING " NODE_COLUMNS, &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_int64(stmt, 1, id);
        sqlite3_bind_blob(stmt, 2, token_hash, HASH_BYTES, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, endpoints_json, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 4, authkey_id);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return log_error_errno(-EIO, "%s: node %" PRId64 " vanished inside a transaction.", s->path, id);
        r = node_from_row(stmt, ret);
        if (r < 0)
                return r;
        r = store_step(s, stmt);
        if (r >= 0)
                r = store_use_authkey(s, authkey_id);
        if (r >= 0 && expired)
                r = store_bump_members(s);
        if (r >= 0)
                r = store_bump_version(s);
        if (r < 0) {
                store_node_done(ret);
                return r;
        }
        return 1;
}

int store_register_node(Store *s, const StoreRegistration *reg, int64_t now, StoreNode *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        _cleanup_free_ char *name = NULL, *endpoints = NULL;
        _cleanup_strv_free_ char **endpoints_copy = NULL;
        char ipv4[INET6_ADDRSTRLEN], ipv6[INET6_ADDRSTRLEN];
        uint8_t token_hash[HASH_BYTES];
        int64_t authkey_id;
        uint64_t host;
        int r;

        endpoints = endpoints_to_json(reg->endpoints);
        if (!endpoints)
                return log_oom();
        if (strv_copy(reg->endpoints, &endpoints_copy) < 0)
                return log_oom();
        r = hash_secret(reg->token, token_hash);
        if (r < 0)
                return r;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_check_authkey(s, reg->authkey, now, &authkey_id);
        if (r < 0)
                return r;
        r = store_rejoin(s, reg, authkey_id, token_hash, endpoints, ret);
        if (r < 0)
                return r;
        if (r > 0) {
                r = store_commit(&tx);
                if (r < 0)
                        store_node_done(ret);
                return r;
        }
        /* Every netmap carries the hub; a node with its key would make
         * every node reject every netmap. */
        r = store_exists(s, "SELECT 1 FROM settings WHERE key = 'hub_public_key' AND value = ?1",
                         reg->public_key, 0);
        if (r < 0)
                return r;
        if (r > 0)
                return -EEXIST;
        r = store_unique_name(s, reg->name, now, &name);
        if (r < 0)
                return r;
        r = store_allocate_host(s, now, &host, ipv4, ipv6);
        if (r < 0)
                return r;

        r = store_prepare(s, "INSERT INTO nodes (name, public_key, host, ipv4, ipv6, token_hash, "
                             "endpoints, authkey_id, created) "
                             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, reg->public_key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 3, (int64_t) host);
        sqlite3_bind_text(stmt, 4, ipv4, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 5, ipv6, -1, SQLITE_STATIC);
        sqlite3_bind_blob(stmt, 6, token_hash, sizeof(token_hash), SQLITE_STATIC);
        sqlite3_bind_text(stmt, 7, endpoints, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 8, authkey_id);
        sqlite3_bind_int64(stmt, 9, now);
        r = store_step(s, stmt);
        if (r < 0)
                return r == -EEXIST ? log_error_errno(-EIO, "%s: node row conflicts after checks.", s->path) : r;

        r = store_use_authkey(s, authkey_id);
        if (r < 0)
                return r;
        r = store_bump_members(s);
        if (r < 0)
                return r;
        r = store_bump_version(s);
        if (r < 0)
                return r;

        *ret = (StoreNode) {
                .id = sqlite3_last_insert_rowid(s->db),
                .name = TAKE_PTR(name),
                .public_key = strdup(reg->public_key),
                .ipv4 = strdup(ipv4),
                .ipv6 = strdup(ipv6),
                .endpoints = TAKE_PTR(endpoints_copy),
                .created = now,
        };
        if (!ret->public_key || !ret->ipv4 || !ret->ipv6) {
                store_node_done(ret);
                return log_oom();
        }

        r = store_commit(&tx);
        if (r < 0) {
                store_node_done(ret);
                return r;
        }
        return 0;
}

void store_node_done(StoreNode *n) {
        if (!n)
                return;
        free(n->name);
        free(n->public_key);
        free(n->ipv4);
        free(n->ipv6);
        strv_free(n->endpoints);
        free(n->observed_endpoint);
        *n = (StoreNode) {};
}

void store_nodes_free(StoreNode *nodes, size_t n) {
        for (size_t i = 0; i < n; i++)
                store_node_done(nodes + i);
        free(nodes);
}


static int node_from_row(sqlite3_stmt *stmt, StoreNode *ret) {
        StoreNode n = {
                .id = sqlite3_column_int64(stmt, 0),
                .created = sqlite3_column_int64(stmt, 6),
                .removed = sqlite3_column_int(stmt, 7),
                .expired = sqlite3_column_int(stmt, 9),
        };
        const char *cols[] = {
                (const char *) sqlite3_column_text(stmt, 1),
                (const char *) sqlite3_column_text(stmt, 2),
                (const char *) sqlite3_column_text(stmt, 3),
                (const char *) sqlite3_column_text(stmt, 4),
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(cols); i++)
                if (!cols[i])
                        return -EBADMSG;
        n.name = strdup(cols[0]);
        n.public_key = strdup(cols[1]);
        n.ipv4 = strdup(cols[2]);
        n.ipv6 = strdup(cols[3]);
        if (!n.name || !n.public_key || !n.ipv4 || !n.ipv6) {
                store_node_done(&n);
                return -ENOMEM;
        }
        r = endpoints_from_json((const char *) sqlite3_column_text(stmt, 5), &n.endpoints);
        if (r < 0) {
                store_node_done(&n);
                return r;
        }
        if (sqlite3_column_type(stmt, 8) == SQLITE_TEXT) {
                n.observed_endpoint = strdup((const char *) sqlite3_column_text(stmt, 8));
                if (!n.observed_endpoint) {
                        store_node_done(&n);
                        return -ENOMEM;
                }
        }
        *ret = n;
        return 0;
}

int store_node_by_token(Store *s, const char *token, StoreNode *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        uint8_t hash[HASH_BYTES];
        int r;

        r = hash_secret(token, hash);
        if (r < 0)
                return r;
        r = store_prepare(s, "SELECT " NODE_COLUMNS " FROM nodes WHERE token_hash = ?1", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_blob(stmt, 1, hash, sizeof(hash), SQLITE_TRANSIENT);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        return node_from_row(stmt, ret);
}

static int store_get_endpoints_json(Store *s, int64_t id, char **ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        const char *v;
        int r;

        r = store_prepare(s, "SELECT endpoints FROM nodes WHERE id = ?1 AND removed IS NULL", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_int64(stmt, 1, id);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        v = (const char *) sqlite3_column_text(stmt, 0);
        *ret = strdup(v ?: "[]");
        return *ret ? 0 : -ENOMEM;
}

int store_set_endpoints(Store *s, int64_t id, char *const *endpoints) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        _cleanup_free_ char *json = NULL, *old = NULL;
        int r;

        json = endpoints_to_json(endpoints);
        if (!json)
                return log_oom();

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_get_endpoints_json(s, id, &old);
        if (r < 0)
                return r;
        /* Nodes re-announce periodically; a no-op must not wake the whole mesh. */
        if (streq(old, json))
                return 0; /* rolls back the empty transaction */

        r = store_prepare(s, "UPDATE nodes SET endpoints = ?1 WHERE id = ?2", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_text(stmt, 1, json, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, id);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        r = store_bump_version(s);
        if (r < 0)
                return r;
        r = store_commit(&tx);
        return r < 0 ? r : 1;
}

/* Inside a transaction: node id left the netmaps (removed or expired). Its
 * path reports go, and members and version move. */
static int store_node_left(Store *s, int64_t id) {
        int r;

        r = store_exec_id(s, "DELETE FROM path_reports WHERE reporter_id = ?1 OR peer_id = ?1", id);
        if (r < 0)
                return r;
        r = store_bump_members(s);
        if (r < 0)
                return r;
        return store_bump_version(s);
}

int store_remove_node(Store *s, const char *name) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int64_t id;
        int r;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_prepare(s, "UPDATE nodes SET removed = unixepoch() WHERE name = ?1 AND removed IS NULL "
                             "RETURNING id", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;

        /* The row stays (its token must keep getting 403), its path reports go. */
        id = sqlite3_column_int64(stmt, 0);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        r = store_node_left(s, id);
        if (r < 0)
                return r;
        return store_commit(&tx);
}

/* The id of member name, inside a transaction; -ENOENT for no member,
 * -EALREADY when its expired state is already want_expired. */
static int store_member_expired_state(Store *s, const char *name, bool want_expired, int64_t *ret_id) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s, "SELECT id, expired IS NOT NULL FROM nodes WHERE name = ?1 AND removed IS NULL",
                          &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        if (!!sqlite3_column_int(stmt, 1) == want_expired)
                return -EALREADY;
        *ret_id = sqlite3_column_int64(stmt, 0);
        return 0;
}

int store_expire_node(Store *s, const char *name) {
        int64_t id;
        int r;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_member_expired_state(s, name, true, &id);
        if (r < 0)
                return r;
        r = store_exec_id(s, "UPDATE nodes SET expired = unixepoch() WHERE id = ?1", id);
        if (r < 0)
                return r;
        r = store_node_left(s, id);
        if (r < 0)
                return r;
        return store_commit(&tx);
}

int store_renew_node(Store *s, const char *name) {
        int64_t id;
        int r;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_member_expired_state(s, name, false, &id);
        if (r < 0)
                return r;

        /* its token works again: the node comes back on its next request */
        r = store_exec_id(s, "UPDATE nodes SET expired = NULL WHERE id = ?1", id);
        if (r >= 0)
                r = store_bump_members(s);
        if (r >= 0)
                r = store_bump_version(s);
        if (r < 0)
                return r;
        return store_commit(&tx);
}

int store_note_certificate(Store *s, int64_t id, int64_t not_after) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s, "UPDATE nodes SET cert_not_after = MAX(COALESCE(cert_not_after, 0), ?2) "
                             "WHERE id = ?1", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_int64(stmt, 1, id);
        sqlite3_bind_int64(stmt, 2, not_after);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

int store_list_held(Store *s, int64_t now, StoreHeld **ret, size_t *ret_n) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        StoreHeld *l = NULL;
        size_t n = 0;
        int r;

        r = store_prepare(s, "SELECT name, ipv4, ipv6, cert_not_after FROM nodes "
                             "WHERE removed IS NOT NULL AND cert_not_after > ?1 ORDER BY id", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_int64(stmt, 1, now);
        for (;;) {
                StoreHeld *nl;

                r = store_step(s, stmt);
                if (r < 0)
                        break;
                if (r == 0) {
                        *ret = l;
                        *ret_n = n;
                        return 0;
                }
                nl = reallocarray(l, n + 1, sizeof(StoreHeld));
                if (!nl) {
                        r = log_oom();
                        break;
                }
                l = nl;
                l[n] = (StoreHeld) {
                        .name = strdup((const char *) sqlite3_column_text(stmt, 0) ?: ""),
                        .ipv4 = strdup((const char *) sqlite3_column_text(stmt, 1) ?: ""),
                        .ipv6 = strdup((const char *) sqlite3_column_text(stmt, 2) ?: ""),
                        .until = sqlite3_column_int64(stmt, 3),
                };
                n++;
                if (!l[n - 1].name || !l[n - 1].ipv4 || !l[n - 1].ipv6) {
                        r = log_oom();
                        break;
                }
        }
        store_held_free(l, n);
        return r;
}

void store_held_free(StoreHeld *l, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(l[i].name);
                free(l[i].ipv4);
                free(l[i].ipv6);
        }
        free(l);
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

typedef struct NodeArray {
        StoreNode *nodes;
        size_t n;
} NodeArray;

static void node_array_done(NodeArray *a) {
        store_nodes_free(a->nodes, a->n);
        *a = (NodeArray) {};
}

/* Callers hold a transaction when they need the list to match a version. */
static int store_list_nodes_internal(Store *s, bool include_expired, NodeArray *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        _cleanup_(node_array_done) NodeArray a = {};
        size_t allocated = 0;
        int r;

        r = store_prepare(s, include_expired
                                ? "SELECT " NODE_COLUMNS " FROM nodes WHERE removed IS NULL ORDER BY id"
                                : "SELECT " NODE_COLUMNS " FROM nodes WHERE removed IS NULL AND expired IS NULL "
                                  "ORDER BY id",
                          &stmt);
        if (r < 0)
                return r;
        for (;;) {
                r = store_step(s, stmt);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (a.n == allocated) {
                        size_t k = MAX(allocated * 2, (size_t) 16);
                        StoreNode *t = reallocarray(a.nodes, k, sizeof(StoreNode));
                        if (!t)
                                return log_oom();
                        a.nodes = t;
                        allocated = k;
                }
                r = node_from_row(stmt, a.nodes + a.n);
                if (r < 0)
                        return log_error_errno(r, "%s: failed to read node row: %m", s->path);
                a.n++;
        }

        *ret = a;
        a = (NodeArray) {};
        return 0;
}

int store_list_nodes(Store *s, bool include_expired, StoreNode **ret, size_t *ret_n) {
        NodeArray a;
        int r;

        r = store_list_nodes_internal(s, include_expired, &a);
        if (r < 0)
                return r;
        *ret = a.nodes;
        *ret_n = a.n;
        return 0;
}

NetmapSnapshot *netmap_snapshot_free(NetmapSnapshot *snap) {
        if (!snap)
                return NULL;
        for (size_t i = 0; i < snap->n_nodes; i++) {
                free(snap->nodes[i].body);
                free(snap->nodes[i].public_key);
        }
        free(snap->nodes);
        free(snap->header);
        free(snap->hub);
        free(snap->relays);
        free(snap->changed_ids);
        strv_free(snap->removed_keys);
        free(snap->relay_changes);
        free(snap);
        return NULL;
}

/* cJSON prints "{…}"; we keep "{…" and close it per use. */
static int json_print_open(const cJSON *obj, char **ret, size_t *ret_len) {
        char *p = cJSON_PrintUnformatted(obj);
        size_t len;

        if (!p)
                return -ENOMEM;
        len = strlen(p);
        if (len < 2 || p[len - 1] != '}') {
                free(p);
                return -EINVAL;
        }
        p[--len] = 0;
        *ret = p;
        *ret_len = len;
        return 0;
}

int netmap_endpoints_compose(const char *observed, char *const *announced, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;

        l = calloc(strv_length(announced) + 2, sizeof(char *));
        if (!l)
                return -ENOMEM;
        if (observed) {
                l[n] = strdup(observed);
                if (!l[n++])
                        return -ENOMEM;
        }
        for (size_t i = 0; announced && announced[i]; i++) {
                bool seen = false;

                /* at most STORE_ENDPOINTS_MAX + 1 entries: quadratic is cheapest */
                for (size_t j = 0; j < n && !seen; j++)
                        seen = streq(l[j], announced[i]);
                if (seen)
                        continue;
                l[n] = strdup(announced[i]);
                if (!l[n++])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int snapshot_node_render(const StoreNode *n, SnapshotNode *ret) {
        _cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();
        _cleanup_strv_free_ char **endpoints = NULL;
        cJSON *a;

        if (netmap_endpoints_compose(n->observed_endpoint, n->endpoints, &endpoints) < 0)
                return -ENOMEM;

        if (!o ||
            !cJSON_AddStringToObject(o, "name", n->name) ||
            !cJSON_AddStringToObject(o, "public_key", n->public_key) ||
            !cJSON_AddStringToObject(o, "ipv4", n->ipv4) ||
            !cJSON_AddStringToObject(o, "ipv6", n->ipv6) ||
            !(a = cJSON_AddArrayToObject(o, "endpoints")))
                return -ENOMEM;
        for (size_t i = 0; endpoints[i]; i++) {
                cJSON *e = cJSON_CreateString(endpoints[i]);
                if (!e || !cJSON_AddItemToArray(a, e)) {
                        cJSON_Delete(e);
                        return -ENOMEM;
                }
        }

        ret->id = n->id;
        ret->public_key = strdup(n->public_key);
        if (!ret->public_key)
                return -ENOMEM;
        return json_print_open(o, &ret->body, &ret->len);
}

static int snapshot_header_render(Store *s, uint64_t version, char **ret, size_t *ret_len) {
        static const char *const keys[] = { "domain", "ipv4_range", "ipv6_range" };
        _cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();
        _cleanup_free_ char *fields = NULL;
        size_t len;
        char *h;
        int r;

        if (!o)
                return log_oom();
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *v = NULL;
                r = store_get_setting(s, keys[i], &v);
                if (r < 0)
                        return log_error_errno(r, "%s: setting '%s' missing: %m", s->path, keys[i]);
                if (!cJSON_AddStringToObject(o, keys[i], v))
                        return log_oom();
        }
        r = json_print_open(o, &fields, &len);
        if (r < 0)
                return log_oom();
        /* fields is "{"domain":…" — splice the integer version in front exactly */
        if (asprintf(&h, "{\"version\":%" PRIu64 ",%s", version, fields + 1) < 0)
                return log_oom();
        *ret_len = strlen(h);
        *ret = h;
        return 0;
}

static int snapshot_hub_render(Store *s, const NetmapHub *hub, char **ret, size_t *ret_len) {
        _cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();
        _cleanup_free_ char *text = NULL;
        char ipv4[INET6_ADDRSTRLEN], ipv6[INET6_ADDRSTRLEN];
        IpamRange range;
        cJSON *a, *e;
        int r;

        r = store_read_range(s, &range);
        if (r < 0)
                return r;
        r = ipam_host_format(&range, IPAM_HOST_HUB, ipv4, ipv6);
        if (r < 0)
                return log_error_errno(r, "%s: no hub address in the mesh ranges: %m", s->path);

        if (!o ||
            !cJSON_AddStringToObject(o, "public_key", hub->public_key) ||
            !cJSON_AddStringToObject(o, "ipv4", ipv4) ||
            !cJSON_AddStringToObject(o, "ipv6", ipv6) ||
            !(a = cJSON_AddArrayToObject(o, "endpoints")))
                return log_oom();
        e = cJSON_CreateString(hub->endpoint);
        if (!e || !cJSON_AddItemToArray(a, e)) {
                cJSON_Delete(e);
                return log_oom();
        }
        if (hub->relay_port != 0 && !cJSON_AddNumberToObject(o, "relay_port", hub->relay_port))
                return log_oom();
        text = cJSON_PrintUnformatted(o);
        if (!text)
                return log_oom();
        if (asprintf(ret, ",\"hub\":%s", text) < 0)
                return log_oom();
        *ret_len = strlen(*ret);
        return 0;
}

/* Pairs of members with at least one direct=false report, each once. */
static int store_load_relays(Store *s, RelayPair **ret, size_t *ret_n) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        _cleanup_free_ RelayPair *pairs = NULL;
        size_t n = 0, allocated = 0;
        int r;

        r = store_prepare(s, "SELECT DISTINCT min(p.reporter_id, p.peer_id), max(p.reporter_id, p.peer_id) "
                             "FROM path_reports p "
                             "JOIN nodes a ON a.id = p.reporter_id AND a.removed IS NULL "
                             "JOIN nodes b ON b.id = p.peer_id AND b.removed IS NULL "
                             "WHERE p.direct = 0 ORDER BY 1, 2", &stmt);
        if (r < 0)
                return r;
        for (;;) {
                r = store_step(s, stmt);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (n == allocated) {
                        size_t k = MAX(allocated * 2, (size_t) 16);
                        RelayPair *t = reallocarray(pairs, k, sizeof(RelayPair));
                        if (!t)
                                return log_oom();
                        pairs = t;
                        allocated = k;
                }
                pairs[n++] = (RelayPair) { sqlite3_column_int64(stmt, 0), sqlite3_column_int64(stmt, 1) };
        }
        *ret = TAKE_PTR(pairs);
        *ret_n = n;
        return 0;
}

int netmap_snapshot_load(Store *s, const NetmapHub *hub, NetmapSnapshot **ret) {
        _cleanup_(netmap_snapshot_freep) NetmapSnapshot *snap = NULL;
        _cleanup_(node_array_done) NodeArray a = {};
        int r;

        snap = calloc(1, sizeof(*snap));
        if (!snap)
                return log_oom();

        /* one read transaction: version and nodes from the same commit */
        r = store_begin(s, false);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_get_version(s, &snap->version);
        if (r < 0)
                return r;
        r = snapshot_header_render(s, snap->version, &snap->header, &snap->header_len);
        if (r < 0)
                return r;
        if (hub) {
                r = snapshot_hub_render(s, hub, &snap->hub, &snap->hub_len);
                if (r < 0)
                        return r;
        }
        r = store_list_nodes_internal(s, false, &a);
        if (r < 0)
                return r;
        r = store_load_relays(s, &snap->relays, &snap->n_relays);
        if (r < 0)
                return r;
        r = store_commit(&tx);
        if (r < 0)
                return r;

        snap->nodes = calloc(MAX(a.n, (size_t) 1), sizeof(SnapshotNode));
        if (!snap->nodes)
                return log_oom();
        for (size_t i = 0; i < a.n; i++) {
                r = snapshot_node_render(a.nodes + i, snap->nodes + i);
                if (r < 0)
                        return log_oom();
                snap->n_nodes++;
                snap->bodies_len += snap->nodes[i].len;
        }

        *ret = TAKE_PTR(snap);
        return 0;
}

uint64_t netmap_snapshot_version(const NetmapSnapshot *snap) {
        return snap->version;
}

static const SnapshotNode *snapshot_find(const NetmapSnapshot *snap, int64_t id) {
        size_t lo = 0, hi = snap->n_nodes;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (snap->nodes[mid].id == id)
                        return snap->nodes + mid;
                if (snap->nodes[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

bool netmap_snapshot_has_node(const NetmapSnapshot *snap, int64_t id) {
        return snapshot_find(snap, id);
}

bool netmap_snapshot_relayed(const NetmapSnapshot *snap, int64_t a, int64_t b) {
        int64_t lo = MIN(a, b), hi = MAX(a, b);
        size_t l = 0, h = snap->n_relays;

        while (l < h) {
                size_t mid = l + (h - l) / 2;
                const RelayPair *p = snap->relays + mid;

                if (p->lo == lo && p->hi == hi)
                        return true;
                if (p->lo < lo || (p->lo == lo && p->hi < hi))
                        l = mid + 1;
                else
                        h = mid;
        }
        return false;
}

int netmap_snapshot_render(const NetmapSnapshot *snap, int64_t self_id, char **ret, size_t *ret_len) {
        static const char self_open[] = ",\"self\":", peers_open[] = "},\"peers\":[",
                          direct_close[] = ",\"relay\":false}", relay_close[] = ",\"relay\":true}";
        const SnapshotNode *self;
        size_t size;
        char *buf, *p;

        self = snapshot_find(snap, self_id);
        if (!self)
                return -ENOENT;

        size = snap->header_len + strlen(self_open) + self->len + strlen(peers_open) +
               snap->bodies_len + snap->n_nodes * (strlen(direct_close) + 1) + 1 + snap->hub_len + 2;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;

        p = mempcpy(buf, snap->header, snap->header_len);
        p = mempcpy(p, self_open, strlen(self_open));
        p = mempcpy(p, self->body, self->len);
        p = mempcpy(p, peers_open, strlen(peers_open));
        for (size_t i = 0; i < snap->n_nodes; i++) {
                const SnapshotNode *n = snap->nodes + i;
                if (n == self)
                        continue;
                if (p[-1] == '}')
                        *p++ = ',';
                p = mempcpy(p, n->body, n->len);
                if (netmap_snapshot_relayed(snap, self_id, n->id))
                        p = mempcpy(p, relay_close, strlen(relay_close));
                else
                        p = mempcpy(p, direct_close, strlen(direct_close));
        }
        *p++ = ']';
        if (snap->hub)
                p = mempcpy(p, snap->hub, snap->hub_len);
        *p++ = '}';
        *p = 0;

        *ret_len = p - buf;
        *ret = buf;
        return 0;
}

static int relay_pair_compare(const RelayPair *a, const RelayPair *b) {
        if (a->lo != b->lo)
                return a->lo < b->lo ? -1 : 1;
        if (a->hi != b->hi)
                return a->hi < b->hi ? -1 : 1;
        return 0;
}

/* One merge walk over both (ordered) node lists and both relay lists. */
static int snapshot_delta_prepare(NetmapSnapshot *snap, const NetmapSnapshot *prev) {
        _cleanup_free_ int64_t *changed = NULL;
        _cleanup_free_ RelayPair *relays = NULL;
        _cleanup_strv_free_ char **removed = NULL;
        size_t n_changed = 0, n_removed = 0, n_relays = 0, removed_len = 0, i = 0, j = 0;

        changed = calloc(MAX(snap->n_nodes, (size_t) 1), sizeof(int64_t));
        removed = calloc(prev->n_nodes + 1, sizeof(char *));
        relays = calloc(MAX(snap->n_relays + prev->n_relays, (size_t) 1), sizeof(RelayPair));
        if (!changed || !removed || !relays)
                return -ENOMEM;

        while (i < snap->n_nodes || j < prev->n_nodes) {
                const SnapshotNode *a = i < snap->n_nodes ? snap->nodes + i : NULL;
                const SnapshotNode *b = j < prev->n_nodes ? prev->nodes + j : NULL;

                if (a && (!b || a->id < b->id)) {
                        changed[n_changed++] = a->id;
                        i++;
                } else if (b && (!a || b->id < a->id)) {
                        removed[n_removed] = strdup(b->public_key);
                        if (!removed[n_removed])
                                return -ENOMEM;
                        removed_len += strlen(b->public_key) + 3;
                        n_removed++;
                        j++;
                } else {
                        if (a->len != b->len || memcmp(a->body, b->body, a->len) != 0)
                                changed[n_changed++] = a->id;
                        i++;
                        j++;
                }
        }

        for (i = 0, j = 0; i < snap->n_relays || j < prev->n_relays;) {
                int c = i >= snap->n_relays ? 1
                        : j >= prev->n_relays ? -1
                        : relay_pair_compare(snap->relays + i, prev->relays + j);
                if (c < 0)
                        relays[n_relays++] = snap->relays[i++];
                else if (c > 0)
                        relays[n_relays++] = prev->relays[j++];
                else
                        i++, j++;
        }

        free(snap->changed_ids);
        strv_free(snap->removed_keys);
        free(snap->relay_changes);
        snap->changed_ids = TAKE_PTR(changed);
        snap->n_changed_ids = n_changed;
        snap->removed_keys = TAKE_PTR(removed);
        snap->removed_len = removed_len;
        snap->relay_changes = TAKE_PTR(relays);
        snap->n_relay_changes = n_relays;
        snap->delta_base = prev->version;
        snap->has_delta = true;
        return 0;
}

static bool id_in_sorted(const int64_t *ids, size_t n, int64_t id) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (ids[mid] == id)
                        return true;
                if (ids[mid] < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return false;
}

int netmap_snapshot_render_delta(NetmapSnapshot *snap, const NetmapSnapshot *prev, int64_t self_id, char **ret,
                                 size_t *ret_len) {
        static const char self_open[] = ",\"self\":", direct_close[] = ",\"relay\":false}",
                          relay_close[] = ",\"relay\":true}", removed_open[] = "],\"peers_removed\":[";
        const SnapshotNode *self;
        char delta_open[64];
        size_t size, n_delta_open;
        char *buf, *p;
        int r;

        self = snapshot_find(snap, self_id);
        if (!self)
                return -ENOENT;
        if (!snapshot_find(prev, self_id))
                return -ESTALE;
        if (!snap->has_delta || snap->delta_base != prev->version) {
                r = snapshot_delta_prepare(snap, prev);
                if (r < 0)
                        return r;
        }

        n_delta_open = (size_t) snprintf(delta_open, sizeof(delta_open),
                                         "},\"delta_from\":%" PRIu64 ",\"peers_changed\":[", prev->version);
        /* an upper bound: every changed node, and once more for every relay change */
        size = snap->header_len + strlen(self_open) + self->len + n_delta_open + strlen(removed_open) +
               snap->removed_len + snap->hub_len + 3;
        for (size_t i = 0; i < snap->n_changed_ids; i++)
                size += snapshot_find(snap, snap->changed_ids[i])->len + strlen(direct_close) + 1;
        for (size_t i = 0; i < snap->n_relay_changes; i++) {
                const RelayPair *pair = snap->relay_changes + i;
                const SnapshotNode *peer;

                if (pair->lo != self_id && pair->hi != self_id)
                        continue;
                peer = snapshot_find(snap, pair->lo == self_id ? pair->hi : pair->lo);
                if (peer)
                        size += peer->len + strlen(direct_close) + 1;
        }

        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        p = mempcpy(buf, snap->header, snap->header_len);
        p = mempcpy(p, self_open, strlen(self_open));
        p = mempcpy(p, self->body, self->len);
        p = mempcpy(p, delta_open, n_delta_open);

#define APPEND_PEER(n)                                                                        \
        do {                                                                                  \
                if (p[-1] == '}')                                                             \
                        *p++ = ',';                                                           \
                p = mempcpy(p, (n)->body, (n)->len);                                          \
                p = netmap_snapshot_relayed(snap, self_id, (n)->id)                           \
                        ? mempcpy(p, relay_close, strlen(relay_close))                        \
                        : mempcpy(p, direct_close, strlen(direct_close));                     \
        } while (0)

        for (size_t i = 0; i < snap->n_changed_ids; i++)
                if (snap->changed_ids[i] != self_id)
                        APPEND_PEER(snapshot_find(snap, snap->changed_ids[i]));
        for (size_t i = 0; i < snap->n_relay_changes; i++) {
                const RelayPair *pair = snap->relay_changes + i;
                int64_t other;
                const SnapshotNode *peer;

                if (pair->lo != self_id && pair->hi != self_id)
                        continue;
                other = pair->lo == self_id ? pair->hi : pair->lo;
                peer = snapshot_find(snap, other);
                /* gone (then in peers_removed) or listed already */
                if (!peer || id_in_sorted(snap->changed_ids, snap->n_changed_ids, other))
                        continue;
                APPEND_PEER(peer);
        }
#undef APPEND_PEER

        p = mempcpy(p, removed_open, strlen(removed_open));
        for (size_t i = 0; snap->removed_keys[i]; i++)
                p += sprintf(p, "%s\"%s\"", i > 0 ? "," : "", snap->removed_keys[i]);
        *p++ = ']';
        if (snap->hub)
                p = mempcpy(p, snap->hub, snap->hub_len);
        *p++ = '}';
        *p = 0;
        assert(p < buf + size);

        *ret_len = p - buf;
        *ret = buf;
        return 0;
}

int store_set_observed_endpoints(Store *s, const StoreObservation *observations, size_t n) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int changed = 0, r;

        if (n == 0)
                return 0;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_prepare(s, "UPDATE nodes SET observed_endpoint = ?2 "
                             "WHERE id = ?1 AND removed IS NULL AND observed_endpoint IS NOT ?2", &stmt);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                sqlite3_reset(stmt);
                sqlite3_bind_int64(stmt, 1, observations[i].id);
                sqlite3_bind_text(stmt, 2, observations[i].endpoint, -1, SQLITE_STATIC);
                r = store_step(s, stmt);
                if (r < 0)
                        return r;
                changed += sqlite3_changes(s->db) > 0;
        }
        if (changed == 0)
                return 0; /* rolls back the empty transaction */

        r = store_bump_version(s);
        if (r < 0)
                return r;
        r = store_commit(&tx);
        return r < 0 ? r : changed;
}

static int store_pair_relayed_internal(Store *s, sqlite3_stmt *stmt, int64_t a, int64_t b) {
        int r;

        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, a);
        sqlite3_bind_int64(stmt, 2, b);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        return r > 0 && sqlite3_column_int(stmt, 0) != 0;
}

#define PAIR_RELAYED_SQL                                                               \
        "SELECT EXISTS (SELECT 1 FROM path_reports WHERE direct = 0 AND "              \
        "((reporter_id = ?1 AND peer_id = ?2) OR (reporter_id = ?2 AND peer_id = ?1)))"

int store_pair_relayed(Store *s, int64_t a, int64_t b) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s, PAIR_RELAYED_SQL, &stmt);
        if (r < 0)
                return r;
        return store_pair_relayed_internal(s, stmt, a, b);
}

int store_report_paths(Store *s, int64_t reporter_id, const StorePathReport *reports, size_t n, int64_t now) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *member = NULL, *relayed = NULL, *upsert = NULL;
        int changed = 0, r;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_exists(s, "SELECT 1 FROM nodes WHERE id = ?1 AND removed IS NULL", NULL, reporter_id);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;

        r = store_prepare(s, "SELECT id FROM nodes WHERE public_key = ?1 AND removed IS NULL", &member);
        if (r < 0)
                return r;
        r = store_prepare(s, PAIR_RELAYED_SQL, &relayed);
        if (r < 0)
                return r;
        r = store_prepare(s, "INSERT INTO path_reports (reporter_id, peer_id, direct, updated) "
                             "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (reporter_id, peer_id) "
                             "DO UPDATE SET direct = excluded.direct, updated = excluded.updated", &upsert);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                int64_t peer_id;
                int before, after;

                sqlite3_reset(member);
                sqlite3_bind_text(member, 1, reports[i].public_key, -1, SQLITE_STATIC);
                r = store_step(s, member);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue; /* not a member: ignored, as the protocol says */
                peer_id = sqlite3_column_int64(member, 0);
                if (peer_id == reporter_id)
                        continue;

                before = store_pair_relayed_internal(s, relayed, reporter_id, peer_id);
                if (before < 0)
                        return before;

                sqlite3_reset(upsert);
                sqlite3_bind_int64(upsert, 1, reporter_id);
                sqlite3_bind_int64(upsert, 2, peer_id);
                sqlite3_bind_int(upsert, 3, reports[i].direct);
                sqlite3_bind_int64(upsert, 4, now);
                r = store_step(s, upsert);
                if (r < 0)
                        return r;

                after = store_pair_relayed_internal(s, relayed, reporter_id, peer_id);
                if (after < 0)
                        return after;
                changed += before != after;
        }

        /* Reports are kept either way; the mesh wakes only for a new decision. */
        if (changed > 0) {
                r = store_bump_version(s);
                if (r < 0)
                        return r;
        }
        r = store_commit(&tx);
        return r < 0 ? r : changed;
}
