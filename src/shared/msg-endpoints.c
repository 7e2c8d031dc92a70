/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "msg-endpoints.h"
#include "strv.h"
#include "varlink.h" /* _cleanup_json_ */

int endpoints_json_add(cJSON *o, char *const *l) {
        cJSON *a = cJSON_AddArrayToObject(o, "endpoints");

        if (!a)
                return -ENOMEM;
        for (char *const *i = l; i && *i; i++) {
                cJSON *s = cJSON_CreateString(*i);
                if (!s || !cJSON_AddItemToArray(a, s)) {
                        cJSON_Delete(s);
                        return -ENOMEM;
                }
        }
        return 0;
}

int endpoints_request_render(char *const *endpoints, char **ret) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        int r;

        if (!o)
                return -ENOMEM;
        r = endpoints_json_add(o, endpoints);
        if (r < 0)
                return r;
        *ret = cJSON_PrintUnformatted(o);
        return *ret ? 0 : -ENOMEM;
}

int endpoints_request_parse(const cJSON *body, bool required, char ***ret, char *error, size_t error_size) {
        _cleanup_strv_free_ char **l = NULL;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(body, "endpoints"), *e;
        size_t n, i = 0;

        if (!required && (!a || cJSON_IsNull(a))) {
                *ret = calloc(1, sizeof(char *));
                return *ret ? 0 : -ENOMEM;
        }
        if (!cJSON_IsArray(a)) {
                snprintf(error, error_size, "endpoints: not an array");
                return -EINVAL;
        }
        n = (size_t) cJSON_GetArraySize(a);
        if (n > ENDPOINTS_MSG_MAX) {
                snprintf(error, error_size, "endpoints: more than %i entries", ENDPOINTS_MSG_MAX);
                return -EINVAL;
        }
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        cJSON_ArrayForEach(e, a) {
                union sockaddr_union sa;
                char buf[ENDPOINT_STRLEN];

                if (!cJSON_IsString(e) || strlen(e->valuestring) >= ENDPOINT_STRLEN ||
                    endpoint_parse(e->valuestring, &sa) < 0) {
                        snprintf(error, error_size, "endpoints[%zu]: not ip:port or [ip6]:port", i);
                        return -EINVAL;
                }
                /* a link-local zone means nothing on another machine */
                if (sa.sa.sa_family == AF_INET6 && sa.in6.sin6_scope_id != 0) {
                        snprintf(error, error_size, "endpoints[%zu]: scoped address", i);
                        return -EINVAL;
                }
                if (!endpoint_format(&sa, buf, sizeof(buf))) {
                        snprintf(error, error_size, "endpoints[%zu]: not ip:port or [ip6]:port", i);
                        return -EINVAL;
                }
                l[i] = strdup(buf);
                if (!l[i])
                        return -ENOMEM;
                i++;
        }
        *ret = TAKE_PTR(l);
        return 0;
}
