/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca.h"
#include "fileio.h"
#include "gnutls-util.h"
#include "log.h"
#include "test-util.h"

#define NOW ((int64_t) 1764000000)

static const CertIdentity nas = {
        .name = "nas",
        .domain = "mesh.internal",
        .ipv4 = "100.64.0.2",
        .ipv6 = "fd7a:115c:a1e0::2",
};

typedef struct Fixture {
        char *dir;
        char *pem; /* key and certificate, as the store keeps them */
        CertAuthority *ca;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        f->dir = test_tmpdir_new("test-ca");
        assert_int_equal(ca_generate("mesh.internal", "100.64.0.0/10", "fd7a:115c:a1e0::/48", &f->pem), 0);
        assert_int_equal(ca_load(f->pem, &f->ca), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        ca_free(f->ca);
        free(f->pem);
        test_tmpdir_free(f->dir);
        free(f);
        return 0;
}

static void test_check_names(void **state) {
        char error[256] = "";

#define CHECK(expected, ...)                                                                           \
        do {                                                                                           \
                const CertName names[] = { __VA_ARGS__ };                                              \
                assert_int_equal(ca_check_names(&nas, names, ELEMENTSOF(names), error, sizeof(error)), \
                                 expected);                                                            \
        } while (0)

        CHECK(0, { CERT_NAME_DNS, "nas.mesh.internal" });
        CHECK(0, { CERT_NAME_DNS, "NAS.Mesh.Internal." }, { CERT_NAME_IP, "100.64.0.2" });
        CHECK(0, { CERT_NAME_IP, "fd7a:115c:a1e0:0:0:0:0:2" });
        CHECK(-EPERM, { CERT_NAME_DNS, "nas.mesh.internal" }, { CERT_NAME_DNS, "backup.mesh.internal" });
        assert_non_null(strstr(error, "backup.mesh.internal"));
        CHECK(-EPERM, { CERT_NAME_DNS, "nas" });
        CHECK(-EPERM, { CERT_NAME_DNS, "nas.mesh.internal.evil.com" });
        CHECK(-EPERM, { CERT_NAME_DNS, "*.mesh.internal" });
        CHECK(-EPERM, { CERT_NAME_IP, "100.64.0.3" });
        assert_non_null(strstr(error, "100.64.0.3"));
        CHECK(-EPERM, { CERT_NAME_IP, "fd7a:115c:a1e0::3" });
        CHECK(-EPERM, { CERT_NAME_IP, "not an address" });
#undef CHECK
}

/* A PEM CSR for key with the given CN (NULL: none) and SANs. */
static char *make_csr(gnutls_x509_privkey_t key, const char *cn, const char *dns, const void *ip,
                      size_t ip_len) {
        _cleanup_(gnutls_x509_crq_deinitp) gnutls_x509_crq_t crq = NULL;
        _cleanup_datum_ gnutls_datum_t pem = {};

        assert_int_equal(gnutls_x509_crq_init(&crq), 0);
        assert_int_equal(gnutls_x509_crq_set_version(crq, 1), 0);
        if (cn)
                assert_int_equal(gnutls_x509_crq_set_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                                               strlen(cn)),
                                 0);
        if (dns)
                assert_int_equal(gnutls_x509_crq_set_subject_alt_name(crq, GNUTLS_SAN_DNSNAME, dns, strlen(dns),
                                                                      GNUTLS_FSAN_APPEND),
                                 0);
        if (ip)
                assert_int_equal(gnutls_x509_crq_set_subject_alt_name(crq, GNUTLS_SAN_IPADDRESS, ip, ip_len,
                                                                      GNUTLS_FSAN_APPEND),
                                 0);
        assert_int_equal(gnutls_x509_crq_set_key(crq, key), 0);
        assert_int_equal(gnutls_x509_crq_sign2(crq, key, GNUTLS_DIG_SHA256, 0), 0);
        assert_int_equal(gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_PEM, &pem), 0);
        return strndup((const char *) pem.data, pem.size);
}

static gnutls_x509_privkey_t make_key(gnutls_pk_algorithm_t algo, unsigned bits) {
        gnutls_x509_privkey_t key;

        assert_int_equal(gnutls_x509_privkey_init(&key), 0);
        assert_int_equal(gnutls_x509_privkey_generate(key, algo, bits, 0), 0);
        return key;
}

static gnutls_x509_crt_t import_crt(const char *pem) {
        gnutls_x509_crt_t crt;

        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        assert_int_equal(
                gnutls_x509_crt_import(crt, &(gnutls_datum_t) { (unsigned char *) pem, (unsigned) strlen(pem) },
                                       GNUTLS_X509_FMT_PEM),
                0);
        return crt;
}

/* GnuTLS's own chain verification at time t, against the CA alone. */
static unsigned verify(const char *ca_pem, gnutls_x509_crt_t leaf, time_t t) {
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t ca = import_crt(ca_pem);
        gnutls_x509_trust_list_t tl;
        unsigned status = 0;

        assert_int_equal(gnutls_x509_trust_list_init(&tl, 0), 0);
        assert_int_equal(gnutls_x509_trust_list_add_cas(tl, &ca, 1, GNUTLS_TL_NO_DUPLICATES), 1);
        ca = NULL; /* owned by the list now */
        assert_int_equal(gnutls_x509_trust_list_verify_crt2(tl, &leaf, 1, NULL, 0,
                                                            GNUTLS_VERIFY_DISABLE_TIME_CHECKS * (t == 0),
                                                            &status, NULL),
                         0);
        gnutls_x509_trust_list_deinit(tl, 1);
        return status;
}

static void test_constraints_critical(void **state) {
        Fixture *f = *state;
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t ca = import_crt(ca_certificate_pem(f->ca));
        _cleanup_(gnutls_x509_name_constraints_deinitp) gnutls_x509_name_constraints_t nc = NULL;
        unsigned critical = 0, type = 0, ca_flag = 0;
        gnutls_datum_t name;
        int pathlen = -1;

        assert_int_equal(gnutls_x509_name_constraints_init(&nc), 0);
        assert_int_equal(gnutls_x509_crt_get_name_constraints(ca, nc, 0, &critical), 0);
        assert_int_equal(critical, 1);
        assert_int_equal(gnutls_x509_name_constraints_get_permitted(nc, 0, &type, &name), 0);
        assert_int_equal(type, GNUTLS_SAN_DNSNAME);
        assert_memory_equal(name.data, "mesh.internal", name.size);
        assert_int_equal(gnutls_x509_name_constraints_get_permitted(nc, 1, &type, &name), 0);
        assert_int_equal(type, GNUTLS_SAN_IPADDRESS);
        assert_int_equal(name.size, 8);
        assert_memory_equal(name.data, "\x64\x40\x00\x00\xff\xc0\x00\x00", 8);
        assert_int_equal(gnutls_x509_name_constraints_get_permitted(nc, 2, &type, &name), 0);
        assert_int_equal(name.size, 32);
        assert_int_equal(gnutls_x509_crt_get_basic_constraints(ca, &critical, &ca_flag, &pathlen), 1);
        assert_int_equal(ca_flag, 1);
        assert_int_equal(pathlen, 0);
}

static void test_sign(void **state) {
        Fixture *f = *state;
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key =
                make_key(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        _cleanup_free_ char *csr = make_csr(key, "nas.mesh.internal", NULL, "\x64\x40\x00\x02", 4);
        _cleanup_(issued_cert_done) IssuedCert cert = {};
        char error[256] = "", buf[256];
        size_t size;
        unsigned type, critical;

        assert_int_equal(ca_sign_request(f->ca, csr, &nas, time(NULL), 3600, &cert, error, sizeof(error)), 0);
        assert_true(cert.not_after - cert.not_before == 3600 + CERT_BACKDATE_SEC);
        crt = import_crt(cert.pem);
        assert_int_equal(verify(ca_certificate_pem(f->ca), crt, time(NULL)), 0);
        assert_int_equal(gnutls_x509_crt_check_hostname(crt, "nas.mesh.internal"), 1);
        assert_int_equal(gnutls_x509_crt_check_hostname(crt, "fd7a:115c:a1e0::2"), 1);

        /* all three names, whatever the CSR asked for */
        size = sizeof(buf);
        assert_int_equal(gnutls_x509_crt_get_subject_alt_name2(crt, 0, buf, &size, &type, &critical),
                         GNUTLS_SAN_DNSNAME);
        size = sizeof(buf);
        assert_int_equal(gnutls_x509_crt_get_subject_alt_name2(crt, 2, buf, &size, &type, &critical),
                         GNUTLS_SAN_IPADDRESS);
        assert_int_equal(size, 16);
        size = sizeof(buf);
        assert_int_equal(gnutls_x509_crt_get_basic_constraints(crt, &critical, &type, NULL), 0);
}

static void test_refuse(void **state) {
        Fixture *f = *state;
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key =
                make_key(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t weak = make_key(GNUTLS_PK_RSA, 1024);
        _cleanup_(issued_cert_done) IssuedCert cert = {};
        char error[256] = "";
        char *csr;

        csr = make_csr(key, "backup.mesh.internal", NULL, NULL, 0);
        assert_int_equal(ca_sign_request(f->ca, csr, &nas, NOW, 3600, &cert, error, sizeof(error)), -EPERM);
        assert_non_null(strstr(error, "backup.mesh.internal"));
        free(csr);

        csr = make_csr(key, NULL, "nas.mesh.internal", "\x64\x40\x00\x03", 4);
        assert_int_equal(ca_sign_request(f->ca, csr, &nas, NOW, 3600, &cert, error, sizeof(error)), -EPERM);
        assert_non_null(strstr(error, "100.64.0.3"));
        free(csr);

        csr = make_csr(key, "nas.mesh.internal", "www.example.com", NULL, 0);
        assert_int_equal(ca_sign_request(f->ca, csr, &nas, NOW, 3600, &cert, error, sizeof(error)), -EPERM);
        free(csr);

        csr = make_csr(weak, "nas.mesh.internal", NULL, NULL, 0);
        assert_int_equal(ca_sign_request(f->ca, csr, &nas, NOW, 3600, &cert, error, sizeof(error)), -EPERM);
        assert_non_null(strstr(error, "2048"));
        free(csr);

        assert_int_equal(
                ca_sign_request(
                        f->ca, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
                        &nas, NOW, 3600, &cert, error, sizeof(error)),
                -EBADMSG);

        /* a signature that does not match: one byte of the PEM body flipped */
        csr = make_csr(key, "nas.mesh.internal", NULL, NULL, 0);
        {
                char *p = strstr(csr, "\n-----END") - 6;
                *p = *p == 'A' ? 'B' : 'A';
        }
        assert_int_equal(ca_sign_request(f->ca, csr, &nas, NOW, 3600, &cert, error, sizeof(error)), -EBADMSG);
        free(csr);
        assert_null(cert.pem);
}

/* The name constraints bind the CA key itself: a certificate it signs for a
 * name outside the mesh fails verification. */
static void test_outside_name_fails(void **state) {
        Fixture *f = *state;
        _cleanup_(gnutls_x509_privkey_deinitp)
                gnutls_x509_privkey_t ca_key = NULL,
                                      key = make_key(GNUTLS_PK_ECDSA,
                                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t ca = import_crt(ca_certificate_pem(f->ca)),
                                                             evil = NULL;
        const char *pem = f->pem, *crt;
        size_t len;

        assert_int_equal(ca_pem_split(f->pem, &len, &crt), 0);
        assert_int_equal(gnutls_x509_privkey_init(&ca_key), 0);
        assert_int_equal(gnutls_x509_privkey_import(ca_key,
                                                    &(gnutls_datum_t) { (unsigned char *) pem, (unsigned) len },
                                                    GNUTLS_X509_FMT_PEM),
                         0);

        assert_int_equal(gnutls_x509_crt_init(&evil), 0);
        assert_int_equal(gnutls_x509_crt_set_version(evil, 3), 0);
        assert_int_equal(gnutls_x509_crt_set_serial(evil, "\x01\x02", 2), 0);
        assert_int_equal(gnutls_x509_crt_set_activation_time(evil, time(NULL) - 60), 0);
        assert_int_equal(gnutls_x509_crt_set_expiration_time(evil, time(NULL) + 3600), 0);
        assert_int_equal(gnutls_x509_crt_set_key(evil, key), 0);
        assert_int_equal(gnutls_x509_crt_set_dn_by_oid(evil, GNUTLS_OID_X520_COMMON_NAME, 0, "www.example.com",
                                                       15),
                         0);
        assert_int_equal(gnutls_x509_crt_set_subject_alt_name(evil, GNUTLS_SAN_DNSNAME, "www.example.com", 15,
                                                              GNUTLS_FSAN_SET),
                         0);
        assert_int_equal(gnutls_x509_crt_sign2(evil, ca, ca_key, GNUTLS_DIG_SHA256, 0), 0);

        assert_true(verify(ca_certificate_pem(f->ca), evil, time(NULL)) & GNUTLS_CERT_INVALID);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_check_names),
                cmocka_unit_test_setup_teardown(test_constraints_critical, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sign, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuse, setup, teardown),
                cmocka_unit_test_setup_teardown(test_outside_name_fails, setup, teardown),
        };

        log_setup("test-ca", LOG_TARGET_CONSOLE);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
