/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error-message.h"

int error_setf(char **ret_error, int error, const char *format, ...) {
        va_list ap;
        char *s = NULL;

        if (!ret_error)
                return error;

        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                s = NULL;
        va_end(ap);

        if (s) {
                for (char *c = s; *c; c++)
                        if ((unsigned char) *c < 0x20 || *c == 0x7f)
                                *c = '?';
                if (strlen(s) > ERROR_MESSAGE_MAX)
                        strcpy(s + ERROR_MESSAGE_MAX - strlen("..."), "...");
        }
        free(*ret_error);
        *ret_error = s;
        return error;
}
