/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>

#include "msg-cert.h"
#include "varlink.h" /* _cleanup_json_ */

#define CSR "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
#define CSR_JSON "-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n-----END CERTIFICATE REQUEST-----\\n"
#define CRT "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
#define CRT_JSON "-----BEGIN CERTIFICATE-----\\nMIIC\\n-----END CERTIFICATE-----\\n"
#define CA "-----BEGIN CERTIFICATE-----\nMIIA\n-----END CERTIFICATE-----\n"
#define CA_JSON "-----BEGIN CERTIFICATE-----\\nMIIA\\n-----END CERTIFICATE-----\\n"

/* The bytes each side put on the wire before the messages moved here: they
 * must not change. */
static void test_render_bytes(void **state) {
        _cleanup_free_ char *req = NULL, *reply = NULL, *late = NULL, *ca = NULL;

        assert_int_equal(cert_request_render(CSR, &req), 0);
        assert_string_equal(req, "{\"csr\":\"" CSR_JSON "\"}");

        assert_int_equal(cert_reply_render(CRT, CA, 1699999700, 1702592000, &reply), 0);
        assert_string_equal(reply, "{\"certificate\":\"" CRT_JSON "\",\"ca\":\"" CA_JSON "\","
                                   "\"not_before\":1699999700,\"not_after\":1702592000}");
        /* past INT_MAX cJSON prints with %g: still whole seconds */
        assert_int_equal(cert_reply_render(CRT, CA, 4102444800, 4105036800, &late), 0);
        assert_string_equal(late, "{\"certificate\":\"" CRT_JSON "\",\"ca\":\"" CA_JSON "\","
                                  "\"not_before\":4102444800,\"not_after\":4105036800}");

        assert_int_equal(ca_reply_render(CA, "mesh.internal", &ca), 0);
        assert_string_equal(ca, "{\"ca\":\"" CA_JSON "\",\"domain\":\"mesh.internal\"}");
}

static int parse_request(const char *text, const char **ret_csr, char *error, size_t size, cJSON **ret_body) {
        *ret_body = cJSON_Parse(text);
        assert_non_null(*ret_body);
        return cert_request_parse(*ret_body, ret_csr, error, size);
}

static void test_request(void **state) {
        _cleanup_free_ char *body = NULL, *big = NULL;
        _cleanup_json_ cJSON *o = NULL;
        const char *csr = NULL;
        char error[256];

        /* render -> parse */
        assert_int_equal(cert_request_render(CSR, &body), 0);
        assert_int_equal(parse_request(body, &csr, error, sizeof(error), &o), 0);
        assert_string_equal(csr, CSR);
        cJSON_Delete(o);

        assert_int_equal(parse_request("{\"csr\": \"-----BEGIN NEW CERTIFICATE REQUEST-----\"}", &csr, error,
                                       sizeof(error), &o),
                         0);
        cJSON_Delete(o);

        assert_int_equal(parse_request("{}", &csr, error, sizeof(error), &o), -EINVAL);
        assert_string_equal(error, "csr: missing or not a string");
        cJSON_Delete(o);
        assert_int_equal(parse_request("{\"csr\": \"\"}", &csr, error, sizeof(error), &o), -EINVAL);
        assert_string_equal(error, "csr: missing or not a string");
        cJSON_Delete(o);
        assert_int_equal(parse_request("{\"csr\": 7}", &csr, error, sizeof(error), &o), -EINVAL);
        assert_string_equal(error, "csr: missing or not a string");
        cJSON_Delete(o);
        assert_int_equal(parse_request("{\"csr\": \"-----BEGIN CERTIFICATE-----\"}", &csr, error, sizeof(error),
                                       &o),
                         -EINVAL);
        assert_string_equal(error, "csr: not a PEM certificate request");
        cJSON_Delete(o);

        big = calloc(1, CERT_REQUEST_CSR_MAX + 64);
        assert_non_null(big);
        strcpy(big, "{\"csr\": \"-----BEGIN CERTIFICATE REQUEST-----");
        memset(big + strlen(big), 'A', CERT_REQUEST_CSR_MAX);
        strcat(big, "\"}");
        assert_int_equal(parse_request(big, &csr, error, sizeof(error), &o), -EINVAL);
        assert_string_equal(error, "csr: longer than 16384 bytes");
}

static int parse_reply(const char *text, CertReply *ret) {
        return cert_reply_parse(text, strlen(text), ret);
}

static void test_cert_reply(void **state) {
        _cleanup_free_ char *body = NULL;
        _cleanup_(cert_reply_done) CertReply r = {};
        static const char *const bad[] = {
                "",
                "[]",
                "{\"certificate\": \"" CRT_JSON "\"}",
                "{\"ca\": \"" CA_JSON "\"}",
                "{\"certificate\": 1, \"ca\": \"" CA_JSON "\"}",
                "{\"certificate\": \"" CRT_JSON "\", \"ca\": null}",
                "{\"certificate\": \"x\", \"ca\": \"y\"",
        };

        /* render -> parse */
        assert_int_equal(cert_reply_render(CRT, CA, 1699999700, 1702592000, &body), 0);
        assert_int_equal(cert_reply_parse(body, strlen(body), &r), 0);
        assert_string_equal(r.certificate, CRT);
        assert_string_equal(r.ca, CA);
        assert_int_equal(r.not_before, 1699999700);
        assert_int_equal(r.not_after, 1702592000);
        cert_reply_done(&r);

        /* the times are optional: meshd reads them from the certificate */
        assert_int_equal(parse_reply("{\"certificate\": \"c\", \"ca\": \"a\", \"not_after\": \"soon\"}", &r),
                         0);
        assert_string_equal(r.certificate, "c");
        assert_int_equal(r.not_before, 0);
        assert_int_equal(r.not_after, 0);
        cert_reply_done(&r);
        assert_int_equal(parse_reply("{\"certificate\": \"c\", \"ca\": \"a\", \"not_after\": 1e300}", &r), 0);
        assert_int_equal(r.not_after, 0);
        cert_reply_done(&r);

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(cert_reply_parse(bad[i], strlen(bad[i]), &r), -EBADMSG);
        /* the length counts, not a NUL */
        assert_int_equal(cert_reply_parse(body, strlen(body) - 1, &r), -EBADMSG);
}

static void test_ca_reply(void **state) {
        _cleanup_free_ char *body = NULL;
        _cleanup_(ca_reply_done) CaReply r = {};
        static const char *const no_domain[] = {
                "{\"ca\": \"" CA_JSON "\"}",
                "{\"ca\": \"" CA_JSON "\", \"domain\": null}",
        };
        static const char *const bad[] = {
                "",
                "{}",
                "{\"ca\": 1, \"domain\": \"mesh.internal\"}",
                "{\"ca\": \"" CA_JSON "\", \"domain\": 1}",
                "{\"ca\": \"" CA_JSON "\", \"domain\": [\"mesh.internal\"]}",
        };

        /* render -> parse */
        assert_int_equal(ca_reply_render(CA, "mesh.internal", &body), 0);
        assert_int_equal(ca_reply_parse(body, strlen(body), &r), 0);
        assert_string_equal(r.ca, CA);
        assert_string_equal(r.domain, "mesh.internal");
        ca_reply_done(&r);

        for (size_t i = 0; i < sizeof(no_domain) / sizeof(no_domain[0]); i++) {
                assert_int_equal(ca_reply_parse(no_domain[i], strlen(no_domain[i]), &r), 0);
                assert_string_equal(r.ca, CA);
                assert_null(r.domain);
                ca_reply_done(&r);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(ca_reply_parse(bad[i], strlen(bad[i]), &r), -EBADMSG);
}

/* 202: an ACME order still running; and an issued reply naming its issuer */
static void test_pending_and_issuer(void **state) {
        _cleanup_free_ char *text = NULL, *issued = NULL;
        _cleanup_(cert_reply_done) CertReply r = {}, i = {}, bad = {};
        char *names[] = { (char *) "n1.mesh.example.org", NULL };

        assert_int_equal(cert_pending_render(7, names, "in progress", &text), 0);
        assert_string_equal(text, "{\"status\":\"pending\",\"retry_after\":7,\"detail\":\"in progress\","
                                  "\"names\":[\"n1.mesh.example.org\"]}");
        assert_int_equal(cert_reply_parse(text, strlen(text), &r), 0);
        assert_true(r.pending);
        assert_int_equal(r.retry_after_sec, 7);
        assert_string_equal(r.names[0], "n1.mesh.example.org");
        assert_null(r.names[1]);
        assert_string_equal(r.detail, "in progress");
        assert_null(r.certificate);

        assert_int_equal(cert_reply_render_issued(CRT, CA, 1, 2, "acme", &issued), 0);
        assert_int_equal(cert_reply_parse(issued, strlen(issued), &i), 0);
        assert_false(i.pending);
        assert_string_equal(i.issuer, "acme");

        /* a hostile server: capped wait, bounded names */
        static const char *const hostile[] = {
                "{\"status\":\"pending\",\"names\":[1]}",
                "{\"status\":\"pending\",\"names\":\"x\"}",
                "{\"status\":\"pending\",\"names\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}",
                "{\"status\":\"pending\",\"names\":[\"\"]}",
        };
        for (size_t k = 0; k < ELEMENTSOF(hostile); k++)
                assert_int_equal(cert_reply_parse(hostile[k], strlen(hostile[k]), &bad), -EBADMSG);
        const char *forever = "{\"status\":\"pending\",\"retry_after\":1e300}";
        assert_int_equal(cert_reply_parse(forever, strlen(forever), &bad), 0);
        assert_int_equal(bad.retry_after_sec, CERT_RETRY_AFTER_MAX_SEC);
        assert_null(bad.names);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_render_bytes),       cmocka_unit_test(test_request),
                cmocka_unit_test(test_cert_reply),         cmocka_unit_test(test_ca_reply),
                cmocka_unit_test(test_pending_and_issuer),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
