/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Auth keys (meshd-control authkeys add) and the secrets behind them and
 * node tokens: only their SHA-256 hashes are stored. */
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"
#include "store-private.h"

#define SECRET_BYTES 32

int hash_secret(const char *secret, uint8_t ret[static HASH_BYTES]) {
        int rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, secret, strlen(secret), ret);
        if (rc < 0)
                return log_error_errno(-EIO, "Failed to hash secret: %s", gnutls_strerror(rc));
        return 0;
}

int store_secret_new(const char *prefix, char **ret) {
        uint8_t bytes[SECRET_BYTES];
        char b64[sodium_base64_ENCODED_LEN(SECRET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
        char *s;

        if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t) sizeof(bytes))
                return log_error_errno(negative_errno(), "Failed to get random bytes: %m");
        sodium_bin2base64(b64, sizeof(b64), bytes, sizeof(bytes), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        explicit_bzero(bytes, sizeof(bytes));
        if (asprintf(&s, "%s%s", prefix ?: "", b64) < 0)
                return log_oom();
        explicit_bzero(b64, sizeof(b64));
        *ret = s;
        return 0;
}

int store_authkey_add(Store *s, const char *key, bool reusable, int64_t expires) {
        return store_authkey_add_tagged(s, key, reusable, expires, NULL);
}

int store_authkey_add_tagged(Store *s, const char *key, bool reusable, int64_t expires, char *const *tags) {
        _cleanup_(db_stmt_freep) DbStmt *stmt = NULL;
        _cleanup_free_ char *tags_text = store_tags_format(tags);
        uint8_t hash[HASH_BYTES];
        int r;

        if (!tags_text)
                return log_oom();
        r = hash_secret(key, hash);
        if (r < 0)
                return r;
        r = store_prepare(s,
                          "INSERT INTO authkeys (hash, reusable, expires, created, tags) "
                          "VALUES (?1, ?2, ?3, ?5, ?4)",
                          &stmt);
        if (r < 0)
                return r;
        db_bind_blob(stmt, 1, hash, sizeof(hash));
        db_bind_int64(stmt, 2, reusable);
        db_bind_int64(stmt, 3, expires);
        db_bind_text(stmt, 4, tags_text);
        db_bind_int64(stmt, 5, (int64_t) time(NULL));
        r = store_step(s, stmt);
        return r < 0 ? r : 0;
}
