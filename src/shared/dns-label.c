/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns-label.h"
#include "macro.h"

#define DNS_LABEL_MAX 63

static bool dns_label_char_is_valid(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

int dns_label_from_hostname(const char *hostname, char **ret) {
        if (!hostname || !ret)
                return -EINVAL;

        /* A fully qualified host name says more than we want: the mesh puts
         * its own domain behind the label, so only the host part is kept. */
        hostname += strspn(hostname, ".");
        size_t n = strcspn(hostname, ".");

        _cleanup_free_ char *label = malloc(DNS_LABEL_MAX + 1);
        if (!label)
                return -ENOMEM;

        size_t len = 0;
        bool pending_dash = false;
        for (size_t i = 0; i < n && len < DNS_LABEL_MAX; i++) {
                char c = hostname[i];

                if (c >= 'A' && c <= 'Z')
                        c = (char) (c - 'A' + 'a');

                /* '-' itself joins the run too, so "a--b" and "a - b" both give "a-b". */
                if (!dns_label_char_is_valid(c) || c == '-') {
                        pending_dash = true;
                        continue;
                }

                if (pending_dash && len > 0) {
                        label[len++] = '-';
                        if (len >= DNS_LABEL_MAX)
                                break;
                }
                pending_dash = false;
                label[len++] = c;
        }

        /* Truncation may have cut right after a dash. */
        while (len > 0 && label[len - 1] == '-')
                len--;
        if (len == 0)
                return -EINVAL;

        label[len] = '\0';
        *ret = TAKE_PTR(label);
        return 0;
}

bool dns_label_is_valid(const char *s) {
        if (!s)
                return false;

        size_t n = strlen(s);
        if (n == 0 || n > DNS_LABEL_MAX)
                return false;
        if (s[0] == '-' || s[n - 1] == '-')
                return false;

        for (size_t i = 0; i < n; i++)
                if (!dns_label_char_is_valid(s[i]))
                        return false;

        return true;
}

bool dns_label_is_reserved(const char *label) {
        static const char *const reserved[] = {
                "localhost",     "localdomain",  "broadcasthost", /* /etc/hosts of every distribution */
                "ip6-localhost", "ip6-loopback", "ip6-allnodes",  "ip6-allrouters",
                "wpad",                        /* web proxy auto-discovery */
                "isatap",                      /* Windows tunnel router discovery */
                "autodiscover",  "autoconfig", /* mail clients fetch settings there */
                "hub",                         /* the mesh's own relay */
        };

        if (!label)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (strcasecmp(label, reserved[i]) == 0)
                        return true;
        return false;
}
