/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "test-util.h"
#include "trust.h"
#include "varlink.h"

#define CA_PEM                            \
        "-----BEGIN CERTIFICATE-----\r\n" \
        "MIIBdTCCARugAwIBAgIUQ0Ez\r\n"    \
        "ZXN0+/A=\r\n"                    \
        "-----END CERTIFICATE-----\r\n"
#define CA_DER "MIIBdTCCARugAwIBAgIUQ0EzZXN0+/A="
#define MODULE "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so"

static bool exists(const char *dir, const char *name) {
        _cleanup_free_ char *p = test_path(dir, name);

        return access(p, F_OK) == 0;
}

static void assert_json_file(const char *path, const char *want) {
        _cleanup_free_ char *text = test_read_file(path);
        _cleanup_json_ cJSON *have = cJSON_Parse(text), *expected = cJSON_Parse(want);

        assert_non_null(expected);
        if (!cJSON_Compare(have, expected, true))
                fail_msg("%s is\n%s\nnot %s", path, text, want);
}

static void test_pem_to_base64_der(void **state) {
        _cleanup_free_ char *der = NULL;
        char *bad = NULL;

        assert_int_equal(pem_to_base64_der(CA_PEM, &der), 0);
        assert_string_equal(der, CA_DER);
        assert_int_equal(pem_to_base64_der("-----BEGIN CERTIFICATE-----\nMII\"x\n-----END CERTIFICATE-----\n",
                                           &bad),
                         -EBADMSG);
        assert_int_equal(pem_to_base64_der("-----BEGIN CERTIFICATE-----\nMIIB\n", &bad), -EBADMSG);
        assert_int_equal(pem_to_base64_der("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", &bad),
                         -EBADMSG);
        assert_int_equal(pem_to_base64_der("MIIB", &bad), -EBADMSG);
        assert_null(bad);
}

static void test_chromium_policy(void **state) {
        _cleanup_(test_tmpdir_freep) char *dir = test_tmpdir_new("test-trust-chromium");
        _cleanup_free_ char *managed = test_path(dir, "policies/managed");
        _cleanup_free_ char *file = test_path(dir, "policies/managed/meshd.json");
        TrustCA ca = { .pem = CA_PEM, .domain = "mesh.internal" };

        assert_int_equal(setenv(CHROMIUM_POLICY_DIR_ENV, managed, 1), 0);
        assert_int_equal(chromium_policy_install(&ca), 0);
        assert_json_file(file, "{\"CACertificates\": [\"" CA_DER "\"]}");
        assert_int_equal(chromium_policy_install(&ca), 0);
        assert_json_file(file, "{\"CACertificates\": [\"" CA_DER "\"]}");

        assert_int_equal(chromium_policy_remove(), 0);
        assert_false(exists(dir, "policies"));
        assert_int_equal(chromium_policy_remove(), 0);
}

/* policies.json of its own: made with its directories, gone with them. */
static void test_firefox_alone(void **state) {
        _cleanup_(test_tmpdir_freep) char *dir = test_tmpdir_new("test-trust-firefox");
        _cleanup_free_ char *path = test_path(dir, "firefox/policies/policies.json");
        _cleanup_json_ cJSON *none = NULL, *doc = NULL, *again = NULL;

        assert_int_equal(firefox_policies_load(path, &none), 0);
        assert_null(none);
        assert_int_equal(firefox_policies_install(path, none, MODULE), 0);
        assert_json_file(path, "{\"policies\": {\"SecurityDevices\": {\"Add\": {\"" FIREFOX_DEVICE_NAME
                               "\": \"" MODULE "\"}}}}");
        assert_int_equal(firefox_policies_load(path, &doc), 0);
        assert_int_equal(firefox_policies_install(path, doc, MODULE), 0);

        assert_int_equal(firefox_policies_load(path, &again), 0);
        assert_int_equal(firefox_policies_remove(path, again), 0);
        assert_false(exists(dir, "firefox"));
}

/* The administrator's policies, in either SecurityDevices syntax, are
 * there after install and exactly as they were after remove. */
static void merge_round_trip(const char *admin, const char *installed) {
        _cleanup_(test_tmpdir_freep) char *dir = test_tmpdir_new("test-trust-firefox");
        _cleanup_free_ char *path = test_path(dir, "policies.json");
        _cleanup_json_ cJSON *doc = NULL, *again = NULL;

        test_write_file(path, admin, 0644);
        assert_int_equal(firefox_policies_load(path, &doc), 0);
        assert_int_equal(firefox_policies_install(path, doc, MODULE), 0);
        assert_json_file(path, installed);
        assert_int_equal(firefox_policies_load(path, &again), 0);
        assert_int_equal(firefox_policies_remove(path, again), 0);
        assert_json_file(path, admin);
}

static void test_firefox_merge(void **state) {
        merge_round_trip(
                "{\"policies\": {\"DisableTelemetry\": true}}",
                "{\"policies\": {\"DisableTelemetry\": true, \"SecurityDevices\": {\"Add\": {\"" FIREFOX_DEVICE_NAME
                "\": \"" MODULE "\"}}}}");
        /* The old syntax: names map to modules directly. */
        merge_round_trip(
                "{\"policies\": {\"SecurityDevices\": {\"Card\": \"/lib/card.so\"}}}",
                "{\"policies\": {\"SecurityDevices\": {\"Card\": \"/lib/card.so\", \"" FIREFOX_DEVICE_NAME
                "\": \"" MODULE "\"}}}");
        merge_round_trip(
                "{\"policies\": {\"SecurityDevices\": {\"Delete\": [\"Old\"]}}, \"x\": 1}",
                "{\"policies\": {\"SecurityDevices\": {\"Delete\": [\"Old\"], \"Add\": {\"" FIREFOX_DEVICE_NAME
                "\": \"" MODULE "\"}}}, \"x\": 1}");
        merge_round_trip(
                "{\"policies\": {\"SecurityDevices\": {\"Add\": {\"Card\": \"/lib/card.so\"}}}}",
                "{\"policies\": {\"SecurityDevices\": {\"Add\": {\"Card\": \"/lib/card.so\", \"" FIREFOX_DEVICE_NAME
                "\": \"" MODULE "\"}}}}");
}

static void test_firefox_symlink(void **state) {
        _cleanup_(test_tmpdir_freep) char *dir = test_tmpdir_new("test-trust-firefox");
        _cleanup_free_ char *path = test_path(dir, "policies.json"), *target = test_path(dir, "managed.json");
        _cleanup_json_ cJSON *doc = NULL;
        struct stat st;

        test_write_file(target, "{\"policies\": {\"DisableTelemetry\": true}}", 0644);
        assert_int_equal(symlink("managed.json", path), 0);
        assert_int_equal(firefox_policies_load(path, &doc), 0);
        assert_int_equal(firefox_policies_install(path, doc, MODULE), 0);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
        assert_json_file(
                target,
                "{\"policies\": {\"DisableTelemetry\": true, \"SecurityDevices\": {\"Add\": {\"" FIREFOX_DEVICE_NAME
                "\": \"" MODULE "\"}}}}");
}

static void test_firefox_bad_file(void **state) {
        static const char *const bad[] = {
                "{\"policies\": {\"DisableTelemetry\": true,}\n",
                "[]",
                "{\"policies\": []}",
                "{\"policies\": {\"SecurityDevices\": \"x\"}}",
                "{\"policies\": {\"SecurityDevices\": {\"Add\": []}}}",
        };
        _cleanup_(test_tmpdir_freep) char *dir = test_tmpdir_new("test-trust-firefox");
        _cleanup_free_ char *path = test_path(dir, "policies.json");

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                cJSON *doc = NULL;

                test_write_file(path, bad[i], 0644);
                assert_int_equal(firefox_policies_load(path, &doc), -EBADMSG);
                assert_null(doc);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pem_to_base64_der), cmocka_unit_test(test_chromium_policy),
                cmocka_unit_test(test_firefox_alone),     cmocka_unit_test(test_firefox_merge),
                cmocka_unit_test(test_firefox_symlink),   cmocka_unit_test(test_firefox_bad_file),
        };

        log_setup("test-trust-policies", LOG_TARGET_CONSOLE);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
