/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "endpoint.h"
#include "macro.h"

/* Digits only: strtoul() would take signs, blanks and hex prefixes. */
static int parse_port(const char *s, uint16_t *ret) {
        unsigned long v = 0;
        size_t n = strlen(s);

        if (n == 0 || n > 5)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned long) (s[i] - '0');
        }
        if (v == 0 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

/* "fe80::1%eth0" or "fe80::1%2": the zone of a link-local address, which is
 * how wireguard-go prints such endpoints. */
static int parse_scope(const char *s, uint32_t *ret) {
        unsigned idx = 0;
        size_t n = strlen(s);
        bool numeric = n > 0 && n <= 10;

        for (size_t i = 0; numeric && i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        numeric = false;
        if (numeric) {
                unsigned long v = strtoul(s, NULL, 10);
                if (v == 0 || v > INT32_MAX)
                        return -EINVAL;
                *ret = (uint32_t) v;
                return 0;
        }
        if (n == 0 || n >= IF_NAMESIZE)
                return -EINVAL;
        idx = if_nametoindex(s);
        if (idx == 0)
                return -EINVAL;
        *ret = idx;
        return 0;
}

int endpoint_parse(const char *s, union sockaddr_union *ret) {
        char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
        union sockaddr_union sa = {};
        const char *port;
        uint16_t p;
        size_t n;
        int r;

        if (!s || !ret)
                return -EINVAL;

        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                char *zone;
                uint32_t scope = 0;

                if (!close || close[1] != ':')
                        return -EINVAL;
                n = (size_t) (close - s - 1);
                if (n == 0 || n >= sizeof(host))
                        return -EINVAL;
                memcpy(host, s + 1, n);
                host[n] = 0;
                port = close + 2;

                zone = strchr(host, '%');
                if (zone) {
                        *zone++ = 0;
                        r = parse_scope(zone, &scope);
                        if (r < 0)
                                return r;
                }
                if (inet_pton(AF_INET6, host, &sa.in6.sin6_addr) != 1)
                        return -EINVAL;
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_scope_id = scope;
        } else {
                const char *colon = strrchr(s, ':');

                if (!colon)
                        return -EINVAL;
                n = (size_t) (colon - s);
                if (n == 0 || n >= sizeof(host))
                        return -EINVAL;
                memcpy(host, s, n);
                host[n] = 0;
                port = colon + 1;

                /* An IPv6 address needs brackets, or the port would be ambiguous. */
                if (inet_pton(AF_INET, host, &sa.in.sin_addr) != 1)
                        return -EINVAL;
                sa.in.sin_family = AF_INET;
        }

        r = parse_port(port, &p);
        if (r < 0)
                return r;
        if (sa.sa.sa_family == AF_INET)
                sa.in.sin_port = htons(p);
        else
                sa.in6.sin6_port = htons(p);

        *ret = sa;
        return 0;
}

const char *endpoint_format(const union sockaddr_union *sa, char *buf, size_t len) {
        char host[INET6_ADDRSTRLEN];
        int k;

        if (!sa || !buf)
                return NULL;

        switch (sa->sa.sa_family) {
        case AF_INET:
                if (!inet_ntop(AF_INET, &sa->in.sin_addr, host, sizeof(host)))
                        return NULL;
                k = snprintf(buf, len, "%s:%u", host, ntohs(sa->in.sin_port));
                break;
        case AF_INET6:
                if (!inet_ntop(AF_INET6, &sa->in6.sin6_addr, host, sizeof(host)))
                        return NULL;
                if (sa->in6.sin6_scope_id != 0)
                        k = snprintf(buf, len, "[%s%%%" PRIu32 "]:%u", host, sa->in6.sin6_scope_id,
                                     ntohs(sa->in6.sin6_port));
                else
                        k = snprintf(buf, len, "[%s]:%u", host, ntohs(sa->in6.sin6_port));
                break;
        default:
                return NULL;
        }
        if (k < 0 || (size_t) k >= len)
                return NULL;
        return buf;
}

bool endpoint_equal(const union sockaddr_union *a, const union sockaddr_union *b) {
        if (!a || !b)
                return a == b;
        if (a->sa.sa_family != b->sa.sa_family)
                return false;
        switch (a->sa.sa_family) {
        case AF_INET:
                return a->in.sin_port == b->in.sin_port && a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
        case AF_INET6:
                return a->in6.sin6_port == b->in6.sin6_port && a->in6.sin6_scope_id == b->in6.sin6_scope_id &&
                       memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(struct in6_addr)) == 0;
        default:
                /* Two "no endpoint" values are the same. */
                return true;
        }
}

socklen_t endpoint_socklen(const union sockaddr_union *sa) {
        if (!sa)
                return 0;
        switch (sa->sa.sa_family) {
        case AF_INET:
                return sizeof(struct sockaddr_in);
        case AF_INET6:
                return sizeof(struct sockaddr_in6);
        default:
                return 0;
        }
}

int in_addr_parse(const char *s, int *ret_family, union in_addr_union *ret) {
        union in_addr_union a = {};
        int family;

        if (!s)
                return -EINVAL;

        family = strchr(s, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(family, s, &a) != 1)
                return -EINVAL;

        if (ret_family)
                *ret_family = family;
        if (ret)
                *ret = a;
        return 0;
}

int in_addr_prefix_parse(const char *s, int *ret_family, union in_addr_union *ret, uint8_t *ret_prefixlen) {
        char host[INET6_ADDRSTRLEN];
        union in_addr_union a;
        const char *slash, *p;
        unsigned long v = 0;
        int family, r;
        size_t n;

        if (!s)
                return -EINVAL;
        slash = strchr(s, '/');
        if (!slash)
                return -EINVAL;
        n = (size_t) (slash - s);
        if (n == 0 || n >= sizeof(host))
                return -EINVAL;
        memcpy(host, s, n);
        host[n] = 0;

        r = in_addr_parse(host, &family, &a);
        if (r < 0)
                return r;

        p = slash + 1;
        if (*p == 0 || strlen(p) > 3)
                return -EINVAL;
        for (; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned long) (*p - '0');
        }
        if (v > (family == AF_INET ? 32U : 128U))
                return -EINVAL;

        if (ret_family)
                *ret_family = family;
        if (ret)
                *ret = a;
        if (ret_prefixlen)
                *ret_prefixlen = (uint8_t) v;
        return 0;
}

const char *in_addr_format(int family, const union in_addr_union *a, char *buf, size_t len) {
        if (!a || !buf || (family != AF_INET && family != AF_INET6))
                return NULL;
        return inet_ntop(family, a, buf, (socklen_t) len);
}

bool in_addr_prefix_contains(int family, const union in_addr_union *prefix, uint8_t prefixlen,
                             const union in_addr_union *a) {
        size_t bytes = family == AF_INET ? 4 : 16, full = prefixlen / 8;
        uint8_t mask;

        if (family != AF_INET && family != AF_INET6)
                return false;
        if (prefixlen > bytes * 8)
                return false;
        if (memcmp(prefix->bytes, a->bytes, full) != 0)
                return false;
        if (prefixlen % 8 == 0)
                return true;
        mask = (uint8_t) (0xffu << (8 - prefixlen % 8));
        return (prefix->bytes[full] & mask) == (a->bytes[full] & mask);
}

bool in_addr_prefix_overlaps(int family, const union in_addr_union *a, uint8_t a_prefixlen,
                             const union in_addr_union *b, uint8_t b_prefixlen) {
        return a_prefixlen <= b_prefixlen ? in_addr_prefix_contains(family, a, a_prefixlen, b)
                                          : in_addr_prefix_contains(family, b, b_prefixlen, a);
}

static const char *ipv4_unannounceable_reason(const uint8_t b[static 4]) {
        if (b[0] == 0)
                return "unspecified address"; /* 0.0.0.0/8, "this network" */
        if (b[0] == 127)
                return "loopback address";
        if (b[0] == 169 && b[1] == 254)
                return "link-local address";
        if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
                return "broadcast address";
        if (b[0] >= 224 && b[0] < 240)
                return "multicast address";
        if (b[0] >= 240)
                return "reserved address"; /* 240.0.0.0/4 */
        return NULL;
}

static bool in_prefixes(int family, const union in_addr_union *a, const InAddrPrefix *exclude, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (exclude[i].family == family &&
                    in_addr_prefix_contains(family, &exclude[i].address, exclude[i].prefixlen, a))
                        return true;
        return false;
}

const char *endpoint_unannounceable_reason(const union sockaddr_union *sa, const InAddrPrefix *exclude,
                                           size_t n_exclude) {
        static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
        union in_addr_union a = {};

        if (!sa)
                return "no address";
        if (sa->sa.sa_family == AF_INET) {
                const char *why;

                if (sa->in.sin_port == 0)
                        return "port 0";
                a.in = sa->in.sin_addr;
                why = ipv4_unannounceable_reason(a.bytes);
                if (why)
                        return why;
                return in_prefixes(AF_INET, &a, exclude, n_exclude) ? "inside the mesh's range" : NULL;
        }
        if (sa->sa.sa_family != AF_INET6)
                return "not IPv4 or IPv6";
        if (sa->in6.sin6_port == 0)
                return "port 0";
        a.in6 = sa->in6.sin6_addr;
        if (memcmp(a.bytes, mapped, sizeof(mapped)) == 0) {
                union in_addr_union v4 = {};
                const char *why;

                memcpy(v4.bytes, a.bytes + 12, 4);
                why = ipv4_unannounceable_reason(v4.bytes);
                if (why)
                        return why;
                return in_prefixes(AF_INET, &v4, exclude, n_exclude) ? "inside the mesh's range" : NULL;
        }
        if (IN6_IS_ADDR_UNSPECIFIED(&a.in6))
                return "unspecified address";
        if (IN6_IS_ADDR_LOOPBACK(&a.in6))
                return "loopback address";
        if (IN6_IS_ADDR_MULTICAST(&a.in6))
                return "multicast address";
        if (IN6_IS_ADDR_LINKLOCAL(&a.in6))
                return "link-local address";
        /* ::/96 besides :: and ::1: deprecated IPv4-compatible addresses */
        if (memcmp(a.bytes, (const uint8_t[12]) {}, 12) == 0)
                return "reserved address";
        return in_prefixes(AF_INET6, &a, exclude, n_exclude) ? "inside the mesh's range" : NULL;
}
