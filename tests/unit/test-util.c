/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-util.h"

char *test_tmpdir_new(const char *prefix) {
        char *dir = NULL;

        assert_non_null(prefix);
        assert_true(asprintf(&dir, "/tmp/%s-XXXXXX", prefix) > 0);
        assert_non_null(mkdtemp(dir));
        return dir;
}

/* nftw() stops at the first callback that returns non-zero and returns
 * that value: a positive errno here, told apart from nftw's own -1. */
static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (remove(path) < 0 && errno != ENOENT)
                return errno;
        return 0;
}

int test_rm_rf(const char *path) {
        int r;

        if (!path)
                return 0;
        r = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        if (r == -1)
                return errno == ENOENT ? 0 : -errno;
        return -r;
}

void test_tmpdir_free(char *dir) {
        (void) test_rm_rf(dir);
        free(dir);
}

void test_tmpdir_freep(char **dir) {
        test_tmpdir_free(*dir);
        *dir = NULL;
}

char *test_path(const char *dir, const char *name) {
        char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

void test_write_file(const char *path, const char *text, mode_t mode) {
        size_t len = strlen(text);
        int fd;

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, len), (ssize_t) len);
        assert_int_equal(close(fd), 0);
}

char *test_read_file(const char *path) {
        char *text = NULL;
        size_t len = 0;
        ssize_t n;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        do {
                char *bigger = realloc(text, len + 4096 + 1);

                assert_non_null(bigger);
                text = bigger;
                n = read(fd, text + len, 4096);
                assert_true(n >= 0);
                len += (size_t) n;
        } while (n > 0);
        assert_int_equal(close(fd), 0);
        text[len] = 0;
        return text;
}
