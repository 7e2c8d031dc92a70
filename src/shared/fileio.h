/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

int write_all(int fd, const void *data, size_t len);
/* Replaces path atomically: a temporary file next to it (created 0600 by
 * mkostemp, then given mode), fsync, rename, fsync of the directory. A
 * crash leaves either the old or the new content, never half a file. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Reads a whole file, NUL-terminated; -EFBIG when larger than max_size. */
int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_len);
