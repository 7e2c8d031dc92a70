/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The "endpoints" field (docs/protocol.md): where a node can be reached,
 * an array of at most ENDPOINTS_MSG_MAX "ip:port" / "[ip6]:port" without
 * scope ids. Sent alone as the body of POST /v1/endpoints, and inside the
 * body of POST /v1/register (msg-register.h). */

#include <stdbool.h>
#include <stddef.h>

struct cJSON;

/* as many as the control server stores (STORE_ENDPOINTS_MAX) */
#define ENDPOINTS_MSG_MAX 16

/* Adds "endpoints": [...] to o, [] when l is NULL. */
int endpoints_json_add(struct cJSON *o, char *const *l);

/* The body of POST /v1/endpoints: {"endpoints":[...]}. */
int endpoints_request_render(char *const *endpoints, char **ret);

/* "endpoints" of body; *ret in canonical form (endpoint_format), a strv
 * that is empty when the field is absent or null and !required. On
 * -EINVAL, error holds a one-line message naming the entry at fault;
 * -ENOMEM is the only other error. */
int endpoints_request_parse(const struct cJSON *body, bool required, char ***ret, char *error,
                            size_t error_size);
