/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Running a helper program (update-ca-certificates, certutil) and waiting
 * for it: meshctl leaves the trust stores' formats to their own tools. */

#include <stdbool.h>

typedef struct SpawnOptions {
        /* Written to its stdin, then closed; NULL: /dev/null. */
        const char *input;
        /* Its stdout: not ours to print (a progress report) unless captured. */
        bool quiet_stdout;
        /* Its stderr: hidden when the caller words the failure itself. */
        bool quiet_stderr;
} SpawnOptions;

/* The program's path: PATH, then the sbin directories a user's PATH may
 * lack. NULL when not found (or out of memory). */
char *find_program(const char *name);

/* Runs program with argv and waits. Returns its exit status (0..255), or a
 * negative errno when it could not run or died of a signal (logged). With
 * ret_stdout, its standard output (up to 4 MiB) is returned there. */
int spawn_program(const char *program, char *const argv[], const SpawnOptions *o, char **ret_stdout);
