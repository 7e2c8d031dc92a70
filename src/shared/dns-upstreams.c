/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>

#include "dns-server.h"

/* The host's own resolvers, as glibc reads them: "nameserver ADDRESS"
 * lines (an IPv6 address may carry "%zone"); the rest of the file
 * (search, options) is the stub resolver's business, not ours. */

static bool same_address(const union sockaddr_union *a, const union sockaddr_union *b) {
        if (a->sa.sa_family != b->sa.sa_family)
                return false;
        if (a->sa.sa_family == AF_INET)
                return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
        return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(struct in6_addr)) == 0;
}

static int nameserver_parse(const char *line, union sockaddr_union *ret) {
        char word[80]; /* an address and a zone, more than glibc reads */
        union sockaddr_union sa = {};

        if (sscanf(line, " nameserver %79s", word) != 1)
                return -ENOENT;
        word[strcspn(word, "%")] = '\0'; /* a link-local zone: we do not forward there */
        if (inet_pton(AF_INET, word, &sa.in.sin_addr) == 1) {
                sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons(53);
        } else if (inet_pton(AF_INET6, word, &sa.in6.sin6_addr) == 1 &&
                   !IN6_IS_ADDR_LINKLOCAL(&sa.in6.sin6_addr)) {
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons(53);
        } else
                return -EINVAL;
        *ret = sa;
        return 0;
}

int dns_upstreams_from_resolv_conf(const char *path, const union sockaddr_union *exclude, size_t n_exclude,
                                   union sockaddr_union **ret, size_t *ret_n) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ union sockaddr_union *list = NULL;
        char line[512];
        size_t n = 0;

        if (!path || !ret || !ret_n)
                return -EINVAL;

        f = fopen(path, "re");
        if (!f && errno != ENOENT)
                return -errno;
        list = calloc(DNS_SERVER_UPSTREAMS_MAX, sizeof(*list));
        if (!list)
                return -ENOMEM;

        while (f && n < DNS_SERVER_UPSTREAMS_MAX && fgets(line, sizeof(line), f)) {
                union sockaddr_union sa;
                bool skip = false;

                if (nameserver_parse(line, &sa) < 0)
                        continue;
                for (size_t i = 0; i < n_exclude && !skip; i++)
                        skip = same_address(&sa, &exclude[i]);
                for (size_t i = 0; i < n && !skip; i++)
                        skip = same_address(&sa, &list[i]);
                if (!skip)
                        list[n++] = sa;
        }

        *ret = TAKE_PTR(list);
        *ret_n = n;
        return 0;
}
