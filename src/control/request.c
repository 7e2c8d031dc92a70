/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "endpoint.h"
#include "key.h"
#include "request.h"
#include "store.h"
#include "strv.h"

cJSON *request_body_parse(const char *text, size_t len) {
        cJSON *o;

        if (!text)
                return NULL;
        o = cJSON_ParseWithLength(text, len);
        if (!cJSON_IsObject(o)) {
                cJSON_Delete(o);
                return NULL;
        }
        return o;
}

static const char *json_string(const cJSON *o, const char *field) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
        return cJSON_IsString(v) ? v->valuestring : NULL;
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
        if (n > STORE_ENDPOINTS_MAX) {
                snprintf(error, error_size, "endpoints: more than %i entries", STORE_ENDPOINTS_MAX);
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

int endpoints_check_announceable(char *const *endpoints, const InAddrPrefix *mesh, size_t n_mesh,
                                 char *error, size_t error_size) {
        for (size_t i = 0; endpoints && endpoints[i]; i++) {
                union sockaddr_union sa;
                const char *why;

                if (endpoint_parse(endpoints[i], &sa) < 0)
                        why = "not ip:port or [ip6]:port";
                else
                        why = endpoint_unannounceable_reason(&sa, mesh, n_mesh);
                if (why) {
                        snprintf(error, error_size, "endpoints[%zu]: %s: %s", i, endpoints[i], why);
                        return -EINVAL;
                }
        }
        return 0;
}

void register_request_done(RegisterRequest *r) {
        r->endpoints = strv_free(r->endpoints);
}

int register_request_parse(const cJSON *body, RegisterRequest *ret, char *error, size_t error_size) {
        RegisterRequest req = {};
        WgKey key;
        int r;

        req.authkey = json_string(body, "authkey");
        if (!req.authkey || !*req.authkey || strlen(req.authkey) > REQUEST_TOKEN_MAX) {
                snprintf(error, error_size, "authkey: missing or not a string");
                return -EINVAL;
        }
        req.public_key = json_string(body, "public_key");
        if (!req.public_key || key_from_base64(req.public_key, &key) < 0 || key_is_zero(&key)) {
                snprintf(error, error_size, "public_key: not a WireGuard public key");
                return -EINVAL;
        }
        req.hostname = json_string(body, "hostname");
        if (!req.hostname || strlen(req.hostname) > REQUEST_HOSTNAME_MAX) {
                snprintf(error, error_size, "hostname: missing, not a string or too long");
                return -EINVAL;
        }
        r = endpoints_request_parse(body, false, &req.endpoints, error, error_size);
        if (r < 0)
                return r;
        /* absent ones are refused with 401 by the handler, not 400 here */
        req.challenge = json_string(body, "challenge");
        req.proof = json_string(body, "proof");
        *ret = req;
        return 0;
}

const char *request_bearer_token(const char *h) {
        if (!h || strncasecmp(h, "Bearer ", 7) != 0)
                return NULL;
        h += 7;
        h += strspn(h, " ");
        if (*h == 0 || strlen(h) > REQUEST_TOKEN_MAX)
                return NULL;
        return h;
}
