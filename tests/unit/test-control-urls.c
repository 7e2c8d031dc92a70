/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control-urls.h"
#include "macro.h"

static void test_parse_lists(void **state) {
        _cleanup_strv_free_ char **l = NULL;

        (void) state;
        assert_int_equal(control_urls_parse("https://a:9443", &l, NULL, NULL), 0);
        assert_int_equal(strv_length(l), 1);
        assert_string_equal(l[0], "https://a:9443");
        l = strv_free(l);

        /* spaces, commas, tabs, any mix, leading and trailing */
        assert_int_equal(control_urls_parse(" https://a:1, https://[fd00::1]:2,https://b/\thttps://c ", &l,
                                            NULL, NULL),
                         0);
        assert_int_equal(strv_length(l), 4);
        assert_string_equal(l[0], "https://a:1");
        assert_string_equal(l[1], "https://[fd00::1]:2");
        assert_string_equal(l[2], "https://b/");
        assert_string_equal(l[3], "https://c");
        assert_true(control_urls_valid("https://a https://b"));
}

static void expect_invalid(const char *text, const char *reason_part, const char *bad) {
        const char *reason = NULL, *at = NULL;
        char **l = NULL;

        assert_int_equal(control_urls_parse(text, &l, &reason, &at), -EINVAL);
        assert_null(l);
        assert_non_null(reason);
        assert_non_null(strstr(reason, reason_part));
        if (bad)
                assert_string_equal(at, bad);
        else
                assert_null(at);
        assert_false(control_urls_valid(text));
}

static void test_parse_errors(void **state) {
        char many[16 * 20 + 32] = "";

        (void) state;
        expect_invalid("", "no URL", NULL);
        expect_invalid(" ,, ", "no URL", NULL);
        expect_invalid("http://a", "https://", "http://a");
        expect_invalid("https://a http://b", "https://", "http://b");
        expect_invalid("https://", "https://", "https://");
        expect_invalid("https:///x", "https://", "https:///x");
        expect_invalid("https://a https://a", "twice", "https://a");
        expect_invalid("https://a\x7f", "https://", "https://a\x7f");
        for (int i = 0; i < 17; i++)
                snprintf(many + strlen(many), sizeof(many) - strlen(many), "https://h%d ", i);
        expect_invalid(many, "more than 16", "https://h16 ");
        assert_int_equal(control_urls_parse(NULL, NULL, NULL, NULL), -EINVAL);
}

static void test_failover_two(void **state) {
        ControlUrlChoice c = { .n = 2 };

        (void) state;
        /* the first fails: the second at once */
        assert_true(control_url_failed(&c));
        assert_int_equal(c.current, 1);
        /* the second fails too: a full round, so back off, then the first */
        assert_false(control_url_failed(&c));
        assert_int_equal(c.current, 0);
        /* and every failure from then on backs off, going round */
        assert_false(control_url_failed(&c));
        assert_int_equal(c.current, 1);
        /* an answer ends the round: the next failure moves on at once */
        control_url_answered(&c);
        assert_true(control_url_failed(&c));
        assert_int_equal(c.current, 0);
        assert_false(control_url_fail_back(&c));
}

static void test_failover_one(void **state) {
        ControlUrlChoice c = { .n = 1 };

        (void) state;
        /* one URL: every failure backs off, as before replicas */
        assert_false(control_url_failed(&c));
        assert_int_equal(c.current, 0);
        assert_false(control_url_failed(&c));
        assert_false(control_url_fail_back(&c));
}

static void test_fail_back(void **state) {
        ControlUrlChoice c = { .n = 3 };

        (void) state;
        assert_true(control_url_failed(&c));
        assert_true(control_url_failed(&c));
        assert_int_equal(c.current, 2);
        control_url_answered(&c);
        /* back to the first, with a fresh round: if it is still dead, the
         * next one is tried at once */
        assert_true(control_url_fail_back(&c));
        assert_int_equal(c.current, 0);
        assert_int_equal(c.failed, 0);
        assert_true(control_url_failed(&c));
        assert_int_equal(c.current, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_lists),  cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_failover_two), cmocka_unit_test(test_failover_one),
                cmocka_unit_test(test_fail_back),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
