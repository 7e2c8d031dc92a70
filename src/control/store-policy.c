/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The access policy's text in the store: the setting 'policy' (absent:
 * none). Setting it bumps the version, so every node's netmap follows. */
#include <errno.h>
#include <sqlite3.h>

#include "log.h"
#include "store-private.h"

int store_get_policy(Store *s, char **ret) {
        return store_get_setting(s, "policy", ret);
}

int store_set_policy(Store *s, const char *text) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *stmt = NULL;
        int r;

        r = store_begin(s, true);
        if (r < 0)
                return r;
        _cleanup_(store_rollbackp) Store *tx = s;

        r = store_prepare(s,
                          text ? "INSERT OR REPLACE INTO settings (key, value) VALUES ('policy', ?1)"
                               : "DELETE FROM settings WHERE key = 'policy'",
                          &stmt);
        if (r < 0)
                return r;
        if (text)
                sqlite3_bind_text(stmt, 1, text, -1, SQLITE_STATIC);
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
