/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The wire messages of src/shared/msg-*.c: what one side renders, the
 * other parses back to the same, and the bytes are those meshd and
 * meshd-control sent before the messages had one home (docs/protocol.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "msg-endpoints.h"
#include "msg-paths.h"
#include "msg-register.h"
#include "strv.h"
#include "varlink.h" /* _cleanup_json_ */

#define KEY_A "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="
#define KEY_B "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI="

static cJSON *parse_object(const char *text) {
        cJSON *o = cJSON_Parse(text);

        assert_non_null(o);
        assert_true(cJSON_IsObject(o));
        return o;
}

static void test_challenge_reply(void **state) {
        _cleanup_free_ char *text = NULL, *challenge = NULL;
        WgKey key, parsed;

        assert_int_equal(key_from_base64(KEY_A, &key), 0);
        assert_int_equal(challenge_reply_render("c.h.a", &key, 1700000000, &text), 0);
        assert_string_equal(text,
                            "{\"challenge\":\"c.h.a\",\"server_key\":\"" KEY_A "\",\"expires\":1700000000}");

        assert_int_equal(challenge_reply_parse(text, strlen(text), &challenge, &parsed), 0);
        assert_string_equal(challenge, "c.h.a");
        assert_true(key_equal(&parsed, &key));

        assert_int_equal(challenge_reply_parse("{\"challenge\":\"x\"}", 17, &challenge, &parsed), -EBADMSG);
        assert_int_equal(challenge_reply_parse("nonsense", 8, &challenge, &parsed), -EBADMSG);
}

static void test_register_request(void **state) {
        _cleanup_(register_request_done) RegisterRequest parsed = {};
        char *endpoints[] = { (char *) "192.0.2.1:41641", (char *) "[2001:db8::1]:41641", NULL };
        _cleanup_json_ cJSON *body = NULL;
        _cleanup_free_ char *text = NULL;
        char error[128] = "";
        RegisterRequest req = {
                .authkey = "mskey-secret",
                .public_key = KEY_A,
                .hostname = "nas",
                .challenge = "c.h.a",
                .proof = "proof",
                .endpoints = endpoints,
        };

        assert_int_equal(register_request_render(&req, &text), 0);
        assert_string_equal(text,
                            "{\"authkey\":\"mskey-secret\",\"public_key\":\"" KEY_A "\",\"hostname\":\"nas\","
                            "\"challenge\":\"c.h.a\",\"proof\":\"proof\","
                            "\"endpoints\":[\"192.0.2.1:41641\",\"[2001:db8::1]:41641\"]}");

        body = parse_object(text);
        assert_int_equal(register_request_parse(body, &parsed, error, sizeof(error)), 0);
        assert_string_equal(parsed.authkey, req.authkey);
        assert_string_equal(parsed.public_key, req.public_key);
        assert_string_equal(parsed.hostname, req.hostname);
        assert_string_equal(parsed.challenge, req.challenge);
        assert_string_equal(parsed.proof, req.proof);
        assert_true(strv_equal(parsed.endpoints, endpoints));
}

static void test_register_request_no_endpoints(void **state) {
        _cleanup_free_ char *text = NULL;

        assert_int_equal(register_request_render(&(RegisterRequest) { .authkey = "k",
                                                                      .public_key = KEY_A,
                                                                      .hostname = "h",
                                                                      .challenge = "c",
                                                                      .proof = "p" },
                                                 &text),
                         0);
        assert_string_equal(text, "{\"authkey\":\"k\",\"public_key\":\"" KEY_A "\",\"hostname\":\"h\","
                                  "\"challenge\":\"c\",\"proof\":\"p\",\"endpoints\":[]}");
}

static void test_register_request_netmap_scope(void **state) {
        _cleanup_free_ char *text = NULL;
        RegisterRequest req = { .authkey = "k",
                                .public_key = KEY_A,
                                .hostname = "h",
                                .challenge = "c",
                                .proof = "p",
                                .netmap_self = true };

        assert_int_equal(register_request_render(&req, &text), 0);
        assert_non_null(strstr(text, ",\"netmap_scope\":\"self\""));

        static const struct {
                const char *scope;
                bool self;
        } cases[] = { { "\"self\"", true }, { "\"full\"", false }, { "null", false } };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(register_request_done) RegisterRequest parsed = {};
                _cleanup_free_ char *body_text = NULL;
                char error[128] = "";

                assert_true(asprintf(&body_text,
                                     "{\"authkey\":\"k\",\"public_key\":\"" KEY_A
                                     "\",\"hostname\":\"h\",\"netmap_scope\":%s}",
                                     cases[i].scope) > 0);
                _cleanup_json_ cJSON *body = parse_object(body_text);
                assert_int_equal(register_request_parse(body, &parsed, error, sizeof(error)), 0);
                assert_int_equal(parsed.netmap_self, cases[i].self);
        }
}

static void test_register_request_invalid(void **state) {
        static const struct {
                const char *body, *error;
        } cases[] = {
                { "{}", "authkey: missing or not a string" },
                { "{\"authkey\":\"k\",\"public_key\":\"nope\"}", "public_key: not a WireGuard public key" },
                { "{\"authkey\":\"k\",\"public_key\":\"" KEY_A "\"}",
                  "hostname: missing, not a string or too long" },
                { "{\"authkey\":\"k\",\"public_key\":\"" KEY_A "\",\"hostname\":\"h\",\"endpoints\":[\"x\"]}",
                  "endpoints[0]: not ip:port or [ip6]:port" },
                { "{\"authkey\":\"k\",\"public_key\":\"" KEY_A
                  "\",\"hostname\":\"h\",\"netmap_scope\":\"peers\"}",
                  "netmap_scope: must be \"self\" or \"full\"" },
                { "{\"authkey\":\"k\",\"public_key\":\"" KEY_A "\",\"hostname\":\"h\",\"netmap_scope\":1}",
                  "netmap_scope: must be \"self\" or \"full\"" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(register_request_done) RegisterRequest parsed = {};
                _cleanup_json_ cJSON *body = parse_object(cases[i].body);
                char error[128] = "";

                assert_int_equal(register_request_parse(body, &parsed, error, sizeof(error)), -EINVAL);
                assert_string_equal(error, cases[i].error);
        }
}

#define NETMAP                                                                          \
        "{\"version\":3,\"domain\":\"mesh.internal\",\"ipv4_range\":\"100.64.0.0/10\"," \
        "\"self\":{\"name\":\"nas\",\"public_key\":\"" KEY_A "\",\"ipv4\":\"100.64.0.1\"},\"peers\":[]}"

static void test_register_reply(void **state) {
        _cleanup_(register_reply_done) RegisterReply parsed = {};
        _cleanup_free_ char *text = NULL, *error = NULL;

        assert_int_equal(register_reply_render(&(RegisterReplyFields) { .node_id = 7,
                                                                        .name = "nas",
                                                                        .token = "tok",
                                                                        .netmap = NETMAP },
                                               &text),
                         0);
        /* the netmap goes in as the store rendered it */
        assert_string_equal(text, "{\"node_id\":7,\"name\":\"nas\",\"token\":\"tok\",\"netmap\":" NETMAP "}");

        assert_int_equal(register_reply_parse(text, strlen(text), &parsed, &error), 0);
        assert_null(error);
        assert_int_equal(parsed.node_id, 7);
        assert_string_equal(parsed.token, "tok");
        assert_string_equal(parsed.netmap->self.name, "nas");
        assert_int_equal(parsed.netmap->version, 3);
        /* what meshd caches: the netmap object as the server sent it */
        assert_string_equal(parsed.netmap_json, NETMAP);
        assert_false(parsed.netmap_self);
}

static void test_register_reply_netmap_self(void **state) {
        _cleanup_(register_reply_done) RegisterReply parsed = {};
        _cleanup_free_ char *text = NULL, *error = NULL;
        static const char wrong[] = "{\"node_id\":7,\"name\":\"nas\",\"token\":\"tok\",\"netmap\":" NETMAP
                                    ",\"netmap_scope\":\"some\"}";

        assert_int_equal(register_reply_render(&(RegisterReplyFields) { .node_id = 7,
                                                                        .name = "nas",
                                                                        .token = "tok",
                                                                        .netmap = NETMAP,
                                                                        .netmap_self = true },
                                               &text),
                         0);
        assert_string_equal(text, "{\"node_id\":7,\"name\":\"nas\",\"token\":\"tok\",\"netmap\":" NETMAP
                                  ",\"netmap_scope\":\"self\"}");
        assert_int_equal(register_reply_parse(text, strlen(text), &parsed, &error), 0);
        assert_true(parsed.netmap_self);
        register_reply_done(&parsed);

        assert_int_equal(register_reply_parse(wrong, strlen(wrong), &parsed, &error), -EBADMSG);
        assert_string_equal(error, "netmap_scope: must be \"self\" or \"full\"");
}

static void test_endpoints(void **state) {
        char *endpoints[] = { (char *) "192.0.2.1:1", (char *) "[2001:db8::1]:2", NULL };
        _cleanup_strv_free_ char **parsed = NULL, **none = NULL;
        _cleanup_json_ cJSON *body = NULL, *empty = NULL;
        _cleanup_free_ char *text = NULL, *text_empty = NULL;
        char error[128] = "";

        assert_int_equal(endpoints_request_render(endpoints, &text), 0);
        assert_string_equal(text, "{\"endpoints\":[\"192.0.2.1:1\",\"[2001:db8::1]:2\"]}");
        body = parse_object(text);
        assert_int_equal(endpoints_request_parse(body, true, &parsed, error, sizeof(error)), 0);
        assert_true(strv_equal(parsed, endpoints));

        assert_int_equal(endpoints_request_render(NULL, &text_empty), 0);
        assert_string_equal(text_empty, "{\"endpoints\":[]}");
        empty = parse_object("{}");
        assert_int_equal(endpoints_request_parse(empty, true, &none, error, sizeof(error)), -EINVAL);
        assert_string_equal(error, "endpoints: not an array");
        assert_int_equal(endpoints_request_parse(empty, false, &none, error, sizeof(error)), 0);
        assert_int_equal(strv_length(none), 0);
}

static void test_paths(void **state) {
        const PathReport reports[] = {
                { .public_key = KEY_A, .direct = true },
                { .public_key = KEY_B, .direct = false },
        };
        _cleanup_free_ PathReport *parsed = NULL;
        _cleanup_json_ cJSON *body = NULL;
        _cleanup_free_ char *text = NULL, *none = NULL;
        char error[128] = "";
        size_t n = 0;

        assert_int_equal(paths_request_render(reports, ELEMENTSOF(reports), &text), 0);
        assert_string_equal(text, "{\"peers\":[{\"public_key\":\"" KEY_A "\",\"direct\":true},"
                                  "{\"public_key\":\"" KEY_B "\",\"direct\":false}]}");
        body = parse_object(text);
        assert_int_equal(paths_request_parse(body, &parsed, &n, error, sizeof(error)), 0);
        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(parsed[i].public_key, reports[i].public_key);
                assert_int_equal(parsed[i].direct, reports[i].direct);
        }

        assert_int_equal(paths_request_render(NULL, 0, &none), 0);
        assert_string_equal(none, "{\"peers\":[]}");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_challenge_reply),
                cmocka_unit_test(test_register_request),
                cmocka_unit_test(test_register_request_no_endpoints),
                cmocka_unit_test(test_register_request_netmap_scope),
                cmocka_unit_test(test_register_request_invalid),
                cmocka_unit_test(test_register_reply),
                cmocka_unit_test(test_register_reply_netmap_self),
                cmocka_unit_test(test_endpoints),
                cmocka_unit_test(test_paths),
        };

        log_setup("test-msg", LOG_TARGET_CONSOLE);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
