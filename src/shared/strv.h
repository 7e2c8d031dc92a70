/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* NULL-terminated string arrays; strv_free() and strv_length() are in macro.h. */
int strv_copy(char *const *l, char ***ret);
bool strv_equal(char *const *a, char *const *b);
