/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A NETMAP DELTA applied, on the node, to the netmap text it is based on. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "error-message.h"
#include "netmap.h"

static inline void cjson_deletep(cJSON **j) {
        if (*j)
                cJSON_Delete(*j);
}

/* Every validation failure ends here: one line naming the field, and the
 * same errno for all so callers need not tell them apart. */
#define fail(ret_error, ...) error_setf(ret_error, -EBADMSG, __VA_ARGS__)

static const char *peer_key(const cJSON *peer) {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(peer, "public_key");
        return cJSON_IsString(k) ? k->valuestring : NULL;
}

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

bool netmap_json_is_delta(const char *json, size_t len) {
        static const char field[] = "\"delta_from\"";

        return memmem(json, len, field, strlen(field)) != NULL;
}

/* "devices" in a delta is the whole current list, sent only when it
 * changed: absent (or null) keeps the base's, [] removes the key, so that
 * the merged text is the full netmap the server would have sent. Placed
 * after "peers", as the full netmap has it. Anything else that is not a
 * list stays for netmap_parse() to refuse. */
static int merge_devices(cJSON *merged, cJSON *base) {
        cJSON *devices = cJSON_DetachItemFromObjectCaseSensitive(merged, "devices");

        if (!devices || cJSON_IsNull(devices)) {
                cJSON_Delete(devices);
                devices = cJSON_DetachItemFromObjectCaseSensitive(base, "devices");
        }
        if (!devices)
                return 0;
        if (cJSON_IsArray(devices) && cJSON_GetArraySize(devices) == 0) {
                cJSON_Delete(devices);
                return 0;
        }
        if (!cJSON_AddItemToObject(merged, "devices", devices)) {
                cJSON_Delete(devices);
                return -ENOMEM;
        }
        return 0;
}

/* A delta never carries "filter" (access policy): the base's stays; a
 * changed one comes in a full netmap. */
static int merge_filter(cJSON *merged, cJSON *base) {
        cJSON *filter;

        if (cJSON_GetObjectItemCaseSensitive(merged, "filter"))
                return 0;
        filter = cJSON_DetachItemFromObjectCaseSensitive(base, "filter");
        if (filter && !cJSON_AddItemToObject(merged, "filter", filter)) {
                cJSON_Delete(filter);
                return -ENOMEM;
        }
        return 0;
}

int netmap_delta_merge(const char *base, size_t base_len, const char *delta, size_t delta_len, char **ret,
                       size_t *ret_len, char **ret_error) {
        __attribute__((cleanup(cjson_deletep))) cJSON *b = NULL, *d = NULL;
        cJSON *peers, *changed, *removed, *from, *version, *e, *next, *merged;
        _cleanup_free_ const char **gone = NULL;
        size_t n_gone = 0;
        char *text;

        if (ret_error)
                *ret_error = NULL;
        b = cJSON_ParseWithLength(base, base_len);
        d = cJSON_ParseWithLength(delta, delta_len);
        if (!cJSON_IsObject(d))
                return fail(ret_error, "delta: not a JSON object");
        if (!cJSON_IsObject(b))
                return fail(ret_error, "base netmap: not a JSON object");

        from = cJSON_GetObjectItemCaseSensitive(d, "delta_from");
        version = cJSON_GetObjectItemCaseSensitive(b, "version");
        if (!cJSON_IsNumber(from) || !cJSON_IsNumber(version))
                return fail(ret_error, "delta_from: not a version number");
        if (from->valuedouble != version->valuedouble)
                return -ESTALE;
        changed = cJSON_GetObjectItemCaseSensitive(d, "peers_changed");
        removed = cJSON_GetObjectItemCaseSensitive(d, "peers_removed");
        if (!cJSON_IsArray(changed))
                return fail(ret_error, "peers_changed: not an array");
        if (!cJSON_IsArray(removed))
                return fail(ret_error, "peers_removed: not an array");
        /* the keys whose base entry goes: sorted, so merging stays
         * O(peers × log changes) when many peers changed at once */
        gone = calloc((size_t) cJSON_GetArraySize(changed) + (size_t) cJSON_GetArraySize(removed) + 1,
                      sizeof(char *));
        if (!gone)
                return -ENOMEM;
        cJSON_ArrayForEach(e, changed) {
                if (!peer_key(e))
                        return fail(ret_error, "peers_changed: an entry without a public_key");
                gone[n_gone++] = peer_key(e);
        }
        cJSON_ArrayForEach(e, removed) {
                if (!cJSON_IsString(e))
                        return fail(ret_error, "peers_removed: not a list of keys");
                gone[n_gone++] = e->valuestring;
        }
        qsort(gone, n_gone, sizeof(char *), strcmp_ptr);
        peers = cJSON_DetachItemFromObjectCaseSensitive(b, "peers");
        if (!cJSON_IsArray(peers)) {
                cJSON_Delete(peers);
                return fail(ret_error, "base netmap: peers not an array");
        }

        /* The base's peers that stay, in their order, then the changed ones:
         * netmap_parse() then validates the whole as any netmap. */
        for (e = peers->child; e; e = next) {
                const char *k = peer_key(e);

                next = e->next;
                if (!k || bsearch(&k, gone, n_gone, sizeof(char *), strcmp_ptr))
                        cJSON_Delete(cJSON_DetachItemViaPointer(peers, e));
        }
        while (changed->child)
                cJSON_AddItemToArray(peers, cJSON_DetachItemViaPointer(changed, changed->child));

        cJSON_DeleteItemFromObjectCaseSensitive(d, "delta_from");
        cJSON_DeleteItemFromObjectCaseSensitive(d, "peers_changed");
        cJSON_DeleteItemFromObjectCaseSensitive(d, "peers_removed");
        merged = d;
        if (!cJSON_AddItemToObject(merged, "peers", peers)) {
                cJSON_Delete(peers);
                return -ENOMEM;
        }
        if (merge_devices(merged, b) < 0 || merge_filter(merged, b) < 0)
                return -ENOMEM;
        text = cJSON_PrintUnformatted(merged);
        if (!text)
                return -ENOMEM;
        *ret_len = strlen(text);
        *ret = text;
        return 0;
}
