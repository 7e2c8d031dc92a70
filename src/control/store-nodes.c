/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Members after registration: lookups by token, announced and observed
 * endpoints, removal, expiry and renewal, and the names and addresses that a
 * removed node's certificate still holds. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store-private.h"
#include "strv.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

char *endpoints_to_json(char *const *endpoints) {
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

int endpoints_from_json(const char *json, char ***ret) {
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

void store_node_done(StoreNode *n) {
        if (!n)
                return;
        free(n->name);
        free(n->public_key);
        free(n->ipv4);
        free(n->ipv6);
        strv_free(n->endpoints);
        strv_free(n->tags);
        free(n->observed_endpoint);
        *n = (StoreNode) {};
}

void store_nodes_free(StoreNode *nodes, size_t n) {
        for (size_t i = 0; i < n; i++)
                store_node_done(nodes + i);
        free(nodes);
}

int node_from_row(DbStmt *stmt, StoreNode *ret) {
        StoreNode n = {
                .id = db_column_int64(stmt, 0),
                .created = db_column_int64(stmt, 6),
                .removed = db_column_int(stmt, 7),
                .expired = db_column_int(stmt, 9),
                .device = db_column_int(stmt, 10),
                .expires = db_column_int64(stmt, 11), /* NULL reads as 0: never */
        };
        const char *cols[] = {
                db_column_text(stmt, 1),
                db_column_text(stmt, 2),
                db_column_text(stmt, 3),
                db_column_text(stmt, 4),
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
        r = endpoints_from_json(db_column_text(stmt, 5), &n.endpoints);
        if (r < 0) {
                store_node_done(&n);
                return r;
        }
        r = store_tags_parse(db_column_text(stmt, 12), &n.tags);
        if (r < 0) {
                store_node_done(&n);
                return r;
        }
        if (!db_column_is_null(stmt, 8)) {
                n.observed_endpoint = strdup(db_column_text(stmt, 8));
                if (!n.observed_endpoint) {
                        store_node_done(&n);
                        return -ENOMEM;
                }
        }
        *ret = n;
        return 0;
}

int store_node_by_token(Store *s, const char *token, StoreNode *ret) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        uint8_t hash[HASH_BYTES];
        int r;

        r = hash_secret(token, hash);
        if (r < 0)
                return r;
        r = store_prepare(s, "SELECT " NODE_COLUMNS " FROM nodes WHERE token_hash = ?1", &stmt);
        if (r < 0)
                return r;
        db_bind_blob(stmt, 1, hash, sizeof(hash));
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        return node_from_row(stmt, ret);
}

static int store_get_endpoints_json(Store *s, int64_t id, char **ret) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        const char *v;
        int r;

        r = store_prepare(s, "SELECT endpoints FROM nodes WHERE id = ?1 AND removed IS NULL", &stmt);
        if (r < 0)
                return r;
        db_bind_int64(stmt, 1, id);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        v = db_column_text(stmt, 0);
        *ret = strdup(v ?: "[]");
        return *ret ? 0 : -ENOMEM;
}

int store_set_endpoints(Store *s, int64_t id, char *const *endpoints) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
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
        db_bind_text(stmt, 1, json);
        db_bind_int64(stmt, 2, id);
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
int store_node_left(Store *s, int64_t id) {
        int r;

        r = store_exec_id(s, "DELETE FROM path_reports WHERE reporter_id = ?1 OR peer_id = ?1", id);
        if (r < 0)
                return r;
        r = store_bump_members(s);
        if (r < 0)
                return r;
        return store_bump_version(s);
}

/* Nodes and devices leave the same way; `nodes remove` never takes a device
 * (nor `devices remove` a node). */
int store_remove_member(Store *s, const char *name, bool device) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int64_t id;
        int r;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_prepare(s,
                          "UPDATE nodes SET removed = ?3 WHERE name = ?1 AND removed IS NULL "
                          "AND kind = ?2 RETURNING id",
                          &stmt);
        if (r < 0)
                return r;
        db_bind_text(stmt, 1, name);
        db_bind_text(stmt, 2, device ? "device" : "node");
        db_bind_int64(stmt, 3, (int64_t) time(NULL));
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;

        /* The row stays (its token must keep getting 403), its path reports go. */
        id = db_column_int64(stmt, 0);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        r = store_node_left(s, id);
        if (r < 0)
                return r;
        return store_commit(&tx);
}

int store_remove_node(Store *s, const char *name) {
        return store_remove_member(s, name, false);
}

/* The id of member name, inside a transaction; -ENOENT for no member,
 * -EALREADY when its expired state is already want_expired. */
static int store_member_expired_state(Store *s, const char *name, bool want_expired, int64_t *ret_id) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(s,
                          "SELECT id, expired IS NOT NULL FROM nodes "
                          "WHERE name = ?1 AND removed IS NULL AND kind = 'node'",
                          &stmt);
        if (r < 0)
                return r;
        db_bind_text(stmt, 1, name);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        if (!!db_column_int(stmt, 1) == want_expired)
                return -EALREADY;
        *ret_id = db_column_int64(stmt, 0);
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
        /* a tagged node is its key's, owned by no person: it does not expire */
        r = store_exists(s, "SELECT 1 FROM nodes WHERE id = ?1 AND tags != ''", NULL, id);
        if (r < 0)
                return r;
        if (r > 0)
                return -EPERM;
        r = store_exec_id_now(s, "UPDATE nodes SET expired = ?2 WHERE id = ?1", id);
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
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(
                s,
                "UPDATE nodes SET cert_not_after = CASE WHEN cert_not_after > ?2 THEN cert_not_after ELSE ?2 END "
                "WHERE id = ?1",
                &stmt);
        if (r < 0)
                return r;
        db_bind_int64(stmt, 1, id);
        db_bind_int64(stmt, 2, not_after);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        return db_changes(s->db) > 0 ? 0 : -ENOENT;
}

int store_list_held(Store *s, int64_t now, StoreHeld **ret, size_t *ret_n) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        StoreHeld *l = NULL;
        size_t n = 0;
        int r;

        r = store_prepare(s,
                          "SELECT name, ipv4, ipv6, cert_not_after FROM nodes "
                          "WHERE removed IS NOT NULL AND cert_not_after > ?1 ORDER BY id",
                          &stmt);
        if (r < 0)
                return r;
        db_bind_int64(stmt, 1, now);
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
                        .name = strdup(db_column_text(stmt, 0) ?: ""),
                        .ipv4 = strdup(db_column_text(stmt, 1) ?: ""),
                        .ipv6 = strdup(db_column_text(stmt, 2) ?: ""),
                        .until = db_column_int64(stmt, 3),
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

void node_array_done(NodeArray *a) {
        store_nodes_free(a->nodes, a->n);
        *a = (NodeArray) {};
}

/* Callers hold a transaction when they need the list to match a version. */
int store_list_nodes_internal(Store *s, bool include_expired, bool devices, NodeArray *ret) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        _cleanup_(node_array_done) NodeArray a = {};
        size_t allocated = 0;
        int r;

        r = store_prepare(s,
                          include_expired ? "SELECT " NODE_COLUMNS
                                            " FROM nodes WHERE removed IS NULL AND kind = ?1 ORDER BY id"
                                          : "SELECT " NODE_COLUMNS
                                            " FROM nodes WHERE removed IS NULL AND expired IS NULL "
                                            "AND kind = ?1 ORDER BY id",
                          &stmt);
        if (r < 0)
                return r;
        db_bind_text(stmt, 1, devices ? "device" : "node");
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

        r = store_list_nodes_internal(s, include_expired, false, &a);
        if (r < 0)
                return r;
        *ret = a.nodes;
        *ret_n = a.n;
        return 0;
}

int store_list_devices(Store *s, bool include_expired, StoreNode **ret, size_t *ret_n) {
        NodeArray a;
        int r;

        r = store_list_nodes_internal(s, include_expired, true, &a);
        if (r < 0)
                return r;
        *ret = a.nodes;
        *ret_n = a.n;
        return 0;
}

int store_set_observed_endpoints(Store *s, const StoreObservation *observations, size_t n) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int changed = 0, stored = 0, r;

        if (n == 0)
                return 0;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        /* A device's endpoint is kept (the hub puts it back after a
         * restart) but is in no netmap: no version bump for it. */
        r = store_prepare(s,
                          "UPDATE nodes SET observed_endpoint = ?2 "
                          "WHERE id = ?1 AND removed IS NULL AND observed_endpoint IS DISTINCT FROM ?2 "
                          "RETURNING kind = 'node'",
                          &stmt);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                db_reset(stmt);
                db_bind_int64(stmt, 1, observations[i].id);
                db_bind_text(stmt, 2, observations[i].endpoint);
                r = store_step(s, stmt);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;
                stored++;
                changed += db_column_int(stmt, 0);
                r = store_step(s, stmt);
                if (r < 0)
                        return r;
        }
        if (stored == 0)
                return 0; /* rolls back the empty transaction */

        if (changed > 0) {
                r = store_bump_version(s);
                if (r < 0)
                        return r;
        }
        r = store_commit(&tx);
        return r < 0 ? r : changed;
}
