/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd-control migrate: the mesh of an SQLite file (STATE_DIR/control.db,
 * or --from=FILE) into the PostgreSQL database of --database, so that
 * `serve --database=URL` carries on where `serve` on the file stopped
 * (docs/postgresql.md). The copy is store-migrate.c's; this is the command
 * line, the check after the commit, and what it prints. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "mesh-secrets.h"
#include "verbs.h"

/* After the commit: the database opens as a mesh like any verb opens it,
 * at the version copied. Secrets a state directory of an older version
 * still kept as files are not in the source; the first serve with that
 * state directory imports them (docs/replicas.md). */
static int migrate_check(const ControlArgs *a, const StoreCopyCounts *c) {
        static const char *const secrets[] = { SETTING_TLS_PEM, SETTING_CA_PEM, SETTING_HUB_PRIVATE_KEY };
        _cleanup_(store_freep) Store *s = NULL;
        uint64_t version;
        int r;

        r = store_open(a->database, false, &s);
        if (r < 0)
                return r;
        r = store_get_version(s, &version);
        if (r < 0)
                return r;
        if ((int64_t) version != c->version)
                return log_error_errno(-EIO,
                                       "The copy reads netmap version %" PRIu64
                                       " after the commit, not %" PRIi64 ".",
                                       version, c->version);
        for (size_t i = 0; i < ELEMENTSOF(secrets); i++) {
                _cleanup_free_ char *v = NULL;

                r = store_get_setting(s, secrets[i], &v);
                if (r == -ENOENT)
                        printf("Note: '%s' was not in the SQLite database yet: the first serve with "
                               "--state-dir=%s imports it from its files.\n",
                               secrets[i], a->state_dir);
                else if (r < 0)
                        return r;
        }
        return 0;
}

int verb_migrate(const ControlArgs *a) {
        _cleanup_free_ char *from = NULL, *target = NULL;
        StoreCopyCounts c = {};
        int r;

        if (!a->database || !db_is_url(a->database))
                return log_error_errno(-EINVAL,
                                       "migrate: --database=postgresql://... names the PostgreSQL database to "
                                       "copy the mesh into.");
        if (a->migrate_from && db_is_url(a->migrate_from))
                return log_error_errno(-EINVAL, "Invalid --from '%s': the SQLite file to copy, not a URL.",
                                       a->migrate_from);
        r = a->migrate_from ? ((from = strdup(a->migrate_from)) ? 0 : -ENOMEM)
                            : state_path(a, STORE_DB_FILE, &from);
        target = db_mask_url(a->database);
        if (r < 0 || !target)
                return log_oom();

        r = store_copy_to_postgresql(from, a->database, &c);
        if (r < 0)
                return r;
        r = migrate_check(a, &c);
        if (r < 0)
                return r;

        printf("Copied the mesh from %s to %s:\n"
               "  %" PRIi64 " settings (the TLS key, the CA and the hub key among them)\n"
               "  %" PRIi64 " auth keys\n"
               "  %" PRIi64 " nodes and devices (removed ones included)\n"
               "  %" PRIi64 " path reports\n"
               "  %" PRIi64 " routes\n"
               "  netmap version %" PRIi64 "\n"
               "%s is unchanged. Start serve with --database=%s.\n",
               from, target, c.settings, c.authkeys, c.nodes, c.path_reports, c.routes, c.version, from,
               target);
        return 0;
}
