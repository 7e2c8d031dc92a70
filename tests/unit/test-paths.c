/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>

#include "ipam.h"
#include "log.h"
#include "macro.h"
#include "msg-paths.h"

#define KEY_A "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="
#define KEY_B "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI="

/* Parses text as the request body; returns paths_request_parse()'s result. */
static int parse(const char *text, PathReport **ret, size_t *ret_n, char *error, size_t size,
                 cJSON **ret_body) {
        cJSON *body = cJSON_Parse(text);
        int r;

        r = paths_request_parse(body, ret, ret_n, error, size);
        *ret_body = body;
        return r;
}

static void expect_error(const char *text, const char *message) {
        PathReport *reports = NULL;
        char error[128] = "";
        cJSON *body = NULL;
        size_t n = 0;

        assert_int_equal(parse(text, &reports, &n, error, sizeof(error), &body), -EINVAL);
        assert_null(reports);
        assert_string_equal(error, message);
        cJSON_Delete(body);
}

static void test_valid(void **state) {
        PathReport *reports = NULL;
        char error[128] = "";
        cJSON *body = NULL;
        size_t n = 0;

        assert_int_equal(parse("{\"peers\":[{\"public_key\":\"" KEY_A "\",\"direct\":false},"
                               "{\"public_key\":\"" KEY_B "\",\"direct\":true,\"rtt_ms\":12}],\"extra\":1}",
                               &reports, &n, error, sizeof(error), &body),
                         0);
        assert_int_equal(n, 2);
        assert_string_equal(reports[0].public_key, KEY_A);
        assert_false(reports[0].direct);
        assert_string_equal(reports[1].public_key, KEY_B);
        assert_true(reports[1].direct);
        free(reports);
        cJSON_Delete(body);

        /* nothing to report is fine */
        assert_int_equal(parse("{\"peers\":[]}", &reports, &n, error, sizeof(error), &body), 0);
        assert_int_equal(n, 0);
        free(reports);
        cJSON_Delete(body);
}

static void test_invalid(void **state) {
        expect_error("[1]", "body: not a JSON object");
        expect_error("{}", "peers: missing or not an array");
        expect_error("{\"peers\":{}}", "peers: missing or not an array");
        expect_error("{\"peers\":[1]}", "peers[0]: not an object");
        expect_error("{\"peers\":[{\"public_key\":\"" KEY_A "\",\"direct\":true},{\"direct\":true}]}",
                     "peers[1].public_key: not a WireGuard public key");
        expect_error("{\"peers\":[{\"public_key\":\"AAAA\",\"direct\":true}]}",
                     "peers[0].public_key: not a WireGuard public key");
        expect_error(
                "{\"peers\":[{\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"direct\":true}]}",
                "peers[0].public_key: not a WireGuard public key");
        expect_error("{\"peers\":[{\"public_key\":\"" KEY_A "\",\"direct\":1}]}",
                     "peers[0].direct: missing or not a boolean");
        expect_error("{\"peers\":[{\"public_key\":\"" KEY_A "\"}]}",
                     "peers[0].direct: missing or not a boolean");
        expect_error("{\"peers\":[{\"public_key\":\"" KEY_A "\",\"direct\":true},"
                     "{\"public_key\":\"" KEY_B "\",\"direct\":true},"
                     "{\"public_key\":\"" KEY_A "\",\"direct\":false}]}",
                     "peers[2].public_key: listed twice");
}

static void test_too_many(void **state) {
        cJSON *body = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(body, "peers");
        PathReport *reports = NULL;
        char error[128] = "";
        size_t n = 0;

        for (int i = 0; i <= PATHS_REPORTS_MAX; i++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "public_key", KEY_A);
                cJSON_AddBoolToObject(o, "direct", true);
                cJSON_AddItemToArray(a, o);
        }
        assert_int_equal(paths_request_parse(body, &reports, &n, error, sizeof(error)), -EINVAL);
        assert_non_null(strstr(error, "more than"));
        cJSON_Delete(body);
}

static void test_range_contains(void **state) {
        IpamRange r;
        union in_addr_union a = {};

        assert_int_equal(ipam_range_parse("100.64.0.0/10", "fd7a:115c:a1e0::/48", &r), 0);
        assert_int_equal(inet_pton(AF_INET, "100.127.255.254", &a.in), 1);
        assert_true(ipam_range_contains(&r, AF_INET, &a));
        assert_int_equal(inet_pton(AF_INET, "100.128.0.1", &a.in), 1);
        assert_false(ipam_range_contains(&r, AF_INET, &a));
        assert_int_equal(inet_pton(AF_INET, "192.0.2.10", &a.in), 1);
        assert_false(ipam_range_contains(&r, AF_INET, &a));
        assert_int_equal(inet_pton(AF_INET6, "fd7a:115c:a1e0::2", &a.in6), 1);
        assert_true(ipam_range_contains(&r, AF_INET6, &a));
        assert_int_equal(inet_pton(AF_INET6, "fd7a:115c:a1e1::2", &a.in6), 1);
        assert_false(ipam_range_contains(&r, AF_INET6, &a));
        assert_false(ipam_range_contains(&r, AF_UNSPEC, &a));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_too_many),
                cmocka_unit_test(test_range_contains),
        };

        log_setup("test-paths", LOG_TARGET_CONSOLE);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
