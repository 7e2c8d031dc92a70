/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The mesh's secrets in the store: created by init, imported from an older
 * state directory by serve, read by every verb (mesh-secrets.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mesh-secrets.h"
#include "tls.h"

static void erase_stringp(char **s) {
        if (*s) {
                explicit_bzero(*s, strlen(*s));
                free(*s);
        }
}

/* value into the store unless another process was first: then theirs
 * counts. 1 when ours went in, 0 when theirs was there. */
static int secret_store(Store *s, const char *key, const char *value) {
        int r = store_set_setting_once(s, key, value);

        if (r == -EEXIST)
                return 0;
        if (r < 0)
                return log_error_errno(r, "Failed to store the setting %s: %m", key);
        return 1;
}

static int hub_key_new(char **ret) {
        char b64[WG_KEY_B64_LEN + 1];
        WgKey key;
        int r;

        r = key_generate_private(&key);
        if (r < 0)
                return log_error_errno(r, "Failed to generate the hub key: %m");
        key_to_base64(&key, b64);
        explicit_bzero(&key, sizeof(key));
        *ret = strdup(b64);
        explicit_bzero(b64, sizeof(b64));
        return *ret ? 0 : log_oom();
}

int mesh_secrets_create(Store *s, const char *host, const char *domain, const char *ipv4_range,
                        const char *ipv6_range, char **ret_pin) {
        _cleanup_(erase_stringp) char *hub = NULL, *tls = NULL, *ca = NULL;
        char hub_public[WG_KEY_B64_LEN + 1];
        int r;

        r = hub_key_new(&hub);
        if (r >= 0)
                r = tls_generate(host, &tls);
        if (r >= 0)
                r = ca_generate(domain, ipv4_range, ipv6_range, &ca);
        if (r >= 0)
                r = secret_store(s, SETTING_HUB_PRIVATE_KEY, hub);
        if (r >= 0)
                r = secret_store(s, SETTING_TLS_PEM, tls);
        if (r >= 0)
                r = secret_store(s, SETTING_CA_PEM, ca);
        if (r >= 0)
                r = mesh_hub_key_load(s, NULL, hub_public);
        if (r < 0)
                return r;
        return tls_pin(tls, ret_pin);
}

/* One secret of an older state directory: the hub key file's base64. */
static int hub_key_read_file(const char *dir, char **ret) {
        _cleanup_free_ char *path = NULL;
        char b64[WG_KEY_B64_LEN + 1];
        WgKey key;
        int r;

        if (asprintf(&path, "%s/%s", dir, HUB_KEY_FILE) < 0)
                return log_oom();
        r = key_read_file(path, true, &key);
        if (r == -ENOENT)
                return r;
        if (r < 0)
                return log_error_errno(r, "Failed to read the hub key %s: %m", path);
        key_to_base64(&key, b64);
        explicit_bzero(&key, sizeof(key));
        *ret = strdup(b64);
        explicit_bzero(b64, sizeof(b64));
        return *ret ? 0 : log_oom();
}

typedef struct SecretKind {
        const char *setting, *what, *file;
        int (*read_files)(const char *dir, char **ret);
} SecretKind;

/* The store's, else the file's (imported), else a new one from make (NULL:
 * an error). */
static int secret_import(Store *s, const char *dir, const SecretKind *k, int (*make)(Store *s, char **ret)) {
        _cleanup_(erase_stringp) char *value = NULL;
        bool imported = false;
        int r;

        r = store_get_setting(s, k->setting, &value);
        if (r != -ENOENT)
                return r < 0 ? log_error_errno(r, "Failed to read the setting %s: %m", k->setting) : 0;
        r = k->read_files(dir, &value);
        if (r >= 0)
                imported = true;
        else if (r != -ENOENT)
                return r;
        else if (!make)
                return log_error_errno(-ENOENT,
                                       "No %s in the database nor in %s/%s: is this a mesh's state directory?",
                                       k->what, dir, k->file);
        else {
                r = make(s, &value);
                if (r < 0)
                        return r;
        }
        r = secret_store(s, k->setting, value);
        if (r > 0 && imported)
                log_info("Moved the %s from %s/%s into the database; the file is no longer read.", k->what, dir,
                         k->file);
        else if (r > 0)
                log_info("Created the %s (in the database).", k->what);
        return r < 0 ? r : 0;
}

static int make_hub_key(Store *s, char **ret) {
        (void) s;
        return hub_key_new(ret);
}

/* a mesh made before the CA existed: one for its domain and ranges */
static int make_ca(Store *s, char **ret) {
        _cleanup_free_ char *domain = NULL, *v4 = NULL, *v6 = NULL;
        int r;

        r = store_get_setting(s, "domain", &domain);
        if (r >= 0)
                r = store_get_setting(s, "ipv4_range", &v4);
        if (r >= 0)
                r = store_get_setting(s, "ipv6_range", &v6);
        if (r < 0)
                return log_error_errno(r, "Database lacks the mesh's domain or ranges: %m");
        return ca_generate(domain, v4, v6, ret);
}

int mesh_secrets_import(Store *s, const char *state_dir) {
        static const SecretKind hub = { SETTING_HUB_PRIVATE_KEY, "hub key", HUB_KEY_FILE, hub_key_read_file },
                                tls = { SETTING_TLS_PEM, "TLS key and certificate", TLS_CERT_FILE,
                                        tls_read_files },
                                ca = { SETTING_CA_PEM, "mesh certificate authority", CA_CERT_FILE,
                                       ca_read_files };
        int r;

        r = secret_import(s, state_dir, &tls, NULL);
        if (r >= 0)
                r = secret_import(s, state_dir, &ca, make_ca);
        if (r >= 0)
                r = secret_import(s, state_dir, &hub, make_hub_key);
        return r;
}

static int secret_get(Store *s, const char *setting, const char *what, char **ret) {
        int r = store_get_setting(s, setting, ret);

        if (r == -ENOENT)
                return log_error_errno(r,
                                       "The database holds no %s: start 'meshd-control serve' once to "
                                       "move it there from the state directory.",
                                       what);
        if (r < 0)
                return log_error_errno(r, "Failed to read the %s from the database: %m", what);
        return 0;
}

int mesh_tls_credentials(Store *s, char **ret_key_pem, char **ret_cert_pem) {
        _cleanup_(erase_stringp) char *pem = NULL;
        int r;

        r = secret_get(s, SETTING_TLS_PEM, "TLS key and certificate", &pem);
        if (r < 0)
                return r;
        return tls_split(pem, ret_key_pem, ret_cert_pem);
}

int mesh_tls_pin(Store *s, char **ret_pin) {
        _cleanup_(erase_stringp) char *pem = NULL;
        int r;

        r = secret_get(s, SETTING_TLS_PEM, "TLS key and certificate", &pem);
        if (r < 0)
                return r;
        return tls_pin(pem, ret_pin);
}

int mesh_ca_load(Store *s, CertAuthority **ret) {
        _cleanup_(erase_stringp) char *pem = NULL;
        int r;

        r = secret_get(s, SETTING_CA_PEM, "mesh certificate authority", &pem);
        if (r < 0)
                return r;
        return ca_load(pem, ret);
}

int mesh_hub_key_load(Store *s, WgKey *ret_private, char ret_public[static WG_KEY_B64_LEN + 1]) {
        _cleanup_(erase_stringp) char *b64 = NULL;
        _cleanup_free_ char *stored = NULL;
        WgKey key, pub;
        int r;

        r = secret_get(s, SETTING_HUB_PRIVATE_KEY, "hub key", &b64);
        if (r < 0)
                return r;
        r = key_from_base64(b64, &key);
        if (r < 0)
                return log_error_errno(r, "The database's hub key is not a WireGuard key.");
        r = key_public_from_private(&key, &pub);
        if (r < 0) {
                explicit_bzero(&key, sizeof(key));
                return log_error_errno(r, "Failed to derive the hub's public key: %m");
        }
        key_to_base64(&pub, ret_public);
        if (store_get_setting(s, "hub_public_key", &stored) < 0 || !streq(stored, ret_public)) {
                r = store_set_setting(s, "hub_public_key", ret_public);
                if (r < 0) {
                        explicit_bzero(&key, sizeof(key));
                        return r;
                }
        }
        if (ret_private)
                *ret_private = key;
        explicit_bzero(&key, sizeof(key));
        return 0;
}
