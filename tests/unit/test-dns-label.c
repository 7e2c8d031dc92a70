/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dns-label.h"
#include "macro.h"

static void check(const char *hostname, const char *expected) {
        _cleanup_free_ char *label = NULL;

        assert_int_equal(dns_label_from_hostname(hostname, &label), 0);
        assert_string_equal(label, expected);
        assert_true(dns_label_is_valid(label));
}

static void check_invalid(const char *hostname) {
        char *label = NULL;

        assert_int_equal(dns_label_from_hostname(hostname, &label), -EINVAL);
        assert_null(label);
}

static void test_simple(void **state) {
        check("nas", "nas");
        check("My Laptop", "my-laptop");
        check("WEB01", "web01");
        check("a-b", "a-b");
        check("123", "123");
}

static void test_dotted_takes_first_label(void **state) {
        check("nas.example.com", "nas");
        check("My Laptop.local", "my-laptop");
        check(".nas.example.com", "nas");
        check("nas.", "nas");
}

static void test_other_characters(void **state) {
        check("my_host", "my-host");
        check("a__b  c", "a-b-c");
        check("a--b", "a-b");
        check("Jürgens-MacBook", "j-rgens-macbook");
        check("café", "caf");
        check("日本語host", "host");
        check("x\ty", "x-y");
}

static void test_dashes_trimmed(void **state) {
        check("-nas-", "nas");
        check("---a---", "a");
        check("  spaced  ", "spaced");
}

static void test_length_cap(void **state) {
        char in[200], expected[64];

        memset(in, 'a', 100);
        in[100] = '\0';
        memset(expected, 'a', 63);
        expected[63] = '\0';
        check(in, expected);

        /* Truncation right after a dash must not leave it dangling. */
        memset(in, 'b', 62);
        in[62] = '_';
        strcpy(in + 63, "cdef");
        memset(expected, 'b', 62);
        expected[62] = '\0';
        check(in, expected);
}

static void test_nothing_usable(void **state) {
        check_invalid("");
        check_invalid("---");
        check_invalid("...");
        check_invalid("日本語");
        check_invalid(".");
        check_invalid(NULL);
}

static void test_is_valid(void **state) {
        char s[80];

        assert_true(dns_label_is_valid("nas"));
        assert_true(dns_label_is_valid("nas-2"));
        assert_true(dns_label_is_valid("0"));
        assert_false(dns_label_is_valid(""));
        assert_false(dns_label_is_valid(NULL));
        assert_false(dns_label_is_valid("-nas"));
        assert_false(dns_label_is_valid("nas-"));
        assert_false(dns_label_is_valid("NAS"));
        assert_false(dns_label_is_valid("nas.local"));
        assert_false(dns_label_is_valid("my_host"));
        assert_false(dns_label_is_valid("my host"));

        memset(s, 'a', 63);
        s[63] = '\0';
        assert_true(dns_label_is_valid(s));
        s[63] = 'a';
        s[64] = '\0';
        assert_false(dns_label_is_valid(s));
}

static void test_reserved(void **state) {
        static const char *const reserved[] = { "localhost", "wpad",      "isatap",
                                                "hub",       "LocalHost", "autodiscover" };
        static const char *const fine[] = { "localhost-2", "nas", "hubble", "wpad2", "", "local" };

        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                assert_true(dns_label_is_reserved(reserved[i]));
        for (size_t i = 0; i < ELEMENTSOF(fine); i++)
                assert_false(dns_label_is_reserved(fine[i]));
        assert_false(dns_label_is_reserved(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_simple),           cmocka_unit_test(test_dotted_takes_first_label),
                cmocka_unit_test(test_other_characters), cmocka_unit_test(test_dashes_trimmed),
                cmocka_unit_test(test_length_cap),       cmocka_unit_test(test_nothing_usable),
                cmocka_unit_test(test_is_valid),         cmocka_unit_test(test_reserved),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
