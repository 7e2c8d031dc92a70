/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "key.h"
#include "macro.h"
#include "test-util.h"

static int hex_to_key(const char *hex, WgKey *ret) {
        for (size_t i = 0; i < WG_KEY_LEN; i++) {
                unsigned v;
                if (sscanf(hex + 2 * i, "%2x", &v) != 1)
                        return -EINVAL;
                ret->data[i] = (uint8_t) v;
        }
        return 0;
}

/* RFC 7748, section 6.1 (Alice). */
static void test_rfc7748_vector(void **state) {
        WgKey priv, pub, expected;

        assert_int_equal(hex_to_key("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", &priv),
                         0);
        assert_int_equal(hex_to_key("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
                                    &expected),
                         0);
        assert_int_equal(key_public_from_private(&priv, &pub), 0);
        assert_true(key_equal(&pub, &expected));
}

static void test_generate_clamped(void **state) {
        for (int i = 0; i < 64; i++) {
                WgKey k;

                assert_int_equal(key_generate_private(&k), 0);
                assert_false(key_is_zero(&k));
                assert_int_equal(k.data[0] & 7, 0);
                assert_int_equal(k.data[31] & 128, 0);
                assert_int_equal(k.data[31] & 64, 64);
        }
}

/* Compare with the real `wg pubkey`, the reference implementation. */
static void test_public_matches_wg(void **state) {
        const char *wg = getenv("WG");

        if (!wg || !*wg || access(wg, X_OK) < 0)
                skip();

        for (int i = 0; i < 16; i++) {
                WgKey priv, pub, theirs;
                char b64[WG_KEY_B64_LEN + 1], mine[WG_KEY_B64_LEN + 1], out[128] = {};
                _cleanup_free_ char *cmd = NULL;
                FILE *f;

                assert_int_equal(key_generate_private(&priv), 0);
                /* A few unclamped keys too: wg clamps on its own, as libsodium does. */
                if (i % 4 == 3)
                        priv.data[0] |= 7;
                key_to_base64(&priv, b64);
                assert_true(asprintf(&cmd, "printf '%%s\\n' '%s' | '%s' pubkey", b64, wg) > 0);
                f = popen(cmd, "r");
                assert_non_null(f);
                assert_non_null(fgets(out, sizeof(out), f));
                assert_int_equal(pclose(f), 0);
                out[strcspn(out, "\n")] = 0;

                assert_int_equal(key_public_from_private(&priv, &pub), 0);
                key_to_base64(&pub, mine);
                assert_string_equal(mine, out);
                assert_int_equal(key_from_base64(out, &theirs), 0);
                assert_true(key_equal(&theirs, &pub));
        }
}

static void test_base64_roundtrip(void **state) {
        for (int i = 0; i < 64; i++) {
                WgKey k, back;
                char b64[WG_KEY_B64_LEN + 1];

                assert_int_equal(key_generate_private(&k), 0);
                key_to_base64(&k, b64);
                assert_int_equal(strlen(b64), WG_KEY_B64_LEN);
                assert_int_equal(b64[WG_KEY_B64_LEN - 1], '=');
                assert_int_equal(key_from_base64(b64, &back), 0);
                assert_true(key_equal(&k, &back));
        }

        WgKey zero = {}, k;
        char b64[WG_KEY_B64_LEN + 1];
        key_to_base64(&zero, b64);
        assert_string_equal(b64, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert_int_equal(key_from_base64(b64, &k), 0);
        assert_true(key_is_zero(&k));
}

static void test_base64_reject(void **state) {
        static const char *const bad[] = {
                "",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* 43: no padding */
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  /* 44, no '=' */
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", /* 45 */
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",  /* 31 bytes */
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=",  /* stray low bits */
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA*AA=",  /* bad character */
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA AA=",  /* blank */
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-AA=",  /* URL-safe alphabet */
                " AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        };
        WgKey k = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(key_from_base64(bad[i], &k), -EINVAL);
        assert_int_equal(key_from_base64(NULL, &k), -EINVAL);
}

typedef struct TmpDir {
        char *path;
} TmpDir;

static int setup_tmpdir(void **state) {
        TmpDir *t = calloc(1, sizeof(TmpDir));
        if (!t)
                return -1;
        t->path = test_tmpdir_new("test-key");
        *state = t;
        return 0;
}

static int teardown_tmpdir(void **state) {
        TmpDir *t = *state;
        test_tmpdir_free(t->path);
        free(t);
        return 0;
}

static void write_text(const char *path, const char *text, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static void test_file(void **state) {
        TmpDir *t = *state;
        _cleanup_free_ char *path = NULL, *other = NULL;
        WgKey k, back;
        char b64[WG_KEY_B64_LEN + 1], text[128];
        struct stat st;

        assert_true(asprintf(&path, "%s/private.key", t->path) > 0);
        assert_true(asprintf(&other, "%s/other.key", t->path) > 0);

        assert_int_equal(key_generate_private(&k), 0);
        assert_int_equal(key_write_file(path, &k), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_size, WG_KEY_B64_LEN + 1);
        assert_int_equal(key_read_file(path, true, &back), 0);
        assert_true(key_equal(&k, &back));

        /* Replacing an existing, too open file leaves a 0600 file behind. */
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(key_generate_private(&k), 0);
        assert_int_equal(key_write_file(path, &k), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(key_read_file(path, true, &back), 0);
        assert_true(key_equal(&k, &back));

        /* No temporary files left behind. */
        _cleanup_free_ char *cmd = NULL;
        assert_true(asprintf(&cmd, "test $(ls -A '%s' | wc -l) -eq 1", t->path) > 0);
        assert_int_equal(system(cmd), 0);

        /* Group or other access is refused when the key must be private. */
        assert_int_equal(chmod(path, 0640), 0);
        assert_int_equal(key_read_file(path, true, &back), -EPERM);
        assert_int_equal(chmod(path, 0604), 0);
        assert_int_equal(key_read_file(path, true, &back), -EPERM);
        assert_int_equal(key_read_file(path, false, &back), 0);
        assert_true(key_equal(&k, &back));

        /* Content: newline optional, nothing else. */
        key_to_base64(&k, b64);
        write_text(other, b64, 0600);
        assert_int_equal(key_read_file(other, true, &back), 0);
        assert_true(key_equal(&k, &back));
        snprintf(text, sizeof(text), "%s\n\n", b64);
        write_text(other, text, 0600);
        assert_int_equal(key_read_file(other, true, &back), -EINVAL);
        snprintf(text, sizeof(text), " %s\n", b64);
        write_text(other, text, 0600);
        assert_int_equal(key_read_file(other, true, &back), -EINVAL);
        write_text(other, "", 0600);
        assert_int_equal(key_read_file(other, true, &back), -EINVAL);
        write_text(other, "not a key at all, but quite a bit longer than one would be\n", 0600);
        assert_int_equal(key_read_file(other, true, &back), -EINVAL);

        assert_int_equal(key_read_file(t->path, false, &back) < 0, 1); /* a directory */
        assert_int_equal(unlink(other), 0);
        assert_int_equal(key_read_file(other, true, &back), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rfc7748_vector),
                cmocka_unit_test(test_generate_clamped),
                cmocka_unit_test(test_public_matches_wg),
                cmocka_unit_test(test_base64_roundtrip),
                cmocka_unit_test(test_base64_reject),
                cmocka_unit_test_setup_teardown(test_file, setup_tmpdir, teardown_tmpdir),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
