/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One-line error messages for validators of what others sent (netmaps, CA
 * certificates): the message quotes that input, so it is made one line
 * (control characters become '?') and at most ERROR_MESSAGE_MAX bytes,
 * whatever the input was. */

#include "macro.h"

#define ERROR_MESSAGE_MAX 256

/* Replaces *ret_error (when ret_error is non-NULL) with the formatted
 * message, NULL when out of memory; returns error, for one-line failure
 * paths: return error_setf(ret_error, -EBADMSG, "…", …); */
_printf_(3, 4) int error_setf(char **ret_error, int error, const char *format, ...);
