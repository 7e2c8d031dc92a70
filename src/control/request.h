/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the server checks of a request beyond the shape of the messages
 * that src/shared/msg-*.h parse, by pure functions, so that unit tests and
 * fuzzers reach them without a server. On -EINVAL, error holds a one-line
 * message naming the field at fault; -ENOMEM is the only other error.
 * String results point into body, which must outlive them. Unknown fields
 * are ignored. */

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"
#include "msg-endpoints.h"
#include "msg-register.h"

struct cJSON;

#define REQUEST_TOKEN_MAX 256

/* NULL unless text (len bytes, need not be NUL-terminated) is a JSON object. */
struct cJSON *request_body_parse(const char *text, size_t len);

/* Every one of endpoints (canonical, from endpoints_request_parse()) may be
 * announced (endpoint_is_announceable(), mesh: the mesh's ranges); else
 * -EINVAL with error naming the first that may not. */
struct InAddrPrefix;
int endpoints_check_announceable(char *const *endpoints, const struct InAddrPrefix *mesh, size_t n_mesh,
                                 char *error, size_t error_size);

/* The token of an "Authorization: Bearer TOKEN" header value (h may be
 * NULL): a pointer into h, or NULL when h is no Bearer header or the token
 * is empty or longer than REQUEST_TOKEN_MAX. */
const char *request_bearer_token(const char *h);
