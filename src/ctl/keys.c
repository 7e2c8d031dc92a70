/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "key.h"
#include "log.h"
#include "meshctl.h"

/* Secrets on the stack are wiped when they go out of scope. */
static void key_erase(WgKey *k) {
        explicit_bzero(k, sizeof(*k));
}

int verb_genkey(const Arguments *a, char **argv) {
        _cleanup_(key_erase) WgKey key = {};
        char b64[WG_KEY_B64_LEN + 1];
        int r;

        r = key_generate_private(&key);
        if (r < 0)
                return log_error_errno(r, "failed to generate a private key: %m");

        key_to_base64(&key, b64);
        printf("%s\n", b64);
        explicit_bzero(b64, sizeof(b64));
        return 0;
}

/* Like `wg pubkey`: the base64 private key on stdin, optionally followed by
 * white space; anything else is refused. */
int verb_pubkey(const Arguments *a, char **argv) {
        _cleanup_(key_erase) WgKey private_key = {};
        WgKey public_key;
        char buf[WG_KEY_B64_LEN * 4], b64[WG_KEY_B64_LEN + 1];
        size_t n;
        int r;

        n = fread(buf, 1, sizeof(buf) - 1, stdin);
        if (ferror(stdin))
                return log_error_errno(-EIO, "cannot read a private key from stdin");
        buf[n] = 0;
        while (n > 0 && strchr(" \t\r\n\v\f", buf[n - 1]))
                buf[--n] = 0;

        /* A NUL inside the input would hide what follows it from the parser. */
        r = strlen(buf) == n && getc(stdin) == EOF ? key_from_base64(buf, &private_key) : -EINVAL;
        explicit_bzero(buf, sizeof(buf));
        if (r < 0)
                return log_error_errno(r, "invalid private key on stdin");

        r = key_public_from_private(&private_key, &public_key);
        if (r < 0)
                return log_error_errno(r, "failed to compute the public key: %m");

        key_to_base64(&public_key, b64);
        printf("%s\n", b64);
        return 0;
}
