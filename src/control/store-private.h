/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the store-*.c files only: the SQLite handle and the helpers
 * around it. Nothing outside src/control/store*.c includes this. */

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "ipam.h"
#include "macro.h"
#include "store.h"

#define HASH_BYTES 32

/* A name or address is taken by a member, and by a removed node until its
 * last certificate expires (the hold-back of schema_v4). */
#define TAKEN_AT_NOW "(removed IS NULL OR cert_not_after > ?2)"

/* The channel of the change wake-up (PostgreSQL's NOTIFY, docs/postgresql.md). */
#define STORE_CHANNEL "meshd_changed"

struct Store {
        Db *db;
        const char *path; /* db_name(): the file, or the URL with its password masked */
};

int store_exec(Store *s, const char *sql);
/* store-schema.c: the schema at SCHEMA_VERSION on either engine. */
int store_migrate(Store *s, bool create);
/* For store-migrate.c: this program's schema version, and PostgreSQL's
 * schema at it, run inside the caller's transaction. */
int store_schema_version(void);
int store_create_pg_schema(Store *s);
int store_prepare(Store *s, const char *sql, DbStmt **ret);
/* Steps a statement; returns 1 for a row, 0 when done, -EEXIST for a
 * constraint (callers turn this into their own message). */
int store_step(Store *s, DbStmt *stmt);

/* Transactions: store_begin(), then `_cleanup_(store_rollbackp) Store *tx = s;`
 * and store_commit(&tx) at the end: every early return rolls back. */
int store_begin(Store *s, bool write);
void store_rollbackp(Store **tx);
int store_commit(Store **tx);

/* One statement whose only parameter ?1 is an id, run to its end. */
int store_exec_id(Store *s, const char *sql, int64_t id);
/* The same with ?2 the time now (epoch seconds). */
int store_exec_id_now(Store *s, const char *sql, int64_t id);
/* 1 when the query (?1: text, or number when text is NULL) has a row. */
int store_exists(Store *s, const char *sql, const char *text, int64_t number);

/* A setting that must be there: -EBADMSG (logged) when missing. */
int store_get_int_setting(Store *s, const char *key, int64_t *ret);
/* Inside a write transaction: every change goes with exactly one bump. */
int store_bump_version(Store *s);
/* With a node registered or removed, next to store_bump_version(). */
int store_bump_members(Store *s);

/* store-authkeys.c */
int hash_secret(const char *secret, uint8_t ret[static HASH_BYTES]);

/* store-nodes.c */
#define NODE_COLUMNS                                                                  \
        "id, name, public_key, ipv4, ipv6, endpoints, created, removed IS NOT NULL, " \
        "observed_endpoint, expired IS NOT NULL, kind = 'device', expires, tags"
/* Inside a transaction: member id left the netmaps (removed or expired).
 * Its path reports go, and members and version move. */
int store_node_left(Store *s, int64_t id);
/* A member of either kind leaves: -ENOENT when name is no member of it. */
int store_remove_member(Store *s, const char *name, bool device);
/* A row of NODE_COLUMNS. */
int node_from_row(DbStmt *stmt, StoreNode *ret);
/* The announced endpoints as stored: a JSON array of strings; NULL on OOM. */
char *endpoints_to_json(char *const *endpoints);
int endpoints_from_json(const char *json, char ***ret);

typedef struct NodeArray {
        StoreNode *nodes;
        size_t n;
} NodeArray;

void node_array_done(NodeArray *a);
/* Callers hold a transaction when they need the list to match a version. */
int store_list_nodes_internal(Store *s, bool include_expired, bool devices, NodeArray *ret);

/* store-register.c, for store-devices.c */
/* 1 when name is reserved or taken (by a member of either kind, or held
 * back by a removed node's certificate) at now. */
int store_name_in_use(Store *s, const char *name, int64_t now);
/* The next free host of the ranges: -ENOSPC when they are full. */
int store_allocate_host(Store *s, int64_t now, uint64_t *ret_host, char ipv4[static INET6_ADDRSTRLEN],
                        char ipv6[static INET6_ADDRSTRLEN]);
/* The ranges and the IPAM's next host, in one query (store-register-tx.c). */
int store_read_ipam(Store *s, IpamRange *ret_range, int64_t *ret_next);

/* store-paths.c */
/* Pairs of members with at least one direct=false report, each once,
 * ordered by (lo, hi). */
int store_load_relays(Store *s, NetmapRelayPair **ret, size_t *ret_n);

/* store-routes.c, for store-netmap.c: inside the read transaction, each
 * node's approved and advertised routes onto nodes (ordered by id). */
int store_load_approved_routes(Store *s, NetmapMeshNode *nodes, size_t n);
