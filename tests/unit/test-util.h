/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Fixtures shared by the cmocka unit tests: temporary directories and small
 * files. Every helper asserts (cmocka) instead of returning an error, so a
 * test reads as what it checks; only test_rm_rf() returns one, because
 * teardowns must go on. Linked into every test by tests/unit/meson.build;
 * needs libc and cmocka only (test-nss-mesh links no src/shared/).
 *
 *   static int setup(void **state) {
 *           Fixture *f = calloc(1, sizeof(*f));
 *           assert_non_null(f);
 *           f->dir = test_tmpdir_new("test-foo");      // /tmp/test-foo-XXXXXX
 *           ...
 *   }
 *   static int teardown(void **state) {
 *           Fixture *f = *state;
 *           test_tmpdir_free(f->dir);                  // rm -rf, then free
 *           ...
 *   }
 *
 * or, inside one test:
 *
 *   _cleanup_(test_tmpdir_freep) char *dir = test_tmpdir_new("test-foo");
 *   _cleanup_free_ char *p = test_path(dir, "netmap.json");
 *   test_write_file(p, "{}", 0600);
 */

#include <sys/types.h>

/* A new, empty directory /tmp/PREFIX-XXXXXX (mode 0700, mkdtemp(3)); the
 * path is malloc()ed. Under /tmp rather than $TMPDIR: tests bind AF_UNIX
 * sockets inside it, whose paths must stay short. */
char *test_tmpdir_new(const char *prefix);

/* Removes dir and everything below it (test_rm_rf()), then frees the
 * string. NULL is fine. */
void test_tmpdir_free(char *dir);
/* For _cleanup_(test_tmpdir_freep). */
void test_tmpdir_freep(char **dir);

/* rm -rf path: depth first, never following symlinks. A missing path is
 * not an error. Returns 0 or the first -errno. */
int test_rm_rf(const char *path);

/* "DIR/NAME", malloc()ed. */
char *test_path(const char *dir, const char *name);

/* Creates or truncates path with text and mode (mode applies to a new
 * file only, as open(2) does). */
void test_write_file(const char *path, const char *text, mode_t mode);

/* The whole contents of path, NUL-terminated, malloc()ed. */
char *test_read_file(const char *path);
