/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "gnutls-util.h"
#include "log.h"
#include "tls.h"

#define PEM_MAX (64 * 1024)

static int read_file(const char *dir, const char *name, char **ret, size_t *ret_size) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return log_oom();
        r = read_full_file(path, PEM_MAX, ret, ret_size);
        if (r == -EFBIG)
                return log_error_errno(r, "%s: file too large.", path);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", path);
        return 0;
}

static int pin_from_crt(gnutls_x509_crt_t crt, char **ret) {
        _cleanup_(gnutls_pubkey_deinitp) gnutls_pubkey_t pub = NULL;
        _cleanup_datum_ gnutls_datum_t spki = {};
        uint8_t digest[32];
        char b64[sodium_base64_ENCODED_LEN(sizeof(digest), sodium_base64_VARIANT_ORIGINAL)];
        int rc;

        rc = gnutls_pubkey_init(&pub);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to allocate public key");
        rc = gnutls_pubkey_import_x509(pub, crt, 0);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to read public key of certificate");
        rc = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to encode public key");
        rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, digest);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to hash public key");
        sodium_bin2base64(b64, sizeof(b64), digest, sizeof(digest), sodium_base64_VARIANT_ORIGINAL);

        if (asprintf(ret, "sha256//%s", b64) < 0)
                return log_oom();
        return 0;
}

int tls_pin_from_cert_pem(const char *pem, size_t len, char **ret_pin) {
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        gnutls_datum_t d = { .data = (unsigned char *) pem, .size = (unsigned) len };
        int rc;

        rc = gnutls_x509_crt_init(&crt);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to allocate certificate");
        rc = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to parse certificate");
        return pin_from_crt(crt, ret_pin);
}

int tls_read_files(const char *dir, char **ret_pem) {
        _cleanup_free_ char *key = NULL, *cert = NULL, *path = NULL;
        size_t key_len = 0, cert_len = 0;
        int r;

        if (asprintf(&path, "%s/%s", dir, TLS_CERT_FILE) < 0)
                return log_oom();
        if (access(path, F_OK) < 0 && errno == ENOENT)
                return -ENOENT;
        r = read_file(dir, TLS_KEY_FILE, &key, &key_len);
        if (r >= 0)
                r = read_file(dir, TLS_CERT_FILE, &cert, &cert_len);
        if (r >= 0 && asprintf(ret_pem, "%s%s", key, cert) < 0)
                r = log_oom();
        if (key)
                explicit_bzero(key, key_len);
        return r;
}

int tls_split(const char *pem, char **ret_key_pem, char **ret_cert_pem) {
        const char *crt = strstr(pem, "-----BEGIN CERTIFICATE-----");
        _cleanup_free_ char *key = NULL, *cert = NULL;

        if (!crt || crt == pem)
                return log_error_errno(-EBADMSG, "The stored TLS identity is not a key and a certificate.");
        key = strndup(pem, (size_t) (crt - pem));
        cert = strdup(crt);
        if (!key || !cert) {
                if (key)
                        explicit_bzero(key, strlen(key));
                return log_oom();
        }
        if (ret_key_pem)
                *ret_key_pem = TAKE_PTR(key);
        else
                explicit_bzero(key, strlen(key));
        if (ret_cert_pem)
                *ret_cert_pem = TAKE_PTR(cert);
        return 0;
}

int tls_pin(const char *pem, char **ret_pin) {
        _cleanup_free_ char *cert = NULL;
        int r;

        r = tls_split(pem, NULL, &cert);
        if (r < 0)
                return r;
        return tls_pin_from_cert_pem(cert, strlen(cert), ret_pin);
}

static int crt_set_subject(gnutls_x509_crt_t crt, const char *host) {
        unsigned char addr[16];
        int rc;

        rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, host, strlen(host));
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to set certificate subject");

        /* clients pin the key, but a correct SAN keeps generic tools happy */
        if (inet_pton(AF_INET, host, addr) == 1)
                rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, addr, 4, GNUTLS_FSAN_SET);
        else if (inet_pton(AF_INET6, host, addr) == 1)
                rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, addr, 16, GNUTLS_FSAN_SET);
        else
                rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, host, strlen(host),
                                                          GNUTLS_FSAN_SET);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to set certificate subjectAltName");
        return 0;
}

int tls_generate(const char *host, char **ret_pem) {
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key = NULL;
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        _cleanup_datum_ gnutls_datum_t key_pem = {}, crt_pem = {};
        unsigned char serial[16];
        int rc, r;

        rc = gnutls_x509_privkey_init(&key);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to allocate private key");
        rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                          GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to generate private key");

        rc = gnutls_x509_crt_init(&crt);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to allocate certificate");
        if (getrandom(serial, sizeof(serial), 0) != (ssize_t) sizeof(serial))
                return log_error_errno(negative_errno(), "Failed to get random bytes: %m");
        serial[0] &= 0x7f; /* a positive INTEGER */
        serial[0] |= 0x01; /* and not one with a leading zero byte */

        if ((rc = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
            (rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
            (rc = gnutls_x509_crt_set_activation_time(crt, time(NULL) - 24 * 3600)) < 0 ||
            /* (time_t) -1: "no well-defined expiration date" (RFC 5280 99991231235959Z) */
            (rc = gnutls_x509_crt_set_expiration_time(crt, (time_t) -1)) < 0 ||
            (rc = gnutls_x509_crt_set_key(crt, key)) < 0 ||
            (rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
            (rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
            (rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0)
                return log_gnutls_error(rc, "Failed to fill in certificate");
        r = crt_set_subject(crt, host);
        if (r < 0)
                return r;
        rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to sign certificate");

        rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &key_pem);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to encode private key");
        rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to encode certificate");

        r = asprintf(ret_pem, "%.*s%.*s", (int) key_pem.size, (const char *) key_pem.data, (int) crt_pem.size,
                     (const char *) crt_pem.data);
        explicit_bzero(key_pem.data, key_pem.size);
        return r < 0 ? log_oom() : 0;
}
