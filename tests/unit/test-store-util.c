/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "macro.h"
#include "test-store-util.h"
#include "test-util.h"

const char *const store_test_keys[6] = {
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAM=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAU=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAY=",
};

StoreFixture *store_fixture_new(const char *prefix, const char *ipv4_range) {
        StoreFixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        f->dir = test_tmpdir_new(prefix);
        snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, STORE_DB_FILE);
        assert_int_equal(store_open(f->path, true, &f->store), 0);
        assert_int_equal(store_init_settings(f->store, "https://127.0.0.1:8443", "mesh.internal", ipv4_range,
                                             "fd7a:115c:a1e0::/48"),
                         0);
        return f;
}

void store_fixture_free(StoreFixture *f) {
        if (!f)
                return;
        store_free(f->store);
        test_tmpdir_free(f->dir);
        free(f);
}

uint64_t store_test_version(Store *s) {
        uint64_t v = 0;

        assert_int_equal(store_get_version(s, &v), 0);
        return v;
}

int store_test_register(Store *s, const char *authkey, const char *key, const char *name, int64_t now,
                        StoreNode *ret) {
        _cleanup_free_ char *token = NULL;

        assert_int_equal(store_secret_new(NULL, &token), 0);
        return store_register_node(s,
                                   &(StoreRegistration) {
                                           .authkey = authkey,
                                           .public_key = key,
                                           .name = name,
                                           .token = token,
                                   },
                                   now, ret);
}
