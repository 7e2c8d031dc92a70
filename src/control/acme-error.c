/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A failed order explained in one line: lego says a lot, and the cause is
 * in one of its lines. Pure, so the unit test feeds it lego's words. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "acme.h"

typedef struct Cause {
        const char *needle; /* in a line of lego's output */
        const char *text;
} Cause;

/* First match wins: the DNS causes before the ACME ones, as a refused
 * update also ends in an ACME error line. */
static const Cause causes[] = {
        { "bad authentication",
          "the DNS server refused the TSIG key (check name, algorithm and secret of --dns-update-tsig)" },
        { "NOTAUTH",
          "the DNS server refused the TSIG key (check name, algorithm and secret of --dns-update-tsig)" },
        { "BADSIG",
          "the DNS server refused the TSIG key (check name, algorithm and secret of --dns-update-tsig)" },
        { "BADKEY", "the DNS server does not know the TSIG key (check its name in --dns-update-tsig)" },
        { "BADTIME", "the DNS server refused the update's time (check the clocks)" },
        { "REFUSED", "the DNS server refused the update (its ACL does not allow this key to update the zone)" },
        { "could not find the start of authority",
          "the DNS server did not answer (is --dns-update-server up and authoritative for the domain?)" },
        { "rfc2136:", "the DNS update failed" },
        { "error:rateLimited",
          "the ACME CA's rate limit was hit (wait, or use its staging directory for tests)" },
        { "429 ::", "the ACME CA's rate limit was hit (wait, or use its staging directory for tests)" },
        { "get directory at",
          "the ACME CA's directory is unreachable (check --acme-directory and --acme-ca-bundle)" },
        { "urn:ietf:params:acme:error:", "the ACME CA refused the order" },
        { "timeout", "the order timed out" },
};

/* Copies the line at p (to its newline) into buf, printable ASCII only. */
static void copy_line(const char *p, char *buf, size_t size) {
        size_t n = 0;

        for (; *p && *p != '\n' && n + 1 < size; p++)
                buf[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : ' ';
        buf[n] = 0;
}

/* Lego prefixes a line with "2026/12/03 13:47:55 [INFO] ", or indents it
 * with a tab: not the cause. */
static const char *skip_stamp(const char *line) {
        const char *b = strstr(line, "] ");

        if (b && b - line < 40 && strchr(line, '[') && strchr(line, '[') < b)
                return b + 2;
        if (strlen(line) > 20 && line[4] == '/' && line[7] == '/' && line[13] == ':')
                return line + 20;
        return line + strspn(line, " ");
}

void acme_error_summary(const char *output, char *buf, size_t size) {
        char line[400] = "", last[400] = "";

        if (size == 0)
                return;
        /* the error itself first, then the failed clean-up after it */
        for (int pass = 0; pass < 2; pass++)
                for (size_t c = 0; c < ELEMENTSOF(causes); c++)
                        for (const char *p = output; p && *p;
                             p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                                copy_line(p, line, sizeof(line));
                                if (strstr(line, causes[c].needle) &&
                                    (pass == 1 || !strstr(line, "cleaning up failed"))) {
                                        snprintf(buf, size, "%s: %s", causes[c].text, skip_stamp(line));
                                        return;
                                }
                        }
        /* none known: lego's last words */
        for (const char *p = output; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                copy_line(p, line, sizeof(line));
                if (line[strspn(line, " \t")])
                        memcpy(last, line, sizeof(last));
        }
        snprintf(buf, size, "the ACME client failed: %s", last[0] ? skip_stamp(last) : "(no output)");
}

/* Let's Encrypt (Boulder) writes when a limit lifts into the problem's
 * detail: "... retry after 2026-02-04 15:12:13 UTC: see ...". lego 4.9
 * drops the Retry-After header of a 429 and prints only the detail, so the
 * detail is where the CA's wish reaches us. */
static bool parse_retry_after(const char *s, uint64_t *ret) {
        struct tm tm = {};
        int n = 0;
        time_t t;

        if (sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d UTC%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec, &n) != 6 ||
            n == 0)
                return false;
        if (tm.tm_year < 1970 || tm.tm_year > 9999 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
            tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
                return false;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        t = timegm(&tm);
        if (t < 0)
                return false;
        *ret = (uint64_t) t;
        return true;
}

uint64_t acme_error_retry_after(const char *output, uint64_t now_sec) {
        uint64_t until = 0, at;

        for (const char *p = output; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                char line[400];
                const char *r;

                copy_line(p, line, sizeof(line));
                if (!strstr(line, "error:rateLimited") && !strstr(line, "429 ::"))
                        continue;
                for (r = strstr(line, "retry after "); r; r = strstr(r + 1, "retry after "))
                        if (parse_retry_after(r + strlen("retry after "), &at))
                                until = MAX(until, at);
        }
        if (until <= now_sec)
                return 0;
        /* a CA (or whatever answers in its name) cannot park a node for years */
        return MIN(until - now_sec, (uint64_t) ACME_RETRY_AFTER_MAX_SEC);
}
