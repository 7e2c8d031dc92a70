/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Registration: a new node's unique name and addresses (the IPAM glue), or
 * a member's key joining again. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns-label.h"
#include "ipam.h"
#include "log.h"
#include "store-register-tx.h"
#include "strv.h"

static int store_taken(Store *s, const char *sql, const char *text, int64_t number, int64_t now) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        if (text)
                db_bind_text(stmt, 1, text);
        else
                db_bind_int64(stmt, 1, number);
        db_bind_int64(stmt, 2, now);
        return store_step(s, stmt);
}

int store_name_in_use(Store *s, const char *name, int64_t now) {
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
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        _cleanup_free_ uint8_t *taken = NULL;
        size_t n_taken = 0, base_len = strlen(base);
        uint64_t n;
        int r;

        r = store_prepare(s,
                          "SELECT name FROM nodes WHERE " TAKEN_AT_NOW " AND "
                          "(name = ?1 OR name LIKE ?1 || '-%')",
                          &stmt);
        if (r < 0)
                return r;
        db_bind_text(stmt, 1, base);
        db_bind_int64(stmt, 2, now);

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
                name = db_column_text(stmt, 0);
                /* LIKE is wider than "base-[1-9]*" (and case-blind in
                 * SQLite): the rest is checked here */
                if (!name || strncmp(name, base, base_len) != 0)
                        continue;
                if (streq(name, base))
                        k = 1;
                else {
                        digits = name + base_len + 1;
                        if (name[base_len] != '-' || *digits < '1' || *digits > '9')
                                continue;
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

        /* the common case, a name not taken, in one indexed lookup: the
         * suffix search reads every "base-…" (LIKE uses no index) */
        r = store_name_in_use(s, base, now);
        if (r == 0)
                n = 1;
        else if (r > 0)
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
                r = store_name_in_use(s, name, now);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
        }

        *ret = strdup(name);
        return *ret ? 0 : log_oom();
}

/* The ranges and the next host to try, in one query: a round trip each
 * would be three on PostgreSQL, for every registration. */
int store_read_ipam(Store *s, IpamRange *ret_range, int64_t *ret_next) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        _cleanup_free_ char *v4 = NULL, *v6 = NULL;
        int r;

        r = store_prepare(s,
                          "SELECT key, value FROM settings "
                          "WHERE key IN ('ipv4_range', 'ipv6_range', 'ipam_next')",
                          &stmt);
        if (r < 0)
                return r;
        *ret_next = -1;
        while ((r = store_step(s, stmt)) > 0) {
                const char *key = db_column_text(stmt, 0), *value = db_column_text(stmt, 1);

                if (!key || !value)
                        continue;
                if (streq(key, "ipam_next"))
                        *ret_next = db_column_int64(stmt, 1);
                else if (streq(key, "ipv4_range") && !v4 && !(v4 = strdup(value)))
                        return log_oom();
                else if (streq(key, "ipv6_range") && !v6 && !(v6 = strdup(value)))
                        return log_oom();
        }
        if (r < 0)
                return r;
        if (*ret_next < 0)
                return log_error_errno(-EBADMSG, "%s: setting 'ipam_next' missing.", s->path);
        if (!v4)
                return log_error_errno(-ENOENT, "%s: no IPv4 range set.", s->path);
        if (!v6)
                return log_error_errno(-ENOENT, "%s: no IPv6 range set.", s->path);
        r = ipam_range_parse(v4, v6, ret_range);
        if (r < 0)
                return log_error_errno(r, "%s: invalid address ranges '%s', '%s': %m", s->path, v4, v6);
        return 0;
}

int store_allocate_host(Store *s, int64_t now, uint64_t *ret_host, char ipv4[static INET6_ADDRSTRLEN],
                        char ipv6[static INET6_ADDRSTRLEN]) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        IpamRange range;
        int64_t next = 0;
        uint64_t host;
        int r;

        r = store_read_ipam(s, &range, &next);
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
        db_bind_int64(stmt, 1, (int64_t) host + 1);
        r = store_step(s, stmt);
        if (r < 0)
                return r;

        *ret_host = host;
        return 0;
}

/* Whether the lookup of regs[i] made before the batch may be out of date:
 * an earlier registration of the batch has its key (it re-joins as that
 * member) or took its name. Names derived from it ("nas-2") are found by
 * the suffix search, which runs after the pending rows are inserted. */
static bool register_lookup_stale(const StoreRegistration *regs, const StoreNode *nodes, const int *results,
                                  size_t i) {
        for (size_t j = 0; j < i; j++)
                if (results[j] >= 0 &&
                    (streq(nodes[j].public_key, regs[i].public_key) || streq(nodes[j].name, regs[i].name)))
                        return true;
        return false;
}

/* The refusals of a registration, from its lookup alone (store.h): the
 * auth key first, then what its public key is. */
static int register_check(RegisterTx *tx, const StoreRegistration *reg, const RegisterLookup *l) {
        int64_t *pending;

        if (l->authkey_id == 0)
                return -ENOKEY;
        if (l->expires != 0 && l->expires <= tx->now)
                return -EKEYEXPIRED;
        pending = register_tx_key_uses(tx, l->authkey_id);
        if (!l->reusable && l->used + (pending ? *pending : 0) > 0)
                return -EKEYREJECTED;
        /* every netmap carries the hub: a node with its key would make
         * every node reject every netmap */
        if (l->hub)
                return -EEXIST;
        /* a device's key is no node's: it never registers */
        if (l->member_id != 0 && l->device)
                return -ENOTUNIQ;
        if (l->member_id != 0 && l->expired && reg->expired_needs_admin)
                return -ESTALE;
        return 0;
}

/* reg's key is a member's: that member joins again with the new token
 * (same id, name and addresses; the old token stops working), an expired
 * one renewed, an active one after losing its state. The caller has
 * checked the proof of key possession and register_check(). The node
 * carries the tags of the key it (re)joined with (a tagged node is the
 * key's, not a person's). */
static int register_rejoin(RegisterTx *tx, const StoreRegistration *reg, const RegisterLookup *l,
                           const uint8_t token_hash[static HASH_BYTES], const char *endpoints_json,
                           StoreNode *ret) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        Store *s = tx->store;
        int r;

        r = store_prepare(s,
                          "UPDATE nodes SET expired = NULL, token_hash = ?2, endpoints = ?3, authkey_id = ?4, "
                          "tags = (SELECT tags FROM authkeys WHERE id = ?4) "
                          "WHERE id = ?1 RETURNING " NODE_COLUMNS,
                          &stmt);
        if (r < 0)
                return r;
        db_bind_int64(stmt, 1, l->member_id);
        db_bind_blob(stmt, 2, token_hash, HASH_BYTES);
        db_bind_text(stmt, 3, endpoints_json);
        db_bind_int64(stmt, 4, l->authkey_id);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return log_error_errno(-EIO, "%s: node %" PRId64 " vanished inside a transaction.", s->path,
                                       l->member_id);
        r = node_from_row(stmt, ret);
        if (r < 0)
                return r;
        r = store_step(s, stmt);
        if (r >= 0)
                r = register_tx_use_key(tx, l->authkey_id);
        if (r < 0) {
                store_node_done(ret);
                return r;
        }
        return 0;
}

/* A new member, with a unique name and the next free addresses, its row
 * queued for register_tx_insert_pending(): ret is complete but for its id
 * and tags until then. endpoints: moved into ret on success. */
static int register_insert(RegisterTx *tx, const StoreRegistration *reg, const RegisterLookup *l,
                           const uint8_t token_hash[static HASH_BYTES], const char *endpoints_json,
                           char ***endpoints, StoreNode *ret) {
        _cleanup_free_ char *name = NULL, *json = NULL;
        char ipv4[INET6_ADDRSTRLEN], ipv6[INET6_ADDRSTRLEN];
        uint64_t host;
        int r;

        /* the common case, a name not taken, came with the lookup; the
         * suffix search must see every row of this transaction */
        if (l->name_taken || dns_label_is_reserved(reg->name)) {
                r = register_tx_insert_pending(tx);
                if (r >= 0)
                        r = store_unique_name(tx->store, reg->name, tx->now, &name);
        } else
                r = (name = strdup(reg->name)) ? 0 : log_oom();
        if (r < 0)
                return r;
        r = register_tx_allocate_host(tx, &host, ipv4, ipv6);
        if (r < 0)
                return r;
        json = strdup(endpoints_json);
        if (!json)
                return log_oom();
        r = register_tx_use_key(tx, l->authkey_id);
        if (r < 0)
                return r;

        *ret = (StoreNode) {
                .name = TAKE_PTR(name),
                .public_key = strdup(reg->public_key),
                .ipv4 = strdup(ipv4),
                .ipv6 = strdup(ipv6),
                .endpoints = TAKE_PTR(*endpoints),
                .created = tx->now,
        };
        if (!ret->public_key || !ret->ipv4 || !ret->ipv6) {
                store_node_done(ret);
                return log_oom();
        }
        r = register_tx_queue_insert(tx, ret, host, token_hash, TAKE_PTR(json), l->authkey_id);
        if (r < 0)
                store_node_done(ret);
        return r;
}

/* One registration inside the caller's write transaction. Every refusal
 * (-ENOKEY … -ENOSPC, store.h) is decided before this registration
 * writes anything, so a refused one leaves nothing behind and needs no
 * savepoint; any other error may, and fails the whole transaction. The
 * versions are the caller's to bump (store_register_bump()): once per
 * transaction is enough, since nobody sees the ones in between.
 * *ret_members: the member count changed (a new one, or an expired one
 * back). */
static int store_register_in_tx(RegisterTx *tx, const StoreRegistration *reg, const RegisterLookup *prefetched,
                                StoreNode *ret, bool *ret_members) {
        _cleanup_free_ char *endpoints = NULL;
        _cleanup_strv_free_ char **endpoints_copy = NULL;
        uint8_t token_hash[HASH_BYTES];
        RegisterLookup l = {};
        int r;

        endpoints = endpoints_to_json(reg->endpoints);
        if (!endpoints)
                return log_oom();
        if (strv_copy(reg->endpoints, &endpoints_copy) < 0)
                return log_oom();
        r = hash_secret(reg->token, token_hash);
        if (r < 0)
                return r;

        if (prefetched)
                l = *prefetched;
        else {
                /* its lookup must see the rows of this transaction */
                r = register_tx_insert_pending(tx);
                if (r >= 0)
                        r = register_lookup(tx, reg, &l);
                if (r < 0)
                        return r;
        }
        r = register_check(tx, reg, &l);
        if (r < 0)
                return r;
        if (l.member_id != 0) {
                r = register_rejoin(tx, reg, &l, token_hash, endpoints, ret);
                *ret_members = l.expired;
        } else {
                r = register_insert(tx, reg, &l, token_hash, endpoints, &endpoints_copy, ret);
                *ret_members = true;
        }
        return r < 0 ? r : 0;
}

/* A refusal, as opposed to a failure of the database. */
static bool register_refused(int r) {
        switch (r) {
        case -ENOKEY:
        case -EKEYEXPIRED:
        case -EKEYREJECTED:
        case -EEXIST:
        case -ENOTUNIQ:
        case -ESTALE:
        case -ENOSPC:
                return true;
        default:
                return false;
        }
}

/* Every change goes with one bump (store_bump_version()); registrations
 * that changed the member count with one of that too. */
static int store_register_bump(Store *s, bool members) {
        int r;

        if (members) {
                r = store_bump_members(s);
                if (r < 0)
                        return r;
        }
        return store_bump_version(s);
}

/* The n registrations in the caller's write transaction, in order (a later
 * one sees the earlier ones). A refusal is that registration's result; any
 * other error is returned, and the caller rolls everything back. */
static int store_register_all_in_tx(Store *s, const StoreRegistration *regs, size_t n, int64_t now,
                                    StoreNode *ret_nodes, int *ret_results) {
        _cleanup_(register_tx_done) RegisterTx tx = { .store = s, .now = now };
        _cleanup_free_ RegisterLookup *lookups = NULL;
        bool any = false, members = false;
        int r;

        lookups = calloc(n, sizeof(RegisterLookup));
        if (!lookups)
                return log_oom();
        for (size_t first = 0; first < n; first += REGISTER_LOOKUP_MAX) {
                r = register_lookup_all(&tx, regs + first, MIN(n - first, (size_t) REGISTER_LOOKUP_MAX),
                                        lookups + first);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n; i++) {
                bool m = false;

                r = store_register_in_tx(&tx, &regs[i],
                                         register_lookup_stale(regs, ret_nodes, ret_results, i) ? NULL
                                                                                                : lookups + i,
                                         &ret_nodes[i], &m);
                if (r < 0 && !register_refused(r))
                        return r;
                ret_results[i] = r;
                if (r >= 0) {
                        any = true;
                        members = members || m;
                }
        }
        if (!any)
                return 0;
        r = register_tx_flush(&tx);
        if (r < 0)
                return r;
        return store_register_bump(s, members);
}

int store_register_node(Store *s, const StoreRegistration *reg, int64_t now, StoreNode *ret) {
        int result = -ECANCELED, r;

        r = store_register_batch(s, reg, 1, now, ret, &result);
        return r < 0 ? r : result;
}

int store_register_batch(Store *s, const StoreRegistration *regs, size_t n, int64_t now, StoreNode *ret_nodes,
                         int *ret_results) {
        int r;

        for (size_t i = 0; i < n; i++) {
                ret_nodes[i] = (StoreNode) {};
                ret_results[i] = -ECANCELED;
        }
        if (n == 0)
                return 0;

        r = store_begin(s, true);
        if (r >= 0) {
                _cleanup_(store_rollbackp) Store *tx = s;

                r = store_register_all_in_tx(s, regs, n, now, ret_nodes, ret_results);
                if (r >= 0)
                        r = store_commit(&tx);
        }
        if (r < 0)
                /* nothing of the batch is stored: every registration failed with it */
                for (size_t i = 0; i < n; i++) {
                        if (ret_results[i] >= 0)
                                store_node_done(&ret_nodes[i]);
                        ret_results[i] = r;
                }
        return r;
}
