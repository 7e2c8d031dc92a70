/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The request head on the TLS relay's own port (docs/protocol.md, "GET
 * /v1/relay") comes from anyone who completes a TLS handshake. Whatever the
 * bytes, the parser answers one of its four results; a complete head lies
 * inside the bytes given, every value it returns lies inside the head and
 * holds no line break, and each shorter prefix of a complete head is
 * "more, please" or bad, never complete. */

#include <errno.h>

#include "fuzz.h"
#include "relay-head.h"

static bool inside(const char *p, const char *buf, size_t size) {
        return !p || (p >= buf && p + strlen(p) < buf + size && !strpbrk(p, "\r\n"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char buf[RELAY_HEAD_MAX + 1];
        RelayHead h;
        int r;

        if (size > RELAY_HEAD_MAX)
                size = RELAY_HEAD_MAX;
        memcpy(buf, data, size);
        r = relay_head_parse(buf, size, &h);
        fuzz_check(r == 1 || r == 0 || r == -E2BIG || r == -EBADMSG);
        fuzz_check(r != -E2BIG || size == RELAY_HEAD_MAX);
        if (r != 1)
                return 0;
        fuzz_check(h.size >= 4 && h.size <= size);
        fuzz_check(h.method && h.target && *h.method && *h.target);
        fuzz_check(inside(h.method, buf, h.size) && inside(h.target, buf, h.size));
        fuzz_check(inside(h.authorization, buf, h.size) && inside(h.upgrade, buf, h.size));

        for (size_t n = h.size - 1; n > 0 && n + 64 >= h.size; n--) {
                memcpy(buf, data, n);
                r = relay_head_parse(buf, n, &h);
                fuzz_check(r == 0 || r == -EBADMSG);
        }
        return 0;
}
