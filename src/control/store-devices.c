/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Devices: plain WireGuard peers of the hub (phones, cameras, routers),
 * rows of the nodes table with kind 'device', so that names and addresses
 * share one namespace with nodes. Added and removed by the admin only;
 * they never talk to the server. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "store-private.h"

/* Inside store_add_device()'s transaction: the key is no member's and not
 * the hub's (every netmap carries the hub; a peer with its key would make
 * every node reject every netmap). */
static int store_device_key_free(Store *s, const char *public_key) {
        int r;

        r = store_exists(s, "SELECT 1 FROM settings WHERE key = 'hub_public_key' AND value = ?1", public_key,
                         0);
        if (r < 0)
                return r;
        if (r > 0)
                return -EKEYREJECTED;
        r = store_exists(s, "SELECT 1 FROM nodes WHERE public_key = ?1 AND removed IS NULL", public_key, 0);
        if (r < 0)
                return r;
        return r > 0 ? -ENOTUNIQ : 0;
}

static int store_insert_device(Store *s, const StoreDevice *dev, uint64_t host, const char *ipv4,
                               const char *ipv6, int64_t now, int64_t *ret_id) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        uint8_t token_hash[HASH_BYTES];
        int r;

        /* A device has no token: a random hash that no token hashes to
         * fills the column (NOT NULL UNIQUE since schema_v1). */
        if (getrandom(token_hash, sizeof(token_hash), 0) != (ssize_t) sizeof(token_hash))
                return log_error_errno(negative_errno(), "Failed to get random bytes: %m");
        _cleanup_free_ char *tags = store_tags_format(dev->tags);
        if (!tags)
                return log_oom();
        r = store_prepare(s,
                          "INSERT INTO nodes (name, public_key, host, ipv4, ipv6, token_hash, created, kind, "
                          "expires, tags) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'device', ?8, ?9) RETURNING id",
                          &stmt);
        if (r < 0)
                return r;
        db_bind_text(stmt, 1, dev->name);
        db_bind_text(stmt, 2, dev->public_key);
        db_bind_int64(stmt, 3, (int64_t) host);
        db_bind_text(stmt, 4, ipv4);
        db_bind_text(stmt, 5, ipv6);
        db_bind_blob(stmt, 6, token_hash, HASH_BYTES);
        db_bind_int64(stmt, 7, now);
        if (dev->expires > 0)
                db_bind_int64(stmt, 8, dev->expires);
        else
                db_bind_null(stmt, 8);
        db_bind_text(stmt, 9, tags);
        r = store_step(s, stmt);
        if (r < 0)
                return r == -EEXIST ? log_error_errno(-EIO, "%s: device row conflicts after checks.", s->path)
                                    : r;
        if (r == 0)
                return log_error_errno(-EIO, "%s: no id for the new device.", s->path);
        *ret_id = db_column_int64(stmt, 0);
        return 0;
}

int store_add_device(Store *s, const StoreDevice *dev, int64_t now, StoreNode *ret) {
        char ipv4[INET6_ADDRSTRLEN], ipv6[INET6_ADDRSTRLEN];
        StoreNode n;
        uint64_t host;
        int64_t id = 0;
        int r;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_name_in_use(s, dev->name, now);
        if (r < 0)
                return r;
        if (r > 0)
                return -EEXIST;
        r = store_device_key_free(s, dev->public_key);
        if (r < 0)
                return r;
        r = store_allocate_host(s, now, &host, ipv4, ipv6);
        if (r < 0)
                return r;
        r = store_insert_device(s, dev, host, ipv4, ipv6, now, &id);
        if (r < 0)
                return r;
        n = (StoreNode) {
                .id = id,
                .created = now,
                .device = true,
                .expires = dev->expires,
        };
        r = store_bump_members(s);
        if (r >= 0)
                r = store_bump_version(s);
        if (r >= 0)
                r = store_commit(&tx);
        if (r < 0)
                return r;

        n.name = strdup(dev->name);
        n.public_key = strdup(dev->public_key);
        n.ipv4 = strdup(ipv4);
        n.ipv6 = strdup(ipv6);
        n.endpoints = calloc(1, sizeof(char *));
        if (!n.name || !n.public_key || !n.ipv4 || !n.ipv6 || !n.endpoints) {
                store_node_done(&n);
                return log_oom();
        }
        *ret = n;
        return 0;
}

int store_remove_device(Store *s, const char *name) {
        return store_remove_member(s, name, true);
}

int store_expire_due_devices(Store *s, int64_t now) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int n = 0, r;

        /* the common case, polled: one read, no write lock */
        r = store_exists(s,
                         "SELECT 1 FROM nodes WHERE kind = 'device' AND removed IS NULL AND expired IS NULL "
                         "AND expires <= ?1",
                         NULL, now);
        if (r <= 0)
                return r;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;
        r = store_prepare(s,
                          "UPDATE nodes SET expired = ?1 WHERE kind = 'device' AND removed IS NULL "
                          "AND expired IS NULL AND expires <= ?1 RETURNING id",
                          &stmt);
        if (r < 0)
                return r;
        db_bind_int64(stmt, 1, now);
        for (;;) {
                r = store_step(s, stmt);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                n++;
        }
        if (n == 0)
                return 0;
        /* devices have no path reports: one bump of members and version */
        r = store_bump_members(s);
        if (r >= 0)
                r = store_bump_version(s);
        if (r >= 0)
                r = store_commit(&tx);
        if (r < 0)
                return r;
        log_info("%i device(s) expired, off the hub and out of the netmaps.", n);
        return n;
}
