/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "ca.h"
#include "endpoint.h"
#include "fileio.h"
#include "gnutls-util.h"
#include "log.h"

#define PEM_MAX (64 * 1024)
#define KEY_ID_MAX 64

struct CertAuthority {
        gnutls_x509_privkey_t key;
        gnutls_x509_crt_t crt;
        char *crt_pem;
        unsigned char key_id[KEY_ID_MAX]; /* subjectKeyIdentifier, for authorityKeyIdentifier */
        size_t key_id_size;
};

CertAuthority *ca_free(CertAuthority *ca) {
        if (!ca)
                return NULL;
        if (ca->key)
                gnutls_x509_privkey_deinit(ca->key);
        if (ca->crt)
                gnutls_x509_crt_deinit(ca->crt);
        free(ca->crt_pem);
        free(ca);
        return NULL;
}

const char *ca_certificate_pem(const CertAuthority *ca) {
        return ca->crt_pem;
}

void issued_cert_done(IssuedCert *c) {
        free(c->pem);
        *c = (IssuedCert) {};
}

static int random_serial(unsigned char serial[static 16]) {
        if (getrandom(serial, 16, 0) != 16)
                return -EIO;
        serial[0] &= 0x7f; /* a positive INTEGER */
        serial[0] |= 0x01; /* without a leading zero byte */
        return 0;
}

/* A permitted subtree for an IP range is the address followed by its mask
 * (RFC 5280 4.2.1.10): 8 bytes for IPv4, 32 for IPv6. */
static int add_permitted_range(gnutls_x509_name_constraints_t nc, const char *range) {
        union in_addr_union addr;
        unsigned char buf[32] = {};
        uint8_t prefixlen;
        size_t len;
        int family, rc, r;

        r = in_addr_prefix_parse(range, &family, &addr, &prefixlen);
        if (r < 0)
                return log_error_errno(r, "Invalid address range '%s' for the CA's name constraints.", range);
        len = family == AF_INET ? 4 : 16;
        memcpy(buf, &addr, len);
        for (size_t i = 0; i < len; i++) {
                unsigned bits = prefixlen > i * 8 ? MIN(prefixlen - i * 8, 8u) : 0;
                buf[len + i] = (unsigned char) (0xff00 >> bits);
                buf[i] &= buf[len + i];
        }
        rc = gnutls_x509_name_constraints_add_permitted(nc, GNUTLS_SAN_IPADDRESS,
                                                        &(gnutls_datum_t) { buf, (unsigned) (2 * len) });
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to add an IP name constraint");
        return 0;
}

/* What the CA may vouch for: the mesh domain and ranges, nothing else. */
static int make_name_constraints(const char *domain, const char *ipv4_range, const char *ipv6_range,
                                 gnutls_x509_name_constraints_t *ret) {
        _cleanup_(gnutls_x509_name_constraints_deinitp) gnutls_x509_name_constraints_t nc = NULL;
        int rc, r;

        rc = gnutls_x509_name_constraints_init(&nc);
        if (rc >= 0)
                rc = gnutls_x509_name_constraints_add_permitted(
                        nc, GNUTLS_SAN_DNSNAME,
                        &(gnutls_datum_t) { (unsigned char *) domain, (unsigned) strlen(domain) });
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to add the DNS name constraint");
        r = add_permitted_range(nc, ipv4_range);
        if (r < 0)
                return r;
        if (ipv6_range) {
                r = add_permitted_range(nc, ipv6_range);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(nc);
        return 0;
}

/* key || certificate, one PEM text: the two always travel together */
static int pem_concat(const gnutls_datum_t *key, const gnutls_datum_t *crt, char **ret) {
        char *p = malloc((size_t) key->size + crt->size + 1);

        if (!p)
                return log_oom();
        memcpy(p, key->data, key->size);
        memcpy(p + key->size, crt->data, crt->size);
        p[key->size + crt->size] = 0;
        *ret = p;
        return 0;
}

int ca_generate(const char *domain, const char *ipv4_range, const char *ipv6_range, char **ret_pem) {
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key = NULL;
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        _cleanup_(gnutls_x509_name_constraints_deinitp) gnutls_x509_name_constraints_t nc = NULL;
        _cleanup_datum_ gnutls_datum_t key_pem = {}, crt_pem = {};
        _cleanup_free_ char *cn = NULL;
        unsigned char serial[16], key_id[KEY_ID_MAX];
        size_t key_id_size = sizeof(key_id);
        time_t now = time(NULL);
        int rc, r;

        if (asprintf(&cn, "meshd CA for %s", domain) < 0)
                return log_oom();

        rc = gnutls_x509_privkey_init(&key);
        if (rc >= 0)
                rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                                  GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to generate the CA key");
        rc = gnutls_x509_privkey_get_key_id(key, 0, key_id, &key_id_size);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to compute the CA key id");

        r = make_name_constraints(domain, ipv4_range, ipv6_range, &nc);
        if (r < 0)
                return r;

        r = random_serial(serial);
        if (r < 0)
                return log_error_errno(r, "Failed to get random bytes: %m");

        rc = gnutls_x509_crt_init(&crt);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to allocate the CA certificate");
        if ((rc = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
            (rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
            (rc = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
            (rc = gnutls_x509_crt_set_expiration_time(crt, now + (time_t) CA_LIFETIME_SEC)) < 0 ||
            (rc = gnutls_x509_crt_set_key(crt, key)) < 0 ||
            (rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn))) < 0 ||
            /* CA, and it may sign end-entity certificates only */
            (rc = gnutls_x509_crt_set_basic_constraints(crt, 1, 0)) < 0 ||
            (rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN)) < 0 ||
            (rc = gnutls_x509_crt_set_subject_key_id(crt, key_id, key_id_size)) < 0 ||
            (rc = gnutls_x509_crt_set_name_constraints(crt, nc, /* critical= */ 1)) < 0)
                return log_gnutls_error(rc, "Failed to fill in the CA certificate");
        rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to sign the CA certificate");

        rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &key_pem);
        if (rc >= 0)
                rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to encode the CA");
        r = pem_concat(&key_pem, &crt_pem, ret_pem);
        explicit_bzero(key_pem.data, key_pem.size);
        return r;
}

int ca_read_files(const char *dir, char **ret_pem) {
        _cleanup_free_ char *key_path = NULL, *crt_path = NULL, *key_pem = NULL, *crt_pem = NULL;
        size_t key_len = 0, crt_len = 0;
        int r;

        if (asprintf(&key_path, "%s/%s", dir, CA_KEY_FILE) < 0 ||
            asprintf(&crt_path, "%s/%s", dir, CA_CERT_FILE) < 0)
                return log_oom();
        /* the certificate was written last: without it there is no CA */
        r = read_full_file(crt_path, PEM_MAX, &crt_pem, &crt_len);
        if (r == -ENOENT)
                return r;
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", crt_path);
        r = read_full_file(key_path, PEM_MAX, &key_pem, &key_len);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", key_path);
        r = pem_concat(&(gnutls_datum_t) { (unsigned char *) key_pem, (unsigned) key_len },
                       &(gnutls_datum_t) { (unsigned char *) crt_pem, (unsigned) crt_len }, ret_pem);
        explicit_bzero(key_pem, key_len);
        return r;
}

int ca_pem_split(const char *pem, size_t *ret_key_len, const char **ret_crt) {
        const char *crt = strstr(pem, "-----BEGIN CERTIFICATE-----");

        if (!crt || crt == pem)
                return -EBADMSG;
        *ret_key_len = (size_t) (crt - pem);
        *ret_crt = crt;
        return 0;
}

int ca_load(const char *pem, CertAuthority **ret) {
        _cleanup_(ca_freep) CertAuthority *ca = NULL;
        const char *crt_text;
        size_t key_len;
        unsigned critical;
        int rc;

        if (ca_pem_split(pem, &key_len, &crt_text) < 0)
                return log_error_errno(-EBADMSG, "The stored mesh CA is not a key and a certificate.");
        ca = calloc(1, sizeof(*ca));
        if (!ca)
                return log_oom();
        ca->crt_pem = strdup(crt_text);
        if (!ca->crt_pem)
                return log_oom();

        rc = gnutls_x509_crt_init(&ca->crt);
        if (rc >= 0)
                rc = gnutls_x509_crt_import(ca->crt,
                                            &(gnutls_datum_t) { (unsigned char *) ca->crt_pem,
                                                                (unsigned) strlen(ca->crt_pem) },
                                            GNUTLS_X509_FMT_PEM);
        if (rc < 0)
                return log_gnutls_error(rc, "The stored mesh CA certificate");
        rc = gnutls_x509_privkey_init(&ca->key);
        if (rc >= 0)
                rc = gnutls_x509_privkey_import(ca->key,
                                                &(gnutls_datum_t) { (unsigned char *) pem, (unsigned) key_len },
                                                GNUTLS_X509_FMT_PEM);
        if (rc < 0)
                return log_gnutls_error(rc, "The stored mesh CA key");

        ca->key_id_size = sizeof(ca->key_id);
        rc = gnutls_x509_crt_get_subject_key_id(ca->crt, ca->key_id, &ca->key_id_size, &critical);
        if (rc < 0)
                return log_gnutls_error(rc, "CA certificate without subjectKeyIdentifier");

        *ret = TAKE_PTR(ca);
        return 0;
}

static bool dns_name_equal(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);

        if (la > 0 && a[la - 1] == '.')
                la--;
        if (lb > 0 && b[lb - 1] == '.')
                lb--;
        return la == lb && strncasecmp(a, b, la) == 0;
}

static bool ip_equal(const char *text, const char *own) {
        union in_addr_union a, b;
        int fa, fb;

        if (!own || in_addr_parse(text, &fa, &a) < 0 || in_addr_parse(own, &fb, &b) < 0 || fa != fb)
                return false;
        return memcmp(&a, &b, fa == AF_INET ? 4 : 16) == 0;
}

int ca_check_names(const CertIdentity *id, const CertName *names, size_t n, char *error, size_t error_size) {
        _cleanup_free_ char *fqdn = NULL;

        if (asprintf(&fqdn, "%s.%s", id->name, id->domain) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                bool own = names[i].type == CERT_NAME_DNS
                                   ? dns_name_equal(names[i].text, fqdn)
                                   : ip_equal(names[i].text, id->ipv4) || ip_equal(names[i].text, id->ipv6);
                if (!own) {
                        snprintf(error, error_size, "csr: %s '%.100s' is not a name of node %s",
                                 names[i].type == CERT_NAME_DNS ? "DNS name" : "IP address", names[i].text,
                                 id->name);
                        return -EPERM;
                }
        }
        return 0;
}

#define CSR_NAMES_MAX CA_CSR_NAMES_MAX

/* The names a CSR asks for: its subject CNs (an IP literal counts as an IP
 * address, as browsers treat it) and its subjectAltNames. */
static int csr_collect_names(gnutls_x509_crq_t crq, CertName *names, size_t *n, char *error,
                             size_t error_size) {
        *n = 0;
        for (unsigned i = 0;; i++) {
                char buf[256];
                size_t size = sizeof(buf) - 1;
                union in_addr_union addr;
                int family, rc;

                rc = gnutls_x509_crq_get_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, i, 0, buf, &size);
                if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                        break;
                if (rc < 0 || size >= sizeof(buf) || memchr(buf, 0, size)) {
                        snprintf(error, error_size, "csr: subject common name unreadable or too long");
                        return -EBADMSG;
                }
                buf[size] = 0;
                if (*n >= CSR_NAMES_MAX) {
                        snprintf(error, error_size, "csr: more than %i names", CSR_NAMES_MAX);
                        return -EBADMSG;
                }
                names[*n].type = in_addr_parse(buf, &family, &addr) >= 0 ? CERT_NAME_IP : CERT_NAME_DNS;
                memcpy(names[*n].text, buf, size + 1);
                (*n)++;
        }

        for (unsigned seq = 0;; seq++) {
                unsigned char buf[256];
                size_t size = sizeof(buf) - 1;
                unsigned type = 0, critical = 0;
                int rc;

                rc = gnutls_x509_crq_get_subject_alt_name(crq, seq, buf, &size, &type, &critical);
                if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                        break;
                if (rc < 0) {
                        snprintf(error, error_size, "csr: subjectAltName %u unreadable or too long", seq);
                        return -EBADMSG;
                }
                if (*n >= CSR_NAMES_MAX) {
                        snprintf(error, error_size, "csr: more than %i names", CSR_NAMES_MAX);
                        return -EBADMSG;
                }
                if (type == GNUTLS_SAN_DNSNAME) {
                        if (memchr(buf, 0, size)) {
                                snprintf(error, error_size, "csr: DNS name with a NUL byte");
                                return -EBADMSG;
                        }
                        buf[size] = 0;
                        names[*n].type = CERT_NAME_DNS;
                        memcpy(names[*n].text, buf, size + 1);
                } else if (type == GNUTLS_SAN_IPADDRESS && (size == 4 || size == 16)) {
                        names[*n].type = CERT_NAME_IP;
                        if (!inet_ntop(size == 4 ? AF_INET : AF_INET6, buf, names[*n].text,
                                       sizeof(names[*n].text)))
                                return -EBADMSG;
                } else {
                        snprintf(error, error_size,
                                 "csr: subjectAltName %u is neither a DNS name nor an IP address", seq);
                        return -EPERM;
                }
                (*n)++;
        }
        return 0;
}

static int crt_add_san(gnutls_x509_crt_t crt, CertNameType type, const char *text) {
        union in_addr_union addr;
        int family;

        if (type == CERT_NAME_DNS)
                return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, text, strlen(text),
                                                            GNUTLS_FSAN_APPEND);
        if (in_addr_parse(text, &family, &addr) < 0)
                return GNUTLS_E_INVALID_REQUEST;
        return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, &addr,
                                                    family == AF_INET ? 4 : 16, GNUTLS_FSAN_APPEND);
}

/* The request's key, checked: a self-signature that verifies, a strong
 * enough algorithm; *usage gains key encipherment for RSA. */
static int csr_read_key(const char *csr_pem, gnutls_x509_crq_t *ret_crq, gnutls_pubkey_t *ret_pub,
                        unsigned *usage, char *error, size_t error_size) {
        _cleanup_(gnutls_x509_crq_deinitp) gnutls_x509_crq_t crq = NULL;
        _cleanup_(gnutls_pubkey_deinitp) gnutls_pubkey_t pub = NULL;
        unsigned bits = 0;
        int algorithm, rc;

        rc = gnutls_x509_crq_init(&crq);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to allocate a certificate request");
        rc = gnutls_x509_crq_import(crq,
                                    &(gnutls_datum_t) { (unsigned char *) csr_pem, (unsigned) strlen(csr_pem) },
                                    GNUTLS_X509_FMT_PEM);
        if (rc < 0) {
                snprintf(error, error_size, "csr: not a PKCS#10 request (%s)", gnutls_strerror(rc));
                return -EBADMSG;
        }
        rc = gnutls_x509_crq_verify(crq, 0);
        if (rc < 0) {
                snprintf(error, error_size, "csr: self-signature does not verify");
                return -EBADMSG;
        }

        rc = gnutls_pubkey_init(&pub);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to allocate a public key");
        rc = gnutls_pubkey_import_x509_crq(pub, crq, 0);
        if (rc < 0) {
                snprintf(error, error_size, "csr: public key unreadable");
                return -EBADMSG;
        }
        algorithm = gnutls_pubkey_get_pk_algorithm(pub, &bits);
        if ((algorithm != GNUTLS_PK_RSA && algorithm != GNUTLS_PK_ECDSA &&
             algorithm != GNUTLS_PK_EDDSA_ED25519) ||
            gnutls_pk_bits_to_sec_param(algorithm, bits) < GNUTLS_SEC_PARAM_MEDIUM) {
                snprintf(error, error_size, "csr: key must be ECDSA, Ed25519 or RSA of at least 2048 bits");
                return -EPERM;
        }
        if (algorithm == GNUTLS_PK_RSA)
                *usage |= GNUTLS_KEY_KEY_ENCIPHERMENT;

        *ret_crq = TAKE_PTR(crq);
        *ret_pub = TAKE_PTR(pub);
        return 0;
}

/* A leaf for FQDN and the node's addresses, nothing the request asked
 * for beyond that. Returns a GnuTLS error code. */
static int crt_fill(const CertAuthority *ca, gnutls_x509_crt_t crt, gnutls_pubkey_t pub, const CertIdentity *id,
                    const char *fqdn, const unsigned char serial[16], int64_t not_before, int64_t not_after,
                    unsigned usage, const unsigned char *key_id, size_t key_id_size) {
        int rc;

        if ((rc = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
            (rc = gnutls_x509_crt_set_serial(crt, serial, 16)) < 0 ||
            (rc = gnutls_x509_crt_set_activation_time(crt, (time_t) not_before)) < 0 ||
            (rc = gnutls_x509_crt_set_expiration_time(crt, (time_t) not_after)) < 0 ||
            (rc = gnutls_x509_crt_set_pubkey(crt, pub)) < 0 ||
            (rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, fqdn, strlen(fqdn))) < 0 ||
            (rc = crt_add_san(crt, CERT_NAME_DNS, fqdn)) < 0 ||
            (rc = crt_add_san(crt, CERT_NAME_IP, id->ipv4)) < 0 ||
            (id->ipv6 && (rc = crt_add_san(crt, CERT_NAME_IP, id->ipv6)) < 0) ||
            (rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
            (rc = gnutls_x509_crt_set_key_usage(crt, usage)) < 0 ||
            (rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
            (rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0)) < 0 ||
            (rc = gnutls_x509_crt_set_subject_key_id(crt, key_id, key_id_size)) < 0 ||
            (rc = gnutls_x509_crt_set_authority_key_id(crt, ca->key_id, ca->key_id_size)) < 0)
                return rc;
        return 0;
}

int ca_sign_request(CertAuthority *ca, const char *csr_pem, const CertIdentity *id, int64_t now,
                    uint64_t lifetime_sec, IssuedCert *ret, char *error, size_t error_size) {
        _cleanup_(gnutls_x509_crq_deinitp) gnutls_x509_crq_t crq = NULL;
        _cleanup_(gnutls_pubkey_deinitp) gnutls_pubkey_t pub = NULL;
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        _cleanup_datum_ gnutls_datum_t pem = {};
        _cleanup_free_ char *fqdn = NULL;
        CertName names[CSR_NAMES_MAX];
        unsigned char serial[16], key_id[KEY_ID_MAX];
        size_t n_names, key_id_size = sizeof(key_id);
        unsigned usage = GNUTLS_KEY_DIGITAL_SIGNATURE;
        int64_t not_before = now - CERT_BACKDATE_SEC, not_after = now + (int64_t) lifetime_sec;
        int rc, r;

        if (asprintf(&fqdn, "%s.%s", id->name, id->domain) < 0)
                return -ENOMEM;

        r = csr_read_key(csr_pem, &crq, &pub, &usage, error, error_size);
        if (r < 0)
                return r;
        r = csr_collect_names(crq, names, &n_names, error, error_size);
        if (r < 0)
                return r;
        r = ca_check_names(id, names, n_names, error, error_size);
        if (r < 0)
                return r;

        rc = gnutls_pubkey_get_key_id(pub, 0, key_id, &key_id_size);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to compute a key id");
        if (random_serial(serial) < 0)
                return log_error_errno(-EIO, "Failed to get random bytes.");

        rc = gnutls_x509_crt_init(&crt);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to allocate a certificate");
        rc = crt_fill(ca, crt, pub, id, fqdn, serial, not_before, not_after, usage, key_id, key_id_size);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to fill in a certificate");
        rc = gnutls_x509_crt_sign2(crt, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to sign a certificate");
        rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem);
        if (rc < 0)
                return log_gnutls_error(rc, "Failed to encode a certificate");

        ret->pem = strndup((const char *) pem.data, pem.size);
        if (!ret->pem)
                return -ENOMEM;
        ret->not_before = not_before;
        ret->not_after = not_after;
        return 0;
}

int ca_read_request(const char *csr_pem, CertName names[static CA_CSR_NAMES_MAX], size_t *ret_n,
                    char key_id[static 65], char *error, size_t error_size) {
        _cleanup_(gnutls_x509_crq_deinitp) gnutls_x509_crq_t crq = NULL;
        _cleanup_(gnutls_pubkey_deinitp) gnutls_pubkey_t pub = NULL;
        unsigned char id[32];
        size_t id_size = sizeof(id);
        unsigned usage = 0;
        int rc, r;

        r = csr_read_key(csr_pem, &crq, &pub, &usage, error, error_size);
        if (r < 0)
                return r;
        r = csr_collect_names(crq, names, ret_n, error, error_size);
        if (r < 0)
                return r;
        rc = gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, id, &id_size);
        if (rc < 0 || id_size != sizeof(id))
                return log_gnutls_error(rc < 0 ? rc : GNUTLS_E_INTERNAL_ERROR, "Failed to compute a key id");
        for (size_t i = 0; i < sizeof(id); i++)
                sprintf(key_id + 2 * i, "%02x", id[i]);
        return 0;
}
