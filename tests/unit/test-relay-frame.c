/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "relay-frame.h"

static size_t put_frame(uint8_t *out, const uint8_t *payload, size_t len) {
        relay_frame_header(len, out);
        memcpy(out + RELAY_FRAME_HEADER_SIZE, payload, len);
        return len + RELAY_FRAME_HEADER_SIZE;
}

static void test_check(void **state) {
        uint8_t m[RELAY_FRAME_MAX + 1] = {};

        m[0] = 1;
        assert_int_equal(relay_frame_check(m, 148), RELAY_FRAME_OK);
        assert_int_equal(relay_frame_check(m, 147), RELAY_FRAME_NOT_WIREGUARD);
        m[0] = 2;
        assert_int_equal(relay_frame_check(m, 92), RELAY_FRAME_OK);
        m[0] = 3;
        assert_int_equal(relay_frame_check(m, 64), RELAY_FRAME_OK);
        m[0] = 4;
        assert_int_equal(relay_frame_check(m, 32), RELAY_FRAME_OK);
        assert_int_equal(relay_frame_check(m, 32 + 1440), RELAY_FRAME_OK);
        /* a full packet on WireGuard's default MTU: padded only up to 1420 */
        assert_int_equal(relay_frame_check(m, 32 + 1420), RELAY_FRAME_OK);
        assert_int_equal(relay_frame_check(m, 33), RELAY_FRAME_OK);
        assert_int_equal(relay_frame_check(m, 31), RELAY_FRAME_NOT_WIREGUARD);
        assert_int_equal(relay_frame_check(m, RELAY_FRAME_MAX + 1), RELAY_FRAME_OVERSIZED);
        assert_int_equal(relay_frame_check(m, 0), RELAY_FRAME_EMPTY);
        m[2] = 1;
        assert_int_equal(relay_frame_check(m, 48), RELAY_FRAME_NOT_WIREGUARD);
        m[2] = 0;
        m[0] = 5;
        assert_int_equal(relay_frame_check(m, 48), RELAY_FRAME_NOT_WIREGUARD);
        assert_string_equal(relay_frame_verdict_to_string(RELAY_FRAME_NOT_WIREGUARD),
                            "frame is not a WireGuard message");
}

/* Two frames split at every possible byte boundary come out whole and in order. */
static void test_reader_split(void **state) {
        uint8_t a[148] = { 1 }, b[48] = { 4 }, stream[512];
        size_t n = put_frame(stream, a, sizeof(a));
        n += put_frame(stream + n, b, sizeof(b));

        for (size_t cut = 0; cut <= n; cut++) {
                RelayFrameReader r = {};
                size_t got = 0;
                const uint8_t *f;
                size_t flen;

                for (int part = 0; part < 2; part++) {
                        const uint8_t *data = part == 0 ? stream : stream + cut;
                        size_t len = part == 0 ? cut : n - cut;
                        int k;

                        while ((k = relay_frame_reader_feed(&r, &data, &len, &f, &flen)) == 1) {
                                if (got == 0) {
                                        assert_int_equal(flen, sizeof(a));
                                        assert_memory_equal(f, a, sizeof(a));
                                } else {
                                        assert_int_equal(flen, sizeof(b));
                                        assert_memory_equal(f, b, sizeof(b));
                                }
                                got++;
                        }
                        assert_int_equal(k, 0);
                        assert_int_equal(len, 0);
                }
                assert_int_equal(got, 2);
        }
}

static void test_reader_rejects_length(void **state) {
        RelayFrameReader r = {};
        uint8_t zero[2] = { 0, 0 }, big[2];
        const uint8_t *data = zero, *f;
        size_t len = sizeof(zero), flen;

        assert_int_equal(relay_frame_reader_feed(&r, &data, &len, &f, &flen), -EMSGSIZE);

        r = (RelayFrameReader) {};
        relay_frame_header(RELAY_FRAME_MAX + 1, big);
        data = big;
        len = 1;
        assert_int_equal(relay_frame_reader_feed(&r, &data, &len, &f, &flen), 0);
        len = 1;
        assert_int_equal(relay_frame_reader_feed(&r, &data, &len, &f, &flen), -EMSGSIZE);
}

static void test_echo(void **state) {
        uint8_t nonce[RELAY_ECHO_NONCE_SIZE], got[RELAY_ECHO_NONCE_SIZE], buf[RELAY_ECHO_SIZE + 1], type;

        memset(nonce, 0xab, sizeof(nonce));
        relay_echo_encode(RELAY_ECHO_REQUEST, nonce, buf);
        assert_memory_equal(buf, "MSHE\1\0\0\0", 8);
        assert_int_equal(relay_echo_decode(buf, RELAY_ECHO_SIZE, &type, got), 0);
        assert_int_equal(type, RELAY_ECHO_REQUEST);
        assert_memory_equal(got, nonce, sizeof(nonce));
        assert_int_equal(relay_echo_decode(buf, RELAY_ECHO_SIZE + 1, &type, got), -EBADMSG);
        buf[4] = 3;
        assert_int_equal(relay_echo_decode(buf, RELAY_ECHO_SIZE, &type, got), -EBADMSG);
        buf[4] = RELAY_ECHO_REPLY;
        buf[6] = 1;
        assert_int_equal(relay_echo_decode(buf, RELAY_ECHO_SIZE, &type, got), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_check),
                cmocka_unit_test(test_reader_split),
                cmocka_unit_test(test_reader_rejects_length),
                cmocka_unit_test(test_echo),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
