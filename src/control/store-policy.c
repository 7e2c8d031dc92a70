/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The access policy's text in the store: the setting 'policy' (absent:
 * none). Setting it bumps the version, so every node's netmap follows. */
#include <errno.h>

#include "log.h"
#include "store-private.h"

int store_get_policy(Store *s, char **ret) {
        return store_get_setting(s, "policy", ret);
}

int store_set_policy(Store *s, const char *text) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        int r;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_prepare(s,
                          text ? "INSERT INTO settings (key, value) VALUES ('policy', ?1) "
                                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                               : "DELETE FROM settings WHERE key = 'policy'",
                          &stmt);
        if (r < 0)
                return r;
        if (text)
                db_bind_text(stmt, 1, text);
        r = store_step(s, stmt);
        if (r < 0)
                return r;
        r = store_bump_version(s);
        if (r < 0)
                return r;
        /* the hub re-reads its members on this counter, and filters the
         * devices' traffic by the policy (hub-policy.c) */
        r = store_bump_members(s);
        if (r < 0)
                return r;
        return store_commit(&tx);
}
