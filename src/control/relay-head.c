/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "relay-head.h"

static char *trim(char *s) {
        char *e;

        s += strspn(s, " \t");
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                *--e = 0;
        return s;
}

/* Whether the comma-separated list v holds token (case-insensitive). */
static bool list_has(const char *v, const char *token) {
        size_t n = strlen(token);

        while (*v) {
                size_t len;

                v += strspn(v, " \t,");
                len = strcspn(v, ",");
                while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                        len--;
                if (len == n && strncasecmp(v, token, n) == 0)
                        return true;
                v += strcspn(v, ",");
        }
        return false;
}

static int parse_request_line(char *line, RelayHead *h) {
        char *sp1 = strchr(line, ' '), *sp2;

        if (!sp1)
                return -EBADMSG;
        *sp1 = 0;
        sp2 = strchr(sp1 + 1, ' ');
        if (!sp2 || sp1 == line || sp2 == sp1 + 1)
                return -EBADMSG;
        *sp2 = 0;
        if (!streq(sp2 + 1, "HTTP/1.1") && !streq(sp2 + 1, "HTTP/1.0"))
                return -EBADMSG;
        h->method = line;
        h->target = sp1 + 1;
        return 0;
}

static int parse_header(char *line, RelayHead *h) {
        char *colon = strchr(line, ':'), *value;

        /* no name, a blank before the colon, or a folded continuation line */
        if (!colon || colon == line || strcspn(line, " \t") < (size_t) (colon - line))
                return -EBADMSG;
        *colon = 0;
        value = trim(colon + 1);
        if (strcasecmp(line, "Authorization") == 0) {
                if (h->authorization)
                        return -EBADMSG;
                h->authorization = value;
        } else if (strcasecmp(line, "Upgrade") == 0) {
                if (h->upgrade)
                        return -EBADMSG;
                h->upgrade = value;
        } else if (strcasecmp(line, "Connection") == 0 && list_has(value, "upgrade"))
                h->connection_upgrade = true;
        return 0;
}

int relay_head_parse(char *buf, size_t len, RelayHead *ret) {
        RelayHead h = {};
        char *end, *line;
        int r;

        buf[len] = 0;
        end = strstr(buf, "\r\n\r\n");
        if (!end || (size_t) (end - buf) + 4 > RELAY_HEAD_MAX) {
                if (strlen(buf) != len)
                        return -EBADMSG; /* a NUL byte */
                return len >= RELAY_HEAD_MAX ? -E2BIG : 0;
        }
        h.size = (size_t) (end - buf) + 4;
        *end = 0;
        for (const char *p = buf; *p; p++)
                if ((unsigned char) *p < 0x20 && *p != '\r' && *p != '\n' && *p != '\t')
                        return -EBADMSG;

        line = buf;
        for (unsigned i = 0; line; i++) {
                char *next = strstr(line, "\r\n");

                if (next) {
                        *next = 0;
                        next += 2;
                }
                if (strchr(line, '\n') || strchr(line, '\r'))
                        return -EBADMSG; /* a bare LF or CR */
                r = i == 0 ? parse_request_line(line, &h) : parse_header(line, &h);
                if (r < 0)
                        return r;
                line = next;
        }
        *ret = h;
        return 1;
}
