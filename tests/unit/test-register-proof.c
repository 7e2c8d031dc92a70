/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "challenge.h"
#include "log.h"
#include "macro.h"
#include "register-proof.h"

#define NOW 1700000000

/* u = 1, a point of order 4 on Curve25519: X25519 with it is all-zero
 * whatever the (clamped) scalar. */
static const uint8_t low_order[32] = { 1 };

typedef struct Case {
        ChallengeSecret secret;
        char *challenge;
        WgKey server_key, server_private;
        int64_t expires;
        WgKey node_private, node_public;
        char node_public_b64[WG_KEY_B64_LEN + 1];
        char hostname[32], authkey[64];
} Case;

static void case_new(Case *c) {
        *c = (Case) {};
        randombytes_buf(c->secret.data, sizeof(c->secret.data));
        assert_int_equal(challenge_new(&c->secret, NOW, &c->challenge, &c->server_key, &c->expires), 0);
        assert_int_equal(c->expires, NOW + CHALLENGE_LIFETIME_SEC);
        assert_int_equal(challenge_check(&c->secret, c->challenge, NOW, &c->server_private, &c->expires), 0);
        assert_int_equal(key_generate_private(&c->node_private), 0);
        assert_int_equal(key_public_from_private(&c->node_private, &c->node_public), 0);
        key_to_base64(&c->node_public, c->node_public_b64);
        strcpy(c->hostname, "nas");
        strcpy(c->authkey, "mskey-abcdef");
}

static RegisterProofFields case_fields(Case *c) {
        return (RegisterProofFields) {
                .challenge = c->challenge,
                .public_key = c->node_public_b64,
                .hostname = c->hostname,
                .authkey = c->authkey,
        };
}

static int verify(Case *c, const WgKey *node_public, const char *proof) {
        RegisterProofFields f = case_fields(c);
        return register_proof_verify(&c->server_private, node_public, &f, proof);
}

static int compute(Case *c, const WgKey *node_private, const WgKey *server_key, char *proof) {
        RegisterProofFields f = case_fields(c);
        return register_proof_compute(node_private, server_key, &f, proof);
}

static void test_round_trip(void **state) {
        char proof[REGISTER_PROOF_B64_LEN + 1];
        WgKey derived;
        Case c;

        case_new(&c);
        /* the server's per-challenge key is what it announced */
        assert_int_equal(key_public_from_private(&c.server_private, &derived), 0);
        assert_true(key_equal(&derived, &c.server_key));

        assert_int_equal(compute(&c, &c.node_private, &c.server_key, proof), 0);
        assert_int_equal(strlen(proof), REGISTER_PROOF_B64_LEN);
        assert_int_equal(verify(&c, &c.node_public, proof), 0);
        free(c.challenge);
}

static void test_wrong_key(void **state) {
        char proof[REGISTER_PROOF_B64_LEN + 1];
        WgKey other;
        Case c;

        case_new(&c);
        /* an attacker with its own key, claiming the victim's public key */
        assert_int_equal(key_generate_private(&other), 0);
        assert_int_equal(compute(&c, &other, &c.server_key, proof), 0);
        assert_int_equal(verify(&c, &c.node_public, proof), -EBADMSG);

        /* the right key against another challenge's server key */
        Case d;
        case_new(&d);
        assert_int_equal(compute(&c, &c.node_private, &d.server_key, proof), 0);
        assert_int_equal(verify(&c, &c.node_public, proof), -EBADMSG);
        free(c.challenge);
        free(d.challenge);
}

static void flip_and_check(Case *c, char *field, const char *proof) {
        for (size_t i = 0; field[i]; i++) {
                char saved = field[i];

                field[i] ^= 0x01;
                assert_int_equal(verify(c, &c->node_public, proof), -EBADMSG);
                field[i] = saved;
        }
        assert_int_equal(verify(c, &c->node_public, proof), 0);
}

static void test_flipped_bytes(void **state) {
        char proof[REGISTER_PROOF_B64_LEN + 1];
        Case c;

        case_new(&c);
        assert_int_equal(compute(&c, &c.node_private, &c.server_key, proof), 0);
        flip_and_check(&c, c.challenge, proof);
        flip_and_check(&c, c.node_public_b64, proof);
        flip_and_check(&c, c.hostname, proof);
        flip_and_check(&c, c.authkey, proof);

        /* the proof itself, every byte of it */
        for (size_t i = 0; i < REGISTER_PROOF_B64_LEN - 1; i++) {
                char p[sizeof(proof)];

                memcpy(p, proof, sizeof(p));
                p[i] = p[i] == 'A' ? 'B' : 'A';
                assert_int_equal(verify(&c, &c.node_public, p), -EBADMSG);
        }
        /* fields moved from one to the next: the length prefixes tell them apart */
        strcpy(c.hostname, "nasmskey");
        strcpy(c.authkey, "-abcdef");
        assert_int_equal(verify(&c, &c.node_public, proof), -EBADMSG);

        assert_int_equal(verify(&c, &c.node_public, ""), -EBADMSG);
        assert_int_equal(verify(&c, &c.node_public, NULL), -EBADMSG);
        assert_int_equal(verify(&c, &c.node_public, "not base64 at all, not at all, not at all!!"), -EBADMSG);
        free(c.challenge);
}

static void test_low_order(void **state) {
        char proof[REGISTER_PROOF_B64_LEN + 1];
        WgKey bad;
        Case c;

        case_new(&c);
        memcpy(bad.data, low_order, sizeof(bad.data));
        /* a node key of low order: the shared secret is zero for everyone */
        assert_int_equal(verify(&c, &bad, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), -EINVAL);
        /* a server key of low order: the node refuses to answer */
        assert_int_equal(compute(&c, &c.node_private, &bad, proof), -EINVAL);
        free(c.challenge);
}

static void test_challenge(void **state) {
        _cleanup_(challenge_set_freep) ChallengeSet *used = challenge_set_new();
        ChallengeSecret other;
        WgKey priv;
        int64_t expires;
        Case c;

        case_new(&c);
        /* expired: at and after its expiry */
        assert_int_equal(challenge_check(&c.secret, c.challenge, NOW + CHALLENGE_LIFETIME_SEC, &priv, &expires),
                         -ETIME);
        assert_int_equal(challenge_check(&c.secret, c.challenge, NOW + 3600, &priv, &expires), -ETIME);
        assert_int_equal(challenge_check(&c.secret, c.challenge, NOW + CHALLENGE_LIFETIME_SEC - 1, &priv,
                                         &expires),
                         0);

        /* another server's, forged, or garbage */
        randombytes_buf(other.data, sizeof(other.data));
        assert_int_equal(challenge_check(&other, c.challenge, NOW, &priv, &expires), -EBADMSG);
        for (size_t i = 0; c.challenge[i]; i++) {
                char saved = c.challenge[i];
                c.challenge[i] = saved == 'A' ? 'B' : 'A';
                assert_int_equal(challenge_check(&c.secret, c.challenge, NOW, &priv, &expires), -EBADMSG);
                c.challenge[i] = saved;
        }
        assert_int_equal(challenge_check(&c.secret, "", NOW, &priv, &expires), -EBADMSG);
        assert_int_equal(challenge_check(&c.secret, NULL, NOW, &priv, &expires), -EBADMSG);

        /* single use, forgotten once expired */
        assert_non_null(used);
        assert_int_equal(challenge_set_check(used, c.challenge, NOW), 0);
        assert_int_equal(challenge_set_check(used, c.challenge, NOW), 0); /* checking uses nothing */
        assert_int_equal(challenge_set_use(used, c.challenge, c.expires, NOW), 0);
        assert_int_equal(challenge_set_check(used, c.challenge, NOW), -EALREADY);
        assert_int_equal(challenge_set_check(used, "garbage", NOW), -EBADMSG);
        assert_int_equal(challenge_set_use(used, c.challenge, c.expires, NOW + 1), -EALREADY);
        Case d;
        case_new(&d);
        assert_int_equal(challenge_set_use(used, d.challenge, d.expires, NOW + 1), 0);
        assert_int_equal(challenge_set_size(used), 2);
        assert_int_equal(challenge_set_use(used, d.challenge, d.expires, NOW + CHALLENGE_LIFETIME_SEC), 0);
        assert_int_equal(challenge_set_size(used), 1);
        free(c.challenge);
        free(d.challenge);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_wrong_key),
                cmocka_unit_test(test_flipped_bytes), cmocka_unit_test(test_low_order),
                cmocka_unit_test(test_challenge),
        };

        assert_true(sodium_init() >= 0);
        log_setup("test-register-proof", LOG_TARGET_CONSOLE);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
