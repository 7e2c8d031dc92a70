/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "macro.h"
#include "relay-frame.h"
#include "relay-upgrade.h"
#include "varlink.h" /* _cleanup_json_ */

#define REASON_MAX 256

/* Header values must not smuggle a line break or anything unprintable. */
static bool header_safe(const char *s) {
        if (!s || !s[0])
                return false;
        for (; *s; s++)
                if ((unsigned char) *s <= ' ' || *s == 0x7f)
                        return false;
        return true;
}

int relay_upgrade_request(const char *control_url, const char *token, char **ret, size_t *ret_len) {
        _cleanup_free_ char *host = NULL;
        const char *a;
        int n;

        if (!control_url || strncmp(control_url, "https://", 8) != 0 || !ret || !ret_len)
                return -EINVAL;
        /* the authority of https://HOST[:PORT][/...] */
        a = control_url + 8;
        host = strndup(a, strcspn(a, "/?#"));
        if (!host)
                return -ENOMEM;
        if (!header_safe(host) || !header_safe(token))
                return -EINVAL;

        n = asprintf(ret,
                     "GET /v1/relay HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Authorization: Bearer %s\r\n"
                     "User-Agent: meshd/" PACKAGE_VERSION "\r\n"
                     "Connection: Upgrade\r\n"
                     "Upgrade: " RELAY_UPGRADE_TOKEN "\r\n"
                     "\r\n",
                     host, token);
        if (n < 0)
                return -ENOMEM;
        *ret_len = (size_t) n;
        return 0;
}

/* The value of a header in the head [head, end), without the blanks around
 * it; NULL if absent. */
static const char *header_value(const char *head, const char *end, const char *name, size_t *ret_len) {
        size_t n = strlen(name);

        for (const char *l = strstr(head, "\r\n"); l && l + 2 < end; l = strstr(l + 2, "\r\n")) {
                const char *v = l + 2, *eol;

                if (strncasecmp(v, name, n) != 0 || v[n] != ':')
                        continue;
                v += n + 1;
                v += strspn(v, " \t");
                eol = strstr(v, "\r\n");
                while (eol > v && (eol[-1] == ' ' || eol[-1] == '\t'))
                        eol--;
                *ret_len = (size_t) (eol - v);
                return v;
        }
        return NULL;
}

static bool header_is(const char *head, const char *end, const char *name, const char *value) {
        size_t n;
        const char *v = header_value(head, end, name, &n);

        return v && n == strlen(value) && strncasecmp(v, value, n) == 0;
}

/* "HTTP/1.1 101 ...": -EBADMSG for anything else. */
static int status_parse(const char *head, int *ret) {
        if (strncmp(head, "HTTP/1.", 7) != 0 || (head[7] != '0' && head[7] != '1') || head[8] != ' ')
                return -EBADMSG;
        for (int i = 9; i < 12; i++)
                if (head[i] < '0' || head[i] > '9')
                        return -EBADMSG;
        if (head[12] != ' ' && head[12] != '\r')
                return -EBADMSG;
        *ret = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
        return *ret >= 100 && *ret <= 599 ? 0 : -EBADMSG;
}

/* The server's {"error": "..."} as one printable line, or NULL. The body is
 * looked for between the first '{' and the last '}', which also covers a
 * chunked body of one chunk. */
static char *refusal_text(const char *body, size_t len) {
        _cleanup_json_ cJSON *j = NULL;
        const char *open = memchr(body, '{', len), *close = NULL;
        const cJSON *e;
        char *m;

        for (const char *p = body + len; p > body && !close; p--)
                if (p[-1] == '}')
                        close = p;
        if (!open || !close || close <= open)
                return NULL;
        j = cJSON_ParseWithLength(open, (size_t) (close - open));
        e = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (!cJSON_IsString(e) || !e->valuestring[0])
                return NULL;
        m = strndup(e->valuestring, REASON_MAX);
        for (char *p = m; p && *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f)
                        *p = ' ';
        return m;
}

/* A refusal is complete once its Content-Length arrived, the server closed
 * the connection, or the buffer is full. */
static bool refusal_complete(const char *head, const char *end, size_t have, bool eof) {
        size_t n;
        const char *v = header_value(head, end, "Content-Length", &n);
        char *p;
        unsigned long l;

        if (eof || have >= RELAY_UPGRADE_REPLY_MAX)
                return true;
        if (!v)
                return false;
        l = strtoul(v, &p, 10);
        return p == v || l <= have - (size_t) (end - head);
}

static int refused(char **ret_reason, const char *format, ...) _printf_(2, 3);
static int refused(char **ret_reason, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        if (vasprintf(ret_reason, format, ap) < 0)
                *ret_reason = NULL;
        va_end(ap);
        return -EPROTO;
}

int relay_upgrade_reply(const char *buf, size_t len, bool eof, size_t *ret_head_size, char **ret_reason) {
        _cleanup_free_ char *text = NULL;
        const char *end;
        int status;

        *ret_reason = NULL;
        end = memmem(buf, len, "\r\n\r\n", 4);
        if (!end) {
                if (eof)
                        return refused(ret_reason, "relay refused: connection closed before a reply");
                if (len >= RELAY_UPGRADE_REPLY_MAX)
                        return refused(ret_reason, "relay refused: reply head too large");
                return 0;
        }
        end += 4;
        if (status_parse(buf, &status) < 0)
                return refused(ret_reason, "relay refused: the reply is not HTTP");
        if (status == 101) {
                if (!header_is(buf, end, "Upgrade", RELAY_UPGRADE_TOKEN))
                        return refused(ret_reason, "relay refused: 101 without Upgrade: " RELAY_UPGRADE_TOKEN);
                *ret_head_size = (size_t) (end - buf);
                return 1;
        }
        if (!refusal_complete(buf, end, len, eof))
                return 0;
        text = refusal_text(end, len - (size_t) (end - buf));
        if (text)
                return refused(ret_reason, "relay refused: %d %s", status, text);
        return refused(ret_reason, "relay refused: HTTP %d", status);
}

int relay_upgrade_url(const char *control_url, uint16_t relay_port, char **ret_url,
                      uint16_t *ret_control_port) {
        const char *a, *host_end, *colon = NULL;
        size_t n;
        unsigned long port = 443;

        if (!control_url || strncmp(control_url, "https://", 8) != 0 || relay_port == 0)
                return -EINVAL;
        a = control_url + 8;
        n = strcspn(a, "/?#");
        if (n == 0 || memchr(a, '@', n))
                return -EINVAL;
        if (a[0] == '[') {
                const char *close = memchr(a, ']', n);
                if (!close || close == a + 1)
                        return -EINVAL;
                host_end = close + 1;
                if (host_end < a + n) {
                        if (*host_end != ':')
                                return -EINVAL;
                        colon = host_end;
                }
        } else {
                colon = memchr(a, ':', n);
                host_end = colon ?: a + n;
                if (host_end == a)
                        return -EINVAL;
        }
        if (colon) {
                char digits[8] = {};
                char *end;
                size_t len = (size_t) (a + n - colon - 1);

                if (len == 0 || len >= sizeof(digits))
                        return -EINVAL;
                memcpy(digits, colon + 1, len);
                if (digits[0] < '0' || digits[0] > '9')
                        return -EINVAL;
                port = strtoul(digits, &end, 10);
                if (*end || port == 0 || port > 65535)
                        return -EINVAL;
        }
        if (asprintf(ret_url, "https://%.*s:%u", (int) (host_end - a), a, (unsigned) relay_port) < 0)
                return -ENOMEM;
        *ret_control_port = (uint16_t) port;
        return 0;
}
