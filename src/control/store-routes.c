/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Subnet routes: what each node advertises, the admin's verdict, and the
 * approved ones that the netmaps carry (docs/protocol.md, "Routes"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msg-routes.h"
#include "policy.h"
#include "store-private.h"
#include "strv.h"

static const char *const route_state_table[_STORE_ROUTE_STATE_MAX] = {
        [STORE_ROUTE_ADVERTISED] = "advertised",
        [STORE_ROUTE_APPROVED] = "approved",
        [STORE_ROUTE_REJECTED] = "rejected",
};

const char *store_route_state_to_string(StoreRouteState s) {
        return s >= 0 && s < _STORE_ROUTE_STATE_MAX ? route_state_table[s] : NULL;
}

static StoreRouteState route_state_from_string(const char *s) {
        for (size_t i = 0; s && i < _STORE_ROUTE_STATE_MAX; i++)
                if (streq(s, route_state_table[i]))
                        return (StoreRouteState) i;
        return _STORE_ROUTE_STATE_INVALID;
}

void store_routes_free(StoreRoute *l, size_t n) {
        for (size_t i = 0; l && i < n; i++) {
                free(l[i].node);
                free(l[i].prefix);
        }
        free(l);
}

/* The policy's auto_approve (docs/policy.md): a new route of a member that
 * the policy names there is approved at once. No policy, or one that no
 * longer parses (it was checked when set), approves nothing. */
static bool route_auto_approved(Store *s, int64_t id, const char *prefix) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ char *text = NULL, *error = NULL;
        _cleanup_strv_free_ char **tags = NULL;
        InAddrPrefix pfx;

        if (store_get_policy(s, &text) < 0 || policy_parse(text, strlen(text), &p, &error) < 0 ||
            route_prefix_parse(prefix, &pfx) < 0)
                return false;
        if (store_prepare(s, "SELECT name, tags FROM nodes WHERE id = ?1", &stmt) < 0)
                return false;
        db_bind_int64(stmt, 1, id);
        if (store_step(s, stmt) <= 0 || store_tags_parse(db_column_text(stmt, 1), &tags) < 0)
                return false;
        PolicyMember m = {
                .name = db_column_text(stmt, 0),
                .tags = tags,
        };
        return policy_auto_approves(p, &m, &pfx);
}

/* The prefixes id has rows for, and whether each is advertised now. */
static int load_node_routes(Store *s, int64_t id, char ***ret, bool **ret_advertised) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ bool *adv = NULL;
        size_t n = 0;
        int r;

        r = store_prepare(s, "SELECT prefix, advertised FROM routes WHERE node_id = ?1", &stmt);
        if (r < 0)
                return r;
        db_bind_int64(stmt, 1, id);
        while ((r = store_step(s, stmt)) > 0) {
                const char *p = db_column_text(stmt, 0);
                bool *a = realloc(adv, (n + 1) * sizeof(bool));

                if (!a)
                        return log_oom();
                adv = a;
                adv[n++] = db_column_int(stmt, 1) != 0;
                if (strv_consume(&l, strdup(p ?: "")) < 0)
                        return log_oom();
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        *ret_advertised = TAKE_PTR(adv);
        return 0;
}

static int exec_route(Store *s, const char *sql, int64_t id, const char *prefix, const char *state) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        db_bind_int64(stmt, 1, id);
        db_bind_text(stmt, 2, prefix);
        if (state)
                db_bind_text(stmt, 3, state);
        r = store_step(s, stmt);
        return r < 0 ? r : db_changes(s->db);
}

static bool strv_has(char *const *l, const char *s) {
        for (size_t i = 0; l && l[i]; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

/* Rows of id that prefixes no longer lists: withdrawn (a verdict is kept)
 * or gone (nobody decided yet). */
static int withdraw_routes(Store *s, int64_t id, char *const *prefixes, char **old, const bool *adv) {
        int changed = 0, r;

        for (size_t i = 0; old && old[i]; i++) {
                if (!adv[i] || strv_has(prefixes, old[i]))
                        continue;
                r = exec_route(s,
                               "DELETE FROM routes WHERE node_id = ?1 AND prefix = ?2 AND state = 'advertised'",
                               id, old[i], NULL);
                if (r == 0)
                        r = exec_route(s, "UPDATE routes SET advertised = 0 WHERE node_id = ?1 AND prefix = ?2",
                                       id, old[i], NULL);
                if (r < 0)
                        return r;
                changed++;
        }
        return changed;
}

static int advertise_routes(Store *s, int64_t id, char *const *prefixes, char **old, const bool *adv) {
        int changed = 0, r;

        for (size_t i = 0; prefixes && prefixes[i]; i++) {
                ssize_t k = -1;

                for (size_t j = 0; old && old[j]; j++)
                        if (streq(old[j], prefixes[i]))
                                k = (ssize_t) j;
                if (k >= 0 && adv[k])
                        continue;
                if (k >= 0)
                        r = exec_route(s, "UPDATE routes SET advertised = 1 WHERE node_id = ?1 AND prefix = ?2",
                                       id, prefixes[i], NULL);
                else
                        r = exec_route(s, "INSERT INTO routes (node_id, prefix, state) VALUES (?1, ?2, ?3)", id,
                                       prefixes[i],
                                       route_auto_approved(s, id, prefixes[i]) ? "approved" : "advertised");
                if (r < 0)
                        return r;
                changed++;
        }
        return changed;
}

int store_set_routes(Store *s, int64_t id, char *const *prefixes) {
        _cleanup_strv_free_ char **old = NULL;
        _cleanup_free_ bool *adv = NULL;
        int r, changed;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_exists(s, "SELECT 1 FROM nodes WHERE id = ?1 AND removed IS NULL AND expired IS NULL", NULL,
                         id);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        r = load_node_routes(s, id, &old, &adv);
        if (r < 0)
                return r;
        changed = withdraw_routes(s, id, prefixes, old, adv);
        if (changed < 0)
                return changed;
        r = advertise_routes(s, id, prefixes, old, adv);
        if (r < 0)
                return r;
        changed += r;
        /* a node posts its set at every start: the same again moves nothing */
        if (changed == 0)
                return 0;
        r = store_bump_version(s);
        if (r < 0)
                return r;
        r = store_commit(&tx);
        return r < 0 ? r : 1;
}

int store_list_routes(Store *s, StoreRoute **ret, size_t *ret_n) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        StoreRoute *l = NULL;
        size_t n = 0;
        int r;

        r = store_prepare(s,
                          "SELECT nodes.name, routes.prefix, routes.state, routes.advertised FROM routes "
                          "JOIN nodes ON nodes.id = routes.node_id WHERE nodes.removed IS NULL "
                          "ORDER BY nodes.name, routes.prefix",
                          &stmt);
        if (r < 0)
                return r;
        while ((r = store_step(s, stmt)) > 0) {
                StoreRoute *a = realloc(l, (n + 1) * sizeof(StoreRoute));

                if (!a) {
                        r = log_oom();
                        break;
                }
                l = a;
                l[n] = (StoreRoute) {
                        .node = strdup(db_column_text(stmt, 0) ?: ""),
                        .prefix = strdup(db_column_text(stmt, 1) ?: ""),
                        .state = route_state_from_string(db_column_text(stmt, 2)),
                        .advertised = db_column_int(stmt, 3) != 0,
                };
                n++;
                if (!l[n - 1].node || !l[n - 1].prefix) {
                        r = log_oom();
                        break;
                }
        }
        if (r < 0) {
                store_routes_free(l, n);
                return r;
        }
        *ret = l;
        *ret_n = n;
        return 0;
}

/* The id of the node called name, -ENOENT when there is none. */
static int find_node(Store *s, const char *name, int64_t *ret) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(s, "SELECT id FROM nodes WHERE name = ?1 AND removed IS NULL AND kind = 'node'",
                          &stmt);
        if (r < 0)
                return r;
        db_bind_text(stmt, 1, name);
        r = store_step(s, stmt);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        *ret = db_column_int64(stmt, 0);
        return 0;
}

static int route_state(Store *s, int64_t id, const char *prefix, StoreRouteState *ret) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(s, "SELECT state FROM routes WHERE node_id = ?1 AND prefix = ?2", &stmt);
        if (r < 0)
                return r;
        db_bind_int64(stmt, 1, id);
        db_bind_text(stmt, 2, prefix);
        r = store_step(s, stmt);
        if (r <= 0)
                return r < 0 ? r : -ENXIO;
        *ret = route_state_from_string(db_column_text(stmt, 0));
        return 0;
}

int store_set_route_state(Store *s, const char *node, const char *prefix, StoreRouteState state) {
        StoreRouteState old;
        int64_t id;
        int r;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = find_node(s, node, &id);
        if (r < 0)
                return r;
        r = route_state(s, id, prefix, &old);
        if (r < 0)
                return r;
        if (old == state)
                return 0;
        r = exec_route(s, "UPDATE routes SET state = ?3 WHERE node_id = ?1 AND prefix = ?2", id, prefix,
                       store_route_state_to_string(state));
        if (r < 0)
                return r;
        r = store_bump_version(s);
        if (r < 0)
                return r;
        r = store_commit(&tx);
        return r < 0 ? r : 1;
}

/* Inside store_read_mesh()'s transaction: each node's approved routes that
 * it still advertises, onto nodes (ordered by id). */
int store_load_approved_routes(Store *s, NetmapMeshNode *nodes, size_t n) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        size_t k = 0;
        int r;

        r = store_prepare(s,
                          "SELECT node_id, prefix FROM routes WHERE state = 'approved' AND advertised = 1 "
                          "ORDER BY node_id, prefix",
                          &stmt);
        if (r < 0)
                return r;
        while ((r = store_step(s, stmt)) > 0) {
                int64_t id = db_column_int64(stmt, 0);

                while (k < n && nodes[k].id < id)
                        k++;
                if (k == n)
                        break;
                if (nodes[k].id != id)
                        continue; /* removed or expired: in no netmap */
                if (strv_consume(&nodes[k].routes, strdup(db_column_text(stmt, 1) ?: "")) < 0)
                        return log_oom();
        }
        return r < 0 ? r : 0;
}
