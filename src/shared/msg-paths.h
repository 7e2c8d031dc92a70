/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The body of POST /v1/paths (docs/protocol.md), the paths report:
 * {"peers": [{"public_key": "BASE64", "direct": BOOL}, …]}. Unknown fields
 * are ignored; a key listed twice is an error, so that one request cannot
 * both set and clear a pair. */

#include <stdbool.h>
#include <stddef.h>

struct cJSON;

/* More peers than a mesh of the scale target has; the 1 MiB body limit
 * binds first anyway. */
#define PATHS_REPORTS_MAX 16384

/* What one node found about its direct path to a peer. */
typedef struct PathReport {
        const char *public_key; /* the peer's, base64 */
        bool direct;
} PathReport;

int paths_request_render(const PathReport *reports, size_t n, char **ret);

/* On success *ret (n_ret entries) points into body: it must outlive them;
 * free the array with free(). On -EINVAL, error names the field; -ENOMEM
 * is the only other error. */
int paths_request_parse(const struct cJSON *body, PathReport **ret, size_t *ret_n, char *error,
                        size_t error_size);
