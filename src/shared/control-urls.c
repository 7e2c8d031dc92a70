/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The list of control URLs and the failover choice among them
 * (control-urls.h): pure. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control-urls.h"
#include "macro.h"
#include "strv.h"

#define SEPARATORS " \t,"

static bool url_word_valid(const char *w, size_t len) {
        if (len <= 8 || strncmp(w, "https://", 8) != 0)
                return false;
        for (size_t i = 8; i < len; i++)
                if ((unsigned char) w[i] <= ' ' || (unsigned char) w[i] >= 0x7f)
                        return false;
        /* a host, not "https:///x" */
        return w[8] != '/';
}

static bool strv_has_n(char *const *l, size_t n, const char *w, size_t len) {
        for (size_t i = 0; i < n; i++)
                if (strlen(l[i]) == len && strncmp(l[i], w, len) == 0)
                        return true;
        return false;
}

int control_urls_parse(const char *text, char ***ret, const char **ret_reason, const char **ret_bad) {
        _cleanup_strv_free_ char **l = NULL;
        const char *reason = NULL, *bad = NULL;
        size_t n = 0;

        if (!text)
                return -EINVAL;
        for (const char *p = text + strspn(text, SEPARATORS); *p; p += strspn(p, SEPARATORS)) {
                size_t len = strcspn(p, SEPARATORS);

                if (!url_word_valid(p, len))
                        reason = "must be https:// URLs, separated by spaces or commas";
                else if (strv_has_n(l, n, p, len))
                        reason = "names one URL twice";
                else if (n >= CONTROL_URLS_MAX)
                        reason = "lists more than 16 URLs";
                if (reason) {
                        bad = p;
                        break;
                }
                char **nl = reallocarray(l, n + 2, sizeof(char *));
                if (!nl)
                        return -ENOMEM;
                l = nl;
                l[n] = strndup(p, len);
                if (!l[n])
                        return -ENOMEM;
                l[++n] = NULL;
                p += len;
        }
        if (!reason && n == 0)
                reason = "lists no URL";
        if (reason) {
                if (ret_reason)
                        *ret_reason = reason;
                if (ret_bad)
                        *ret_bad = bad;
                return -EINVAL;
        }
        if (ret)
                *ret = TAKE_PTR(l);
        return 0;
}

bool control_urls_valid(const char *text) {
        return control_urls_parse(text, NULL, NULL, NULL) >= 0;
}

bool control_url_failed(ControlUrlChoice *c) {
        if (c->n == 0)
                return false;
        c->current = (c->current + 1) % c->n;
        c->failed = MIN(c->failed + 1, c->n);
        /* a full round failed: back off, then go on with the next */
        return c->failed < c->n;
}

void control_url_answered(ControlUrlChoice *c) {
        c->failed = 0;
}

bool control_url_fail_back(ControlUrlChoice *c) {
        if (c->current == 0)
                return false;
        c->current = 0;
        c->failed = 0;
        return true;
}
