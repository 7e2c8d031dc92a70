/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The TLS relay stream (docs/protocol.md, "GET /v1/relay") reaches the
 * control server from any node and meshd from the server; the UDP echo
 * reaches the server from anyone. The input is a byte stream cut into
 * reads of the sizes its first byte picks: every frame that comes out
 * must have a length the reader allows, re-framed it must decode to
 * itself, and the reader must consume everything or stop on an error. */

#include <errno.h>

#include "fuzz.h"
#include "macro.h"
#include "relay-frame.h"

static void check_frame(const uint8_t *f, size_t len) {
        RelayFrameReader again = {};
        uint8_t buf[RELAY_FRAME_HEADER_SIZE + RELAY_FRAME_MAX];
        const uint8_t *data = buf, *g;
        size_t left = len + RELAY_FRAME_HEADER_SIZE, glen;

        fuzz_check(len >= 1 && len <= RELAY_FRAME_MAX);
        (void) relay_frame_check(f, len);
        relay_frame_header(len, buf);
        memcpy(buf + RELAY_FRAME_HEADER_SIZE, f, len);
        fuzz_check(relay_frame_reader_feed(&again, &data, &left, &g, &glen) == 1);
        fuzz_check(left == 0 && glen == len && memcmp(g, f, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        RelayFrameReader reader = {};
        uint8_t type, nonce[RELAY_ECHO_NONCE_SIZE], echo[RELAY_ECHO_SIZE];
        size_t chunk;

        if (relay_echo_decode(data, size, &type, nonce) == 0) {
                relay_echo_encode(type, nonce, echo);
                fuzz_check(size == RELAY_ECHO_SIZE && memcmp(echo, data, RELAY_ECHO_SIZE) == 0);
        }
        if (size == 0)
                return 0;

        chunk = (size_t) data[0] + 1;
        data++, size--;
        while (size > 0) {
                size_t len = MIN(chunk, size), before = len;
                const uint8_t *p = data, *f;
                size_t flen;
                int r;

                while ((r = relay_frame_reader_feed(&reader, &p, &len, &f, &flen)) == 1)
                        check_frame(f, flen);
                fuzz_check(r == 0 || r == -EMSGSIZE);
                if (r < 0)
                        return 0;
                fuzz_check(len == 0);
                data += before, size -= before;
        }
        return 0;
}
