/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* meshctl trust: the mesh CA in the system trust store (trust.c), the
 * browsers' system-wide policies (trust-policies.c) and a user's own NSS
 * databases (trust-user.c). */

#include <stdbool.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

/* Every path below can be moved with its environment variable, so that
 * tests (and unusual systems) need no bind mounts over /etc. */

/* Debian's place for local CAs; update-ca-certificates puts them into
 * /etc/ssl/certs and its bundle. */
#define TRUST_DIR_ENV "MESHCTL_CA_CERTIFICATES_DIR"
#define TRUST_DIR_DEFAULT "/usr/local/share/ca-certificates"

/* Chromium's managed policies (Debian's chromium reads this directory);
 * meshctl owns one file there. */
#define CHROMIUM_POLICY_DIR_ENV "MESHCTL_CHROMIUM_POLICY_DIR"
#define CHROMIUM_POLICY_DIR_DEFAULT "/etc/chromium/policies/managed"
#define CHROMIUM_POLICY_FILE "meshd.json"

/* Firefox's (and Debian's firefox-esr's) system-wide policies file, shared
 * with the administrator's own policies. */
#define FIREFOX_POLICIES_ENV "MESHCTL_FIREFOX_POLICIES"
#define FIREFOX_POLICIES_DEFAULT "/etc/firefox/policies/policies.json"

/* p11-kit's trust module: the system trust store as a PKCS#11 token. */
#define P11_KIT_TRUST_ENV "MESHCTL_P11_KIT_TRUST_MODULE"

/* The name of the security device meshctl adds to Firefox's policies, and
 * the nickname prefix of the CA in a user's NSS databases. */
#define FIREFOX_DEVICE_NAME "meshd: system trust store"
#define NSSDB_NICKNAME_PREFIX "meshd mesh CA ("

/* The mesh CA as meshd sent it, checked: constrained to the mesh. */
typedef struct TrustCA {
        const char *pem;
        const char *domain;
} TrustCA;

/* The path in env when set and not empty, else fallback. */
static inline const char *trust_path(const char *env, const char *fallback) {
        const char *e = getenv(env);

        return e && *e ? e : fallback;
}

bool dns_name_is_safe(const char *s);
bool is_pem_certificate(const char *s);

/* The base64 body of a single-certificate PEM (the DER, as policies want
 * it), without line breaks. */
int pem_to_base64_der(const char *pem, char **ret);

/* Where meshctl finds p11-kit-trust.so: NULL when it is not installed. */
const char *p11_kit_trust_module(void);

/* Chromium: our own policy file. */
int chromium_policy_install(const TrustCA *ca);
int chromium_policy_remove(void);

/* Firefox: our entry in the shared policies.json. _load validates the file
 * first, so that a broken one changes nothing. *ret is NULL when there is
 * no file. */
int firefox_policies_load(const char *path, cJSON **ret);
int firefox_policies_install(const char *path, cJSON *doc, const char *module);
int firefox_policies_remove(const char *path, cJSON *doc);

/* --user: this user's Chromium NSS database and Firefox profiles. */
int trust_user_install(const TrustCA *ca);
int trust_user_remove(void);
