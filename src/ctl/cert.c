/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshctl cert: this node's TLS certificate (the mesh CA's trust stores are
 * trust.c's). */
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "ca-check.h"
#include "call.h"
#include "fileio.h"
#include "log.h"
#include "meshctl.h"
#include "show.h"
#include "trust.h"

/* A certificate call waits for the control server when a new one is needed. */
#define CALL_CERT_TIMEOUT_USEC (60 * USEC_PER_SEC)

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
        _cleanup_free_ char *file_base = NULL;
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
            !is_pem_certificate(reply_string(reply, "ca")) || !dir || !fqdn)
                return log_error_errno(-EBADMSG, "meshd sent an incomplete certificate reply");
        /* An ACME issuer in wildcard mode (docs/acme.md) names *.DOMAIN
         * alone; its copies are called wildcard.DOMAIN.crt, not "*.…". */
        if (asprintf(&file_base, "%s%s", strncmp(fqdn, "*.", 2) == 0 ? "wildcard." : "",
                     strncmp(fqdn, "*.", 2) == 0 ? fqdn + 2 : fqdn) < 0)
                return log_oom();
        if (!dns_name_is_safe(file_base))
                return log_error_errno(-EBADMSG, "meshd sent an incomplete certificate reply");

        if (a->out_dir) {
                r = cert_write_copies(a, reply, file_base, &copies);
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
