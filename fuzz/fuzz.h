/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the libFuzzer harnesses in fuzz/ (fuzz/README.md). Each harness
 * feeds its input to the pure parsers of one border of meshd and checks
 * what the headers promise about the result; a broken promise aborts, so
 * that libFuzzer keeps the input as a crash like any sanitizer report. */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define fuzz_check(expr)                                                                           \
        do {                                                                                       \
                if (!(expr)) {                                                                     \
                        fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__, __LINE__, #expr); \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

/* The input as a C string: a copy cut at the first NUL. */
static inline char *fuzz_string(const uint8_t *data, size_t size) {
        char *s = strndup((const char *) data, size);
        fuzz_check(s);
        return s;
}

/* Warnings about bad input are the expected outcome here, millions of
 * times; printing them would only slow the fuzzer down. */
static inline void fuzz_quiet_logs(void) {
        log_set_max_level(LOG_CRIT);
}
