/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The upgrade request meshd sends for the TLS relay, and how it judges the
 * server's reply, byte by byte as it may arrive. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "macro.h"
#include "relay-upgrade.h"

static void test_request(void **state) {
        char *req = NULL;
        size_t n = 0;

        assert_int_equal(relay_upgrade_request("https://192.0.2.1:8443/", "tok123", &req, &n), 0);
        assert_int_equal(n, strlen(req));
        assert_string_equal(req, "GET /v1/relay HTTP/1.1\r\n"
                                 "Host: 192.0.2.1:8443\r\n"
                                 "Authorization: Bearer tok123\r\n"
                                 "User-Agent: meshd/" PACKAGE_VERSION "\r\n"
                                 "Connection: Upgrade\r\n"
                                 "Upgrade: meshd-relay/1\r\n"
                                 "\r\n");
        free(req);
}

/* Nothing the caller passes can add a header or end the request early. */
static void test_attack_request_injection(void **state) {
        char *req = NULL;
        size_t n;

        assert_int_equal(relay_upgrade_request("https://h:1", "tok\r\nX-Evil: 1", &req, &n), -EINVAL);
        assert_int_equal(relay_upgrade_request("https://h:1", "tok en", &req, &n), -EINVAL);
        assert_int_equal(relay_upgrade_request("https://h:1", "", &req, &n), -EINVAL);
        assert_int_equal(relay_upgrade_request("https://h:1", NULL, &req, &n), -EINVAL);
        assert_int_equal(relay_upgrade_request("https://h\r\nX: 1", "tok", &req, &n), -EINVAL);
        assert_int_equal(relay_upgrade_request("https:///v1", "tok", &req, &n), -EINVAL);
        assert_int_equal(relay_upgrade_request("http://h:1", "tok", &req, &n), -EINVAL);
        assert_null(req);
}

/* Feeds s one byte more each call, as a slow server would send it; returns
 * the first non-zero verdict and how many bytes it took. */
static int judge_bytewise(const char *s, bool eof_at_end, size_t *ret_used, size_t *ret_head,
                          char **ret_reason) {
        size_t len = strlen(s);
        char buf[RELAY_UPGRADE_REPLY_MAX + 1];

        for (size_t i = 1; i <= len; i++) {
                int r;

                memcpy(buf, s, i);
                buf[i] = 0;
                r = relay_upgrade_reply(buf, i, eof_at_end && i == len, ret_head, ret_reason);
                if (r != 0) {
                        *ret_used = i;
                        return r;
                }
                assert_null(*ret_reason);
        }
        *ret_used = len;
        return 0;
}

static void test_reply_101(void **state) {
        static const char reply[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                                    "upgrade:  MESHD-RELAY/1 \r\n\r\n\x00\x20";
        size_t used, head = 0;
        char *reason = NULL;

        assert_int_equal(judge_bytewise(reply, false, &used, &head, &reason), 1);
        assert_int_equal(head, strlen(reply));
        assert_int_equal(used, head);
        assert_null(reason);
}

static void expect_refused(const char *reply, bool eof, const char *reason_expected) {
        size_t used, head;
        char *reason = NULL;

        assert_int_equal(judge_bytewise(reply, eof, &used, &head, &reason), -EPROTO);
        assert_int_equal(used, strlen(reply)); /* decided only once all of it came */
        assert_non_null(reason);
        assert_string_equal(reason, reason_expected);
        free(reason);
}

static void test_reply_refused(void **state) {
        expect_refused("HTTP/1.1 401 Unauthorized\r\nContent-Length: 26\r\n\r\n{\"error\": \"unknown token\"}",
                       false, "relay refused: 401 unknown token");
        /* without a length: the end of the connection ends the body */
        expect_refused("HTTP/1.1 503 Service Unavailable\r\n\r\n{\"error\": \"too many relay streams\"}", true,
                       "relay refused: 503 too many relay streams");
        /* a chunked body of one chunk */
        expect_refused("HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "16\r\n{\"error\": \"node removed\"}\r\n0\r\n\r\n",
                       true, "relay refused: 403 node removed");
        expect_refused("HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\noops!", false,
                       "relay refused: HTTP 400");
        expect_refused("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false,
                       "relay refused: 101 without Upgrade: meshd-relay/1");
        expect_refused("SSH-2.0-OpenSSH\r\n\r\n", false, "relay refused: the reply is not HTTP");
        expect_refused("HTTP/1.1 1x1 Odd\r\n\r\n", false, "relay refused: the reply is not HTTP");
        expect_refused("HTTP/1.1 101", true, "relay refused: connection closed before a reply");
}

/* What the server says is shown to people: one printable line, bounded. */
static void test_attack_reply_text(void **state) {
        char big[RELAY_UPGRADE_REPLY_MAX + 1];
        size_t head;
        char *reason = NULL;

        expect_refused("HTTP/1.1 401 No\r\n\r\n{\"error\": \"a\\nfake log line\\u001b[\"}", true,
                       "relay refused: 401 a fake log line [");

        memset(big, 'x', sizeof(big) - 1);
        memcpy(big, "HTTP/1.1 401 No\r\nX: ", 20);
        big[sizeof(big) - 1] = 0;
        assert_int_equal(relay_upgrade_reply(big, sizeof(big) - 1, false, &head, &reason), -EPROTO);
        assert_string_equal(reason, "relay refused: reply head too large");
        free(reason);
}

static void test_url(void **state) {
        char *url = NULL;
        uint16_t port = 0;

        assert_int_equal(relay_upgrade_url("https://192.0.2.1:8443", 443, &url, &port), 0);
        assert_string_equal(url, "https://192.0.2.1:443");
        assert_int_equal(port, 8443);
        free(url);
        assert_int_equal(relay_upgrade_url("https://[2001:db8::1]:8443/", 4443, &url, &port), 0);
        assert_string_equal(url, "https://[2001:db8::1]:4443");
        assert_int_equal(port, 8443);
        free(url);
        assert_int_equal(relay_upgrade_url("https://control.example", 443, &url, &port), 0);
        assert_string_equal(url, "https://control.example:443");
        assert_int_equal(port, 443);
        free(url);
        assert_int_equal(relay_upgrade_url("https://[2001:db8::1]", 443, &url, &port), 0);
        assert_string_equal(url, "https://[2001:db8::1]:443");
        free(url);

        static const char *const bad[] = {
                "http://h:1",   "https://",        "https://:8443", "https://h:",
                "https://h:0",  "https://h:65536", "https://h:x1",  "https://[::1",
                "https://[]:1", "https://[::1]x",  "https://u@h:1", NULL,
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(relay_upgrade_url(bad[i], 443, &url, &port), -EINVAL);
        assert_int_equal(relay_upgrade_url("https://h:1", 0, &url, &port), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request),
                cmocka_unit_test(test_url),
                cmocka_unit_test(test_attack_request_injection),
                cmocka_unit_test(test_reply_101),
                cmocka_unit_test(test_reply_refused),
                cmocka_unit_test(test_attack_reply_text),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
