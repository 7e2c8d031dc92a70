/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "key.h"
#include "log.h"
#include "macro.h"

static int sodium_ready(void) {
        /* Idempotent and thread-safe; it only seeds the RNG once. */
        if (sodium_init() < 0)
                return log_debug_errno(-EIO, "Failed to initialise libsodium.");
        return 0;
}

int key_generate_private(WgKey *ret) {
        int r;

        if (!ret)
                return -EINVAL;
        r = sodium_ready();
        if (r < 0)
                return r;

        randombytes_buf(ret->data, sizeof(ret->data));
        /* Curve25519 clamping, as `wg genkey` does it, so that a key we print
         * is byte-for-byte what wg(8) would have made. */
        ret->data[0] &= 248;
        ret->data[31] = (ret->data[31] & 127) | 64;
        return 0;
}

int key_public_from_private(const WgKey *private_key, WgKey *ret) {
        int r;

        if (!private_key || !ret)
                return -EINVAL;
        r = sodium_ready();
        if (r < 0)
                return r;

        /* libsodium clamps the scalar itself, as wg(8) does, so unclamped
         * private keys map to the same public key in both. It refuses only
         * results of all zeros (small-order input). */
        if (crypto_scalarmult_curve25519_base(ret->data, private_key->data) != 0)
                return -EINVAL;
        return 0;
}

void key_to_base64(const WgKey *key, char buf[static WG_KEY_B64_LEN + 1]) {
        sodium_bin2base64(buf, WG_KEY_B64_LEN + 1, key->data, sizeof(key->data),
                          sodium_base64_VARIANT_ORIGINAL);
}

int key_from_base64(const char *s, WgKey *ret) {
        WgKey k;
        size_t len = 0;
        const char *end = NULL;
        int r;

        if (!s || !ret)
                return -EINVAL;
        /* 32 bytes encode to 43 characters and exactly one '=' pad. */
        if (strlen(s) != WG_KEY_B64_LEN || s[WG_KEY_B64_LEN - 1] != '=' || s[WG_KEY_B64_LEN - 2] == '=')
                return -EINVAL;

        r = sodium_ready();
        if (r < 0)
                return r;

        /* libsodium also rejects non-zero padding bits, so only the one
         * canonical spelling of each key is accepted. */
        if (sodium_base642bin(k.data, sizeof(k.data), s, WG_KEY_B64_LEN, NULL, &len, &end,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            len != sizeof(k.data) || end != s + WG_KEY_B64_LEN) {
                sodium_memzero(&k, sizeof(k));
                return -EINVAL;
        }

        *ret = k;
        sodium_memzero(&k, sizeof(k));
        return 0;
}

bool key_is_zero(const WgKey *key) {
        return sodium_is_zero(key->data, sizeof(key->data));
}

bool key_equal(const WgKey *a, const WgKey *b) {
        return sodium_memcmp(a->data, b->data, sizeof(a->data)) == 0;
}

int key_read_file(const char *path, bool must_be_private, WgKey *ret) {
        _cleanup_close_ int fd = -EBADF;
        char buf[WG_KEY_B64_LEN + 3];
        size_t n = 0;
        struct stat st;
        int r;

        if (!path || !ret)
                return -EINVAL;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_debug_errno(errno, "Failed to open key file %s: %m", path);
        if (fstat(fd, &st) < 0)
                return log_debug_errno(errno, "Failed to stat key file %s: %m", path);
        if (!S_ISREG(st.st_mode))
                return log_debug_errno(-EBADFD, "Key file %s is not a regular file.", path);
        /* Any group/other access is refused, not just read access: a key
         * file others can write is a key others can choose. */
        if (must_be_private && (st.st_mode & 0077))
                return log_debug_errno(-EPERM, "Key file %s is accessible by group or others (mode %04o).",
                                       path, (unsigned) (st.st_mode & 07777));

        /* Read one byte more than a valid file can hold, to tell "too long". */
        for (;;) {
                ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = log_debug_errno(errno, "Failed to read key file %s: %m", path);
                        explicit_bzero(buf, sizeof(buf));
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n >= sizeof(buf) - 1)
                        break;
        }

        if (n == WG_KEY_B64_LEN + 1 && buf[WG_KEY_B64_LEN] == '\n')
                n--;
        buf[n] = 0;
        r = n == WG_KEY_B64_LEN ? key_from_base64(buf, ret) : -EINVAL;
        explicit_bzero(buf, sizeof(buf));
        if (r < 0)
                return log_debug_errno(r, "Key file %s does not hold a base64 WireGuard key.", path);
        return 0;
}

int key_write_file(const char *path, const WgKey *key) {
        char buf[WG_KEY_B64_LEN + 2];
        int r;

        if (!path || !key)
                return -EINVAL;

        key_to_base64(key, buf);
        buf[WG_KEY_B64_LEN] = '\n';
        buf[WG_KEY_B64_LEN + 1] = 0;
        /* The temporary file is created 0600 by mkostemp(): the key is never briefly public. */
        r = write_file_atomic(path, buf, WG_KEY_B64_LEN + 1, 0600);
        explicit_bzero(buf, sizeof(buf));
        if (r < 0)
                return log_debug_errno(r, "Failed to write key file %s: %m", path);
        return 0;
}
