/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by policy-parse.c, policy-syntax.c and policy-lines.c only. */

#include <cjson/cJSON.h>
#include <string.h>

#include "policy.h"

/* Every item of a parsed JSON text with the line its value starts on and,
 * for members of an object, the line of its key. */
typedef struct PolicyLine {
        const cJSON *item;
        unsigned key_line, line;
} PolicyLine;

typedef struct PolicyLines {
        PolicyLine *v; /* sorted by item after policy_lines_build() */
        size_t n, allocated;
} PolicyLines;

int policy_lines_build(const char *text, size_t len, const cJSON *root, PolicyLines *ret);
void policy_lines_done(PolicyLines *l);
unsigned policy_line_of(const PolicyLines *l, const cJSON *item);
unsigned policy_key_line_of(const PolicyLines *l, const cJSON *item);
/* 1-based line of text + offset */
unsigned policy_line_at(const char *text, size_t offset);

/* policy-syntax.c: the strings inside the file. On error they return
 * -EINVAL and a message without the line (the caller adds it). */
int policy_selector_parse(const char *s, bool dst, PolicySelector *ret, char **ret_error);
int policy_rule_parse(const char *s, PolicyRule *ret, char **ret_error);
int policy_test_parse(const char *s, PolicyTest *ret, char **ret_error);
int policy_ports_parse(const char *s, NetmapFilterPort **ret, size_t *ret_n, char **ret_error);
/* "192.168.1.0/24", "10.1.2.3" (a /32), "fd00::/64": no host bits set */
int policy_prefix_parse(const char *s, InAddrPrefix *ret);
bool policy_name_is_valid(const char *s);
void policy_selector_done(PolicySelector *s);

static inline const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}
