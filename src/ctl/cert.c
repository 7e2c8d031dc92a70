/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshctl cert, meshctl trust: this node's TLS certificate, and the mesh CA
 * in the system trust store. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "ca-check.h"
#include "call.h"
#include "fileio.h"
#include "log.h"
#include "meshctl.h"
#include "show.h"

extern char **environ;

/* Debian's place for local CAs; update-ca-certificates puts them into
 * /etc/ssl/certs and its bundle. */
#define TRUST_DIR "/usr/local/share/ca-certificates"
#define TRUST_FILE_PREFIX "meshd-"
#define TRUST_FILE_SUFFIX ".crt"
#define UPDATE_CA_CERTIFICATES "update-ca-certificates"

/* A certificate call waits for the control server when a new one is needed. */
#define CALL_CERT_TIMEOUT_USEC (60 * USEC_PER_SEC)

/* A DNS name fit to be a file name: what the daemon sends is still checked. */
static bool dns_name_is_safe(const char *s) {
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char) *c) && *c != '.' && *c != '-')
                        return false;
        return !strstr(s, "..");
}

static bool is_pem_certificate(const char *s) {
        return s && strncmp(s, "-----BEGIN CERTIFICATE-----", 27) == 0;
}

static void format_local_time(char *buf, size_t size, uint64_t usec) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (!localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                snprintf(buf, size, "@%llu", (unsigned long long) (usec / USEC_PER_SEC));
}

/* The text after one that ends in "\n" (PEM does), else with one between. */
static char *concat_pem(const char *a, const char *b) {
        size_t n = strlen(a);
        char *s = NULL;

        if (asprintf(&s, "%s%s%s", a, n > 0 && a[n - 1] != '\n' ? "\n" : "", b) < 0)
                return NULL;
        return s;
}

static int write_out(const char *dir, const char *name, const char *text, mode_t mode, char **ret_path) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return log_oom();
        r = write_file_atomic(path, text, strlen(text), mode);
        if (r < 0)
                return log_error_errno(r, "cannot write %s: %m", path);
        *ret_path = TAKE_PTR(path);
        return 0;
}

typedef struct CopyPaths {
        char *crt, *key, *ca;
} CopyPaths;

static void copy_paths_done(CopyPaths *p) {
        free(p->crt);
        free(p->key);
        free(p->ca);
}

static int cert_write_copies(const Arguments *a, const cJSON *reply, const char *fqdn, CopyPaths *ret) {
        _cleanup_free_ char *fullchain = NULL, *crt_name = NULL, *key_name = NULL;
        const char *cert = reply_string(reply, "certificate"), *key = reply_string(reply, "key"),
                   *ca = reply_string(reply, "ca");
        struct stat st;
        int r;

        if (stat(a->out_dir, &st) < 0) {
                if (errno != ENOENT)
                        return log_error_errno(negative_errno(), "cannot use --out=%s: %m", a->out_dir);
                if (mkdir(a->out_dir, 0755) < 0)
                        return log_error_errno(negative_errno(), "cannot create --out=%s: %m", a->out_dir);
        } else if (!S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR, "--out=%s is not a directory", a->out_dir);

        fullchain = concat_pem(cert, ca);
        if (!fullchain || asprintf(&crt_name, "%s.crt", fqdn) < 0 || asprintf(&key_name, "%s.key", fqdn) < 0)
                return log_oom();

        /* The key first: created 0600, never readable by others for a moment. */
        r = write_out(a->out_dir, key_name, key, 0600, &ret->key);
        if (r >= 0)
                r = write_out(a->out_dir, crt_name, fullchain, 0644, &ret->crt);
        if (r >= 0)
                r = write_out(a->out_dir, "mesh-ca.crt", ca, 0644, &ret->ca);
        return r;
}

int verb_cert(const Arguments *a, char **argv) {
        _cleanup_json_ cJSON *params = NULL, *reply = NULL;
        _cleanup_free_ char *error = NULL;
        _cleanup_(copy_paths_done) CopyPaths copies = {};
        const cJSON *names, *n;
        const char *fqdn = NULL, *dir;
        char until[64];
        int r;

        params = cJSON_CreateObject();
        if (!params || (a->renew && !cJSON_AddBoolToObject(params, "renew", true)))
                return log_oom();

        r = call_method(a, "io.meshd.GetCertificate", params, CALL_CERT_TIMEOUT_USEC, &reply, &error);
        if (r < 0)
                return r;
        if (r > 0 && streq(error, "io.meshd.CertificateRefused"))
                return log_error_errno(-EPERM, "control server refused a certificate for this node: %s",
                                       strna(reply_string(reply, "message")));
        if (r > 0 && streq(error, "io.meshd.PermissionDenied"))
                return log_error_errno(-EPERM, "cert: permission denied (run as root: the reply holds the "
                                               "private key)");
        if (r > 0)
                return call_log_error(a, "io.meshd.GetCertificate", error, reply);

        names = cJSON_GetObjectItemCaseSensitive(reply, "names");
        cJSON_ArrayForEach(n, names)
                if (cJSON_IsString(n)) {
                        fqdn = n->valuestring;
                        break;
                }
        dir = reply_string(reply, "directory");
        if (!is_pem_certificate(reply_string(reply, "certificate")) || !reply_string(reply, "key") ||
            !is_pem_certificate(reply_string(reply, "ca")) || !dir || !dns_name_is_safe(fqdn))
                return log_error_errno(-EBADMSG, "meshd sent an incomplete certificate reply");

        if (a->out_dir) {
                r = cert_write_copies(a, reply, fqdn, &copies);
                if (r < 0)
                        return r;
        }
        if (a->json)
                return show_json(reply);

        format_local_time(until, sizeof(until), reply_uint(reply, "not_after_usec"));
        printf("Certificate for");
        cJSON_ArrayForEach(n, names)
                if (cJSON_IsString(n))
                        printf("%s %s", n == names->child ? "" : ",", n->valuestring);
        printf("\nValid until %s; meshd renews it before then.\n", until);
        if (a->out_dir) {
                printf("Wrote %s (certificate and CA)\n"
                       "      %s (private key, mode 0600)\n"
                       "      %s (mesh CA)\n"
                       "These copies are not renewed: point services at %s instead, or copy\n"
                       "the files from [Certificate] ReloadCommand= in meshd.conf(5).\n",
                       copies.crt, copies.key, copies.ca, dir);
                return 0;
        }
        printf("  %s/fullchain.pem  certificate and CA (for ssl_certificate and the like)\n"
               "  %s/key.pem        private key\n"
               "  %s/cert.pem       certificate alone\n"
               "  %s/ca.pem         mesh CA\n",
               dir, dir, dir, dir);
        return 0;
}

/* ---- trust -------------------------------------------------------------------------------- */

/* update-ca-certificates lives in /usr/sbin, which a user's PATH may lack. */
static char *find_update_ca_certificates(void) {
        const char *path = getenv("PATH");
        _cleanup_free_ char *all = NULL;
        char *state = NULL;

        if (asprintf(&all, "%s:/usr/local/sbin:/usr/sbin:/sbin", path && *path ? path : "/usr/bin:/bin") < 0)
                return NULL;
        for (char *d = strtok_r(all, ":", &state); d; d = strtok_r(NULL, ":", &state)) {
                char *p = NULL;

                if (!*d)
                        continue;
                if (asprintf(&p, "%s/%s", d, UPDATE_CA_CERTIFICATES) < 0)
                        return NULL;
                if (access(p, X_OK) == 0)
                        return p;
                free(p);
        }
        return NULL;
}

/* Its stdout (a progress report) is not ours to print; its errors are. */
static int run_update_ca_certificates(const char *program) {
        posix_spawn_file_actions_t actions;
        char *argv[] = { (char *) UPDATE_CA_CERTIFICATES, NULL };
        pid_t pid;
        int r, status;

        r = posix_spawn_file_actions_init(&actions);
        if (r != 0)
                return log_error_errno(-r, "cannot run %s: %m", program);
        r = posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        if (r == 0)
                r = posix_spawn(&pid, program, &actions, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        if (r != 0)
                return log_error_errno(-r, "cannot run %s: %m", program);

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return log_error_errno(negative_errno(), "cannot wait for %s: %m", program);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return log_error_errno(-EIO, "%s failed (%s %d)", program,
                                       WIFEXITED(status) ? "exit status" : "signal",
                                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return 0;
}

static int trust_install(const Arguments *a, const char *program) {
        _cleanup_json_ cJSON *reply = NULL;
        _cleanup_free_ char *path = NULL, *old = NULL, *error = NULL;
        const char *ca, *domain, *ipv4_range, *ipv6_range;
        bool unchanged;
        int r;

        r = call_method_logged(a, "io.meshd.GetCertificateAuthority", NULL, CALL_CERT_TIMEOUT_USEC, &reply);
        if (r < 0)
                return r;
        ca = reply_string(reply, "ca");
        domain = reply_string(reply, "domain");
        ipv4_range = reply_string(reply, "ipv4_range");
        ipv6_range = reply_string(reply, "ipv6_range");
        if (!is_pem_certificate(ca) || !dns_name_is_safe(domain))
                return log_error_errno(-EBADMSG, "meshd sent no usable CA certificate");
        /* Checked here too, not only in meshd: what goes into the system
         * store must be unable to vouch for anything but the mesh. */
        if (!ipv4_range)
                return log_error_errno(-EBADMSG,
                                       "refusing to install the mesh CA: meshd did not say the mesh's "
                                       "address ranges (is meshd older than meshctl?)");
        r = ca_check_constraints(ca, domain, ipv4_range, ipv6_range, &error);
        if (r < 0)
                return log_error_errno(r, "refusing to install the mesh CA: %s", strna(error));

        if (asprintf(&path, "%s/" TRUST_FILE_PREFIX "%s" TRUST_FILE_SUFFIX, TRUST_DIR, domain) < 0)
                return log_oom();
        if (mkdir(TRUST_DIR, 0755) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "cannot create %s: %m", TRUST_DIR);

        unchanged = read_full_file(path, 1024 * 1024, &old, NULL) >= 0 && streq(old, ca);
        if (!unchanged) {
                r = write_file_atomic(path, ca, strlen(ca), 0644);
                if (r < 0)
                        return log_error_errno(r, "cannot write %s: %m", path);
        }
        /* Also when unchanged: the trust store may lag behind the file. */
        r = run_update_ca_certificates(program);
        if (r < 0)
                return r;
        printf("%s the mesh CA as %s: the system trust store now accepts certificates for *.%s\n"
               "from this mesh (and nothing else: the CA is constrained to the mesh's names).\n",
               unchanged ? "Already trusted" : "Installed", path, domain);
        return 0;
}

/* Every meshd-*.crt: removal must work without meshd, and whatever domain
 * the mesh had when the CA was installed. */
static int trust_remove(const Arguments *a, const char *program) {
        DIR *d;
        struct dirent *de;
        unsigned removed = 0;
        int r = 0;

        d = opendir(TRUST_DIR);
        if (!d && errno != ENOENT)
                return log_error_errno(negative_errno(), "cannot read %s: %m", TRUST_DIR);
        while (d && (de = readdir(d))) {
                size_t n = strlen(de->d_name), suffix = strlen(TRUST_FILE_SUFFIX);

                if (strncmp(de->d_name, TRUST_FILE_PREFIX, strlen(TRUST_FILE_PREFIX)) != 0 || n <= suffix ||
                    !streq(de->d_name + n - suffix, TRUST_FILE_SUFFIX))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
                        r = log_error_errno(negative_errno(), "cannot remove %s/%s: %m", TRUST_DIR, de->d_name);
                        break;
                }
                printf("Removed %s/%s\n", TRUST_DIR, de->d_name);
                removed++;
        }
        if (d)
                closedir(d);
        if (r < 0)
                return r;

        r = run_update_ca_certificates(program);
        if (r < 0)
                return r;
        if (removed == 0)
                printf("The mesh CA was not in the system trust store.\n");
        return 0;
}

int verb_trust(const Arguments *a, char **argv) {
        _cleanup_free_ char *program = NULL;
        bool install;

        if (streq(argv[0], "install"))
                install = true;
        else if (streq(argv[0], "remove"))
                install = false;
        else
                return log_error_errno(-EINVAL, "unknown trust command '%s' (install or remove)", argv[0]);

        /* Checked first, so that nothing is half done. */
        if (geteuid() != 0)
                return log_error_errno(-EPERM, "trust %s: must run as root (it changes the system trust store)",
                                       argv[0]);
        program = find_update_ca_certificates();
        if (!program)
                return log_error_errno(-ENOENT, UPDATE_CA_CERTIFICATES " not found: install the "
                                                                       "ca-certificates package");

        return install ? trust_install(a, program) : trust_remove(a, program);
}
