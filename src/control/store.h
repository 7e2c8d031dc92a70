/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The control server's state: one SQLite database in WAL mode, shared by the
 * server and the CLI verbs. Every change is one BEGIN IMMEDIATE transaction
 * that also bumps the mesh-wide netmap version, so a reader that sees the new
 * version sees the whole change. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define STORE_DB_FILE "control.db"
#define STORE_NAME_MAX 63
#define STORE_ENDPOINTS_MAX 16

typedef struct Store Store;

typedef struct StoreNode {
        int64_t id;
        char *name;
        char *public_key;   /* base64, as wg(8) prints it */
        char *ipv4;
        char *ipv6;
        char **endpoints;   /* strv, never NULL after a successful load */
        int64_t created;    /* seconds since the epoch */
        bool removed;
} StoreNode;

void store_node_done(StoreNode *n);
void store_nodes_free(StoreNode *nodes, size_t n);

typedef struct StoreRegistration {
        const char *authkey;
        const char *public_key;  /* validated by the caller */
        const char *name;        /* a valid DNS label; made unique here */
        char *const *endpoints;  /* validated by the caller, may be NULL */
        const char *token;       /* the new node's secret; only its hash is stored */
} StoreRegistration;

/* create: make a new database at path, failing with -EEXIST when a file is
 * already there; otherwise open an existing one (-ENOENT when missing). */
int store_open(const char *path, bool create, Store **ret);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

/* Once, right after store_open(create=true). */
int store_init_settings(Store *s, const char *url, const char *domain,
                        const char *ipv4_range, const char *ipv6_range);
/* -ENOENT when unset. */
int store_get_setting(Store *s, const char *key, char **ret);

/* The mesh-wide netmap version (≥ 1). */
int store_get_version(Store *s, uint64_t *ret);
/* PRAGMA data_version: changes when another connection committed. */
int store_data_version(Store *s, int64_t *ret);

/* Secrets (auth keys, node tokens): prefix + 32 random bytes in base64url. */
int store_secret_new(const char *prefix, char **ret);

/* expires: seconds since the epoch, 0 for never. */
int store_authkey_add(Store *s, const char *key, bool reusable, int64_t expires);

/* On success the node (unique name, addresses) is in ret. Errors:
 * -ENOKEY unknown auth key, -EKEYEXPIRED expired, -EKEYREJECTED a single-use
 * key that was used, -EEXIST public key registered to a node, -ENOSPC
 * address range full. now: seconds since the epoch. */
int store_register_node(Store *s, const StoreRegistration *reg, int64_t now, StoreNode *ret);

/* -ENOENT for an unknown token; removed nodes are returned with removed=true. */
int store_node_by_token(Store *s, const char *token, StoreNode *ret);
/* Returns 1 when the endpoints changed (and the version was bumped), 0 when
 * they were the same, -ENOENT for an unknown or removed node. */
int store_set_endpoints(Store *s, int64_t id, char *const *endpoints);
/* -ENOENT for a name that is no member. */
int store_remove_node(Store *s, const char *name);
/* Current members, ordered by id. */
int store_list_nodes(Store *s, StoreNode **ret, size_t *ret_n);

/* One consistent view of the mesh at one version, rendered once: each
 * node's JSON is made when the snapshot is loaded, and the netmap of any node
 * is then a concatenation, so answering N long-pollers after a change costs
 * N copies, not N database queries. */
typedef struct NetmapSnapshot NetmapSnapshot;

int netmap_snapshot_load(Store *s, NetmapSnapshot **ret);
NetmapSnapshot *netmap_snapshot_free(NetmapSnapshot *snap);
DEFINE_TRIVIAL_CLEANUP_FUNC(NetmapSnapshot *, netmap_snapshot_free);
uint64_t netmap_snapshot_version(const NetmapSnapshot *snap);
bool netmap_snapshot_has_node(const NetmapSnapshot *snap, int64_t id);
/* The NETMAP JSON object of docs/protocol.md for node self_id; -ENOENT when
 * that node is not in the snapshot (removed). */
int netmap_snapshot_render(const NetmapSnapshot *snap, int64_t self_id, char **ret, size_t *ret_len);
