/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A failed order explained in one line: lego says a lot, and the cause is
 * in one of its lines. Pure, so the unit test feeds it lego's words. */
#include <stdio.h>
#include <string.h>

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

/* Lego prefixes a line with "2026/12/03 13:47:55 [INFO] ": not the cause. */
static const char *skip_stamp(const char *line) {
        const char *b = strstr(line, "] ");

        if (b && b - line < 40 && strchr(line, '[') && strchr(line, '[') < b)
                return b + 2;
        if (strlen(line) > 20 && line[4] == '/' && line[7] == '/' && line[13] == ':')
                return line + 20;
        return line;
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
