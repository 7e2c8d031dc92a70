/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* RegisterTx: what the registrations of one write transaction share (the
 * new members' rows inserted together, the IPAM's next host and a window
 * of taken hosts, auth key use counts) and the lookups that decide each
 * registration. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store-register-tx.h"
#include "strv.h"

void register_tx_done(RegisterTx *tx) {
        for (size_t i = 0; i < tx->n_pending; i++)
                free(tx->pending[i].endpoints_json);
        tx->n_pending = 0;
        tx->key_uses = mfree(tx->key_uses);
        tx->n_key_uses = 0;
}

/* The pending rows in one INSERT: one statement (one round trip on
 * PostgreSQL) for up to REGISTER_INSERT_MAX new members. The rows come
 * back matched by host, unique among them (RETURNING's order is not
 * promised). */
int register_tx_insert_pending(RegisterTx *tx) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        _cleanup_free_ char *sql = NULL;
        size_t n = tx->n_pending, len = 0, size;
        Store *s = tx->store;
        int r;

        if (n == 0)
                return 0;
        size = 256 + n * 128;
        sql = malloc(size);
        if (!sql)
                return log_oom();
        len = snprintf(
                sql, size,
                "INSERT INTO nodes (name, public_key, host, ipv4, ipv6, token_hash, endpoints, authkey_id, "
                "created, tags) VALUES ");
        for (size_t i = 0; i < n; i++) {
                int b = (int) i * 9;
                len += snprintf(sql + len, size - len,
                                "%s(?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d, "
                                "(SELECT tags FROM authkeys WHERE id = ?%d))",
                                i > 0 ? ", " : "", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8,
                                b + 9, b + 8);
        }
        len += snprintf(sql + len, size - len, " RETURNING id, host, tags");
        assert(len < size);

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                const PendingInsert *p = tx->pending + i;
                int b = (int) i * 9;

                db_bind_text(stmt, b + 1, p->node->name);
                db_bind_text(stmt, b + 2, p->node->public_key);
                db_bind_int64(stmt, b + 3, (int64_t) p->host);
                db_bind_text(stmt, b + 4, p->node->ipv4);
                db_bind_text(stmt, b + 5, p->node->ipv6);
                db_bind_blob(stmt, b + 6, p->token_hash, HASH_BYTES);
                db_bind_text(stmt, b + 7, p->endpoints_json);
                db_bind_int64(stmt, b + 8, p->authkey_id);
                db_bind_int64(stmt, b + 9, tx->now);
        }
        size_t returned = 0;
        while ((r = store_step(s, stmt)) > 0) {
                uint64_t host = (uint64_t) db_column_int64(stmt, 1);
                PendingInsert *p = NULL;

                for (size_t i = 0; i < n && !p; i++)
                        if (tx->pending[i].host == host && tx->pending[i].node->id == 0)
                                p = tx->pending + i;
                if (!p)
                        return log_error_errno(-EIO,
                                               "%s: INSERT returned host %" PRIu64 ", not one of its rows.",
                                               s->path, host);
                p->node->id = db_column_int64(stmt, 0);
                r = store_tags_parse(db_column_text(stmt, 2), &p->node->tags);
                if (r < 0)
                        return r;
                returned++;
        }
        if (r < 0)
                return r == -EEXIST ? log_error_errno(-EIO, "%s: node row conflicts after checks.", s->path)
                                    : r;
        if (returned != n)
                return log_error_errno(-EIO, "%s: INSERT of %zu nodes returned %zu.", s->path, n, returned);
        for (size_t i = 0; i < n; i++)
                tx->pending[i].endpoints_json = mfree(tx->pending[i].endpoints_json);
        tx->n_pending = 0;
        return 0;
}

int64_t *register_tx_key_uses(RegisterTx *tx, int64_t id) {
        for (size_t i = 0; i < tx->n_key_uses; i++)
                if (tx->key_uses[i].id == id)
                        return &tx->key_uses[i].uses;
        return NULL;
}

int register_tx_use_key(RegisterTx *tx, int64_t id) {
        int64_t *uses = register_tx_key_uses(tx, id);
        AuthkeyUses *l;

        if (uses) {
                (*uses)++;
                return 0;
        }
        l = reallocarray(tx->key_uses, tx->n_key_uses + 1, sizeof(AuthkeyUses));
        if (!l)
                return log_oom();
        tx->key_uses = l;
        tx->key_uses[tx->n_key_uses++] = (AuthkeyUses) { .id = id, .uses = 1 };
        return 0;
}

/* The hosts [first, first + REGISTER_HOST_WINDOW) that are taken, in one
 * query; hosts this transaction hands out are marked as it goes. */
static int register_tx_read_window(RegisterTx *tx, uint64_t first) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(tx->store, "SELECT host FROM nodes WHERE host >= ?1 AND host < ?3 AND " TAKEN_AT_NOW,
                          &stmt);
        if (r < 0)
                return r;
        db_bind_int64(stmt, 1, (int64_t) first);
        db_bind_int64(stmt, 2, tx->now);
        db_bind_int64(stmt, 3, (int64_t) (first + REGISTER_HOST_WINDOW));
        memset(tx->window_taken, 0, sizeof(tx->window_taken));
        while ((r = store_step(tx->store, stmt)) > 0) {
                int64_t host = db_column_int64(stmt, 0);

                if (host >= (int64_t) first && host < (int64_t) (first + REGISTER_HOST_WINDOW))
                        tx->window_taken[host - first] = true;
        }
        if (r < 0)
                return r;
        /* and the rows not inserted yet */
        for (size_t i = 0; i < tx->n_pending; i++)
                if (tx->pending[i].host >= first && tx->pending[i].host - first < REGISTER_HOST_WINDOW)
                        tx->window_taken[tx->pending[i].host - first] = true;
        tx->window_first = first;
        tx->have_window = true;
        return 0;
}

static bool register_tx_in_window(const RegisterTx *tx, uint64_t host) {
        return tx->have_window && host >= tx->window_first && host - tx->window_first < REGISTER_HOST_WINDOW;
}

static int register_tx_host_in_use(uint64_t host, void *userdata) {
        RegisterTx *tx = userdata;
        int r;

        if (!register_tx_in_window(tx, host)) {
                r = register_tx_read_window(tx, host);
                if (r < 0)
                        return r;
        }
        return tx->window_taken[host - tx->window_first];
}

int register_tx_allocate_host(RegisterTx *tx, uint64_t *ret_host, char ipv4[static INET6_ADDRSTRLEN],
                              char ipv6[static INET6_ADDRSTRLEN]) {
        uint64_t host;
        int r;

        if (!tx->have_ipam) {
                r = store_read_ipam(tx->store, &tx->range, &tx->next);
                if (r < 0)
                        return r;
                tx->have_ipam = true;
        }
        r = ipam_allocate(&tx->range, tx->next > 0 ? (uint64_t) tx->next : IPAM_HOST_FIRST,
                          register_tx_host_in_use, tx, &host);
        if (r < 0)
                return r;
        r = ipam_host_format(&tx->range, host, ipv4, ipv6);
        if (r < 0)
                return r;
        if (register_tx_in_window(tx, host))
                tx->window_taken[host - tx->window_first] = true;
        tx->next = (int64_t) host + 1;
        tx->next_changed = true;
        *ret_host = host;
        return 0;
}

/* Before the commit: the pending rows, the IPAM's next host and the auth
 * keys' use counts. */
int register_tx_flush(RegisterTx *tx) {
        int r;

        r = register_tx_insert_pending(tx);
        if (r < 0)
                return r;

        if (tx->next_changed) {
                _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;

                r = store_prepare(tx->store, "UPDATE settings SET value = ?1 WHERE key = 'ipam_next'", &stmt);
                if (r < 0)
                        return r;
                db_bind_int64(stmt, 1, tx->next);
                r = store_step(tx->store, stmt);
                if (r < 0)
                        return r;
                tx->next_changed = false;
        }
        for (size_t i = 0; i < tx->n_key_uses; i++) {
                _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;

                r = store_prepare(tx->store, "UPDATE authkeys SET used = used + ?2 WHERE id = ?1", &stmt);
                if (r < 0)
                        return r;
                db_bind_int64(stmt, 1, tx->key_uses[i].id);
                db_bind_int64(stmt, 2, tx->key_uses[i].uses);
                r = store_step(tx->store, stmt);
                if (r < 0)
                        return r;
        }
        tx->n_key_uses = 0;
        return 0;
}

static RegisterLookup register_lookup_from_row(DbStmt *stmt, int col) {
        return (RegisterLookup) {
                .authkey_id = db_column_int64(stmt, col),
                .reusable = db_column_int(stmt, col + 1),
                .expires = db_column_int64(stmt, col + 2),
                .used = db_column_int64(stmt, col + 3),
                .member_id = db_column_int64(stmt, col + 4),
                .expired = db_column_int(stmt, col + 5),
                .device = db_column_int(stmt, col + 6),
                .hub = db_column_int(stmt, col + 7),
                .name_taken = db_column_int(stmt, col + 8),
        };
}

int register_lookup(RegisterTx *tx, const StoreRegistration *reg, RegisterLookup *ret) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        uint8_t hash[HASH_BYTES];
        int r;

        r = hash_secret(reg->authkey, hash);
        if (r < 0)
                return r;
        r = store_prepare(tx->store,
                          "SELECT a.id, a.reusable, a.expires, a.used, n.id, n.expired IS NOT NULL, "
                          "n.kind = 'device', "
                          "EXISTS (SELECT 1 FROM settings WHERE key = 'hub_public_key' AND value = ?4), "
                          "EXISTS (SELECT 1 FROM nodes WHERE name = ?3 AND " TAKEN_AT_NOW ") "
                          "FROM (SELECT 1 AS one) AS o "
                          "LEFT JOIN authkeys a ON a.hash = ?1 "
                          "LEFT JOIN nodes n ON n.public_key = ?4 AND n.removed IS NULL",
                          &stmt);
        if (r < 0)
                return r;
        /* ?2 is TAKEN_AT_NOW's */
        db_bind_blob(stmt, 1, hash, sizeof(hash));
        db_bind_int64(stmt, 2, tx->now);
        db_bind_text(stmt, 3, reg->name);
        db_bind_text(stmt, 4, reg->public_key);
        r = store_step(tx->store, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return log_error_errno(-EIO, "%s: registration lookup returned no row.", tx->store->path);
        *ret = register_lookup_from_row(stmt, 0);
        return 0;
}

/* The lookups of regs[0..n) in one statement, as the database is before
 * any of them (the caller decides which later ones an earlier one
 * changed: register_lookup_stale()). */
int register_lookup_all(RegisterTx *tx, const StoreRegistration *regs, size_t n, RegisterLookup *ret) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        _cleanup_free_ char *sql = NULL;
        _cleanup_free_ uint8_t *hashes = NULL;
        _cleanup_free_ bool *seen = NULL;
        size_t size = 640 + n * 48, len;
        int r;

        sql = malloc(size);
        hashes = malloc(n * HASH_BYTES);
        seen = calloc(n, sizeof(bool));
        if (!sql || !hashes || !seen)
                return log_oom();
        /* ?1: TAKEN_AT_NOW's now (as ?2 there: renumbered below) */
        len = snprintf(sql, size, "WITH r(i, hash, pub, name) AS (VALUES ");
        for (size_t i = 0; i < n; i++)
                len += snprintf(sql + len, size - len, "%s(?%zu, ?%zu, ?%zu, ?%zu)", i > 0 ? ", " : "",
                                4 * i + 2, 4 * i + 3, 4 * i + 4, 4 * i + 5);
        len += snprintf(sql + len, size - len,
                        ") SELECT a.id, a.reusable, a.expires, a.used, n.id, n.expired IS NOT NULL, "
                        "n.kind = 'device', "
                        "EXISTS (SELECT 1 FROM settings WHERE key = 'hub_public_key' AND value = r.pub), "
                        "EXISTS (SELECT 1 FROM nodes WHERE name = r.name AND "
                        "(removed IS NULL OR cert_not_after > ?1)), r.i "
                        "FROM r LEFT JOIN authkeys a ON a.hash = r.hash "
                        "LEFT JOIN nodes n ON n.public_key = r.pub AND n.removed IS NULL");
        assert(len < size);

        r = store_prepare(tx->store, sql, &stmt);
        if (r < 0)
                return r;
        db_bind_int64(stmt, 1, tx->now);
        for (size_t i = 0; i < n; i++) {
                r = hash_secret(regs[i].authkey, hashes + i * HASH_BYTES);
                if (r < 0)
                        return r;
                db_bind_int64(stmt, (int) (4 * i + 2), (int64_t) i);
                db_bind_blob(stmt, (int) (4 * i + 3), hashes + i * HASH_BYTES, HASH_BYTES);
                db_bind_text(stmt, (int) (4 * i + 4), regs[i].public_key);
                db_bind_text(stmt, (int) (4 * i + 5), regs[i].name);
        }
        while ((r = store_step(tx->store, stmt)) > 0) {
                int64_t i = db_column_int64(stmt, 9);

                if (i < 0 || (size_t) i >= n || seen[i])
                        return log_error_errno(-EIO, "%s: registration lookup returned row %" PRIi64 ".",
                                               tx->store->path, i);
                seen[i] = true;
                ret[i] = register_lookup_from_row(stmt, 0);
        }
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (!seen[i])
                        return log_error_errno(-EIO, "%s: registration lookup returned no row %zu.",
                                               tx->store->path, i);
        return 0;
}

int register_tx_queue_insert(RegisterTx *tx, StoreNode *node, uint64_t host,
                             const uint8_t token_hash[static HASH_BYTES], char *endpoints_json,
                             int64_t authkey_id) {
        PendingInsert *p;
        int r;

        if (tx->n_pending == REGISTER_INSERT_MAX) {
                r = register_tx_insert_pending(tx);
                if (r < 0) {
                        free(endpoints_json);
                        return r;
                }
        }
        p = tx->pending + tx->n_pending++;
        *p = (PendingInsert) {
                .node = node,
                .host = host,
                .endpoints_json = endpoints_json,
                .authkey_id = authkey_id,
        };
        memcpy(p->token_hash, token_hash, HASH_BYTES);
        return 0;
}
