/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The body of POST /v1/paths (docs/protocol.md), validated at the border:
 * {"peers": [{"public_key": "BASE64", "direct": BOOL}, …]}. Unknown fields
 * are ignored; a key listed twice is an error, so that one request cannot
 * both set and clear a pair. */

#include <stddef.h>

#include "store.h"

/* More peers than a mesh of the scale target has; the 1 MiB body limit
 * binds first anyway. */
#define PATHS_REPORTS_MAX 16384

/* On success *ret (n_ret entries) points into body: it must outlive them;
 * free the array with free(). On -EINVAL, error names the field. */
int paths_request_parse(const struct cJSON *body, StorePathReport **ret, size_t *ret_n, char *error,
                        size_t error_size);
