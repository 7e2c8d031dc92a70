/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The control server's state: one database shared by the server(s) and the
 * CLI verbs, an SQLite file in WAL mode (the default) or a PostgreSQL server
 * (docs/postgresql.md), behind db.h. Every change is one write transaction
 * (writers serialize) that also bumps the mesh-wide netmap version, so a
 * reader that sees the new version sees the whole change. store.c opens it
 * (store-schema.c migrates it); auth keys,
 * registration, node updates, path reports and the netmap read each have
 * their store-*.c (store-private.h is what they share). */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "netmap-render.h"

#define STORE_DB_FILE "control.db"
#define STORE_NAME_MAX 63
#define STORE_ENDPOINTS_MAX 16

typedef struct Store Store;

typedef struct StoreNode {
        int64_t id;
        char *name;
        char *public_key; /* base64, as wg(8) prints it */
        char *ipv4;
        char *ipv6;
        char **endpoints;        /* strv, never NULL after a successful load */
        char *observed_endpoint; /* "ip:port" as the hub saw it, NULL when unknown */
        int64_t created;         /* seconds since the epoch */
        bool removed;
        bool expired;    /* `meshd-control nodes expire`: out of every netmap until it re-registers */
        bool device;     /* a plain WireGuard device (`devices add`), no meshd: no token, no endpoints */
        int64_t expires; /* devices: when they expire, epoch seconds; 0: never */
        char **tags;     /* strv, sorted, never NULL after a successful load; none: tagless */
} StoreNode;

/* "server,router" (what the store keeps, and --tag= takes) → a sorted strv
 * without duplicates; "" or NULL → an empty one. -EINVAL when a tag is not
 * a DNS label (a "tag:" prefix is taken off first). */
int store_tags_parse(const char *text, char ***ret);
/* The reverse: "server,router", "" for none; NULL on OOM. */
char *store_tags_format(char *const *tags);

void store_node_done(StoreNode *n);
void store_nodes_free(StoreNode *nodes, size_t n);

typedef struct StoreRegistration {
        const char *authkey;
        const char *public_key;   /* validated by the caller */
        const char *name;         /* a valid DNS label; made unique here */
        char *const *endpoints;   /* validated by the caller, may be NULL */
        const char *token;        /* the new node's secret; only its hash is stored */
        bool expired_needs_admin; /* serve --expired-nodes=admin */
} StoreRegistration;

/* path: an SQLite file, or a postgresql:// (postgres://) URL (db_is_url()).
 * create: make a new database at path, failing with -EEXIST when a file (or,
 * on PostgreSQL, a mesh schema) is already there; otherwise open an existing
 * one (-ENOENT when the file is missing, -ENOMEDIUM when it has no mesh).
 * -ECONNREFUSED (logged, the password masked) when the server cannot be
 * reached. */
int store_open(const char *path, bool create, Store **ret);
Store *store_free(Store *s);
/* PostgreSQL: drops the mesh's tables again (init failed half-way);
 * -EOPNOTSUPP for SQLite, whose file the caller removes. */
int store_destroy(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

/* store-migrate.c (meshd-control migrate): what was copied, each counted
 * on both sides. */
typedef struct StoreCopyCounts {
        int64_t settings, authkeys, nodes, path_reports, routes;
        int64_t version; /* the netmap version, kept */
} StoreCopyCounts;
/* Copies the SQLite mesh in the file from (opened read-only, never
 * written) into the PostgreSQL database url, which must hold no mesh, in
 * one transaction: every row with its id, the identity sequences moved past
 * the copied ids, the counts compared on both sides before the commit.
 * Errors, logged in one line: -ENOENT no such file, -EBADMSG a damaged file
 * or no mesh in it, -EPROTONOSUPPORT a schema other than this program's,
 * -EEXIST url holds a mesh (or a table of one), -ECONNREFUSED the server
 * cannot be reached; url is unchanged after any of them. */
int store_copy_to_postgresql(const char *from, const char *url, StoreCopyCounts *ret);

/* Once, right after store_open(create=true). */
int store_init_settings(Store *s, const char *url, const char *domain, const char *ipv4_range,
                        const char *ipv6_range);
/* -ENOENT when unset. */
int store_get_setting(Store *s, const char *key, char **ret);
/* Inserts or replaces one setting (hub_public_key, hub_endpoint, …). */
int store_set_setting(Store *s, const char *key, const char *value);
/* Inserts one setting unless the key is set (-EEXIST then), in one
 * transaction: of several replicas creating the same key, one wins. */
int store_set_setting_once(Store *s, const char *key, const char *value);
/* false while a PostgreSQL server is out of reach: the server answers 503
 * then; each call tries to reconnect (at most once a second). */
bool store_is_available(Store *s);

/* Inserts a setting only when it is not there yet: -EEXIST when it is (its
 * value unchanged). Two replicas that start together agree on one value. */
int store_set_setting_once(Store *s, const char *key, const char *value);

/* The mesh-wide netmap version (≥ 1). */
int store_get_version(Store *s, uint64_t *ret);
/* Whether another process (meshd-control nodes remove, …) committed a
 * change to the store: a watch starts with what is there now, and
 * store_changed() returns 1 (and moves the watch on) once something else
 * was committed since, else 0. One cheap read, made to be polled. SQLite
 * sees any commit of another connection; PostgreSQL any commit (ours too)
 * that moved the version or the members counter, which every change that
 * a netmap, the hub or the relay shows does. */
typedef struct StoreWatch {
        int64_t seen, seen_members; /* the store's own; opaque to callers */
} StoreWatch;
int store_watch_init(Store *s, StoreWatch *ret);
int store_changed(Store *s, StoreWatch *w);
/* The wake-up: PostgreSQL notifies every listener when a change commits
 * (any process, any replica). An fd to watch for input (a second
 * connection, opened here the first time and again after a failed drain);
 * -EOPNOTSUPP on SQLite, whose commits the caller watches in the file's
 * directory or polls. */
int store_notify_fd(Store *s);
/* After the fd turned readable: > 0 a change was committed since (look with
 * store_changed()), 0 none, -errno the listening connection broke (drop the
 * fd; store_notify_fd() makes a new one). */
int store_notify_drain(Store *s);
/* A counter that changes whenever a node registers or is removed (and only
 * then), so the hub re-reads the member list only when it may differ. */
int store_get_members_version(Store *s, uint64_t *ret);

/* Secrets (auth keys, node tokens): prefix + 32 random bytes in base64url. */
int store_secret_new(const char *prefix, char **ret);

/* expires: seconds since the epoch, 0 for never. */
int store_authkey_add(Store *s, const char *key, bool reusable, int64_t expires);
/* The same with tags (strv, may be NULL): a node that joins with the key
 * carries them, has no owner and never expires. */
int store_authkey_add_tagged(Store *s, const char *key, bool reusable, int64_t expires, char *const *tags);

/* On success the node (unique name, addresses) is in ret. The caller has
 * checked that the request holds the private key of reg->public_key; the
 * public key of a member then joins as that member again (same id, name and
 * addresses, the new token; the old one stops working), renewing it when it
 * had expired. Names and addresses are unique among members and among
 * removed nodes with a certificate not yet expired at now; reserved labels
 * (dns_label_is_reserved()) get a suffix. Errors:
 * -ENOKEY unknown auth key, -EKEYEXPIRED expired, -EKEYREJECTED a single-use
 * key that was used, -EEXIST the hub's public key, -ENOTUNIQ a device's
 * public key (`devices add`), -ESTALE an expired
 * member while reg->expired_needs_admin, -ENOSPC address range full.
 * now: seconds since the epoch. */
int store_register_node(Store *s, const StoreRegistration *reg, int64_t now, StoreNode *ret);
/* Group commit: the n registrations in one write transaction, in order (a
 * later one sees the earlier ones). For each i, ret_results[i] is what
 * store_register_node() would return and ret_nodes[i] the node when that
 * is 0. A refusal writes nothing and leaves the others be; any other error
 * (of the database) fails the whole transaction. Nothing is reported
 * stored before the commit returned: when the transaction fails, every
 * result is that error and it is returned; otherwise 0. */
int store_register_batch(Store *s, const StoreRegistration *regs, size_t n, int64_t now, StoreNode *ret_nodes,
                         int *ret_results);

/* -ENOENT for an unknown token; removed nodes are returned with removed=true. */
int store_node_by_token(Store *s, const char *token, StoreNode *ret);
/* Returns 1 when the endpoints changed (and the version was bumped), 0 when
 * they were the same, -ENOENT for an unknown or removed node. */
int store_set_endpoints(Store *s, int64_t id, char *const *endpoints);
/* -ENOENT for a name that is no member. */
int store_remove_node(Store *s, const char *name);
/* Marks a member expired (and bumps the version). -ENOENT for a name that is
 * no member, -EALREADY when it is expired already, -EPERM when it is tagged
 * (tagged nodes never expire). */
int store_expire_node(Store *s, const char *name);
/* `meshd-control nodes renew`: an expired member valid again (its token
 * works again). -ENOENT for a name that is no member, -EALREADY when it is
 * not expired. */
int store_renew_node(Store *s, const char *name);
/* A certificate valid until not_after was issued to node id: its name and
 * addresses stay taken until then even once it is removed. -ENOENT for an
 * unknown id. */
int store_note_certificate(Store *s, int64_t id, int64_t not_after);

/* Removed nodes whose name and addresses are held back at now. */
typedef struct StoreHeld {
        char *name, *ipv4, *ipv6;
        int64_t until; /* the not_after of their last certificate */
} StoreHeld;
int store_list_held(Store *s, int64_t now, StoreHeld **ret, size_t *ret_n);
void store_held_free(StoreHeld *l, size_t n);

/* SQLite: PRAGMA quick_check, -EBADMSG (logged, naming the file) when
 * damaged; PostgreSQL: one round trip (the server checks its own pages). */
int store_check_integrity(Store *s);

/* Current members that run meshd (no devices), ordered by id; expired ones
 * only with include_expired. */
int store_list_nodes(Store *s, bool include_expired, StoreNode **ret, size_t *ret_n);

/* Devices (store-devices.c): plain WireGuard peers of the hub, in the same
 * namespace of names and addresses as nodes. */
typedef struct StoreDevice {
        const char *name;       /* checked by the caller: a DNS label, not reserved */
        const char *public_key; /* checked by the caller: base64 of 32 bytes, not all zero */
        int64_t expires;        /* epoch seconds, 0: never */
        char *const *tags;      /* devices add --tag=, may be NULL */
} StoreDevice;
/* On success the new device is in ret. Nothing changes on error: -EEXIST
 * name taken (a node's, a device's, or held back by a certificate),
 * -ENOTUNIQ the key is a member's, -EKEYREJECTED the key is the hub's,
 * -ENOSPC the address ranges are full. */
int store_add_device(Store *s, const StoreDevice *dev, int64_t now, StoreNode *ret);
/* -ENOENT when name is no device. */
int store_remove_device(Store *s, const char *name);
/* Current devices, ordered by id; expired ones only with include_expired. */
int store_list_devices(Store *s, bool include_expired, StoreNode **ret, size_t *ret_n);
/* Devices whose expiry time is reached at now leave the netmaps and the hub
 * (one transaction, one version bump). Returns how many; cheap (one read)
 * when none is due, so the server calls it with its database poll. */
int store_expire_due_devices(Store *s, int64_t now);

/* Where the hub saw a node last: "ip:port" (canonical, endpoint_format()). */
typedef struct StoreObservation {
        int64_t id;
        const char *endpoint;
} StoreObservation;

/* One transaction for all: returns how many nodes got a new observed
 * endpoint (the version is bumped once when that is > 0). Devices' are
 * stored too but not counted (no netmap shows them). Unknown and removed
 * ids are skipped. */
int store_set_observed_endpoints(Store *s, const StoreObservation *observations, size_t n);

/* What one node found about its direct path to a peer (POST /v1/paths). */
typedef struct StorePathReport {
        const char *public_key; /* the peer's; validated by the caller */
        bool direct;
} StorePathReport;

/* Stores the latest report per ordered pair (reporter, peer); reports about
 * keys that are no member, or the reporter itself, are ignored. A pair is
 * relayed while either side's latest report is direct=false. Returns the
 * number of pairs whose relay status changed (the version is bumped once
 * when > 0), -ENOENT when the reporter is no member. now: epoch seconds. */
int store_report_paths(Store *s, int64_t reporter_id, const StorePathReport *reports, size_t n, int64_t now);
/* 1 when the pair {a, b} is relayed, else 0. */
int store_pair_relayed(Store *s, int64_t a, int64_t b);

/* The hub object of every netmap, as the server's configuration has it;
 * its addresses are host 1 of the ranges. */
typedef struct NetmapHub {
        const char *public_key; /* base64 */
        const char *endpoint;   /* "ip:port" */
        uint16_t relay_port;    /* the TLS relay's own port, 0: none ("relay_port" absent) */
} NetmapHub;

/* The mesh at its current version, read in one transaction: settings,
 * members (not expired), relayed pairs and, with hub, the hub's addresses. */
int store_read_mesh(Store *s, const NetmapHub *hub, NetmapMesh *ret);

/* The same without members, relays, devices or policy: the settings and
 * the hub at the current version, which a register reply's netmap of
 * "netmap_scope": "self" is rendered from with the node's own row
 * (netmap_mesh_render_self()), once per group commit. */
int store_read_mesh_header(Store *s, const NetmapHub *hub, NetmapMesh *ret);

/* store_read_mesh(), rendered by netmap_snapshot_new(); hub: NULL when the
 * server runs without one (no "hub" in netmaps). */
int netmap_snapshot_load(Store *s, const NetmapHub *hub, NetmapSnapshot **ret);

/* store-routes.c: subnet routes (docs/protocol.md, "Routes") */
#define STORE_ROUTES_MAX 64

typedef enum StoreRouteState {
        STORE_ROUTE_ADVERTISED, /* waiting for the admin */
        STORE_ROUTE_APPROVED,   /* in the netmaps while advertised */
        STORE_ROUTE_REJECTED,
        _STORE_ROUTE_STATE_MAX,
        _STORE_ROUTE_STATE_INVALID = -EINVAL,
} StoreRouteState;

const char *store_route_state_to_string(StoreRouteState s);

typedef struct StoreRoute {
        char *node;   /* the node's name */
        char *prefix; /* canonical */
        StoreRouteState state;
        bool advertised; /* false: the node no longer advertises it; its verdict is kept */
} StoreRoute;

void store_routes_free(StoreRoute *l, size_t n);
/* The complete set node id advertises (canonical prefixes, validated by the
 * caller): new ones come in as advertised (or approved by the auto-approval
 * hook), those gone are withdrawn. 1 when something changed (the version
 * moved), 0 when not, -ENOENT when id is no member. */
int store_set_routes(Store *s, int64_t id, char *const *prefixes);
/* Every route of a member, ordered by node name and prefix. */
int store_list_routes(Store *s, StoreRoute **ret, size_t *ret_n);
/* The admin's verdict: -ENOENT no such node, -ENXIO the node never
 * advertised prefix; 1 changed, 0 already so. */
int store_set_route_state(Store *s, const char *node, const char *prefix, StoreRouteState state);
/* The access policy (store-policy.c, docs/policy.md): its text exactly as
 * it was set. -ENOENT: none, everyone reaches everyone. */
int store_get_policy(Store *s, char **ret);
/* Replaces it (NULL: clears it) and bumps the version, in one transaction;
 * the caller has parsed and tested the text. */
int store_set_policy(Store *s, const char *text);
