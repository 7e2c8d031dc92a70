/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The reply to GET /v1/relay is the first thing meshd reads from the control
 * server on a relay connection (docs/protocol.md). The input is the reply;
 * its first byte chooses how it is cut into reads, as the client judges it
 * after each. A verdict must come once the connection ends, a refusal's
 * reason must be one printable line, and a 101 must end its head where the
 * frames begin. The rest of the input is also tried as a node token: a
 * request that is built must keep its seven lines. */

#include "fuzz.h"
#include "relay-upgrade.h"

#define REASON_LEN_MAX 300

static void check_reason(const char *reason) {
        fuzz_check(reason);
        fuzz_check(strncmp(reason, "relay refused: ", 15) == 0);
        fuzz_check(strlen(reason) <= REASON_LEN_MAX);
        for (const char *p = reason; *p; p++)
                fuzz_check((unsigned char) *p >= ' ' && *p != 0x7f);
}

/* Returns the verdict after the bytes [0, len), judged read by read. */
static int judge(const char *reply, size_t size, size_t step, size_t *ret_head) {
        static char buf[RELAY_UPGRADE_REPLY_MAX + 1];
        size_t have = 0;

        for (;;) {
                size_t take = MIN(step, size - have);
                bool eof;
                char *reason = NULL;
                int r;

                take = MIN(take, RELAY_UPGRADE_REPLY_MAX - have);
                memcpy(buf + have, reply + have, take);
                have += take;
                buf[have] = 0;
                eof = have == size || have == RELAY_UPGRADE_REPLY_MAX;
                r = relay_upgrade_reply(buf, have, eof && have == size, ret_head, &reason);
                fuzz_check(r == 0 || r == 1 || r == -EPROTO);
                if (r == 0) {
                        fuzz_check(!reason);
                        /* the end of the connection, or a full buffer, decides */
                        fuzz_check(!eof);
                        continue;
                }
                if (r == 1) {
                        fuzz_check(!reason);
                        fuzz_check(*ret_head >= 4 && *ret_head <= have);
                        fuzz_check(memcmp(buf + *ret_head - 4, "\r\n\r\n", 4) == 0);
                        fuzz_check(strncmp(buf, "HTTP/1.", 7) == 0);
                } else
                        check_reason(reason);
                free(reason);
                return r;
        }
}

static void check_request(const char *token) {
        char *req = NULL;
        size_t n = 0, crlf = 0, lf = 0;

        if (relay_upgrade_request("https://192.0.2.1:8443", token, &req, &n) < 0) {
                fuzz_check(!req);
                return;
        }
        fuzz_check(strlen(req) == n);
        for (const char *p = req; (p = strstr(p, "\r\n")); p += 2)
                crlf++;
        for (const char *p = req; (p = strchr(p, '\n')); p++)
                lf++;
        fuzz_check(crlf == 7 && lf == 7);
        fuzz_check(!strchr(req, '\r') || crlf == 7);
        free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *token;
        size_t step, head = 0, head_whole = 0;
        int r, r_whole;

        if (size < 1)
                return 0;
        fuzz_quiet_logs();
        step = data[0] ? data[0] : SIZE_MAX;
        data++;
        size--;

        /* however it is cut, the verdict is the one of a single read */
        r = judge((const char *) data, size, step, &head);
        r_whole = judge((const char *) data, size, SIZE_MAX, &head_whole);
        fuzz_check(r == r_whole);
        if (r == 1)
                fuzz_check(head == head_whole);

        token = fuzz_string(data, size);
        check_request(token);
        free(token);
        return 0;
}
