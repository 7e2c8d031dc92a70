/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The TLS relay stream of docs/protocol.md ("GET /v1/relay"): after the
 * HTTP upgrade, both directions carry frames of a 16-bit big-endian length
 * and that many bytes of one WireGuard message, exactly as it would travel
 * in a UDP datagram. And the UDP echo that tells a node whether UDP reaches
 * the control server again. Pure encoding, shared by meshd and
 * meshd-control; nothing here trusts its input. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RELAY_UPGRADE_TOKEN "meshd-relay/1"
#define RELAY_FRAME_HEADER_SIZE 2
/* Room for a 9000-byte jumbo MTU plus WireGuard's 32 bytes of overhead;
 * anything longer is not a WireGuard datagram we would ever send. */
#define RELAY_FRAME_MAX 9216

/* What relay_frame_check() says about a payload. */
typedef enum RelayFrameVerdict {
        RELAY_FRAME_OK,
        RELAY_FRAME_EMPTY,
        RELAY_FRAME_OVERSIZED,
        RELAY_FRAME_NOT_WIREGUARD,
} RelayFrameVerdict;

/* A WireGuard message: type 1 (handshake initiation, 148 bytes),
 * 2 (response, 92), 3 (cookie reply, 64) or 4 (transport data, at least 32
 * bytes: not always a multiple of 16 past the header, as WireGuard pads only
 * up to the MTU), three zero bytes after the type. */
RelayFrameVerdict relay_frame_check(const uint8_t *payload, size_t len);
const char *relay_frame_verdict_to_string(RelayFrameVerdict v);

/* Writes the 2-byte header for a payload of len bytes (1..RELAY_FRAME_MAX). */
void relay_frame_header(size_t len, uint8_t header[static RELAY_FRAME_HEADER_SIZE]);

/* Incremental decoder over a byte stream: feed what the socket gave, take
 * whole frames out. One frame is buffered at most. */
typedef struct RelayFrameReader {
        uint8_t buf[RELAY_FRAME_HEADER_SIZE + RELAY_FRAME_MAX];
        size_t have;
} RelayFrameReader;

/* Consumes bytes from *data (advancing it and *len) until one frame is
 * complete: returns 1 and points *ret and *ret_len at its payload (valid until
 * the next call), 0 when more bytes are needed (all of *data consumed),
 * -EMSGSIZE for a declared length of 0 or above RELAY_FRAME_MAX. The
 * payload is not checked: call relay_frame_check() on it. */
int relay_frame_reader_feed(RelayFrameReader *r, const uint8_t **data, size_t *len, const uint8_t **ret,
                            size_t *ret_len);

/* The UDP echo: "MSHE", a type (1 request, 2 reply), three zero bytes and
 * a 16-byte nonce; the reply is the request with the type changed, never
 * larger, so the echo cannot amplify. */
#define RELAY_ECHO_SIZE 24
#define RELAY_ECHO_NONCE_SIZE 16
enum {
        RELAY_ECHO_REQUEST = 1,
        RELAY_ECHO_REPLY = 2,
};
void relay_echo_encode(uint8_t type, const uint8_t nonce[static RELAY_ECHO_NONCE_SIZE],
                       uint8_t buf[static RELAY_ECHO_SIZE]);
/* -EBADMSG for anything that is not exactly an echo packet. */
int relay_echo_decode(const uint8_t *buf, size_t len, uint8_t *ret_type,
                      uint8_t ret_nonce[static RELAY_ECHO_NONCE_SIZE]);
