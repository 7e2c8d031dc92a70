/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>
#include <cmocka.h>

#include "cert-x509.h"
#include "cert.h"
#include "gnutls-util.h"

#define SEC USEC_PER_SEC
#define DAY (86400 * SEC)
/* What meshd-control does: valid from five minutes before issuing. */
#define BACKDATE (300 * SEC)

static const uint64_t T = 1764000000ULL * USEC_PER_SEC;

static void test_renewal_time_real_lifetime(void **state) {
        /* 30 days, obtained when issued: renew after 20 days, with 10 left. */
        assert_int_equal(cert_renewal_time(T - BACKDATE, T + 30 * DAY, T), T + 20 * DAY);
        /* Obtained unknown: the backdating counts, a few minutes earlier. */
        assert_int_equal(cert_renewal_time(T - BACKDATE, T + 30 * DAY, 0),
                         T + 30 * DAY - (30 * DAY + BACKDATE) / 3);
        /* Obtained (file written) a day after issuing: a third of what was left then. */
        assert_int_equal(cert_renewal_time(T - BACKDATE, T + 30 * DAY, T + 1 * DAY),
                         T + 30 * DAY - (29 * DAY) / 3);
}

static void test_renewal_time_short_lifetime(void **state) {
        /* A 20 s test lifetime must not be eaten by the 5 min backdating:
         * without `obtained` it would be due at once, and renew in a loop. */
        uint64_t at = cert_renewal_time(T - BACKDATE, T + 20 * SEC, T);

        assert_true(at > T + 13 * SEC && at < T + 14 * SEC);
        assert_true(cert_renewal_time(T - BACKDATE, T + 20 * SEC, 0) < T);
}

static void test_renewal_time_nonsense(void **state) {
        /* Expired before or at its start: due at once. */
        assert_int_equal(cert_renewal_time(T, T, 0), 0);
        assert_int_equal(cert_renewal_time(T, T - SEC, T), 0);
        /* `obtained` after the end (a file touched later) is ignored. */
        assert_int_equal(cert_renewal_time(T, T + 30 * SEC, T + 60 * SEC), T + 20 * SEC);
        /* and one before not_before too. */
        assert_int_equal(cert_renewal_time(T, T + 30 * SEC, T - DAY), T + 20 * SEC);
}

static void test_retry_delay(void **state) {
        /* Long-lived certificate: exponential from 1 s, capped at an hour. */
        assert_int_equal(cert_retry_delay(T, T + 10 * DAY, 1), 1 * SEC);
        assert_int_equal(cert_retry_delay(T, T + 10 * DAY, 2), 2 * SEC);
        assert_int_equal(cert_retry_delay(T, T + 10 * DAY, 3), 4 * SEC);
        assert_int_equal(cert_retry_delay(T, T + 10 * DAY, 13), CERT_RETRY_MAX_USEC);
        assert_int_equal(cert_retry_delay(T, T + 10 * DAY, 1000), CERT_RETRY_MAX_USEC);

        /* Bounded by half of what is left, so several tries fit before expiry… */
        assert_int_equal(cert_retry_delay(T, T + 6 * SEC, 5), 3 * SEC);
        assert_int_equal(cert_retry_delay(T, T + 2 * DAY, 30), CERT_RETRY_MAX_USEC);
        assert_int_equal(cert_retry_delay(T, T + 1 * 3600 * SEC, 30), 1800 * SEC);
        /* …but never below the minimum, even in the last moment. */
        assert_int_equal(cert_retry_delay(T, T + SEC, 9), CERT_RETRY_MIN_USEC);

        /* Expired or none: plain backoff. */
        assert_int_equal(cert_retry_delay(T, T - SEC, 4), 8 * SEC);
        assert_int_equal(cert_retry_delay(T, 0, 2), 2 * SEC);
        assert_int_equal(cert_retry_delay(T, 0, 100), CERT_RETRY_MAX_USEC);
}

/* ---- request and certificate checks, against a CA made here ---- */

static char *dns_names[] = { (char *) "nas.mesh.internal", NULL };
static char *ip_names[] = { (char *) "100.64.0.3", (char *) "fd7a:115c:a1e0::3", NULL };

typedef struct TestCa {
        gnutls_x509_privkey_t key;
        gnutls_x509_crt_t crt;
        char *pem;
} TestCa;

static char *datum_string(gnutls_datum_t *d) {
        char *s = strndup((const char *) d->data, d->size);
        gnutls_free(d->data);
        assert_non_null(s);
        return s;
}

static void test_ca_make(TestCa *ca) {
        gnutls_datum_t out = {};
        time_t now = time(NULL);
        unsigned char serial[] = { 0x01 };

        assert_int_equal(gnutls_x509_privkey_init(&ca->key), 0);
        assert_int_equal(gnutls_x509_privkey_generate2(ca->key, GNUTLS_PK_ECDSA,
                                                       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0,
                                                       NULL, 0),
                         0);
        assert_int_equal(gnutls_x509_crt_init(&ca->crt), 0);
        assert_int_equal(gnutls_x509_crt_set_version(ca->crt, 3), 0);
        assert_int_equal(gnutls_x509_crt_set_dn_by_oid(ca->crt, GNUTLS_OID_X520_COMMON_NAME, 0, "test CA", 7),
                         0);
        assert_int_equal(gnutls_x509_crt_set_serial(ca->crt, serial, sizeof(serial)), 0);
        assert_int_equal(gnutls_x509_crt_set_activation_time(ca->crt, now - 3600), 0);
        assert_int_equal(gnutls_x509_crt_set_expiration_time(ca->crt, now + 86400), 0);
        assert_int_equal(gnutls_x509_crt_set_basic_constraints(ca->crt, 1, 0), 0);
        assert_int_equal(gnutls_x509_crt_set_key_usage(ca->crt, GNUTLS_KEY_KEY_CERT_SIGN), 0);
        assert_int_equal(gnutls_x509_crt_set_key(ca->crt, ca->key), 0);
        assert_int_equal(gnutls_x509_crt_sign2(ca->crt, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0), 0);
        assert_int_equal(gnutls_x509_crt_export2(ca->crt, GNUTLS_X509_FMT_PEM, &out), 0);
        ca->pem = datum_string(&out);
}

static void test_ca_done(TestCa *ca) {
        gnutls_x509_crt_deinit(ca->crt);
        gnutls_x509_privkey_deinit(ca->key);
        free(ca->pem);
}

/* Signs csr_pem like the control server: its names, 20 s from now. */
static char *test_ca_sign(TestCa *ca, const char *csr_pem, time_t not_before, time_t not_after) {
        _cleanup_(gnutls_x509_crq_deinitp) gnutls_x509_crq_t crq = NULL;
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        gnutls_datum_t in = { .data = (unsigned char *) csr_pem, .size = (unsigned) strlen(csr_pem) }, out = {};
        unsigned char serial[] = { 0x00, 0x9e, 0x11, 0xa0 }; /* DER padding: shown without */

        assert_int_equal(gnutls_x509_crq_init(&crq), 0);
        assert_int_equal(gnutls_x509_crq_import(crq, &in, GNUTLS_X509_FMT_PEM), 0);
        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        assert_int_equal(gnutls_x509_crt_set_crq(crt, crq), 0);
        assert_int_equal(gnutls_x509_crt_set_crq_extensions(crt, crq), 0);
        assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
        assert_int_equal(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), 0);
        assert_int_equal(gnutls_x509_crt_set_activation_time(crt, not_before), 0);
        assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, not_after), 0);
        assert_int_equal(gnutls_x509_crt_sign2(crt, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0), 0);
        assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out), 0);
        return datum_string(&out);
}

static void test_make_request(void **state) {
        _cleanup_(gnutls_x509_crq_deinitp) gnutls_x509_crq_t crq = NULL;
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key = NULL;
        _cleanup_free_ char *key_pem = NULL, *csr_pem = NULL;
        gnutls_datum_t d;
        char buf[256];
        size_t size = sizeof(buf);
        unsigned type, critical, bits = 0;
        gnutls_ecc_curve_t curve;

        assert_int_equal(cert_make_request(dns_names, ip_names, &key_pem, &csr_pem), 0);
        /* PKCS#8, unencrypted, as docs/api.md promises. */
        assert_non_null(strstr(key_pem, "-----BEGIN PRIVATE KEY-----"));
        assert_non_null(strstr(csr_pem, "-----BEGIN NEW CERTIFICATE REQUEST-----"));

        d = (gnutls_datum_t) { .data = (unsigned char *) key_pem, .size = (unsigned) strlen(key_pem) };
        assert_int_equal(gnutls_x509_privkey_init(&key), 0);
        assert_int_equal(gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, 0), 0);
        assert_int_equal(gnutls_x509_privkey_get_pk_algorithm2(key, &bits), GNUTLS_PK_ECDSA);
        assert_int_equal(gnutls_x509_privkey_export_ecc_raw(key, &curve, NULL, NULL, NULL), 0);
        assert_int_equal(curve, GNUTLS_ECC_CURVE_SECP256R1);

        d = (gnutls_datum_t) { .data = (unsigned char *) csr_pem, .size = (unsigned) strlen(csr_pem) };
        assert_int_equal(gnutls_x509_crq_init(&crq), 0);
        assert_int_equal(gnutls_x509_crq_import(crq, &d, GNUTLS_X509_FMT_PEM), 0);
        assert_int_equal(gnutls_x509_crq_verify(crq, 0), 0);

        assert_int_equal(gnutls_x509_crq_get_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size), 0);
        assert_string_equal(buf, "nas.mesh.internal");

        /* subjectAltNames: the DNS name, then both addresses, in binary. */
        size = sizeof(buf);
        assert_int_equal(gnutls_x509_crq_get_subject_alt_name(crq, 0, buf, &size, &type, &critical),
                         GNUTLS_SAN_DNSNAME);
        assert_int_equal(type, GNUTLS_SAN_DNSNAME);
        assert_memory_equal(buf, "nas.mesh.internal", 17);
        size = sizeof(buf);
        assert_int_equal(gnutls_x509_crq_get_subject_alt_name(crq, 1, buf, &size, &type, &critical),
                         GNUTLS_SAN_IPADDRESS);
        assert_int_equal(size, 4);
        assert_memory_equal(buf, "\x64\x40\x00\x03", 4);
        size = sizeof(buf);
        assert_int_equal(gnutls_x509_crq_get_subject_alt_name(crq, 2, buf, &size, &type, &critical),
                         GNUTLS_SAN_IPADDRESS);
        assert_int_equal(size, 16);
        size = sizeof(buf);
        assert_int_equal(gnutls_x509_crq_get_subject_alt_name(crq, 3, buf, &size, &type, &critical),
                         GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
}

static void test_make_request_bad_input(void **state) {
        char *no_dns[] = { NULL };
        char *bad_ip[] = { (char *) "100.64.0.300", NULL };
        char *key = NULL, *csr = NULL;

        assert_int_equal(cert_make_request(no_dns, ip_names, &key, &csr), -EINVAL);
        assert_int_equal(cert_make_request(NULL, ip_names, &key, &csr), -EINVAL);
        assert_int_equal(cert_make_request(dns_names, bad_ip, &key, &csr), -EINVAL);
        assert_null(key);
        assert_null(csr);
}

static void test_check(void **state) {
        _cleanup_free_ char *key = NULL, *csr = NULL, *other_key = NULL, *other_csr = NULL, *cert = NULL;
        _cleanup_free_ char *error = NULL;
        _cleanup_(cert_info_done) CertInfo info = {};
        time_t now = time(NULL);
        TestCa ca = {}, other_ca = {};

        test_ca_make(&ca);
        test_ca_make(&other_ca);
        assert_int_equal(cert_make_request(dns_names, ip_names, &key, &csr), 0);
        assert_int_equal(cert_make_request(dns_names, NULL, &other_key, &other_csr), 0);
        cert = test_ca_sign(&ca, csr, now - 300, now + 20);

        assert_int_equal(cert_check(cert, key, ca.pem, &info, &error), 0);
        assert_null(error);
        assert_int_equal(info.not_before_usec, (uint64_t) (now - 300) * USEC_PER_SEC);
        assert_int_equal(info.not_after_usec, (uint64_t) (now + 20) * USEC_PER_SEC);
        assert_non_null(info.names);
        assert_string_equal(info.names[0], "nas.mesh.internal");
        assert_string_equal(info.names[1], "100.64.0.3");
        assert_string_equal(info.names[2], "fd7a:115c:a1e0::3");
        assert_null(info.names[3]);
        assert_string_equal(info.serial, "9e11a0");

        /* Another key: the pair must never be out of step. */
        assert_int_equal(cert_check(cert, other_key, ca.pem, &info, &error), -EBADMSG);
        assert_string_equal(error, "the certificate is not for this key");
        free(error);
        /* Another CA. */
        assert_int_equal(cert_check(cert, key, other_ca.pem, &info, &error), -EBADMSG);
        assert_string_equal(error, "the certificate is not signed by the mesh CA");
        free(error);
        /* Garbage. */
        assert_int_equal(cert_check("not a certificate", key, ca.pem, &info, &error), -EBADMSG);
        assert_non_null(strstr(error, "the certificate does not parse"));
        free(error);
        assert_int_equal(cert_check(cert, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                                    ca.pem, &info, &error),
                         -EBADMSG);
        assert_non_null(strstr(error, "the key does not parse"));
        free(error);
        error = NULL;

        /* Expired is still a valid set (its renewal is the caller's business). */
        free(cert);
        cert = test_ca_sign(&ca, csr, now - 7200, now - 3600);
        cert_info_done(&info);
        assert_int_equal(cert_check(cert, key, ca.pem, &info, &error), 0);
        assert_true(info.not_after_usec < (uint64_t) now * USEC_PER_SEC);

        test_ca_done(&ca);
        test_ca_done(&other_ca);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_renewal_time_real_lifetime),
                cmocka_unit_test(test_renewal_time_short_lifetime),
                cmocka_unit_test(test_renewal_time_nonsense),
                cmocka_unit_test(test_retry_delay),
                cmocka_unit_test(test_make_request),
                cmocka_unit_test(test_make_request_bad_input),
                cmocka_unit_test(test_check),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
