/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Path reports (POST /v1/paths): the latest direct/relayed finding per
 * ordered pair of members, and which pairs go through the hub. */
#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "store-private.h"

static int store_pair_relayed_internal(Store *s, DbStmt *stmt, int64_t a, int64_t b) {
        int r;

        db_reset(stmt);
        db_bind_int64(stmt, 1, a);
        db_bind_int64(stmt, 2, b);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        return r > 0 && db_column_int(stmt, 0) != 0;
}

#define PAIR_RELAYED_SQL                                                  \
        "SELECT EXISTS (SELECT 1 FROM path_reports WHERE direct = 0 AND " \
        "((reporter_id = ?1 AND peer_id = ?2) OR (reporter_id = ?2 AND peer_id = ?1)))"

int store_pair_relayed(Store *s, int64_t a, int64_t b) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_prepare(s, PAIR_RELAYED_SQL, &stmt);
        if (r < 0)
                return r;
        return store_pair_relayed_internal(s, stmt, a, b);
}

int store_report_paths(Store *s, int64_t reporter_id, const StorePathReport *reports, size_t n, int64_t now) {
        _cleanup_(db_stmt_freep) DbStmt *member = NULL, *relayed = NULL, *upsert = NULL;
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
        r = store_prepare(s,
                          "INSERT INTO path_reports (reporter_id, peer_id, direct, updated) "
                          "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (reporter_id, peer_id) "
                          "DO UPDATE SET direct = excluded.direct, updated = excluded.updated",
                          &upsert);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                int64_t peer_id;
                int before, after;

                db_reset(member);
                db_bind_text(member, 1, reports[i].public_key);
                r = store_step(s, member);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue; /* not a member: ignored, as the protocol says */
                peer_id = db_column_int64(member, 0);
                if (peer_id == reporter_id)
                        continue;

                before = store_pair_relayed_internal(s, relayed, reporter_id, peer_id);
                if (before < 0)
                        return before;

                db_reset(upsert);
                db_bind_int64(upsert, 1, reporter_id);
                db_bind_int64(upsert, 2, peer_id);
                db_bind_int64(upsert, 3, reports[i].direct);
                db_bind_int64(upsert, 4, now);
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

/* Pairs of members with at least one direct=false report, each once. */
int store_load_relays(Store *s, NetmapRelayPair **ret, size_t *ret_n) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        _cleanup_free_ NetmapRelayPair *pairs = NULL;
        size_t n = 0, allocated = 0;
        int r;

        r = store_prepare(
                s,
                "SELECT DISTINCT CASE WHEN p.reporter_id < p.peer_id THEN p.reporter_id ELSE p.peer_id END, "
                "CASE WHEN p.reporter_id < p.peer_id THEN p.peer_id ELSE p.reporter_id END "
                /* PostgreSQL plans a statement without parameters once, when
                 * it is prepared: on an empty mesh two JOINs of nodes became
                 * nodes × nodes, 1 s a snapshot at 1,500 nodes. An OFFSET
                 * keeps each EXISTS a lookup per report (no join to
                 * reorder); the reports are few. */
                "FROM path_reports p WHERE p.direct = 0 "
                "AND EXISTS (SELECT 1 FROM nodes a WHERE a.id = p.reporter_id AND a.removed IS NULL LIMIT 1 OFFSET 0) "
                "AND EXISTS (SELECT 1 FROM nodes b WHERE b.id = p.peer_id AND b.removed IS NULL LIMIT 1 OFFSET 0) "
                "ORDER BY 1, 2",
                &stmt);
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
                        NetmapRelayPair *t = reallocarray(pairs, k, sizeof(NetmapRelayPair));
                        if (!t)
                                return log_oom();
                        pairs = t;
                        allocated = k;
                }
                pairs[n++] = (NetmapRelayPair) { db_column_int64(stmt, 0), db_column_int64(stmt, 1) };
        }
        *ret = TAKE_PTR(pairs);
        *ret_n = n;
        return 0;
}
