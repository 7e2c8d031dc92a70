/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "endpoint.h"
#include "request.h"

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

int endpoints_check_announceable(char *const *endpoints, const InAddrPrefix *mesh, size_t n_mesh, char *error,
                                 size_t error_size) {
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

const char *request_bearer_token(const char *h) {
        if (!h || strncasecmp(h, "Bearer ", 7) != 0)
                return NULL;
        h += 7;
        h += strspn(h, " ");
        if (*h == 0 || strlen(h) > REQUEST_TOKEN_MAX)
                return NULL;
        return h;
}
