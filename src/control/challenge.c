/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "challenge.h"
#include "log.h"

#define NONCE_BYTES 16
#define MAC_BYTES 32
#define RAW_BYTES (8 + NONCE_BYTES + MAC_BYTES)
#define CHALLENGE_B64_MAX sodium_base64_ENCODED_LEN(RAW_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)
#define SETTING "challenge_secret"
#define CONTEXT_MAC "meshd challenge mac v1"
#define CONTEXT_X25519 "meshd challenge x25519 v1"

typedef struct UsedChallenge {
        int64_t expires;
        uint8_t nonce[NONCE_BYTES];
} UsedChallenge;

struct ChallengeSet {
        UsedChallenge *entries;
        size_t n, allocated;
};

int challenge_secret_load(Store *store, ChallengeSecret *ret) {
        _cleanup_free_ char *text = NULL;
        char b64[sodium_base64_ENCODED_LEN(CHALLENGE_SECRET_BYTES, sodium_base64_VARIANT_ORIGINAL)];
        size_t len = 0;
        int r;

        if (sodium_init() < 0)
                return log_error_errno(-EIO, "Failed to initialise libsodium.");
        r = store_get_setting(store, SETTING, &text);
        if (r >= 0) {
                r = sodium_base642bin(ret->data, sizeof(ret->data), text, strlen(text), NULL, &len, NULL,
                                      sodium_base64_VARIANT_ORIGINAL);
                sodium_memzero(text, strlen(text));
                if (r != 0 || len != sizeof(ret->data))
                        return log_error_errno(-EBADMSG, "The database's challenge secret is malformed.");
                return 0;
        }
        if (r != -ENOENT)
                return r;

        /* made once, like the CA, by init or by the first serve of an older mesh */
        randombytes_buf(ret->data, sizeof(ret->data));
        sodium_bin2base64(b64, sizeof(b64), ret->data, sizeof(ret->data), sodium_base64_VARIANT_ORIGINAL);
        /* set once: of two replicas that start together, one secret wins
         * and both use it, so a challenge of one is good at the other */
        r = store_set_setting_once(store, SETTING, b64);
        sodium_memzero(b64, sizeof(b64));
        if (r == -EEXIST)
                return challenge_secret_load(store, ret);
        if (r < 0)
                return log_error_errno(r, "Failed to store the challenge secret: %m");
        return 0;
}

static void challenge_mac(const ChallengeSecret *secret, const uint8_t *raw, uint8_t mac[static MAC_BYTES]) {
        crypto_generichash_state st;

        (void) crypto_generichash_init(&st, secret->data, sizeof(secret->data), MAC_BYTES);
        (void) crypto_generichash_update(&st, (const uint8_t *) CONTEXT_MAC, strlen(CONTEXT_MAC));
        (void) crypto_generichash_update(&st, raw, 8 + NONCE_BYTES);
        (void) crypto_generichash_final(&st, mac, MAC_BYTES);
}

static void challenge_private_key(const ChallengeSecret *secret, const uint8_t raw[static RAW_BYTES],
                                  WgKey *ret) {
        crypto_generichash_state st;

        (void) crypto_generichash_init(&st, secret->data, sizeof(secret->data), WG_KEY_LEN);
        (void) crypto_generichash_update(&st, (const uint8_t *) CONTEXT_X25519, strlen(CONTEXT_X25519));
        (void) crypto_generichash_update(&st, raw, RAW_BYTES);
        (void) crypto_generichash_final(&st, ret->data, WG_KEY_LEN);
        sodium_memzero(&st, sizeof(st));
}

int challenge_new(const ChallengeSecret *secret, int64_t now, char **ret_challenge, WgKey *ret_server_key,
                  int64_t *ret_expires) {
        uint8_t raw[RAW_BYTES];
        uint64_t expires = (uint64_t) now + CHALLENGE_LIFETIME_SEC;
        char text[CHALLENGE_B64_MAX];
        WgKey private_key;
        int r;

        if (sodium_init() < 0)
                return -EIO;
        for (size_t i = 0; i < 8; i++)
                raw[i] = (uint8_t) (expires >> (56 - 8 * i));
        randombytes_buf(raw + 8, NONCE_BYTES);
        challenge_mac(secret, raw, raw + 8 + NONCE_BYTES);

        challenge_private_key(secret, raw, &private_key);
        r = key_public_from_private(&private_key, ret_server_key);
        sodium_memzero(&private_key, sizeof(private_key));
        if (r < 0)
                return r;

        sodium_bin2base64(text, sizeof(text), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        *ret_challenge = strdup(text);
        if (!*ret_challenge)
                return -ENOMEM;
        *ret_expires = (int64_t) expires;
        return 0;
}

static int challenge_decode(const char *challenge, uint8_t raw[static RAW_BYTES]) {
        const char *end = NULL;
        size_t len = 0;

        if (!challenge || strlen(challenge) != CHALLENGE_B64_MAX - 1 ||
            sodium_base642bin(raw, RAW_BYTES, challenge, strlen(challenge), NULL, &len, &end,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
            len != RAW_BYTES || !end || *end != 0)
                return -EBADMSG;
        return 0;
}

int challenge_check(const ChallengeSecret *secret, const char *challenge, int64_t now,
                    WgKey *ret_server_private, int64_t *ret_expires) {
        uint8_t raw[RAW_BYTES], mac[MAC_BYTES];
        uint64_t expires = 0;

        if (challenge_decode(challenge, raw) < 0)
                return -EBADMSG;
        challenge_mac(secret, raw, mac);
        if (sodium_memcmp(mac, raw + 8 + NONCE_BYTES, MAC_BYTES) != 0)
                return -EBADMSG;
        for (size_t i = 0; i < 8; i++)
                expires = (expires << 8) | raw[i];
        if (expires > INT64_MAX || (int64_t) expires <= now)
                return -ETIME;
        challenge_private_key(secret, raw, ret_server_private);
        *ret_expires = (int64_t) expires;
        return 0;
}

ChallengeSet *challenge_set_new(void) {
        return calloc(1, sizeof(ChallengeSet));
}

ChallengeSet *challenge_set_free(ChallengeSet *s) {
        if (!s)
                return NULL;
        free(s->entries);
        free(s);
        return NULL;
}

size_t challenge_set_size(const ChallengeSet *s) {
        return s ? s->n : 0;
}

/* Forgets expired entries; -EALREADY when raw's nonce is among the rest. */
static int challenge_set_prune_find(ChallengeSet *s, const uint8_t raw[static RAW_BYTES], int64_t now) {
        size_t kept = 0;
        int r = 0;

        /* A linear scan: only challenges of successful registrations of the
         * last two minutes are here, a handful unless nodes join by the
         * thousand. */
        for (size_t i = 0; i < s->n; i++) {
                if (s->entries[i].expires <= now)
                        continue;
                if (memcmp(s->entries[i].nonce, raw + 8, NONCE_BYTES) == 0)
                        r = -EALREADY;
                s->entries[kept++] = s->entries[i];
        }
        s->n = kept;
        return r;
}

int challenge_set_check(ChallengeSet *s, const char *challenge, int64_t now) {
        uint8_t raw[RAW_BYTES];
        int r;

        if (challenge_decode(challenge, raw) < 0)
                return -EBADMSG;
        r = challenge_set_prune_find(s, raw, now);
        if (r < 0)
                return r;
        return s->n >= CHALLENGE_USED_MAX ? -ENOSPC : 0;
}

int challenge_set_use(ChallengeSet *s, const char *challenge, int64_t expires, int64_t now) {
        uint8_t raw[RAW_BYTES];
        int r;

        if (challenge_decode(challenge, raw) < 0)
                return -EBADMSG;
        r = challenge_set_prune_find(s, raw, now);
        if (r < 0)
                return r;
        if (s->n >= CHALLENGE_USED_MAX)
                return -ENOSPC;
        if (s->n == s->allocated) {
                size_t m = s->allocated ? s->allocated * 2 : 16;
                UsedChallenge *e = reallocarray(s->entries, m, sizeof(UsedChallenge));
                if (!e)
                        return -ENOMEM;
                s->entries = e;
                s->allocated = m;
        }
        s->entries[s->n].expires = expires;
        memcpy(s->entries[s->n].nonce, raw + 8, NONCE_BYTES);
        s->n++;
        return 0;
}
