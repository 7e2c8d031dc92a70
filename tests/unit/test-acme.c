/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* acme-tsig.c, acme-error.c and the pure parts of acme.c / acme-child.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "acme-internal.h"
#include "test-util.h"
#include "tls-test-cert.h"

static void test_tsig_bind_and_knot(void **state) {
        AcmeTsig t;
        char error[256];

        assert_int_equal(acme_tsig_parse("key \"meshd-acme\" {\n\talgorithm hmac-sha256;\n"
                                         "\tsecret \"c2VjcmV0c2VjcmV0c2VjcmV0\";\n};\n",
                                         &t, error, sizeof(error)),
                         0);
        assert_string_equal(t.name, "meshd-acme");
        assert_string_equal(t.algorithm, "hmac-sha256");
        assert_string_equal(t.secret, "c2VjcmV0c2VjcmV0c2VjcmV0");

        assert_int_equal(acme_tsig_parse("# hmac-sha512:k1:YWJj\nkey:\n  - id: k1.example.\n"
                                         "    algorithm: hmac-sha512\n    secret: YWJjZA==\n",
                                         &t, error, sizeof(error)),
                         0);
        assert_string_equal(t.name, "k1.example.");
        assert_string_equal(t.algorithm, "hmac-sha512");
        assert_string_equal(t.secret, "YWJjZA==");
}

static void test_tsig_bad(void **state) {
        static const struct {
                const char *text, *fragment;
        } cases[] = {
                { "", "no key name" },
                { "key \"k\" {\n secret \"YWJj\";\n};\n", "no key algorithm" },
                { "key \"k\" {\n algorithm hmac-sha256;\n};\n", "no key secret" },
                { "key \"k\" {\n algorithm hmac-md5;\n secret \"YWJj\";\n};\n", "is not one of" },
                { "key \"k;x\" {\n algorithm hmac-sha256;\n secret \"Y$Jj\";\n};\n", "not base64" },
                { "key \"k/x\" {\n algorithm hmac-sha256;\n secret \"YWJj\";\n};\n", "not a DNS name" },
        };
        AcmeTsig t;
        char error[256];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                error[0] = 0;
                assert_int_equal(acme_tsig_parse(cases[i].text, &t, error, sizeof(error)), -EINVAL);
                if (!strstr(error, cases[i].fragment))
                        fail_msg("case %zu: '%s' lacks '%s'", i, error, cases[i].fragment);
        }
}

static void test_tsig_file_mode(void **state) {
        _cleanup_(test_tmpdir_freep) char *dir = test_tmpdir_new("test-acme");
        _cleanup_free_ char *path = test_path(dir, "tsig.key");
        AcmeTsig t;
        char error[256];

        test_write_file(path, "key \"k\" {\n algorithm hmac-sha256;\n secret \"YWJj\";\n};\n", 0644);
        assert_return_code(chmod(path, 0644), errno);
        assert_int_equal(acme_tsig_load(path, &t, error, sizeof(error)), -EPERM);
        assert_non_null(strstr(error, "0600"));
        assert_return_code(chmod(path, 0600), errno);
        assert_int_equal(acme_tsig_load(path, &t, error, sizeof(error)), 0);
        assert_int_equal(acme_tsig_load("/nonexistent/tsig", &t, error, sizeof(error)), -ENOENT);
}

/* lego's own words, as it says them on a failed run */
static void test_error_summary(void **state) {
        static const struct {
                const char *output, *cause, *detail;
        } cases[] = {
                { "2026/12/03 13:47:49 [INFO] Deactivating auth: https://x/authZ/1\n"
                  "2026/12/03 13:47:49 Could not obtain certificates:\n"
                  "\terror: one or more domains had a problem:\n"
                  "[n1.mesh.example.test] [n1.mesh.example.test] acme: error presenting token: rfc2136: failed to "
                  "insert: DNS update failed: dns: bad authentication\n",
                  "refused the TSIG key", "bad authentication" },
                { "2026/12/03 13:57:48 [WARN] [n1] acme: cleaning up failed: rfc2136: failed to remove: DNS "
                  "update failed: server replied: REFUSED\n"
                  "[n1] acme: error presenting token: rfc2136: failed to insert: DNS update failed: server "
                  "replied: NOTAUTH\n",
                  "refused the TSIG key", "failed to insert" },
                { "acme: error presenting token: rfc2136: failed to insert: could not find the start of "
                  "authority for _acme-challenge.n1.: read udp 1.2.3.4:5->1.2.3.4:53: i/o timeout\n",
                  "did not answer", "start of authority" },
                { "2026/12/03 13:47:55 Could not obtain certificates:\n\tacme: error: 429 :: POST :: "
                  "https://ca/new-order :: urn:ietf:params:acme:error:rateLimited :: too many certificates\n",
                  "rate limit", "rateLimited" },
                { "acme: error: 403 :: urn:ietf:params:acme:error:unauthorized :: Error retrieving TXT records\n",
                  "ACME CA refused the order", "unauthorized" },
                { "2026/12/03 13:47:55 Could not create client: get directory at 'https://ca/dir': dial tcp: "
                  "connection refused\n",
                  "directory is unreachable", "connection refused" },
                { "something\nunheard of\n\n", "the ACME client failed", "unheard of" },
                { "", "the ACME client failed", "(no output)" },
        };
        char buf[512];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                acme_error_summary(cases[i].output, buf, sizeof(buf));
                if (!strstr(buf, cases[i].cause) || !strstr(buf, cases[i].detail))
                        fail_msg("case %zu: '%s' lacks '%s' or '%s'", i, buf, cases[i].cause, cases[i].detail);
                assert_null(strchr(buf, '\n'));
                assert_null(strstr(buf, "2026/12/03"));
                assert_null(strstr(buf, ":  "));
        }
        /* bounded, printable */
        char big[4000];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        big[10] = '\x1b';
        acme_error_summary(big, buf, 64);
        assert_int_equal(strlen(buf), 63);
        acme_error_summary(big, buf, sizeof(buf));
        assert_null(strchr(buf, '\x1b'));
}

static void test_retry_delay(void **state) {
        assert_int_equal(acme_retry_delay(60, 1), 60);
        assert_int_equal(acme_retry_delay(60, 2), 120);
        assert_int_equal(acme_retry_delay(60, 5), 960);
        assert_int_equal(acme_retry_delay(60, 100), ACME_RETRY_MAX_SEC);
        assert_int_equal(acme_retry_delay(0, 1), 1);
}

static void test_error_retry_after(void **state) {
        /* 2026-12-03 14:00:00 UTC */
        const uint64_t now = 1796306400;
        const char *le =
                "Could not obtain certificates:\n\tacme: error: 429 :: POST :: https://ca/new-order :: "
                "urn:ietf:params:acme:error:rateLimited :: too many certificates (5) already issued "
                "for this exact set of identifiers in the last 168h0m0s, retry after 2026-12-03 "
                "15:00:00 UTC: see https://letsencrypt.org/docs/rate-limits/\n";

        assert_int_equal(acme_error_retry_after(le, now), 3600);
        /* later than our own backoff's cap: still honoured */
        assert_int_equal(acme_error_retry_after(le, now - 5 * 3600), 6 * 3600);
        /* past, absent, or not a rate limit: no wish */
        assert_int_equal(acme_error_retry_after(le, now + 3600), 0);
        assert_int_equal(acme_error_retry_after(le, now + 7200), 0);
        assert_int_equal(acme_error_retry_after("acme: error: 429 :: POST :: x :: "
                                                "urn:ietf:params:acme:error:rateLimited :: slow down\n",
                                                now),
                         0);
        assert_int_equal(acme_error_retry_after("urn:ietf:params:acme:error:unauthorized :: retry after "
                                                "2026-12-03 15:00:00 UTC\n",
                                                now),
                         0);
        assert_int_equal(acme_error_retry_after("", now), 0);
        /* a hostile date: bounded, or refused */
        assert_int_equal(acme_error_retry_after("error:rateLimited :: retry after 9999-12-31 23:59:59 UTC\n",
                                                now),
                         ACME_RETRY_AFTER_MAX_SEC);
        assert_int_equal(acme_error_retry_after("error:rateLimited :: retry after 2026-13-03 15:00:00 UTC\n",
                                                now),
                         0);
        assert_int_equal(acme_error_retry_after("error:rateLimited :: retry after 2026-12-03 15:00\n", now), 0);
        assert_int_equal(acme_error_retry_after("error:rateLimited :: retry after -2026-12-03 15:00:00 UTC\n",
                                                now),
                         0);
        /* the latest of several */
        assert_int_equal(acme_error_retry_after("error:rateLimited :: retry after 2026-12-03 14:10:00 UTC\n"
                                                "429 :: retry after 2026-12-03 14:20:00 UTC\n",
                                                now),
                         1200);
}

static void test_split_bundle(void **state) {
        TlsTestCert leaf, issuer;
        _cleanup_free_ char *bundle = NULL, *l = NULL, *c = NULL;
        int64_t nb = 0, na = 0;
        char error[256];

        tls_test_cert_make(&leaf);
        tls_test_cert_make(&issuer);
        assert_true(asprintf(&bundle, "%s\n%s", leaf.cert_pem, issuer.cert_pem) > 0);
        assert_int_equal(acme_split_bundle(bundle, &l, &c, &nb, &na, error, sizeof(error)), 0);
        assert_non_null(strstr(leaf.cert_pem, l + 1) ?: strstr(l, "BEGIN CERTIFICATE"));
        assert_int_equal(strncmp(l, leaf.cert_pem, strlen(l) - 1), 0);
        assert_string_equal(c, issuer.cert_pem);
        assert_true(na > nb && nb > 0);

        assert_int_equal(acme_split_bundle(leaf.cert_pem, &l, &c, &nb, &na, error, sizeof(error)), -EBADMSG);
        assert_non_null(strstr(error, "chain"));
        assert_int_equal(acme_split_bundle("junk", &l, &c, &nb, &na, error, sizeof(error)), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tsig_bind_and_knot), cmocka_unit_test(test_tsig_bad),
                cmocka_unit_test(test_tsig_file_mode),     cmocka_unit_test(test_error_summary),
                cmocka_unit_test(test_retry_delay),        cmocka_unit_test(test_error_retry_after),
                cmocka_unit_test(test_split_bundle),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
