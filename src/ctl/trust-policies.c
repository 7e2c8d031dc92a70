/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The browsers' system-wide policies: Chromium's CACertificates in a file of
 * our own, and a security device in Firefox's shared policies.json that
 * loads p11-kit's trust module, so that Firefox follows the system store. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "trust.h"
#include "varlink.h"

#define POLICY_FILE_MAX (4U * 1024 * 1024)

/* mkdir -p for the policy directories, 0755 like the browsers' packages. */
static int mkdir_parents(const char *path) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        return 0;
}

/* After removal: the directories install may have made, when empty (rmdir
 * fails on one that still holds something). Chromium's: managed/ and
 * policies/, not /etc/chromium (the package's); Firefox's: policies/ and
 * /etc/firefox, which Debian's firefox-esr does not ship. */
static void rmdir_empty_parents(const char *file, unsigned levels) {
        _cleanup_free_ char *p = strdup(file);

        for (unsigned i = 0; p && i < levels; i++) {
                char *slash = strrchr(p, '/');

                if (!slash || slash == p)
                        return;
                *slash = 0;
                if (rmdir(p) < 0)
                        return;
        }
}

static int write_policy(const char *path, const char *text, const char *what) {
        int r;

        r = mkdir_parents(path);
        if (r >= 0)
                r = write_file_atomic(path, text, strlen(text), 0644);
        if (r < 0)
                return log_error_errno(r, "cannot write %s (%s): %m", path, what);
        return 0;
}

int chromium_policy_install(const TrustCA *ca) {
        const char *dir = trust_path(CHROMIUM_POLICY_DIR_ENV, CHROMIUM_POLICY_DIR_DEFAULT);
        _cleanup_free_ char *path = NULL, *der = NULL, *text = NULL, *old = NULL;
        _cleanup_json_ cJSON *doc = NULL;
        cJSON *list;
        bool unchanged;
        int r;

        r = pem_to_base64_der(ca->pem, &der);
        if (r < 0)
                return log_error_errno(r, "meshd sent a CA certificate that is not PEM");
        doc = cJSON_CreateObject();
        list = doc ? cJSON_AddArrayToObject(doc, "CACertificates") : NULL;
        if (!list || !cJSON_AddItemToArray(list, cJSON_CreateString(der)))
                return log_oom();
        text = cJSON_Print(doc);
        if (!text || asprintf(&path, "%s/" CHROMIUM_POLICY_FILE, dir) < 0)
                return log_oom();

        unchanged = read_full_file(path, POLICY_FILE_MAX, &old, NULL) >= 0 && streq(old, text);
        if (!unchanged) {
                r = write_policy(path, text, "Chromium policy");
                if (r < 0)
                        return r;
        }
        printf("Chromium: %s policy CACertificates in %s.\n", unchanged ? "already has the" : "installed the",
               path);
        return 0;
}

int chromium_policy_remove(void) {
        const char *dir = trust_path(CHROMIUM_POLICY_DIR_ENV, CHROMIUM_POLICY_DIR_DEFAULT);
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/" CHROMIUM_POLICY_FILE, dir) < 0)
                return log_oom();
        if (unlink(path) < 0) {
                if (errno != ENOENT)
                        return log_error_errno(negative_errno(), "cannot remove %s: %m", path);
                printf("Chromium: no policy of meshctl's in %s.\n", dir);
                return 0;
        }
        /* managed/ and policies/, which Debian's chromium does not ship. */
        rmdir_empty_parents(path, 2);
        printf("Removed %s\n", path);
        return 0;
}

/* A file that is not what Firefox would read stays untouched: the admin's
 * policies are not ours to lose. */
int firefox_policies_load(const char *path, cJSON **ret) {
        _cleanup_free_ char *text = NULL;
        _cleanup_json_ cJSON *doc = NULL;
        const cJSON *policies, *devices, *add;
        int r;

        r = read_full_file(path, POLICY_FILE_MAX, &text, NULL);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "cannot read %s: %m", path);
        doc = cJSON_Parse(text);
        if (!cJSON_IsObject(doc))
                return log_error_errno(-EBADMSG,
                                       "%s is not valid JSON: fix or remove it first (nothing changed)", path);
        policies = cJSON_GetObjectItemCaseSensitive(doc, "policies");
        devices = cJSON_GetObjectItemCaseSensitive(policies, "SecurityDevices");
        add = cJSON_GetObjectItemCaseSensitive(devices, "Add");
        if ((policies && !cJSON_IsObject(policies)) || (devices && !cJSON_IsObject(devices)) ||
            (add && !cJSON_IsObject(add)))
                return log_error_errno(-EBADMSG,
                                       "%s: \"policies\", its \"SecurityDevices\" or their \"Add\" is not a "
                                       "JSON object: fix it first (nothing changed)",
                                       path);
        *ret = TAKE_PTR(doc);
        return 0;
}

/* The object that maps device names to modules: "Add" in the current
 * syntax, SecurityDevices itself in the old one (neither Add nor Delete).
 * A new map uses the current syntax. */
static cJSON *firefox_device_map(cJSON *devices, bool create) {
        cJSON *add = cJSON_GetObjectItemCaseSensitive(devices, "Add");

        if (!devices || add)
                return add;
        if (create && (!devices->child || cJSON_GetObjectItemCaseSensitive(devices, "Delete")))
                return cJSON_AddObjectToObject(devices, "Add");
        return cJSON_GetObjectItemCaseSensitive(devices, "Delete") ? NULL : devices;
}

static cJSON *get_or_add_object(cJSON *parent, const char *key) {
        cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, key);

        return o ?: cJSON_AddObjectToObject(parent, key);
}

/* A policies.json that is a symbolic link (to a file a configuration tool
 * manages) stays one: the file it points to is replaced. */
static int firefox_policies_save(const char *path, const cJSON *doc) {
        _cleanup_free_ char *text = cJSON_Print(doc), *real = realpath(path, NULL);

        if (!text)
                return log_oom();
        return write_policy(real ?: path, text, "Firefox policies");
}

int firefox_policies_install(const char *path, cJSON *doc, const char *module) {
        _cleanup_json_ cJSON *fresh = NULL;
        cJSON *devices, *map, *old;

        if (!doc)
                doc = fresh = cJSON_CreateObject();
        devices = get_or_add_object(get_or_add_object(doc, "policies"), "SecurityDevices");
        map = firefox_device_map(devices, true);
        if (!map)
                return log_oom();
        old = cJSON_GetObjectItemCaseSensitive(map, FIREFOX_DEVICE_NAME);
        if (cJSON_IsString(old) && streq(old->valuestring, module)) {
                printf("Firefox: already loads p11-kit's trust module (%s).\n", path);
                return 0;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(map, FIREFOX_DEVICE_NAME);
        if (!cJSON_AddStringToObject(map, FIREFOX_DEVICE_NAME, module))
                return log_oom();
        if (firefox_policies_save(path, doc) < 0)
                return -EIO;
        printf("Firefox: %s loads p11-kit's trust module, so Firefox follows the system trust store.\n", path);
        return 0;
}

int firefox_policies_remove(const char *path, cJSON *doc) {
        cJSON *policies = cJSON_GetObjectItemCaseSensitive(doc, "policies");
        cJSON *devices = cJSON_GetObjectItemCaseSensitive(policies, "SecurityDevices");
        cJSON *map = firefox_device_map(devices, false);

        if (!cJSON_GetObjectItemCaseSensitive(map, FIREFOX_DEVICE_NAME)) {
                printf("Firefox: no security device of meshctl's in %s.\n", path);
                return 0;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(map, FIREFOX_DEVICE_NAME);
        /* Only what we made empty goes: nothing of the admin's. */
        if (map != devices && !map->child)
                cJSON_DeleteItemFromObjectCaseSensitive(devices, "Add");
        if (!devices->child)
                cJSON_DeleteItemFromObjectCaseSensitive(policies, "SecurityDevices");
        if (!policies->child && doc->child == policies && !policies->next) {
                if (unlink(path) < 0)
                        return log_error_errno(negative_errno(), "cannot remove %s: %m", path);
                rmdir_empty_parents(path, 2);
                printf("Removed %s\n", path);
                return 0;
        }
        if (firefox_policies_save(path, doc) < 0)
                return -EIO;
        printf("Firefox: removed meshctl's security device from %s.\n", path);
        return 0;
}
