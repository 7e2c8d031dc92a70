/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "ipam.h"
#include "macro.h"

static int split_prefix(const char *s, char *addr, size_t addr_size, uint8_t *ret_prefixlen) {
        const char *slash;
        char *end;
        unsigned long l;

        if (!s)
                return -EINVAL;
        slash = strchr(s, '/');
        if (!slash || (size_t) (slash - s) >= addr_size || slash[1] < '0' || slash[1] > '9')
                return -EINVAL;
        memcpy(addr, s, slash - s);
        addr[slash - s] = 0;

        errno = 0;
        l = strtoul(slash + 1, &end, 10);
        if (errno != 0 || *end != 0 || l > 128)
                return -EINVAL;
        *ret_prefixlen = (uint8_t) l;
        return 0;
}

int ipam_parse_ipv4_range(const char *s, struct in_addr *ret, uint8_t *ret_prefixlen) {
        char addr[INET_ADDRSTRLEN];
        struct in_addr a;
        uint8_t prefixlen;
        uint32_t mask;
        int r;

        r = split_prefix(s, addr, sizeof(addr), &prefixlen);
        if (r < 0)
                return r;
        if (inet_pton(AF_INET, addr, &a) != 1)
                return -EINVAL;
        /* /31 and /32 leave no room for a node next to the hub. */
        if (prefixlen < 8 || prefixlen > 30)
                return -ERANGE;
        mask = UINT32_MAX << (32 - prefixlen);
        if ((ntohl(a.s_addr) & ~mask) != 0)
                return -EINVAL;

        *ret = a;
        *ret_prefixlen = prefixlen;
        return 0;
}

int ipam_parse_ipv6_range(const char *s, struct in6_addr *ret, uint8_t *ret_prefixlen) {
        char addr[INET6_ADDRSTRLEN];
        struct in6_addr a;
        uint8_t prefixlen;
        int r;

        r = split_prefix(s, addr, sizeof(addr), &prefixlen);
        if (r < 0)
                return r;
        if (inet_pton(AF_INET6, addr, &a) != 1)
                return -EINVAL;
        /* At least 32 host bits, so every IPv4 host number has an IPv6 twin. */
        if (prefixlen < 16 || prefixlen > 96)
                return -ERANGE;
        for (unsigned bit = prefixlen; bit < 128; bit++)
                if (a.s6_addr[bit / 8] & (0x80 >> (bit % 8)))
                        return -EINVAL;

        *ret = a;
        *ret_prefixlen = prefixlen;
        return 0;
}

int ipam_range_parse(const char *ipv4_range, const char *ipv6_range, IpamRange *ret) {
        IpamRange range = {};
        int r;

        r = ipam_parse_ipv4_range(ipv4_range, &range.ipv4, &range.ipv4_prefixlen);
        if (r < 0)
                return r;
        r = ipam_parse_ipv6_range(ipv6_range, &range.ipv6, &range.ipv6_prefixlen);
        if (r < 0)
                return r;

        *ret = range;
        return 0;
}

int ipam_random_ula(char **ret) {
        struct in6_addr a = {};
        char buf[INET6_ADDRSTRLEN];
        char *s;

        a.s6_addr[0] = 0xfd;
        if (getrandom(a.s6_addr + 1, 5, 0) != 5)
                return negative_errno();
        if (!inet_ntop(AF_INET6, &a, buf, sizeof(buf)))
                return negative_errno();
        if (asprintf(&s, "%s/48", buf) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

uint64_t ipam_max_host(const IpamRange *r) {
        /* all ones is the broadcast address */
        return (UINT64_C(1) << (32 - r->ipv4_prefixlen)) - 2;
}

static bool host_is_valid(const IpamRange *r, uint64_t host) {
        return host >= IPAM_HOST_HUB && host <= ipam_max_host(r);
}

int ipam_allocate(const IpamRange *r, uint64_t next, ipam_in_use_t in_use, void *userdata, uint64_t *ret_host) {
        uint64_t max = ipam_max_host(r), host;
        int k;

        if (max < IPAM_HOST_FIRST)
                return -ENOSPC;
        if (next < IPAM_HOST_FIRST || next > max)
                next = IPAM_HOST_FIRST;

        host = next;
        do {
                k = in_use(host, userdata);
                if (k < 0)
                        return k;
                if (k == 0) {
                        *ret_host = host;
                        return 0;
                }
                host = host >= max ? IPAM_HOST_FIRST : host + 1;
        } while (host != next);

        return -ENOSPC;
}

int ipam_host_ipv4(const IpamRange *r, uint64_t host, struct in_addr *ret) {
        if (!host_is_valid(r, host))
                return -ERANGE;
        ret->s_addr = htonl(ntohl(r->ipv4.s_addr) + (uint32_t) host);
        return 0;
}

int ipam_host_ipv6(const IpamRange *r, uint64_t host, struct in6_addr *ret) {
        struct in6_addr a = r->ipv6;

        if (!host_is_valid(r, host))
                return -ERANGE;
        /* host < 2^24 and the prefix leaves ≥ 32 bits: the last four bytes are host bits only */
        for (int i = 0; i < 4; i++)
                a.s6_addr[15 - i] = (uint8_t) (host >> (8 * i));
        *ret = a;
        return 0;
}

int ipam_host_format(const IpamRange *r, uint64_t host, char ipv4[static INET6_ADDRSTRLEN],
                     char ipv6[static INET6_ADDRSTRLEN]) {
        struct in_addr a4;
        struct in6_addr a6;
        int k;

        k = ipam_host_ipv4(r, host, &a4);
        if (k < 0)
                return k;
        k = ipam_host_ipv6(r, host, &a6);
        if (k < 0)
                return k;
        if (!inet_ntop(AF_INET, &a4, ipv4, INET6_ADDRSTRLEN) ||
            !inet_ntop(AF_INET6, &a6, ipv6, INET6_ADDRSTRLEN))
                return negative_errno();
        return 0;
}

bool ipam_range_contains(const IpamRange *r, int family, const union in_addr_union *a) {
        union in_addr_union net = {};

        if (family == AF_INET) {
                net.in = r->ipv4;
                return in_addr_prefix_contains(AF_INET, &net, r->ipv4_prefixlen, a);
        }
        if (family == AF_INET6) {
                net.in6 = r->ipv6;
                return in_addr_prefix_contains(AF_INET6, &net, r->ipv6_prefixlen, a);
        }
        return false;
}
