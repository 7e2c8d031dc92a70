/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "key.h"
#include "msg-paths.h"
#include "varlink.h" /* _cleanup_json_ */

int paths_request_render(const PathReport *reports, size_t n, char **ret) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        cJSON *peers;

        if (!o || !(peers = cJSON_AddArrayToObject(o, "peers")))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                cJSON *p = cJSON_CreateObject();

                if (!p || !cJSON_AddItemToArray(peers, p)) {
                        cJSON_Delete(p);
                        return -ENOMEM;
                }
                if (!cJSON_AddStringToObject(p, "public_key", reports[i].public_key) ||
                    !cJSON_AddBoolToObject(p, "direct", reports[i].direct))
                        return -ENOMEM;
        }
        *ret = cJSON_PrintUnformatted(o);
        return *ret ? 0 : -ENOMEM;
}

static int compare_keys(const void *a, const void *b) {
        const PathReport *x = *(const PathReport *const *) a, *y = *(const PathReport *const *) b;
        return strcmp(x->public_key, y->public_key);
}

int paths_request_parse(const cJSON *body, PathReport **ret, size_t *ret_n, char *error, size_t error_size) {
        _cleanup_free_ PathReport *reports = NULL;
        _cleanup_free_ const PathReport **sorted = NULL;
        const cJSON *peers, *item;
        size_t n, i = 0;

        if (!cJSON_IsObject(body)) {
                snprintf(error, error_size, "body: not a JSON object");
                return -EINVAL;
        }
        peers = cJSON_GetObjectItemCaseSensitive(body, "peers");
        if (!cJSON_IsArray(peers)) {
                snprintf(error, error_size, "peers: missing or not an array");
                return -EINVAL;
        }
        n = (size_t) cJSON_GetArraySize(peers);
        if (n > PATHS_REPORTS_MAX) {
                snprintf(error, error_size, "peers: more than %i entries", PATHS_REPORTS_MAX);
                return -EINVAL;
        }

        reports = calloc(MAX(n, (size_t) 1), sizeof(PathReport));
        sorted = calloc(MAX(n, (size_t) 1), sizeof(PathReport *));
        if (!reports || !sorted)
                return -ENOMEM;

        cJSON_ArrayForEach(item, peers) {
                const cJSON *key, *direct;
                WgKey k;

                if (!cJSON_IsObject(item)) {
                        snprintf(error, error_size, "peers[%zu]: not an object", i);
                        return -EINVAL;
                }
                key = cJSON_GetObjectItemCaseSensitive(item, "public_key");
                direct = cJSON_GetObjectItemCaseSensitive(item, "direct");
                if (!cJSON_IsString(key) || key_from_base64(key->valuestring, &k) < 0 || key_is_zero(&k)) {
                        snprintf(error, error_size, "peers[%zu].public_key: not a WireGuard public key", i);
                        return -EINVAL;
                }
                if (!cJSON_IsBool(direct)) {
                        snprintf(error, error_size, "peers[%zu].direct: missing or not a boolean", i);
                        return -EINVAL;
                }
                reports[i] = (PathReport) {
                        .public_key = key->valuestring,
                        .direct = cJSON_IsTrue(direct),
                };
                sorted[i] = &reports[i];
                i++;
        }

        /* key_from_base64() is strict, so equal keys are equal strings */
        qsort(sorted, n, sizeof(*sorted), compare_keys);
        for (size_t j = 1; j < n; j++)
                if (streq(sorted[j - 1]->public_key, sorted[j]->public_key)) {
                        snprintf(error, error_size, "peers[%zu].public_key: listed twice",
                                 (size_t) (MAX(sorted[j - 1], sorted[j]) - reports));
                        return -EINVAL;
                }

        *ret = TAKE_PTR(reports);
        *ret_n = n;
        return 0;
}
