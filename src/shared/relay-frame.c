/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "relay-frame.h"

RelayFrameVerdict relay_frame_check(const uint8_t *payload, size_t len) {
        if (len == 0)
                return RELAY_FRAME_EMPTY;
        if (len > RELAY_FRAME_MAX)
                return RELAY_FRAME_OVERSIZED;
        if (len < 4 || payload[1] || payload[2] || payload[3])
                return RELAY_FRAME_NOT_WIREGUARD;
        switch (payload[0]) {
        case 1:
                return len == 148 ? RELAY_FRAME_OK : RELAY_FRAME_NOT_WIREGUARD;
        case 2:
                return len == 92 ? RELAY_FRAME_OK : RELAY_FRAME_NOT_WIREGUARD;
        case 3:
                return len == 64 ? RELAY_FRAME_OK : RELAY_FRAME_NOT_WIREGUARD;
        case 4:
                /* WireGuard pads to a multiple of 16 but never past the
                 * interface MTU: a full packet on the default 1420 is 32 + 1420. */
                return len >= 32 ? RELAY_FRAME_OK : RELAY_FRAME_NOT_WIREGUARD;
        default:
                return RELAY_FRAME_NOT_WIREGUARD;
        }
}

const char *relay_frame_verdict_to_string(RelayFrameVerdict v) {
        switch (v) {
        case RELAY_FRAME_OK:
                return "ok";
        case RELAY_FRAME_EMPTY:
                return "empty frame";
        case RELAY_FRAME_OVERSIZED:
                return "frame larger than 9216 bytes";
        case RELAY_FRAME_NOT_WIREGUARD:
                return "frame is not a WireGuard message";
        }
        return "unknown";
}

void relay_frame_header(size_t len, uint8_t header[static RELAY_FRAME_HEADER_SIZE]) {
        header[0] = (uint8_t) (len >> 8);
        header[1] = (uint8_t) len;
}

int relay_frame_reader_feed(RelayFrameReader *r, const uint8_t **data, size_t *len, const uint8_t **ret,
                            size_t *ret_len) {
        /* a frame handed out by the previous call is gone now */
        if (r->have >= RELAY_FRAME_HEADER_SIZE) {
                size_t want = ((size_t) r->buf[0] << 8 | r->buf[1]) + RELAY_FRAME_HEADER_SIZE;
                if (r->have == want)
                        r->have = 0;
        }

        while (*len > 0) {
                size_t want = RELAY_FRAME_HEADER_SIZE, take;

                if (r->have >= RELAY_FRAME_HEADER_SIZE) {
                        size_t n = (size_t) r->buf[0] << 8 | r->buf[1];
                        if (n == 0 || n > RELAY_FRAME_MAX)
                                return -EMSGSIZE;
                        want += n;
                }
                take = want - r->have;
                if (take > *len)
                        take = *len;
                memcpy(r->buf + r->have, *data, take);
                r->have += take;
                *data += take;
                *len -= take;

                if (r->have == RELAY_FRAME_HEADER_SIZE) {
                        size_t n = (size_t) r->buf[0] << 8 | r->buf[1];
                        if (n == 0 || n > RELAY_FRAME_MAX)
                                return -EMSGSIZE;
                        continue;
                }
                if (r->have == want && want > RELAY_FRAME_HEADER_SIZE) {
                        *ret = r->buf + RELAY_FRAME_HEADER_SIZE;
                        *ret_len = want - RELAY_FRAME_HEADER_SIZE;
                        return 1;
                }
        }
        return 0;
}

static const uint8_t echo_magic[4] = { 'M', 'S', 'H', 'E' };

void relay_echo_encode(uint8_t type, const uint8_t nonce[static RELAY_ECHO_NONCE_SIZE],
                       uint8_t buf[static RELAY_ECHO_SIZE]) {
        memcpy(buf, echo_magic, 4);
        buf[4] = type;
        buf[5] = buf[6] = buf[7] = 0;
        memcpy(buf + 8, nonce, RELAY_ECHO_NONCE_SIZE);
}

int relay_echo_decode(const uint8_t *buf, size_t len, uint8_t *ret_type,
                      uint8_t ret_nonce[static RELAY_ECHO_NONCE_SIZE]) {
        if (len != RELAY_ECHO_SIZE || memcmp(buf, echo_magic, 4) != 0)
                return -EBADMSG;
        if (buf[4] != RELAY_ECHO_REQUEST && buf[4] != RELAY_ECHO_REPLY)
                return -EBADMSG;
        if (buf[5] || buf[6] || buf[7])
                return -EBADMSG;
        *ret_type = buf[4];
        memcpy(ret_nonce, buf + 8, RELAY_ECHO_NONCE_SIZE);
        return 0;
}
