/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* Host name → DNS label: lower case, [a-z0-9-], no leading/trailing '-',
 * at most 63 characters; runs of other characters become one '-'.
 * Returns -EINVAL when nothing usable is left (then "node" is a fair default). */
int dns_label_from_hostname(const char *hostname, char **ret);
bool dns_label_is_valid(const char *s);
