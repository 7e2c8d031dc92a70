/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* NULL-terminated string arrays; strv_free() and strv_length() are in macro.h. */
int strv_copy(char *const *l, char ***ret);
bool strv_equal(char *const *a, char *const *b);
/* Appends s, which it takes over (freed on failure); s NULL is -ENOMEM, so
 * that strv_consume(&l, strdup(x)) needs no check of its own. */
int strv_consume(char ***l, char *s);
