/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A throwaway self-signed certificate for the unit tests' TLS servers on
 * loopback, and the pin a client checks it with. */

typedef struct TlsTestCert {
        char cert_pem[8192];
        char key_pem[8192];
        char pin[64]; /* sha256//BASE64 of the SubjectPublicKeyInfo, as curl pins */
} TlsTestCert;

/* Fails the running cmocka test on any error. */
void tls_test_cert_make(TlsTestCert *ret);
