/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Challenges of POST /v1/challenge (docs/protocol.md, "Joining"). They are
 * stateless: expiry || 16 random bytes || a MAC of both under the server's
 * challenge secret (a setting of the store), so any number can be handed
 * out without keeping anything. The per-challenge X25519 secret is derived
 * from the secret and the challenge. Only the challenges that were answered
 * are kept, until they expire, so that each is good for one registration. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "key.h"
#include "macro.h"
#include "store.h"

#define CHALLENGE_LIFETIME_SEC 120
#define CHALLENGE_SECRET_BYTES 32
/* used, unexpired challenges kept at most; beyond: 503, try later */
#define CHALLENGE_USED_MAX 65536

typedef struct ChallengeSecret {
        uint8_t data[CHALLENGE_SECRET_BYTES];
} ChallengeSecret;

/* The store's setting "challenge_secret", made (random) when missing. */
int challenge_secret_load(Store *store, ChallengeSecret *ret);

/* A new challenge (base64url, no padding), the public key nodes answer it
 * with and its expiry (seconds since the epoch). */
int challenge_new(const ChallengeSecret *secret, int64_t now, char **ret_challenge, WgKey *ret_server_key,
                  int64_t *ret_expires);

/* -EBADMSG: not one of ours (malformed, forged, another secret's);
 * -ETIME: expired. On success the per-challenge private key and expiry. */
int challenge_check(const ChallengeSecret *secret, const char *challenge, int64_t now,
                    WgKey *ret_server_private, int64_t *ret_expires);

typedef struct ChallengeSet ChallengeSet;

ChallengeSet *challenge_set_new(void);
ChallengeSet *challenge_set_free(ChallengeSet *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ChallengeSet *, challenge_set_free);
/* Before a registration: -EALREADY when the challenge was used, -ENOSPC
 * when too many are kept. Forgets expired ones on the way. */
int challenge_set_check(ChallengeSet *s, const char *challenge, int64_t now);
/* After a successful registration: the challenge is used (-EALREADY when
 * it was, -ENOSPC when too many are kept). Only successes are kept, so
 * that strangers without an auth key cannot fill the set: a failed
 * request stored nothing, and replaying it fails again. The server answers
 * one request at a time, so nothing comes between check and use. */
int challenge_set_use(ChallengeSet *s, const char *challenge, int64_t expires, int64_t now);
size_t challenge_set_size(const ChallengeSet *s);
