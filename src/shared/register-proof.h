/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Proof of key possession at registration (docs/protocol.md, "Joining").
 * The control server hands out a challenge and a per-challenge X25519
 * public key ("server_key"); the node answers with an HMAC over the request
 * keyed by what only the holder of its WireGuard private key (or of the
 * server's per-challenge secret) can compute:
 *
 *   shared = X25519(node_private, server_key) = X25519(server_private, node_public)
 *   key    = BLAKE2b-256(key = shared, "meshd register proof v1" || server_key || node_public)
 *   proof  = HMAC-SHA256(key, transcript)
 *
 * transcript: the context string, then challenge, public_key (base64, as
 * sent), hostname and authkey, each as a 4-byte big-endian length and its
 * bytes, so no two requests share one. Both meshd and meshd-control use
 * this file, so the two sides cannot drift apart. */

#include <stddef.h>
#include <stdint.h>

#include "key.h"

#define REGISTER_PROOF_CONTEXT "meshd register proof v1"
#define REGISTER_PROOF_BYTES 32
/* standard base64 of 32 bytes, with its one '=' */
#define REGISTER_PROOF_B64_LEN 44

typedef struct RegisterProofFields {
        const char *challenge;  /* as the server sent it */
        const char *public_key; /* base64, as the request carries it */
        const char *hostname;
        const char *authkey;
} RegisterProofFields;

/* The node's side: proof for the request in f, in base64 into
 * ret[REGISTER_PROOF_B64_LEN + 1]. -EINVAL when server_key is of low order
 * (the shared secret would be all-zero) or a field is missing. */
int register_proof_compute(const WgKey *node_private, const WgKey *server_key, const RegisterProofFields *f,
                           char ret[static REGISTER_PROOF_B64_LEN + 1]);

/* The server's side: 0 when proof_b64 is the proof of f for the holder of
 * node_public, -EBADMSG when it is not (or not base64 of 32 bytes),
 * -EINVAL when node_public is of low order. */
int register_proof_verify(const WgKey *server_private, const WgKey *node_public, const RegisterProofFields *f,
                          const char *proof_b64);
