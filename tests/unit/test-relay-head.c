/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "relay-head.h"

static char buf[RELAY_HEAD_MAX + 1];

static int parse(const char *text, size_t len, RelayHead *h) {
        memcpy(buf, text, len);
        return relay_head_parse(buf, len, h);
}

static void test_head(void **state) {
        static const char t[] = "GET /v1/relay HTTP/1.1\r\nHost: h:443\r\nauthorization:  Bearer tok \r\n"
                                "Connection: keep-alive, Upgrade\r\nUPGRADE: meshd-relay/1\r\n\r\n\x00\x05\x04";
        RelayHead h;

        assert_int_equal(parse(t, sizeof(t) - 1, &h), 1);
        assert_int_equal(h.size, sizeof(t) - 1 - 3);
        assert_string_equal(h.method, "GET");
        assert_string_equal(h.target, "/v1/relay");
        assert_string_equal(h.authorization, "Bearer tok");
        assert_string_equal(h.upgrade, "meshd-relay/1");
        assert_true(h.connection_upgrade);
        /* the frames behind the head are left alone */
        assert_memory_equal(buf + h.size, "\x00\x05\x04", 3);
}

static void test_head_minimal(void **state) {
        static const char t[] = "POST /x HTTP/1.0\r\nConnection: close\r\n\r\n";
        RelayHead h;

        assert_int_equal(parse(t, sizeof(t) - 1, &h), 1);
        assert_string_equal(h.method, "POST");
        assert_string_equal(h.target, "/x");
        assert_null(h.authorization);
        assert_null(h.upgrade);
        assert_false(h.connection_upgrade);
}

static void test_head_incomplete(void **state) {
        static const char t[] = "GET /v1/relay HTTP/1.1\r\nHost: h\r\n";
        RelayHead h;

        for (size_t n = 0; n < sizeof(t); n++)
                assert_int_equal(parse(t, n, &h), 0);
}

static void test_attack_head_too_large(void **state) {
        static char t[RELAY_HEAD_MAX + 1];
        RelayHead h;

        memset(t, 'a', sizeof(t));
        memcpy(t, "GET /v1/relay HTTP/1.1\r\nX: ", 27);
        assert_int_equal(parse(t, RELAY_HEAD_MAX, &h), -E2BIG);
        /* a head that ends exactly at the limit is fine */
        memcpy(t + RELAY_HEAD_MAX - 4, "\r\n\r\n", 4);
        assert_int_equal(parse(t, RELAY_HEAD_MAX, &h), 1);
        assert_int_equal(h.size, RELAY_HEAD_MAX);
}

static void test_attack_head_malformed(void **state) {
        static const char *const bad[] = {
                "GET /v1/relay\r\n\r\n",
                "GET  HTTP/1.1\r\n\r\n",
                " /v1/relay HTTP/1.1\r\n\r\n",
                "GET /v1/relay HTTP/2\r\n\r\n",
                "GET /v1/relay HTTP/1.1 x\r\n\r\n",
                "GET /v1/relay HTTP/1.1\r\nno colon\r\n\r\n",
                "GET /v1/relay HTTP/1.1\r\n folded: x\r\n\r\n",
                "GET /v1/relay HTTP/1.1\r\nAuthorization : Bearer t\r\n\r\n",
                "GET /v1/relay HTTP/1.1\r\n: empty name\r\n\r\n",
                "GET /v1/relay HTTP/1.1\r\nX: a\nInjected: b\r\n\r\n",
                "GET /v1/relay HTTP/1.1\r\nX: a\rb\r\n\r\n",
                "GET /v1/relay HTTP/1.1\r\nX: \x01\r\n\r\n",
                "GET /v1/relay HTTP/1.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n",
                "GET /v1/relay HTTP/1.1\r\nUpgrade: meshd-relay/1\r\nupgrade: websocket\r\n\r\n",
        };
        RelayHead h;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = parse(bad[i], strlen(bad[i]), &h);
                if (r != -EBADMSG)
                        fail_msg("head %zu: %d, expected -EBADMSG", i, r);
        }
        /* a NUL inside an incomplete head */
        assert_int_equal(parse("GET /\0", 6, &h), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_head),
                cmocka_unit_test(test_head_minimal),
                cmocka_unit_test(test_head_incomplete),
                cmocka_unit_test(test_attack_head_too_large),
                cmocka_unit_test(test_attack_head_malformed),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
