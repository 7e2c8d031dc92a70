/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "macro.h"
#include "register-proof.h"

typedef struct ProofKey {
        uint8_t data[crypto_auth_hmacsha256_KEYBYTES];
} ProofKey;

static void proof_key_erase(ProofKey *k) {
        sodium_memzero(k, sizeof(*k));
}

/* shared = X25519(own_private, their_public); libsodium refuses (-1) an
 * all-zero result, which a low-order public key forces whatever the private
 * key: such a "proof" would prove nothing. */
static int proof_key_derive(const WgKey *own_private, const WgKey *their_public, const WgKey *server_key,
                            const WgKey *node_public, ProofKey *ret) {
        uint8_t shared[crypto_scalarmult_BYTES];
        crypto_generichash_state st;

        if (sodium_init() < 0)
                return -EIO;
        if (crypto_scalarmult(shared, own_private->data, their_public->data) != 0)
                return -EINVAL;
        if (crypto_generichash_init(&st, shared, sizeof(shared), sizeof(ret->data)) != 0) {
                sodium_memzero(shared, sizeof(shared));
                return -EIO;
        }
        sodium_memzero(shared, sizeof(shared));
        (void) crypto_generichash_update(&st, (const uint8_t *) REGISTER_PROOF_CONTEXT,
                                         strlen(REGISTER_PROOF_CONTEXT));
        (void) crypto_generichash_update(&st, server_key->data, WG_KEY_LEN);
        (void) crypto_generichash_update(&st, node_public->data, WG_KEY_LEN);
        (void) crypto_generichash_final(&st, ret->data, sizeof(ret->data));
        sodium_memzero(&st, sizeof(st));
        return 0;
}

static void transcript_add(crypto_auth_hmacsha256_state *st, const char *field) {
        size_t len = strlen(field);
        uint8_t prefix[4] = { (uint8_t) (len >> 24), (uint8_t) (len >> 16), (uint8_t) (len >> 8),
                              (uint8_t) len };

        (void) crypto_auth_hmacsha256_update(st, prefix, sizeof(prefix));
        (void) crypto_auth_hmacsha256_update(st, (const uint8_t *) field, len);
}

static int proof_mac(const ProofKey *key, const RegisterProofFields *f,
                     uint8_t ret[static REGISTER_PROOF_BYTES]) {
        crypto_auth_hmacsha256_state st;

        if (!f->challenge || !f->public_key || !f->hostname || !f->authkey)
                return -EINVAL;
        (void) crypto_auth_hmacsha256_init(&st, key->data, sizeof(key->data));
        transcript_add(&st, REGISTER_PROOF_CONTEXT);
        transcript_add(&st, f->challenge);
        transcript_add(&st, f->public_key);
        transcript_add(&st, f->hostname);
        transcript_add(&st, f->authkey);
        (void) crypto_auth_hmacsha256_final(&st, ret);
        sodium_memzero(&st, sizeof(st));
        return 0;
}

int register_proof_compute(const WgKey *node_private, const WgKey *server_key, const RegisterProofFields *f,
                           char ret[static REGISTER_PROOF_B64_LEN + 1]) {
        _cleanup_(proof_key_erase) ProofKey key = {};
        uint8_t mac[REGISTER_PROOF_BYTES];
        WgKey node_public;
        int r;

        r = key_public_from_private(node_private, &node_public);
        if (r < 0)
                return r;
        r = proof_key_derive(node_private, server_key, server_key, &node_public, &key);
        if (r < 0)
                return r;
        r = proof_mac(&key, f, mac);
        if (r < 0)
                return r;
        sodium_bin2base64(ret, REGISTER_PROOF_B64_LEN + 1, mac, sizeof(mac), sodium_base64_VARIANT_ORIGINAL);
        return 0;
}

int register_proof_verify(const WgKey *server_private, const WgKey *node_public, const RegisterProofFields *f,
                          const char *proof_b64) {
        _cleanup_(proof_key_erase) ProofKey key = {};
        uint8_t expected[REGISTER_PROOF_BYTES], got[REGISTER_PROOF_BYTES];
        WgKey server_key;
        size_t len = 0;
        const char *end = NULL;
        int r;

        if (!proof_b64 || strlen(proof_b64) != REGISTER_PROOF_B64_LEN ||
            sodium_base642bin(got, sizeof(got), proof_b64, REGISTER_PROOF_B64_LEN, NULL, &len, &end,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            len != sizeof(got) || !end || *end != 0)
                return -EBADMSG;

        r = key_public_from_private(server_private, &server_key);
        if (r < 0)
                return r;
        r = proof_key_derive(server_private, node_public, &server_key, node_public, &key);
        if (r < 0)
                return r;
        r = proof_mac(&key, f, expected);
        if (r < 0)
                return r;
        /* constant time: a timing oracle would let a stranger forge byte by byte */
        return sodium_memcmp(expected, got, sizeof(got)) == 0 ? 0 : -EBADMSG;
}
