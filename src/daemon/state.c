/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "constants.h"
#include "fileio.h"
#include "log.h"
#include "messages.h"
#include "state.h"
#include "varlink.h"

#define STATE_FILE_MAX (64U * 1024U * 1024U)

void credentials_done(Credentials *c) {
        free(c->control_url);
        free(c->control_pin);
        free(c->name);
        free(c->domain);
        free(c->ipv4_range);
        free(c->ipv6_range);
        free(c->ca_sha256);
        if (c->token)
                erase_and_free(c->token, strlen(c->token));
        *c = (Credentials) {};
}

int state_dir_prepare(const char *dir) {
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int state_path(const char *dir, const char *name, char **ret) {
        return asprintf(ret, "%s/%s", dir, name) < 0 ? -ENOMEM : 0;
}

int state_load_or_create_key(const char *dir, WgKey *ret, bool *ret_created) {
        _cleanup_free_ char *path = NULL;
        WgKey key;
        char b64[WG_KEY_B64_LEN + 2];
        int r;

        r = state_path(dir, "private.key", &path);
        if (r < 0)
                return r;

        r = key_read_file(path, true, ret);
        if (r >= 0) {
                if (ret_created)
                        *ret_created = false;
                return 0;
        }
        if (r != -ENOENT)
                return log_error_errno(r, "Failed to read private key %s: %m", path);

        r = key_generate_private(&key);
        if (r < 0)
                return log_error_errno(r, "Failed to generate private key: %m");
        r = key_write_file(path, &key);
        if (r < 0) {
                explicit_bzero(&key, sizeof(key));
                return log_error_errno(r, "Failed to write private key %s: %m", path);
        }

        WgKey pub;
        (void) key_public_from_private(&key, &pub);
        key_to_base64(&pub, b64);
        log_full_errno_fields(LOG_NOTICE, 0, &((LogFields) { .message_id = MESSAGE_KEY_CREATED }),
                              "Created new node key, public key %s.", b64);
        *ret = key;
        explicit_bzero(&key, sizeof(key));
        if (ret_created)
                *ret_created = true;
        return 0;
}

static int json_get_string(const cJSON *o, const char *name, char **ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
        if (!cJSON_IsString(v) || !v->valuestring[0])
                return -EBADMSG;
        *ret = strdup(v->valuestring);
        return *ret ? 0 : -ENOMEM;
}

/* Absent or null: *ret stays NULL (a node.json from before pins). */
static int json_get_optional_string(const cJSON *o, const char *name, char **ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
        if (!v || cJSON_IsNull(v))
                return 0;
        return json_get_string(o, name, ret);
}

int state_load_credentials(const char *dir, Credentials *ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_json_ cJSON *o = NULL;
        _cleanup_(credentials_done) Credentials c = {};
        const cJSON *id;
        int r;

        r = state_path(dir, "node.json", &path);
        if (r < 0)
                return r;
        r = read_full_file(path, STATE_FILE_MAX, &text, NULL);
        if (r < 0)
                return r;
        o = cJSON_Parse(text);
        explicit_bzero(text, strlen(text));
        if (!cJSON_IsObject(o))
                return log_debug_errno(-EBADMSG, "%s: not a JSON object.", path);
        id = cJSON_GetObjectItemCaseSensitive(o, "node_id");
        if (json_get_string(o, "control_url", &c.control_url) < 0 ||
            json_get_string(o, "control_pin", &c.control_pin) < 0 || json_get_string(o, "name", &c.name) < 0 ||
            json_get_string(o, "token", &c.token) < 0 || !cJSON_IsNumber(id) || id->valuedouble < 0 ||
            json_get_optional_string(o, "domain", &c.domain) < 0 ||
            json_get_optional_string(o, "ipv4_range", &c.ipv4_range) < 0 ||
            json_get_optional_string(o, "ipv6_range", &c.ipv6_range) < 0 ||
            json_get_optional_string(o, "ca_sha256", &c.ca_sha256) < 0)
                return log_debug_errno(-EBADMSG, "%s: missing or invalid fields.", path);
        /* Pins come as a set: a domain without its IPv4 range is damage. */
        if (!!c.domain != !!c.ipv4_range || (!c.domain && (c.ipv6_range || c.ca_sha256)))
                return log_debug_errno(-EBADMSG, "%s: incomplete pins.", path);
        c.node_id = (uint64_t) id->valuedouble;

        *ret = c;
        c = (Credentials) {};
        return 0;
}

int state_save_credentials(const char *dir, const Credentials *c) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        int r;

        if (!o || !cJSON_AddStringToObject(o, "control_url", c->control_url) ||
            !cJSON_AddStringToObject(o, "control_pin", c->control_pin) ||
            !cJSON_AddNumberToObject(o, "node_id", (double) c->node_id) ||
            !cJSON_AddStringToObject(o, "name", c->name) || !cJSON_AddStringToObject(o, "token", c->token) ||
            (c->domain && !cJSON_AddStringToObject(o, "domain", c->domain)) ||
            (c->ipv4_range && !cJSON_AddStringToObject(o, "ipv4_range", c->ipv4_range)) ||
            (c->ipv6_range && !cJSON_AddStringToObject(o, "ipv6_range", c->ipv6_range)) ||
            (c->ca_sha256 && !cJSON_AddStringToObject(o, "ca_sha256", c->ca_sha256)))
                return -ENOMEM;
        text = cJSON_Print(o);
        if (!text)
                return -ENOMEM;
        r = state_path(dir, "node.json", &path);
        if (r < 0)
                return r;
        r = write_file_atomic(path, text, strlen(text), 0600);
        explicit_bzero(text, strlen(text));
        return r;
}

int state_load_netmap(const char *dir, char **ret_json, size_t *ret_len) {
        _cleanup_free_ char *path = NULL;
        int r = state_path(dir, MESHD_NETMAP_CACHE_NAME, &path);
        if (r < 0)
                return r;
        return read_full_file(path, STATE_FILE_MAX, ret_json, ret_len);
}

int state_save_netmap(const char *dir, const char *json, size_t len) {
        _cleanup_free_ char *path = NULL;
        int r = state_path(dir, MESHD_NETMAP_CACHE_NAME, &path);
        if (r < 0)
                return r;
        return write_file_atomic(path, json, len, 0600);
}

int state_set_aside_credentials(const char *dir) {
        _cleanup_free_ char *path = NULL, *aside = NULL, *netmap = NULL;

        if (state_path(dir, "node.json", &path) < 0 || state_path(dir, "node.json.corrupt", &aside) < 0 ||
            state_path(dir, MESHD_NETMAP_CACHE_NAME, &netmap) < 0)
                return -ENOMEM;
        if (rename(path, aside) < 0)
                return -errno;
        /* Without credentials a cached netmap is never used; a re-join writes a new one. */
        if (unlink(netmap) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int state_remove_membership(const char *dir) {
        static const char *const files[] = { "node.json", MESHD_NETMAP_CACHE_NAME };
        int ret = 0;

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *path = NULL;
                if (state_path(dir, files[i], &path) < 0)
                        return -ENOMEM;
                if (unlink(path) < 0 && errno != ENOENT && ret == 0)
                        ret = -errno;
        }
        return ret;
}
