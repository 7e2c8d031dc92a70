/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Bodies of the HTTP API's requests (docs/protocol.md), validated at the
 * border by pure functions, so that unit tests and fuzzers reach them
 * without a server. On -EINVAL, error holds a one-line message naming the
 * field at fault; -ENOMEM is the only other error. String results point
 * into body, which must outlive them. Unknown fields are ignored. */

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

struct cJSON;

#define REQUEST_TOKEN_MAX 256
#define REQUEST_HOSTNAME_MAX 253

/* NULL unless text (len bytes, need not be NUL-terminated) is a JSON object. */
struct cJSON *request_body_parse(const char *text, size_t len);

/* "endpoints": an array of at most STORE_ENDPOINTS_MAX "ip:port" /
 * "[ip6]:port", without scope ids; *ret in canonical form (endpoint_format),
 * a strv that is empty when the field is absent or null and !required. */
int endpoints_request_parse(const struct cJSON *body, bool required, char ***ret, char *error,
                            size_t error_size);

/* Every one of endpoints (canonical, from endpoints_request_parse()) may be
 * announced (endpoint_is_announceable(), mesh: the mesh's ranges); else
 * -EINVAL with error naming the first that may not. */
struct InAddrPrefix;
int endpoints_check_announceable(char *const *endpoints, const struct InAddrPrefix *mesh, size_t n_mesh,
                                 char *error, size_t error_size);

/* POST /v1/register */
typedef struct RegisterRequest {
        const char *authkey;
        const char *public_key; /* base64 WireGuard key, not all-zero */
        const char *hostname;   /* not yet a DNS label */
        char **endpoints;       /* owned strv */
        const char *challenge;  /* NULL when missing: checked by the handler */
        const char *proof;      /* NULL when missing */
} RegisterRequest;

void register_request_done(RegisterRequest *r);
int register_request_parse(const struct cJSON *body, RegisterRequest *ret, char *error, size_t error_size);

/* The token of an "Authorization: Bearer TOKEN" header value (h may be
 * NULL): a pointer into h, or NULL when h is no Bearer header or the token
 * is empty or longer than REQUEST_TOKEN_MAX. */
const char *request_bearer_token(const char *h);
