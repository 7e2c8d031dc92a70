/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd-control authkey create: a key for joining nodes, and the command
 * that joins with it. */
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "mesh-secrets.h"
#include "verbs.h"

#define AUTHKEY_PREFIX "mskey-"

int verb_authkey_create(const ControlArgs *a) {
        _cleanup_(store_freep) Store *store = NULL;
        _cleanup_free_ char *key = NULL, *url = NULL, *pin = NULL;
        int64_t expires = 0;
        int r;

        r = open_store(a, &store);
        if (r < 0)
                return r;
        r = store_get_setting(store, "url", &url);
        if (r < 0)
                return log_error_errno(r, "Database has no server URL: %m");
        r = mesh_tls_pin(store, &pin);
        if (r < 0)
                return r;
        r = store_secret_new(AUTHKEY_PREFIX, &key);
        if (r < 0)
                return r;
        if (a->expires_sec > 0)
                expires = (int64_t) time(NULL) + (int64_t) a->expires_sec;
        r = store_authkey_add_tagged(store, key, a->reusable, expires, a->tags);
        if (r < 0)
                return log_error_errno(r, "Failed to store auth key: %m");

        printf("%s\n", key);
        printf("meshctl up --server %s --authkey %s --pin %s\n", url, key, pin);
        return 0;
}
