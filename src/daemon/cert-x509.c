/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <stdio.h>
#include <time.h>

#include "cert-x509.h"
#include "gnutls-util.h"
#include "log.h"
#include "macro.h"
#include "strv.h"

/* ---- keys and requests -------------------------------------------------------------------- */

static int errno_from_gnutls(int rc, const char *what) {
        log_debug("%s: %s", what, gnutls_strerror(rc));
        return rc == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EIO;
}

static int datum_to_string(gnutls_datum_t *d, char **ret) {
        char *s = strndup((const char *) d->data, d->size);

        explicit_bzero(d->data, d->size);
        gnutls_datum_done(d);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* subjectAltNames: every DNS name, then every IP address (text form). */
static int crq_add_names(gnutls_x509_crq_t crq, char *const *dns, char *const *ips) {
        int rc;

        for (char *const *n = dns; *n; n++)
                if ((rc = gnutls_x509_crq_set_subject_alt_name(crq, GNUTLS_SAN_DNSNAME, *n, strlen(*n),
                                                               GNUTLS_FSAN_APPEND)) < 0)
                        return errno_from_gnutls(rc, "Adding a DNS name to the certificate request");
        for (char *const *a = ips; a && *a; a++) {
                unsigned char bin[16];
                unsigned size;

                if (inet_pton(AF_INET, *a, bin) == 1)
                        size = 4;
                else if (inet_pton(AF_INET6, *a, bin) == 1)
                        size = 16;
                else
                        return -EINVAL;
                if ((rc = gnutls_x509_crq_set_subject_alt_name(crq, GNUTLS_SAN_IPADDRESS, bin, size,
                                                               GNUTLS_FSAN_APPEND)) < 0)
                        return errno_from_gnutls(rc, "Adding an address to the certificate request");
        }
        return 0;
}

int cert_make_request(char *const *dns, char *const *ips, char **ret_key_pem, char **ret_csr_pem) {
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key = NULL;
        _cleanup_(gnutls_x509_crq_deinitp) gnutls_x509_crq_t crq = NULL;
        _cleanup_datum_ gnutls_datum_t key_out = {}, csr_out = {};
        _cleanup_free_ char *csr = NULL;
        char *key_pem = NULL;
        int rc, r;

        if (!dns || !dns[0] || !ret_key_pem || !ret_csr_pem)
                return -EINVAL;

        if ((rc = gnutls_x509_privkey_init(&key)) < 0 ||
            (rc = gnutls_x509_privkey_generate2(key, GNUTLS_PK_ECDSA,
                                                GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0, NULL, 0)) <
                    0)
                return errno_from_gnutls(rc, "Generating the certificate key");

        if ((rc = gnutls_x509_crq_init(&crq)) < 0 || (rc = gnutls_x509_crq_set_version(crq, 1)) < 0 ||
            (rc = gnutls_x509_crq_set_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0, dns[0], strlen(dns[0]))) <
                    0)
                return errno_from_gnutls(rc, "Building the certificate request");
        r = crq_add_names(crq, dns, ips);
        if (r < 0)
                return r;
        if ((rc = gnutls_x509_crq_set_key(crq, key)) < 0 ||
            (rc = gnutls_x509_crq_sign2(crq, key, GNUTLS_DIG_SHA256, 0)) < 0 ||
            (rc = gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_PEM, &csr_out)) < 0)
                return errno_from_gnutls(rc, "Signing the certificate request");
        rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &key_out);
        if (rc < 0)
                return errno_from_gnutls(rc, "Exporting the certificate key");

        r = datum_to_string(&csr_out, &csr);
        if (r >= 0)
                r = datum_to_string(&key_out, &key_pem);
        if (r < 0)
                return r;
        *ret_key_pem = key_pem;
        *ret_csr_pem = TAKE_PTR(csr);
        return 0;
}

/* ---- checking a set ----------------------------------------------------------------------- */

void cert_info_done(CertInfo *i) {
        if (!i)
                return;
        strv_free(i->names);
        free(i->serial);
        *i = (CertInfo) {};
}

static int check_fail(char **ret_error, const char *what, int rc) {
        if (ret_error &&
            asprintf(ret_error, "%s%s%s", what, rc < 0 ? ": " : "", rc < 0 ? gnutls_strerror(rc) : "") < 0)
                *ret_error = NULL;
        return rc == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EBADMSG;
}

static int crt_import(gnutls_x509_crt_t *crt, const char *pem) {
        gnutls_datum_t d = { .data = (unsigned char *) pem, .size = (unsigned) strlen(pem) };
        int rc = gnutls_x509_crt_init(crt);

        return rc < 0 ? rc : gnutls_x509_crt_import(*crt, &d, GNUTLS_X509_FMT_PEM);
}

/* The certificate carries the key's public key. */
static int check_key(gnutls_x509_crt_t crt, const char *key_pem, char **ret_error) {
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key = NULL;
        gnutls_datum_t d = { .data = (unsigned char *) key_pem, .size = (unsigned) strlen(key_pem) };
        unsigned char crt_id[64], key_id[64];
        size_t crt_id_size = sizeof(crt_id), key_id_size = sizeof(key_id);
        int rc;

        if ((rc = gnutls_x509_privkey_init(&key)) < 0 ||
            (rc = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
                return check_fail(ret_error, "the key does not parse", rc);

        if ((rc = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, crt_id, &crt_id_size)) < 0 ||
            (rc = gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, key_id, &key_id_size)) < 0)
                return check_fail(ret_error, "cannot compare certificate and key", rc);
        if (crt_id_size != key_id_size || memcmp(crt_id, key_id, crt_id_size) != 0)
                return check_fail(ret_error, "the certificate is not for this key", 0);
        return 0;
}

/* The subjectAltNames: DNS names as they are, IP addresses in text form. */
static int read_names(gnutls_x509_crt_t crt, char ***names, char **ret_error) {
        for (unsigned seq = 0;; seq++) {
                char buf[256], text[INET6_ADDRSTRLEN];
                size_t size = sizeof(buf) - 1;
                unsigned type = 0, critical = 0;
                int rc, r;

                rc = gnutls_x509_crt_get_subject_alt_name2(crt, seq, buf, &size, &type, &critical);
                if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                        return 0;
                if (rc < 0)
                        return check_fail(ret_error, "cannot read the certificate's names", rc);
                if (type == GNUTLS_SAN_DNSNAME) {
                        buf[size] = 0;
                        r = strv_consume(names, strdup(buf));
                } else if (type == GNUTLS_SAN_IPADDRESS && (size == 4 || size == 16)) {
                        if (!inet_ntop(size == 4 ? AF_INET : AF_INET6, buf, text, sizeof(text)))
                                continue;
                        r = strv_consume(names, strdup(text));
                } else
                        continue;
                if (r < 0)
                        return r;
        }
}

static int read_serial(gnutls_x509_crt_t crt, char **ret, char **ret_error) {
        unsigned char serial[64];
        size_t serial_size = sizeof(serial), skip = 0;
        char *hex;
        int rc;

        if ((rc = gnutls_x509_crt_get_serial(crt, serial, &serial_size)) < 0)
                return check_fail(ret_error, "cannot read the certificate's serial", rc);
        /* DER pads a serial whose top bit is set with a zero byte; the
         * number is the same, and openssl shows it without. */
        while (serial_size - skip > 1 && serial[skip] == 0)
                skip++;
        hex = malloc((serial_size - skip) * 2 + 1);
        if (!hex)
                return -ENOMEM;
        for (size_t i = skip; i < serial_size; i++)
                sprintf(hex + 2 * (i - skip), "%02x", serial[i]);
        hex[(serial_size - skip) * 2] = 0;
        *ret = hex;
        return 0;
}

int cert_check(const char *cert_pem, const char *key_pem, const char *ca_pem, CertInfo *ret, char **ret_error) {
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL, ca = NULL;
        _cleanup_(cert_info_done) CertInfo info = {};
        unsigned status = 0;
        time_t t0, t1;
        int rc, r;

        if (ret_error)
                *ret_error = NULL;
        if (!cert_pem || !key_pem || !ca_pem || !ret)
                return -EINVAL;

        if ((rc = crt_import(&crt, cert_pem)) < 0)
                return check_fail(ret_error, "the certificate does not parse", rc);
        if ((rc = crt_import(&ca, ca_pem)) < 0)
                return check_fail(ret_error, "the CA certificate does not parse", rc);
        r = check_key(crt, key_pem, ret_error);
        if (r < 0)
                return r;

        /* Validity is judged by the caller (an expired set is still ours to renew). */
        rc = gnutls_x509_crt_verify(crt, &ca, 1,
                                    GNUTLS_VERIFY_DISABLE_TIME_CHECKS |
                                            GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS,
                                    &status);
        if (rc < 0 || status != 0)
                return check_fail(ret_error, "the certificate is not signed by the mesh CA", rc < 0 ? rc : 0);

        t0 = gnutls_x509_crt_get_activation_time(crt);
        t1 = gnutls_x509_crt_get_expiration_time(crt);
        if (t0 == (time_t) -1 || t1 == (time_t) -1 || t0 < 0 || t1 <= t0)
                return check_fail(ret_error, "the certificate has no usable validity period", 0);
        info.not_before_usec = (uint64_t) t0 * USEC_PER_SEC;
        info.not_after_usec = (uint64_t) t1 * USEC_PER_SEC;

        r = read_names(crt, &info.names, ret_error);
        if (r < 0)
                return r;
        r = read_serial(crt, &info.serial, ret_error);
        if (r < 0)
                return r;

        *ret = info;
        info = (CertInfo) {};
        return 0;
}

/* ---- the mesh CA -------------------------------------------------------------------------- */

int cert_check_ca(const char *pem, const CertPins *pins, char sha[static CA_SHA256_HEX_LEN + 1],
                  char **ret_error) {
        int r;

        if (!pins->domain) {
                *ret_error = strdup("no netmap applied yet: the mesh's domain and ranges are unknown");
                return -EBADMSG;
        }
        r = ca_check_constraints(pem, pins->domain, pins->ipv4_range, pins->ipv6_range, ret_error);
        if (r < 0)
                return r;
        r = ca_fingerprint_sha256(pem, sha);
        if (r < 0) {
                *ret_error = strdup("the CA is not a PEM certificate");
                return r;
        }
        if (pins->sha256 && !streq(pins->sha256, sha)) {
                if (asprintf(ret_error, "the CA (sha256 %.16s…) is not the one pinned at join (sha256 %.16s…)",
                             sha, pins->sha256) < 0)
                        *ret_error = NULL;
                return -EBADMSG;
        }
        return 0;
}
