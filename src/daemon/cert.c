/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "ca-check.h"
#include "cert.h"
#include "control-client.h"
#include "fileio.h"
#include "gnutls-util.h"
#include "log.h"
#include "messages.h"
#include "strv.h"
#include "time-util.h"
#include "varlink.h"

extern char **environ;

/* A PEM certificate or key is a few kB; this is generous. */
#define CERT_PEM_MAX (256U * 1024U)
#define CERT_SET_PREFIX ".certs."

struct CertKeeper {
        sd_event *event;
        char *directory;
        char *parent;           /* where new sets are built: beside directory, same file system */
        char *token;
        char *reload_command;
        ControlClient *control; /* our own: its lifetime is ours, whatever the poll loop does */

        /* from the netmap */
        char *fqdn;
        char *domain;
        char *ipv4;
        char *ipv6;
        char **requested_names; /* names of the last request that got a certificate */

        /* The set in the directory. `exists` also when it is unusable: it was
         * asked for once, so it is renewed. */
        bool exists;
        char *cert_pem, *key_pem, *ca_pem; /* NULL when unusable */
        CertInfo info;
        uint64_t obtained_usec;         /* REALTIME: when we wrote it */

        /* POST /v1/cert in flight */
        bool requesting;
        char *pending_key_pem;
        char **pending_names;
        ApiCall **waiters;
        size_t n_waiters;
        bool renew_when_named;          /* a renewal waits for the netmap */

        unsigned failures;
        sd_event_source *timer;

        /* GET /v1/ca */
        char *ca_cache;                 /* when no set is there */
        char *ca_domain;
        bool ca_requesting;
        ApiCall **ca_waiters;
        size_t n_ca_waiters;

        pid_t reload_pid;
        sd_event_source *reload_source;
        bool reload_again;

        /* pinned at join (netmap-trust.h) */
        char *pin_domain, *pin_ipv4_range, *pin_ipv6_range, *pin_ca_sha256;
        void (*ca_pinned)(const char *sha256_hex, void *userdata);
        void *userdata;
};

static void erase_string(char **s) {
        if (*s) {
                erase_and_free(*s, strlen(*s));
                *s = NULL;
        }
}

/* ---- policy ------------------------------------------------------------------------------- */

uint64_t cert_renewal_time(uint64_t not_before, uint64_t not_after, uint64_t obtained) {
        uint64_t start = not_before;

        if (obtained > start && obtained < not_after)
                start = obtained;
        if (not_after <= start)
                return 0;
        return not_after - (not_after - start) / 3;
}

uint64_t cert_retry_delay(uint64_t now, uint64_t not_after, unsigned failures) {
        uint64_t delay = CERT_RETRY_MIN_USEC;

        for (unsigned i = 1; i < failures && delay < CERT_RETRY_MAX_USEC; i++)
                delay *= 2;
        delay = MIN(delay, CERT_RETRY_MAX_USEC);
        /* Still valid: try again well before it runs out. Expired: it is
         * useless anyway, plain backoff. */
        if (not_after > now)
                delay = MIN(delay, MAX((not_after - now) / 2, CERT_RETRY_MIN_USEC));
        return delay;
}

/* ---- keys, requests, certificates --------------------------------------------------------- */

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
                                                GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0, NULL, 0)) < 0)
                return errno_from_gnutls(rc, "Generating the certificate key");

        if ((rc = gnutls_x509_crq_init(&crq)) < 0 ||
            (rc = gnutls_x509_crq_set_version(crq, 1)) < 0 ||
            (rc = gnutls_x509_crq_set_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0, dns[0], strlen(dns[0]))) < 0)
                return errno_from_gnutls(rc, "Building the certificate request");
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

void cert_info_done(CertInfo *i) {
        if (!i)
                return;
        strv_free(i->names);
        free(i->serial);
        *i = (CertInfo) {};
}

static int strv_push(char ***l, char *s) {
        size_t n = strv_length(*l);
        char **t;

        if (!s)
                return -ENOMEM;
        t = realloc(*l, (n + 2) * sizeof(char *));
        if (!t) {
                free(s);
                return -ENOMEM;
        }
        t[n] = s;
        t[n + 1] = NULL;
        *l = t;
        return 0;
}

static int check_fail(char **ret_error, const char *what, int rc) {
        if (ret_error && asprintf(ret_error, "%s%s%s", what, rc < 0 ? ": " : "",
                                  rc < 0 ? gnutls_strerror(rc) : "") < 0)
                *ret_error = NULL;
        return rc == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EBADMSG;
}

static int crt_import(gnutls_x509_crt_t *crt, const char *pem) {
        gnutls_datum_t d = { .data = (unsigned char *) pem, .size = (unsigned) strlen(pem) };
        int rc = gnutls_x509_crt_init(crt);

        return rc < 0 ? rc : gnutls_x509_crt_import(*crt, &d, GNUTLS_X509_FMT_PEM);
}

int cert_check(const char *cert_pem, const char *key_pem, const char *ca_pem, CertInfo *ret, char **ret_error) {
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL, ca = NULL;
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key = NULL;
        _cleanup_(cert_info_done) CertInfo info = {};
        gnutls_datum_t d;
        unsigned char crt_id[64], key_id[64], serial[64];
        size_t crt_id_size = sizeof(crt_id), key_id_size = sizeof(key_id), serial_size = sizeof(serial);
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
        d = (gnutls_datum_t) { .data = (unsigned char *) key_pem, .size = (unsigned) strlen(key_pem) };
        if ((rc = gnutls_x509_privkey_init(&key)) < 0 ||
            (rc = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
                return check_fail(ret_error, "the key does not parse", rc);

        if ((rc = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, crt_id, &crt_id_size)) < 0 ||
            (rc = gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, key_id, &key_id_size)) < 0)
                return check_fail(ret_error, "cannot compare certificate and key", rc);
        if (crt_id_size != key_id_size || memcmp(crt_id, key_id, crt_id_size) != 0)
                return check_fail(ret_error, "the certificate is not for this key", 0);

        /* Validity is judged by the caller (an expired set is still ours to renew). */
        rc = gnutls_x509_crt_verify(crt, &ca, 1,
                                    GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS,
                                    &status);
        if (rc < 0 || status != 0)
                return check_fail(ret_error, "the certificate is not signed by the mesh CA", rc < 0 ? rc : 0);

        t0 = gnutls_x509_crt_get_activation_time(crt);
        t1 = gnutls_x509_crt_get_expiration_time(crt);
        if (t0 == (time_t) -1 || t1 == (time_t) -1 || t0 < 0 || t1 <= t0)
                return check_fail(ret_error, "the certificate has no usable validity period", 0);
        info.not_before_usec = (uint64_t) t0 * USEC_PER_SEC;
        info.not_after_usec = (uint64_t) t1 * USEC_PER_SEC;

        for (unsigned seq = 0;; seq++) {
                char buf[256], text[INET6_ADDRSTRLEN];
                size_t size = sizeof(buf) - 1;
                unsigned type = 0, critical = 0;

                rc = gnutls_x509_crt_get_subject_alt_name2(crt, seq, buf, &size, &type, &critical);
                if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                        break;
                if (rc < 0)
                        return check_fail(ret_error, "cannot read the certificate's names", rc);
                if (type == GNUTLS_SAN_DNSNAME) {
                        buf[size] = 0;
                        r = strv_push(&info.names, strdup(buf));
                } else if (type == GNUTLS_SAN_IPADDRESS && (size == 4 || size == 16)) {
                        if (!inet_ntop(size == 4 ? AF_INET : AF_INET6, buf, text, sizeof(text)))
                                continue;
                        r = strv_push(&info.names, strdup(text));
                } else
                        continue;
                if (r < 0)
                        return r;
        }

        if ((rc = gnutls_x509_crt_get_serial(crt, serial, &serial_size)) < 0)
                return check_fail(ret_error, "cannot read the certificate's serial", rc);
        /* DER pads a serial whose top bit is set with a zero byte; the
         * number is the same, and openssl shows it without. */
        size_t skip = 0;
        while (serial_size - skip > 1 && serial[skip] == 0)
                skip++;
        info.serial = malloc((serial_size - skip) * 2 + 1);
        if (!info.serial)
                return -ENOMEM;
        for (size_t i = skip; i < serial_size; i++)
                sprintf(info.serial + 2 * (i - skip), "%02x", serial[i]);
        info.serial[(serial_size - skip) * 2] = 0;

        *ret = info;
        info = (CertInfo) {};
        return 0;
}

/* ---- the directory ------------------------------------------------------------------------ */

static const char *const set_files[] = { CERT_CA_FILE, CERT_FILE, CERT_FULLCHAIN_FILE, CERT_KEY_FILE };

/* Removes a set directory that is not (or no longer) the live one: flat, files only. */
static int remove_set_directory(const char *path) {
        _cleanup_close_ int fd = -EBADF;
        DIR *d;
        struct dirent *de;

        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        d = fdopendir(fd);
        if (!d)
                return -errno;
        fd = -EBADF; /* owned by d now */
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        return rmdir(path) < 0 ? -errno : 0;
}

/* A crash between building a set and swapping it in leaves the new (or
 * the old) set under a temporary name. */
static void remove_stale_sets(const char *parent) {
        DIR *d = opendir(parent);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                _cleanup_free_ char *path = NULL;

                if (strncmp(de->d_name, CERT_SET_PREFIX, strlen(CERT_SET_PREFIX)) != 0)
                        continue;
                if (asprintf(&path, "%s/%s", parent, de->d_name) < 0)
                        break;
                if (remove_set_directory(path) >= 0)
                        log_debug("Removed unfinished certificate set %s.", path);
        }
        closedir(d);
}

static int write_in(const char *dir, const char *name, const char *data, size_t len) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        return write_file_atomic(path, data, len, 0600);
}

static void fsync_path(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd >= 0)
                (void) fsync(fd);
}

static void set_directory_removep(char **path) {
        if (*path) {
                (void) remove_set_directory(*path);
                free(*path);
        }
}

/* Where the file system cannot exchange (overlayfs may say EXDEV for a
 * directory from a lower layer): file by file, key last. */
static int move_files_one_by_one(const char *from_dir, const char *to_dir) {
        log_debug("Cannot exchange %s atomically, replacing the files one by one.", to_dir);
        for (size_t i = 0; i < ELEMENTSOF(set_files); i++) {
                _cleanup_free_ char *from = NULL, *to = NULL;

                if (asprintf(&from, "%s/%s", from_dir, set_files[i]) < 0 ||
                    asprintf(&to, "%s/%s", to_dir, set_files[i]) < 0)
                        return -ENOMEM;
                if (rename(from, to) < 0)
                        return -errno;
        }
        fsync_path(to_dir);
        return 0;
}

/* Builds the set in a new directory beside k->directory, then swaps the two
 * in one rename: key and certificate change together. */
static int cert_keeper_store(CertKeeper *k, const char *cert, const char *key, const char *ca) {
        /* Whatever it names at the end goes: the new set after a failure,
         * the old one after the exchange. */
        _cleanup_(set_directory_removep) char *tmp = NULL;
        _cleanup_free_ char *fullchain = NULL;
        size_t cert_len = strlen(cert);
        int r;

        if (asprintf(&fullchain, "%s%s%s", cert, cert_len > 0 && cert[cert_len - 1] != '\n' ? "\n" : "", ca) < 0)
                return -ENOMEM;
        if (asprintf(&tmp, "%s/" CERT_SET_PREFIX "XXXXXX", k->parent) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        if (!mkdtemp(tmp)) /* mode 0700 */
                return -errno;

        r = write_in(tmp, CERT_KEY_FILE, key, strlen(key));
        if (r >= 0)
                r = write_in(tmp, CERT_FILE, cert, cert_len);
        if (r >= 0)
                r = write_in(tmp, CERT_CA_FILE, ca, strlen(ca));
        if (r >= 0)
                r = write_in(tmp, CERT_FULLCHAIN_FILE, fullchain, strlen(fullchain));
        if (r < 0)
                return r;
        fsync_path(tmp);

        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, k->directory, RENAME_EXCHANGE) < 0) {
                if (errno == ENOENT) {
                        /* The first set. */
                        if (rename(tmp, k->directory) < 0)
                                return -errno;
                } else if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EXDEV) {
                        r = move_files_one_by_one(tmp, k->directory);
                        if (r < 0)
                                return r;
                } else
                        return -errno;
        }
        fsync_path(k->parent);
        return 0;
}

static int read_in(const char *dir, const char *name, char **ret) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        return read_full_file(path, CERT_PEM_MAX, ret, NULL);
}

static void cert_keeper_drop_set(CertKeeper *k) {
        free(k->cert_pem);
        free(k->ca_pem);
        erase_string(&k->key_pem);
        k->cert_pem = k->ca_pem = NULL;
        cert_info_done(&k->info);
}

static int cert_keeper_load(CertKeeper *k) {
        _cleanup_free_ char *cert = NULL, *ca = NULL, *error = NULL, *path = NULL;
        char *key = NULL;
        CertInfo info = {};
        struct stat st;
        int r;

        r = read_in(k->directory, CERT_FILE, &cert);
        if (r == -ENOENT)
                return 0; /* never asked for */
        k->exists = true;
        if (r >= 0)
                r = read_in(k->directory, CERT_KEY_FILE, &key);
        if (r >= 0)
                r = read_in(k->directory, CERT_CA_FILE, &ca);
        if (r < 0)
                return log_warning_errno(r, "Cannot read the certificate in %s, requesting a new one: %m",
                                         k->directory);
        r = cert_check(cert, key, ca, &info, &error);
        if (r < 0) {
                erase_and_free(key, strlen(key));
                return log_warning_errno(r, "Certificate in %s is unusable (%s), requesting a new one.",
                                         k->directory, strna(error));
        }

        k->cert_pem = TAKE_PTR(cert);
        k->key_pem = key;
        k->ca_pem = TAKE_PTR(ca);
        k->info = info;
        /* When we wrote it: the files are written only when a new one comes. */
        if (asprintf(&path, "%s/%s", k->directory, CERT_FILE) >= 0 && stat(path, &st) >= 0)
                k->obtained_usec = (uint64_t) st.st_mtim.tv_sec * USEC_PER_SEC +
                                   (uint64_t) st.st_mtim.tv_nsec / NSEC_PER_USEC;
        log_info("Loaded certificate for %s (serial %s) from %s.", strna(info.names ? info.names[0] : NULL),
                 info.serial, k->directory);
        return 0;
}

/* ---- API replies -------------------------------------------------------------------------- */

static int calls_add(ApiCall ***l, size_t *n, ApiCall *call) {
        ApiCall **t = realloc(*l, (*n + 1) * sizeof(ApiCall *));

        if (!t)
                return -ENOMEM;
        *l = t;
        t[(*n)++] = api_call_ref(call);
        return 0;
}

/* Detaches the list first: a reply may run code that adds new calls. */
static void calls_reply_error(ApiCall ***l, size_t *n, const char *error, const char *message) {
        ApiCall **calls = TAKE_PTR(*l);
        size_t count = *n;

        *n = 0;
        for (size_t i = 0; i < count; i++) {
                (void) api_call_reply_errorf(calls[i], error, "%s", message);
                api_call_unref(calls[i]);
        }
        free(calls);
}

static cJSON *cert_keeper_certificate_json(CertKeeper *k) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        cJSON *names;

        if (!o || !k->cert_pem ||
            !cJSON_AddStringToObject(o, "certificate", k->cert_pem) ||
            !cJSON_AddStringToObject(o, "key", k->key_pem) ||
            !cJSON_AddStringToObject(o, "ca", k->ca_pem) ||
            !cJSON_AddNumberToObject(o, "not_before_usec", (double) k->info.not_before_usec) ||
            !cJSON_AddNumberToObject(o, "not_after_usec", (double) k->info.not_after_usec) ||
            !cJSON_AddStringToObject(o, "directory", k->directory) ||
            !(names = cJSON_AddArrayToObject(o, "names")))
                return NULL;
        for (char **n = k->info.names; n && *n; n++) {
                cJSON *s = cJSON_CreateString(*n);
                if (!s || !cJSON_AddItemToArray(names, s)) {
                        cJSON_Delete(s);
                        return NULL;
                }
        }
        return TAKE_PTR(o);
}

static void cert_keeper_reply_certificate(CertKeeper *k) {
        ApiCall **calls = TAKE_PTR(k->waiters);
        size_t count = k->n_waiters;

        k->n_waiters = 0;
        for (size_t i = 0; i < count; i++) {
                cJSON *o = cert_keeper_certificate_json(k);
                if (o)
                        (void) api_call_reply(calls[i], o);
                else
                        (void) api_call_reply_errorf(calls[i], "org.varlink.service.InternalError", "out of memory");
                api_call_unref(calls[i]);
        }
        free(calls);
}

static const char *error_name_from_control(int error) {
        switch (error) {
        case -EPERM:
        case -EACCES:
                return "io.meshd.CertificateRefused";
        case -EKEYREJECTED:
                return "io.meshd.PinMismatch";
        case -EBADMSG:
                return "io.meshd.ProtocolError";
        case -EHOSTUNREACH:
        case -ETIMEDOUT:
                return "io.meshd.ControlUnreachable";
        default:
                return "org.varlink.service.InternalError";
        }
}

/* ---- renewal ------------------------------------------------------------------------------ */

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);
static bool ca_is_usable(CertKeeper *k, const char *pem, char **ret_error);

static void format_realtime(uint64_t usec, char *buf, size_t size) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, size, "@%" PRIu64, usec / USEC_PER_SEC);
}

static void cert_keeper_schedule(CertKeeper *k) {
        uint64_t now = clock_usec(CLOCK_REALTIME), not_after = k->cert_pem ? k->info.not_after_usec : 0, at;
        int r;

        if (!k->exists) {
                if (k->timer)
                        (void) sd_event_source_set_enabled(k->timer, SD_EVENT_OFF);
                return;
        }
        if (k->failures > 0)
                at = now + cert_retry_delay(now, not_after, k->failures);
        else if (k->cert_pem)
                at = cert_renewal_time(k->info.not_before_usec, not_after, k->obtained_usec);
        else
                at = now; /* unusable set: at once */
        at = MAX(at, now);

        if (k->timer) {
                r = sd_event_source_set_time(k->timer, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(k->timer, SD_EVENT_ONESHOT);
        } else {
                /* REALTIME: certificate times are wall-clock times, and a
                 * machine that slept past the renewal time renews on waking. */
                r = sd_event_add_time(k->event, &k->timer, CLOCK_REALTIME, at, 0, on_timer, k);
                if (r >= 0)
                        (void) sd_event_source_set_description(k->timer, "cert-renewal");
        }
        if (r < 0) {
                log_error_errno(r, "Failed to schedule certificate renewal, it will not be renewed: %m");
                return;
        }
        log_debug("Certificate renewal in %.1fs.", (double) (at - now) / (double) USEC_PER_SEC);
}

static void cert_keeper_request_failed(CertKeeper *k, const char *error_name, const char *message) {
        calls_reply_error(&k->waiters, &k->n_waiters, error_name, message);
        /* Renewal goes on only for a certificate once obtained; a first
         * request is the caller's to repeat. */
        k->failures++;
        cert_keeper_schedule(k);
}

static void on_cert_reply(ControlClient *c, int error, const char *message, const char *body, size_t len,
                          void *userdata);

static int cert_keeper_renew(CertKeeper *k) {
        _cleanup_strv_free_ char **dns = NULL, **ips = NULL, **names = NULL;
        _cleanup_free_ char *csr = NULL;
        char *key = NULL;
        int r;

        if (k->requesting)
                return 0;
        if (!k->fqdn) {
                k->renew_when_named = true;
                log_debug("Certificate renewal waits for the netmap.");
                return 0;
        }

        if (strv_push(&dns, strdup(k->fqdn)) < 0 || strv_push(&ips, strdup(k->ipv4)) < 0 ||
            (k->ipv6 && strv_push(&ips, strdup(k->ipv6)) < 0) || strv_push(&names, strdup(k->fqdn)) < 0 ||
            strv_push(&names, strdup(k->ipv4)) < 0 || (k->ipv6 && strv_push(&names, strdup(k->ipv6)) < 0))
                return -ENOMEM;

        r = cert_make_request(dns, ips, &key, &csr);
        if (r < 0)
                return log_error_errno(r, "Failed to make a key and certificate request: %m");
        r = control_client_post_cert(k->control, k->token, csr, on_cert_reply, k);
        if (r < 0) {
                erase_and_free(key, strlen(key));
                return log_error_errno(r, "Failed to send the certificate request: %m");
        }

        k->requesting = true;
        erase_string(&k->pending_key_pem);
        k->pending_key_pem = key;
        strv_free(k->pending_names);
        k->pending_names = TAKE_PTR(names);
        log_info("Requesting a certificate for %s from %s.", k->fqdn, control_client_get_url(k->control));
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        CertKeeper *k = userdata;
        int r;

        r = cert_keeper_renew(k);
        if (r < 0)
                cert_keeper_request_failed(k, "org.varlink.service.InternalError", "cannot make a certificate request");
        return 0;
}

static void cert_keeper_run_reload(CertKeeper *k);
static void cert_keeper_write_stamp(CertKeeper *k);

static void on_cert_reply(ControlClient *c, int error, const char *message, const char *body, size_t len,
                          void *userdata) {
        CertKeeper *k = userdata;
        _cleanup_json_ cJSON *o = NULL;
        _cleanup_free_ char *check_error = NULL, *text = NULL;
        _cleanup_(erase_string) char *key = TAKE_PTR(k->pending_key_pem);
        _cleanup_strv_free_ char **names = TAKE_PTR(k->pending_names);
        _cleanup_(cert_info_done) CertInfo info = {};
        const cJSON *cert, *ca;
        char until[64];
        uint64_t now = clock_usec(CLOCK_REALTIME);
        int r;

        k->requesting = false;

        if (error < 0) {
                char valid[128] = "";

                if (k->cert_pem) {
                        format_realtime(k->info.not_after_usec, until, sizeof(until));
                        snprintf(valid, sizeof(valid), " (valid until %s)", until);
                }
                if (error == -EPERM || error == -EACCES)
                        log_full_errno_fields(LOG_WARNING, error,
                                              &((LogFields) { .message_id = MESSAGE_CERT_REFUSED }),
                                              "Control server refused a certificate for %s: %s. Keeping the "
                                              "files in %s%s.",
                                              strna(k->fqdn), strna(message), k->directory,
                                              k->cert_pem ? valid : "");
                else
                        log_warning_errno(error, "Requesting a certificate for %s failed: %s", strna(k->fqdn),
                                          strna(message));
                cert_keeper_request_failed(k, error_name_from_control(error), strna(message));
                return;
        }

        o = cJSON_ParseWithLength(body, len);
        cert = cJSON_GetObjectItemCaseSensitive(o, "certificate");
        ca = cJSON_GetObjectItemCaseSensitive(o, "ca");
        if (!cJSON_IsString(cert) || !cJSON_IsString(ca)) {
                log_warning("Control server's certificate reply lacks certificate or ca.");
                cert_keeper_request_failed(k, "io.meshd.ProtocolError", "reply lacks certificate or ca");
                return;
        }
        if (!ca_is_usable(k, ca->valuestring, &check_error))
                r = -EBADMSG;
        else
                r = cert_check(cert->valuestring, key, ca->valuestring, &info, &check_error);
        if (r >= 0 && info.not_after_usec <= now) {
                r = -EBADMSG;
                free(check_error);
                check_error = strdup("the certificate has already expired (clock skew?)");
        }
        if (r < 0) {
                if (asprintf(&text, "unusable certificate from the control server: %s", strna(check_error)) < 0)
                        text = NULL;
                log_warning("Control server sent an unusable certificate: %s", strna(check_error));
                cert_keeper_request_failed(k, "io.meshd.ProtocolError", strna(text));
                return;
        }

        r = cert_keeper_store(k, cert->valuestring, key, ca->valuestring);
        if (r < 0) {
                log_error_errno(r, "Failed to write the new certificate to %s, keeping the old one: %m",
                                k->directory);
                cert_keeper_request_failed(k, "org.varlink.service.InternalError",
                                           "cannot write the certificate directory");
                return;
        }

        cert_keeper_drop_set(k);
        k->cert_pem = strdup(cert->valuestring);
        k->ca_pem = strdup(ca->valuestring);
        k->key_pem = TAKE_PTR(key);
        k->info = info;
        info = (CertInfo) {};
        k->obtained_usec = now;
        k->exists = true;
        strv_free(k->requested_names);
        k->requested_names = TAKE_PTR(names);
        if (!k->cert_pem || !k->ca_pem) {
                cert_keeper_drop_set(k);
                cert_keeper_request_failed(k, "org.varlink.service.InternalError", "out of memory");
                return;
        }

        /* A certificate that is due again at once would have us ask in a
         * tight loop: pace it like a failure. */
        k->failures = cert_renewal_time(k->info.not_before_usec, k->info.not_after_usec, now) <= now ? 1 : 0;
        if (k->failures > 0)
                log_warning("New certificate is already due for renewal; is the clock right?");

        format_realtime(k->info.not_after_usec, until, sizeof(until));
        log_full_errno_fields(LOG_NOTICE, 0, &((LogFields) { .message_id = MESSAGE_CERT_ISSUED }),
                              "New certificate for %s (serial %s), valid until %s, in %s.",
                              strna(k->fqdn), k->info.serial, until, k->directory);
        cert_keeper_schedule(k);
        cert_keeper_write_stamp(k);
        cert_keeper_run_reload(k);
        cert_keeper_reply_certificate(k);
}

/* ---- ReloadCommand= ----------------------------------------------------------------------- */

/* DIRECTORY.renewed, rewritten after every new set: what meshd-reload@.path
 * watches. ReloadCommand= runs inside meshd's sandbox (no CAP_SYS_ADMIN, a
 * read-only file system), where `systemctl reload` is refused; a path
 * unit's service runs outside it. The stamp lives beside the directory,
 * not in it, because the directory is swapped as a whole. */
static void cert_keeper_write_stamp(CertKeeper *k) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (asprintf(&path, "%s.renewed", k->directory) < 0 ||
            asprintf(&text, "serial=%s\nnot_after_usec=%" PRIu64 "\n", strna(k->info.serial),
                     k->info.not_after_usec) < 0) {
                log_oom();
                return;
        }
        r = write_file_atomic(path, text, strlen(text), 0600);
        if (r < 0)
                log_warning_errno(r, "Failed to write %s, meshd-reload@.path units will not notice the "
                                  "new certificate: %m", path);
}

static int on_reload_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        CertKeeper *k = userdata;
        LogFields fields = { .message_id = MESSAGE_CERT_RELOAD };

        k->reload_source = sd_event_source_disable_unref(k->reload_source);
        k->reload_pid = 0;
        if (si->si_code == CLD_EXITED && si->si_status == 0)
                log_full_errno_fields(LOG_INFO, 0, &fields, "ReloadCommand=%s succeeded.", strna(k->reload_command));
        else if (si->si_code == CLD_EXITED)
                log_full_errno_fields(LOG_WARNING, 0, &fields, "ReloadCommand=%s failed with exit status %i.",
                                      strna(k->reload_command), si->si_status);
        else
                log_full_errno_fields(LOG_WARNING, 0, &fields, "ReloadCommand=%s was killed by signal %s.",
                                      strna(k->reload_command), strsignal(si->si_status));

        if (k->reload_again) {
                k->reload_again = false;
                cert_keeper_run_reload(k);
        }
        return 0;
}

/* Ours to set, or systemd's for meshd alone: a hook must not send
 * READY=1 or watchdog pings in meshd's name. */
static bool env_is_dropped(const char *e) {
        static const char *const prefixes[] = {
                "MESHD_CERT_FILE=", "MESHD_KEY_FILE=", "MESHD_CA_FILE=", "MESHD_FULLCHAIN_FILE=",
                "MESHD_CERT_DIR=", "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=",
        };

        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (strncmp(e, prefixes[i], strlen(prefixes[i])) == 0)
                        return true;
        return false;
}

static int reload_environment(CertKeeper *k, char ***ret) {
        _cleanup_strv_free_ char **env = NULL;
        static const struct {
                const char *var, *file;
        } ours[] = {
                { "MESHD_CERT_FILE", CERT_FILE },
                { "MESHD_KEY_FILE", CERT_KEY_FILE },
                { "MESHD_CA_FILE", CERT_CA_FILE },
                { "MESHD_FULLCHAIN_FILE", CERT_FULLCHAIN_FILE },
        };
        char *s;

        for (char **e = environ; e && *e; e++)
                if (!env_is_dropped(*e) && strv_push(&env, strdup(*e)) < 0)
                        return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(ours); i++) {
                if (asprintf(&s, "%s=%s/%s", ours[i].var, k->directory, ours[i].file) < 0 || strv_push(&env, s) < 0)
                        return -ENOMEM;
        }
        if (asprintf(&s, "MESHD_CERT_DIR=%s", k->directory) < 0 || strv_push(&env, s) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(env);
        return 0;
}

/* /bin/sh -c, in the background: the command may take its time (a service
 * reload), meshd goes on. One at a time; a renewal meanwhile runs it again
 * after. */
static void cert_keeper_run_reload(CertKeeper *k) {
        _cleanup_strv_free_ char **env = NULL;
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attr;
        sigset_t none, all;
        char *argv[] = { (char *) "sh", (char *) "-c", k->reload_command, NULL };
        pid_t pid;
        int r;

        if (!k->reload_command)
                return;
        if (k->reload_pid > 0) {
                k->reload_again = true;
                return;
        }
        r = reload_environment(k, &env);
        if (r < 0) {
                log_oom();
                return;
        }

        /* The child must not inherit our blocked signals (sd-event's) or
         * ignored SIGPIPE. */
        sigemptyset(&none);
        sigfillset(&all);
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                log_error_errno(r, "Failed to run ReloadCommand=: %m");
                return;
        }
        r = posix_spawn_file_actions_init(&actions);
        if (r != 0) {
                posix_spawnattr_destroy(&attr);
                log_error_errno(r, "Failed to run ReloadCommand=: %m");
                return;
        }
        r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &none);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &all);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
        /* Sockets a library opened without O_CLOEXEC (curl's) stay ours. */
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
#endif
        if (r == 0)
                r = posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, env);
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
        if (r != 0) {
                log_full_errno_fields(LOG_WARNING, r, &((LogFields) { .message_id = MESSAGE_CERT_RELOAD }),
                                      "Failed to run ReloadCommand=%s: %m", k->reload_command);
                return;
        }

        r = sd_event_add_child(k->event, &k->reload_source, pid, WEXITED, on_reload_exit, k);
        if (r < 0) {
                log_warning_errno(r, "Failed to watch ReloadCommand= (pid %i), its result is not logged: %m", (int) pid);
                return;
        }
        (void) sd_event_source_set_description(k->reload_source, "cert-reload-command");
        k->reload_pid = pid;
        log_info("Running ReloadCommand=%s (pid %i).", k->reload_command, (int) pid);
}

/* ---- GET /v1/ca --------------------------------------------------------------------------- */

static const char *cert_keeper_ca(const CertKeeper *k) {
        return k->ca_pem ?: k->ca_cache;
}

/* The domain and ranges are the pinned ones: what `meshctl trust install`
 * checks the CA's name constraints against. */
static cJSON *ca_json(CertKeeper *k) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();

        if (!o || !cJSON_AddStringToObject(o, "ca", cert_keeper_ca(k)) ||
            !cJSON_AddStringToObject(o, "domain", k->pin_domain ?: k->domain ?: k->ca_domain ?: "mesh.internal") ||
            (k->pin_ipv4_range && !cJSON_AddStringToObject(o, "ipv4_range", k->pin_ipv4_range)) ||
            (k->pin_ipv6_range && !cJSON_AddStringToObject(o, "ipv6_range", k->pin_ipv6_range)))
                return NULL;
        return TAKE_PTR(o);
}

/* A CA confined to the pinned mesh by critical name constraints, and the
 * pinned one; the first that passes is pinned. Refusals are logged. */
static int ca_check_pins(CertKeeper *k, const char *pem, char sha[static CA_SHA256_HEX_LEN + 1], char **ret_error) {
        int r;

        if (!k->pin_domain) {
                *ret_error = strdup("no netmap applied yet: the mesh's domain and ranges are unknown");
                return -EBADMSG;
        }
        r = ca_check_constraints(pem, k->pin_domain, k->pin_ipv4_range, k->pin_ipv6_range, ret_error);
        if (r < 0)
                return r;
        r = ca_fingerprint_sha256(pem, sha);
        if (r < 0) {
                *ret_error = strdup("the CA is not a PEM certificate");
                return r;
        }
        if (k->pin_ca_sha256 && !streq(k->pin_ca_sha256, sha)) {
                if (asprintf(ret_error, "the CA (sha256 %.16s…) is not the one pinned at join (sha256 %.16s…)",
                             sha, k->pin_ca_sha256) < 0)
                        *ret_error = NULL;
                return -EBADMSG;
        }
        return 0;
}

/* A CA confined to the pinned mesh by critical name constraints, and the
 * pinned one; the first that passes is pinned. Refusals are logged. */
static bool ca_is_usable(CertKeeper *k, const char *pem, char **ret_error) {
        _cleanup_free_ char *error = NULL;
        char sha[CA_SHA256_HEX_LEN + 1];

        if (ca_check_pins(k, pem, sha, &error) < 0) {
                log_full_errno_fields(LOG_WARNING, 0, &((LogFields) { .message_id = MESSAGE_CA_REFUSED }),
                                      "Refusing the mesh CA from the control server: %s.", strna(error));
                if (ret_error)
                        *ret_error = TAKE_PTR(error);
                return false;
        }
        if (!k->pin_ca_sha256) {
                k->pin_ca_sha256 = strdup(sha);
                if (k->pin_ca_sha256 && k->ca_pinned)
                        k->ca_pinned(sha, k->userdata);
        }
        return true;
}

static void on_ca_reply(ControlClient *c, int error, const char *message, const char *body, size_t len,
                        void *userdata) {
        CertKeeper *k = userdata;
        _cleanup_json_ cJSON *o = NULL;
        _cleanup_free_ char *refusal = NULL, *text = NULL;
        const cJSON *ca, *domain;
        ApiCall **calls;
        size_t count;

        k->ca_requesting = false;
        if (error < 0) {
                log_warning_errno(error, "Fetching the mesh CA failed: %s", strna(message));
                calls_reply_error(&k->ca_waiters, &k->n_ca_waiters, error_name_from_control(error),
                                  strna(message));
                return;
        }
        o = cJSON_ParseWithLength(body, len);
        ca = cJSON_GetObjectItemCaseSensitive(o, "ca");
        domain = cJSON_GetObjectItemCaseSensitive(o, "domain");
        if (!cJSON_IsString(ca) || (domain && !cJSON_IsNull(domain) && !cJSON_IsString(domain))) {
                log_warning("Control server sent no usable CA certificate.");
                calls_reply_error(&k->ca_waiters, &k->n_ca_waiters, "io.meshd.ProtocolError",
                                  "no usable CA certificate in the reply");
                return;
        }
        if (!ca_is_usable(k, ca->valuestring, &refusal)) {
                if (asprintf(&text, "refusing the control server's CA: %s", strna(refusal)) < 0)
                        text = NULL;
                calls_reply_error(&k->ca_waiters, &k->n_ca_waiters, "io.meshd.ProtocolError",
                                  strna(text));
                return;
        }
        free(k->ca_cache);
        k->ca_cache = strdup(ca->valuestring);
        if (cJSON_IsString(domain)) {
                free(k->ca_domain);
                k->ca_domain = strdup(domain->valuestring);
        }

        calls = TAKE_PTR(k->ca_waiters);
        count = k->n_ca_waiters;
        k->n_ca_waiters = 0;
        for (size_t i = 0; i < count; i++) {
                cJSON *reply = k->ca_cache ? ca_json(k) : NULL;
                if (reply)
                        (void) api_call_reply(calls[i], reply);
                else
                        (void) api_call_reply_errorf(calls[i], "org.varlink.service.InternalError", "out of memory");
                api_call_unref(calls[i]);
        }
        free(calls);
}

int cert_keeper_get_ca(CertKeeper *k, ApiCall *call) {
        _cleanup_free_ char *error = NULL;
        int r;

        /* What we hold may predate the pins, or the set on disk may have
         * been swapped: checked on every use, it is cheap. */
        if (cert_keeper_ca(k) && !ca_is_usable(k, cert_keeper_ca(k), &error))
                return api_call_reply_errorf(call, "io.meshd.ProtocolError", "refusing the mesh CA: %s",
                                             strna(error));
        if (cert_keeper_ca(k)) {
                cJSON *o = ca_json(k);
                return o ? api_call_reply(call, o) : -ENOMEM;
        }
        r = calls_add(&k->ca_waiters, &k->n_ca_waiters, call);
        if (r < 0)
                return r;
        if (k->ca_requesting)
                return 0;
        r = control_client_get_ca(k->control, on_ca_reply, k);
        if (r < 0) {
                log_error_errno(r, "Failed to ask for the mesh CA: %m");
                calls_reply_error(&k->ca_waiters, &k->n_ca_waiters, "org.varlink.service.InternalError",
                                  "cannot ask the control server");
                return 0;
        }
        k->ca_requesting = true;
        return 0;
}

/* ---- life cycle --------------------------------------------------------------------------- */

int cert_keeper_new(sd_event *event, const CertKeeperOptions *o, CertKeeper **ret) {
        _cleanup_(cert_keeper_freep) CertKeeper *k = NULL;
        _cleanup_free_ char *copy = NULL;
        int r;

        if (!event || !o || !o->directory || !o->control_url || !o->control_pin || !o->token || !ret)
                return -EINVAL;

        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->event = sd_event_ref(event);
        k->ca_pinned = o->ca_pinned;
        k->userdata = o->userdata;
        k->directory = strdup(o->directory);
        k->token = strdup(o->token);
        copy = strdup(o->directory);
        if (!k->directory || !k->token || !copy)
                return -ENOMEM;
        k->parent = strdup(dirname(copy));
        if (!k->parent)
                return -ENOMEM;
        r = cert_keeper_set_reload_command(k, o->reload_command);
        if (r < 0)
                return r;

        r = control_client_new(event, o->control_url, o->control_pin, &k->control);
        if (r < 0)
                return r;

        remove_stale_sets(k->parent);
        (void) cert_keeper_load(k);
        cert_keeper_schedule(k);

        *ret = TAKE_PTR(k);
        return 0;
}

CertKeeper *cert_keeper_free(CertKeeper *k) {
        if (!k)
                return NULL;
        calls_reply_error(&k->waiters, &k->n_waiters, "io.meshd.NotJoined", "this node left the mesh");
        calls_reply_error(&k->ca_waiters, &k->n_ca_waiters, "io.meshd.NotJoined", "this node left the mesh");
        /* A running ReloadCommand= goes on; we only stop watching it. */
        sd_event_source_disable_unref(k->reload_source);
        sd_event_source_disable_unref(k->timer);
        control_client_free(k->control);
        cert_keeper_drop_set(k);
        erase_string(&k->pending_key_pem);
        erase_string(&k->token);
        strv_free(k->pending_names);
        strv_free(k->requested_names);
        free(k->ca_cache);
        free(k->ca_domain);
        free(k->pin_domain);
        free(k->pin_ipv4_range);
        free(k->pin_ipv6_range);
        free(k->pin_ca_sha256);
        free(k->fqdn);
        free(k->domain);
        free(k->ipv4);
        free(k->ipv6);
        free(k->reload_command);
        free(k->directory);
        free(k->parent);
        sd_event_unref(k->event);
        free(k);
        return NULL;
}

static int strdup_or_null(const char *s, char **ret) {
        *ret = s ? strdup(s) : NULL;
        return !s || *ret ? 0 : -ENOMEM;
}

int cert_keeper_set_pins(CertKeeper *k, const char *domain, const char *ipv4_range, const char *ipv6_range,
                         const char *ca_sha256) {
        _cleanup_free_ char *d = NULL, *v4 = NULL, *v6 = NULL, *sha = NULL;

        if (strdup_or_null(domain, &d) < 0 || strdup_or_null(ipv4_range, &v4) < 0 ||
            strdup_or_null(ipv6_range, &v6) < 0 || strdup_or_null(ca_sha256, &sha) < 0)
                return -ENOMEM;
        free(k->pin_domain);
        free(k->pin_ipv4_range);
        free(k->pin_ipv6_range);
        free(k->pin_ca_sha256);
        k->pin_domain = TAKE_PTR(d);
        k->pin_ipv4_range = TAKE_PTR(v4);
        k->pin_ipv6_range = TAKE_PTR(v6);
        k->pin_ca_sha256 = TAKE_PTR(sha);
        return 0;
}

int cert_keeper_set_reload_command(CertKeeper *k, const char *command) {
        char *c = NULL;

        if (command && *command) {
                c = strdup(command);
                if (!c)
                        return -ENOMEM;
        }
        free(k->reload_command);
        k->reload_command = c;
        return 0;
}

static int set_field(char **field, const char *value, bool *changed) {
        char *v = NULL;

        if (streq_ptr(*field, value))
                return 0;
        if (value) {
                v = strdup(value);
                if (!v)
                        return -ENOMEM;
        }
        free(*field);
        *field = v;
        *changed = true;
        return 0;
}

static bool names_covered(char *const *have, char *const *want) {
        for (char *const *w = want; w && *w; w++) {
                bool found = false;
                for (char *const *h = have; h && *h && !found; h++)
                        found = strcasecmp(*h, *w) == 0;
                if (!found)
                        return false;
        }
        return true;
}

int cert_keeper_set_names(CertKeeper *k, const char *name, const char *domain, const char *ipv4, const char *ipv6) {
        _cleanup_free_ char *fqdn = NULL;
        bool changed = false;
        int r;

        if (!k || !name || !domain || !ipv4)
                return -EINVAL;
        if (asprintf(&fqdn, "%s.%s", name, domain) < 0)
                return -ENOMEM;
        if ((r = set_field(&k->fqdn, fqdn, &changed)) < 0 || (r = set_field(&k->domain, domain, &changed)) < 0 ||
            (r = set_field(&k->ipv4, ipv4, &changed)) < 0 || (r = set_field(&k->ipv6, ipv6, &changed)) < 0)
                return r;

        if (k->renew_when_named) {
                k->renew_when_named = false;
                r = cert_keeper_renew(k);
                if (r < 0)
                        cert_keeper_request_failed(k, "org.varlink.service.InternalError",
                                                   "cannot make a certificate request");
                return 0;
        }

        if (changed && k->cert_pem && !k->requesting) {
                char *want[] = { k->fqdn, k->ipv4, k->ipv6, NULL };

                /* Renamed, or new addresses: once per change, so that a CA
                 * that will not issue a name cannot make us loop. */
                if (!names_covered(k->info.names, want) && !strv_equal(want, k->requested_names)) {
                        log_info("Certificate does not cover all of %s %s%s%s, renewing it.", k->fqdn, k->ipv4,
                                 k->ipv6 ? " " : "", k->ipv6 ?: "");
                        r = cert_keeper_renew(k);
                        if (r < 0)
                                cert_keeper_request_failed(k, "org.varlink.service.InternalError",
                                                           "cannot make a certificate request");
                }
        }
        return 0;
}

int cert_keeper_get_certificate(CertKeeper *k, bool renew, ApiCall *call) {
        int r;

        if (!renew && k->cert_pem && k->info.not_after_usec > clock_usec(CLOCK_REALTIME)) {
                cJSON *o = cert_keeper_certificate_json(k);
                return o ? api_call_reply(call, o) : -ENOMEM;
        }
        if (!k->fqdn)
                return api_call_reply_errorf(call, "io.meshd.ControlUnreachable",
                                             "no netmap from the control server yet, so this node's names "
                                             "are not known; try again in a moment");

        r = calls_add(&k->waiters, &k->n_waiters, call);
        if (r < 0)
                return r;
        r = cert_keeper_renew(k);
        if (r < 0)
                cert_keeper_request_failed(k, "org.varlink.service.InternalError",
                                           "cannot make a certificate request");
        return 0;
}
