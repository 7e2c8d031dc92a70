/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cert-dir.h"
#include "cert-x509.h"
#include "fileio.h"
#include "macro.h"
#include "test-util.h"

typedef struct Fixture {
        char *parent;
        char *directory;
} Fixture;

static char *path_in(const char *dir, const char *name) {
        return test_path(dir, name);
}

static char *read_text(const char *dir, const char *name) {
        _cleanup_free_ char *p = path_in(dir, name);
        char *text = NULL;

        assert_int_equal(read_full_file(p, 4096, &text, NULL), 0);
        return text;
}

static mode_t mode_of(const char *dir, const char *name) {
        _cleanup_free_ char *p = name ? path_in(dir, name) : strdup(dir);
        struct stat st;

        assert_int_equal(stat(p, &st), 0);
        return st.st_mode & 07777;
}

static size_t count_sets(const char *parent) {
        DIR *d = opendir(parent);
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                n += strncmp(de->d_name, ".certs.", 7) == 0;
        closedir(d);
        return n;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        f->parent = test_tmpdir_new("test-cert-dir");
        f->directory = test_path(f->parent, "certs");
        *state = f;
        return 0;
}

/* Flat: the set, the stamp, and whatever a test left under known names. */
static int teardown(void **state) {
        Fixture *f = *state;
        static const char *const files[] = { CERT_FILE, CERT_KEY_FILE, CERT_CA_FILE, CERT_FULLCHAIN_FILE };
        _cleanup_free_ char *stamp = NULL;

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *p = path_in(f->directory, files[i]);
                (void) unlink(p);
        }
        (void) rmdir(f->directory);
        assert_true(asprintf(&stamp, "%s.renewed", f->directory) > 0);
        (void) unlink(stamp);
        cert_dir_remove_stale(f->parent);
        /* rmdir, not test_rm_rf(): the set and its stale copies left nothing else */
        assert_int_equal(rmdir(f->parent), 0);
        free(f->parent);
        free(f->directory);
        free(f);
        return 0;
}

static void test_store_and_read(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *cert = NULL, *ca = NULL, *fullchain = NULL;
        _cleanup_(cert_erase_key) char *key = NULL;
        uint64_t mtime = 1;

        /* never asked for */
        assert_int_equal(cert_dir_read(f->directory, &cert, &key, &ca, &mtime), 0);
        assert_null(cert);
        assert_null(key);
        assert_int_equal(mtime, 0);

        assert_int_equal(cert_dir_store(f->directory, f->parent, "CERT1", "KEY1", "CA1\n"), 0);
        assert_int_equal(cert_dir_read(f->directory, &cert, &key, &ca, &mtime), 0);
        assert_string_equal(cert, "CERT1");
        assert_string_equal(key, "KEY1");
        assert_string_equal(ca, "CA1\n");
        assert_true(mtime > 0);
        fullchain = read_text(f->directory, CERT_FULLCHAIN_FILE);
        assert_string_equal(fullchain, "CERT1\nCA1\n");
        assert_int_equal(mode_of(f->directory, NULL), 0700);
        assert_int_equal(mode_of(f->directory, CERT_KEY_FILE), 0600);
        assert_int_equal(mode_of(f->directory, CERT_FULLCHAIN_FILE), 0600);

        /* the second set is swapped in whole; the old one does not stay behind */
        cert = mfree(cert);
        ca = mfree(ca);
        fullchain = mfree(fullchain);
        cert_erase_key(&key);
        assert_int_equal(cert_dir_store(f->directory, f->parent, "CERT2\n", "KEY2", "CA2\n"), 0);
        assert_int_equal(cert_dir_read(f->directory, &cert, &key, &ca, &mtime), 0);
        assert_string_equal(cert, "CERT2\n");
        assert_string_equal(key, "KEY2");
        assert_string_equal(ca, "CA2\n");
        fullchain = read_text(f->directory, CERT_FULLCHAIN_FILE);
        assert_string_equal(fullchain, "CERT2\nCA2\n");
        assert_int_equal(count_sets(f->parent), 0);
}

static void test_read_incomplete(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *p = path_in(f->directory, CERT_FILE);
        char *cert = NULL, *key = NULL, *ca = NULL;
        uint64_t mtime;

        assert_int_equal(mkdir(f->directory, 0700), 0);
        assert_int_equal(write_file_atomic(p, "CERT", 4, 0600), 0);
        assert_int_equal(cert_dir_read(f->directory, &cert, &key, &ca, &mtime), -ENOENT);
}

static void test_remove_stale(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *stale = path_in(f->parent, ".certs.abc123"), *file = path_in(stale, CERT_KEY_FILE);

        assert_int_equal(mkdir(stale, 0700), 0);
        assert_int_equal(write_file_atomic(file, "KEY", 3, 0600), 0);
        assert_int_equal(count_sets(f->parent), 1);
        cert_dir_remove_stale(f->parent);
        assert_int_equal(count_sets(f->parent), 0);
}

static void test_stamp(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *stamp = NULL, *text = NULL;

        cert_dir_write_stamp(f->directory, "0a1b", 1700000000000000);
        assert_true(asprintf(&stamp, "%s.renewed", f->directory) > 0);
        assert_int_equal(read_full_file(stamp, 4096, &text, NULL), 0);
        assert_string_equal(text, "serial=0a1b\nnot_after_usec=1700000000000000\n");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_store_and_read, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_incomplete, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove_stale, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stamp, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
