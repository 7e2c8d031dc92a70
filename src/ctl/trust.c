/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshctl trust install|remove [--user]: the mesh CA in the system trust
 * store and, through their policies, in Chromium and Firefox; with --user in
 * this user's own browser databases instead. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca-check.h"
#include "call.h"
#include "fileio.h"
#include "log.h"
#include "meshctl.h"
#include "run-program.h"
#include "trust.h"

#define TRUST_FILE_PREFIX "meshd-"
#define TRUST_FILE_SUFFIX ".crt"
#define UPDATE_CA_CERTIFICATES "update-ca-certificates"

/* meshd answers at once; a slow daemon still gets its time. */
#define CALL_CA_TIMEOUT_USEC (60 * USEC_PER_SEC)

#ifndef P11_MODULE_PATH
#define P11_MODULE_PATH "/usr/lib/x86_64-linux-gnu/pkcs11"
#endif

const char *p11_kit_trust_module(void) {
        const char *p = trust_path(P11_KIT_TRUST_ENV, P11_MODULE_PATH "/p11-kit-trust.so");

        return access(p, R_OK) == 0 ? p : NULL;
}

/* The CA from meshd, checked here too, not only in meshd: what goes into a
 * trust store must be unable to vouch for anything but the mesh. */
static int fetch_ca(const Arguments *a, cJSON **ret_reply, TrustCA *ret) {
        _cleanup_json_ cJSON *reply = NULL;
        _cleanup_free_ char *error = NULL;
        const char *ipv4_range, *ipv6_range;
        int r;

        r = call_method_logged(a, "io.meshd.GetCertificateAuthority", NULL, CALL_CA_TIMEOUT_USEC, &reply);
        if (r < 0)
                return r;
        ret->pem = reply_string(reply, "ca");
        ret->domain = reply_string(reply, "domain");
        ipv4_range = reply_string(reply, "ipv4_range");
        ipv6_range = reply_string(reply, "ipv6_range");
        if (!is_pem_certificate(ret->pem) || !dns_name_is_safe(ret->domain))
                return log_error_errno(-EBADMSG, "meshd sent no usable CA certificate");
        if (!ipv4_range)
                return log_error_errno(-EBADMSG,
                                       "refusing to install the mesh CA: meshd did not say the mesh's "
                                       "address ranges (is meshd older than meshctl?)");
        r = ca_check_constraints(ret->pem, ret->domain, ipv4_range, ipv6_range, &error);
        if (r < 0)
                return log_error_errno(r, "refusing to install the mesh CA: %s", strna(error));
        *ret_reply = TAKE_PTR(reply);
        return 0;
}

static int run_update_ca_certificates(const char *program) {
        char *argv[] = { (char *) UPDATE_CA_CERTIFICATES, NULL };
        int r;

        r = spawn_program(program, argv, &(SpawnOptions) { .quiet_stdout = true }, NULL);
        if (r > 0)
                return log_error_errno(-EIO, "%s failed (exit status %d)", program, r);
        return r;
}

static int system_store_install(const TrustCA *ca, const char *program) {
        const char *dir = trust_path(TRUST_DIR_ENV, TRUST_DIR_DEFAULT);
        _cleanup_free_ char *path = NULL, *old = NULL;
        bool unchanged;
        int r;

        if (asprintf(&path, "%s/" TRUST_FILE_PREFIX "%s" TRUST_FILE_SUFFIX, dir, ca->domain) < 0)
                return log_oom();
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "cannot create %s: %m", dir);

        unchanged = read_full_file(path, 1024 * 1024, &old, NULL) >= 0 && streq(old, ca->pem);
        if (!unchanged) {
                r = write_file_atomic(path, ca->pem, strlen(ca->pem), 0644);
                if (r < 0)
                        return log_error_errno(r, "cannot write %s: %m", path);
        }
        /* Also when unchanged: the trust store may lag behind the file. */
        r = run_update_ca_certificates(program);
        if (r < 0)
                return r;
        printf("%s the mesh CA as %s: the system trust store now accepts certificates for *.%s\n"
               "from this mesh (and nothing else: the CA is constrained to the mesh's names).\n",
               unchanged ? "Already trusted" : "Installed", path, ca->domain);
        return 0;
}

/* Every meshd-*.crt: removal must work without meshd, and whatever domain
 * the mesh had when the CA was installed. */
static int system_store_remove(const char *program) {
        const char *dir = trust_path(TRUST_DIR_ENV, TRUST_DIR_DEFAULT);
        struct dirent *de;
        unsigned removed = 0;
        int r = 0;
        DIR *d;

        d = opendir(dir);
        if (!d && errno != ENOENT)
                return log_error_errno(negative_errno(), "cannot read %s: %m", dir);
        while (d && (de = readdir(d))) {
                size_t n = strlen(de->d_name), suffix = strlen(TRUST_FILE_SUFFIX);

                if (strncmp(de->d_name, TRUST_FILE_PREFIX, strlen(TRUST_FILE_PREFIX)) != 0 || n <= suffix ||
                    !streq(de->d_name + n - suffix, TRUST_FILE_SUFFIX))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
                        r = log_error_errno(negative_errno(), "cannot remove %s/%s: %m", dir, de->d_name);
                        break;
                }
                printf("Removed %s/%s\n", dir, de->d_name);
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

/* Everything that can fail on bad input is checked before the first change:
 * the tool, meshd's CA, the administrator's Firefox policies. */
static int trust_system(const Arguments *a, bool install) {
        const char *firefox = trust_path(FIREFOX_POLICIES_ENV, FIREFOX_POLICIES_DEFAULT);
        _cleanup_free_ char *program = NULL;
        _cleanup_json_ cJSON *reply = NULL, *policies = NULL;
        const char *module = NULL;
        TrustCA ca = {};
        int r;

        if (geteuid() != 0)
                return log_error_errno(-EPERM,
                                       "trust %s: must run as root (it changes the system trust store; "
                                       "--user changes only your own browsers')",
                                       install ? "install" : "remove");
        program = find_program(UPDATE_CA_CERTIFICATES);
        if (!program)
                return log_error_errno(-ENOENT, UPDATE_CA_CERTIFICATES " not found: install the "
                                                                       "ca-certificates package");
        if (install) {
                r = fetch_ca(a, &reply, &ca);
                if (r < 0)
                        return r;
                module = p11_kit_trust_module();
        }
        r = firefox_policies_load(firefox, &policies);
        if (r < 0)
                return r;

        r = install ? system_store_install(&ca, program) : system_store_remove(program);
        if (r >= 0)
                r = install ? chromium_policy_install(&ca) : chromium_policy_remove();
        if (r >= 0 && install && !module)
                printf("Firefox: not configured: p11-kit's trust module was not found (install "
                       "p11-kit-modules, then run this again).\n");
        else if (r >= 0)
                r = install ? firefox_policies_install(firefox, policies, module)
                            : firefox_policies_remove(firefox, policies);
        if (r >= 0)
                printf("Restart Chromium and Firefox to pick this up.\n");
        return r;
}

static int trust_user(const Arguments *a, bool install) {
        _cleanup_json_ cJSON *reply = NULL;
        TrustCA ca = {};
        int r;

        if (!install)
                return trust_user_remove();
        r = fetch_ca(a, &reply, &ca);
        if (r < 0)
                return r;
        return trust_user_install(&ca);
}

int verb_trust(const Arguments *a, char **argv) {
        bool install;

        if (streq(argv[0], "install"))
                install = true;
        else if (streq(argv[0], "remove"))
                install = false;
        else
                return log_error_errno(-EINVAL, "unknown trust command '%s' (install or remove)", argv[0]);

        return a->user ? trust_user(a, install) : trust_system(a, install);
}
