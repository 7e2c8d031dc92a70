/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WG_KEY_LEN 32
/* base64 of 32 bytes: 43 characters plus one '=' pad, as wg(8) prints it */
#define WG_KEY_B64_LEN 44

typedef struct WgKey {
        uint8_t data[WG_KEY_LEN];
} WgKey;

/* Curve25519 private key, clamped exactly as `wg genkey` does. */
int key_generate_private(WgKey *ret);
/* Same result as `wg pubkey`. */
int key_public_from_private(const WgKey *private_key, WgKey *ret);
/* Writes WG_KEY_B64_LEN characters and a NUL into buf[WG_KEY_B64_LEN + 1]. */
void key_to_base64(const WgKey *key, char buf[static WG_KEY_B64_LEN + 1]);
/* Strict: exactly 44 characters of standard base64 ending in '='; returns -EINVAL otherwise. */
int key_from_base64(const char *s, WgKey *ret);
bool key_is_zero(const WgKey *key);
bool key_equal(const WgKey *a, const WgKey *b);
/* For public keys only, which are no secret: a plain memcmp(), where
 * key_equal()'s constant-time compare made comparing every peer of a
 * 10,000-peer netmap most of the cost of applying one change. */
static inline bool key_equal_public(const WgKey *a, const WgKey *b) {
        return memcmp(a->data, b->data, sizeof(a->data)) == 0;
}

/* Read a base64 key from a file (trailing newline allowed), refusing files
 * that group or others can read when must_be_private is set. */
int key_read_file(const char *path, bool must_be_private, WgKey *ret);
/* Write atomically (temporary file + rename) with mode 0600. */
int key_write_file(const char *path, const WgKey *key);
