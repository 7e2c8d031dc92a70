/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* Host name → DNS label: lower case, [a-z0-9-], no leading/trailing '-',
 * at most 63 characters; runs of other characters become one '-'. Only the
 * part before the first '.' is used ("nas.example.com" → "nas"), since the
 * mesh appends its own domain. Bytes ≥ 0x80 (UTF-8) count as "other".
 * Returns -EINVAL when nothing usable is left (then "node" is a fair default). */
int dns_label_from_hostname(const char *hostname, char **ret);
/* Exactly what dns_label_from_hostname() produces: lower case only. */
bool dns_label_is_valid(const char *s);
/* Labels never given to a node, as names that resolvers, browsers and the
 * mesh itself treat specially: "localhost", "wpad" (proxy auto-discovery),
 * "isatap", "hub" (the hub's own name), … (docs/protocol.md). */
bool dns_label_is_reserved(const char *label);
