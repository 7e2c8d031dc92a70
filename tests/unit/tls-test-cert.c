/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by test-control-client and test-relay-client: both run a real TLS
 * server on loopback (libmicrohttpd, a GnuTLS thread) that the client under
 * test pins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>
#include <cmocka.h>

#include "tls-test-cert.h"

void tls_test_cert_make(TlsTestCert *ret) {
        gnutls_x509_privkey_t key = NULL;
        gnutls_x509_crt_t crt = NULL;
        gnutls_datum_t d = {};
        unsigned char id[32];
        size_t id_size = sizeof(id);
        time_t now = time(NULL);

        assert_int_equal(gnutls_x509_privkey_init(&key), 0);
        assert_int_equal(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                                      GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                         0);
        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
        assert_int_equal(gnutls_x509_crt_set_serial(crt, "\x01", 1), 0);
        assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now - 3600), 0);
        assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, now + 86400), 0);
        assert_int_equal(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "localhost", 9), 0);
        assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
        assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);

        assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d), 0);
        assert_true(d.size < sizeof(ret->cert_pem));
        memcpy(ret->cert_pem, d.data, d.size);
        gnutls_free(d.data);
        assert_int_equal(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &d), 0);
        assert_true(d.size < sizeof(ret->key_pem));
        memcpy(ret->key_pem, d.data, d.size);
        gnutls_free(d.data);

        /* The SHA-256 of the DER SubjectPublicKeyInfo: what curl pins. */
        assert_int_equal(gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, id, &id_size), 0);
        assert_int_equal(id_size, 32);
        strcpy(ret->pin, "sha256//");
        sodium_bin2base64(ret->pin + 8, sizeof(ret->pin) - 8, id, id_size, sodium_base64_VARIANT_ORIGINAL);

        gnutls_x509_crt_deinit(crt);
        gnutls_x509_privkey_deinit(key);
}
