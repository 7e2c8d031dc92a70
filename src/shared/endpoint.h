/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

union sockaddr_union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_storage storage;
};

union in_addr_union {
        struct in_addr in;
        struct in6_addr in6;
        uint8_t bytes[16];
};

/* "192.0.2.1:41641" or "[2001:db8::1]:41641"; port required, no names. */
int endpoint_parse(const char *s, union sockaddr_union *ret);
/* Formats like the above; buf of at least ENDPOINT_STRLEN. */
#define ENDPOINT_STRLEN (INET6_ADDRSTRLEN + 8)
const char *endpoint_format(const union sockaddr_union *sa, char *buf, size_t len);
bool endpoint_equal(const union sockaddr_union *a, const union sockaddr_union *b);
socklen_t endpoint_socklen(const union sockaddr_union *sa);

/* Plain addresses: family is AF_INET or AF_INET6. */
int in_addr_parse(const char *s, int *ret_family, union in_addr_union *ret);
/* "100.64.0.0/10": address and prefix length. */
int in_addr_prefix_parse(const char *s, int *ret_family, union in_addr_union *ret, uint8_t *ret_prefixlen);
const char *in_addr_format(int family, const union in_addr_union *a, char *buf, size_t len);
/* Whether a lies in prefix/prefixlen; false for a prefix length too long for the family. */
bool in_addr_prefix_contains(int family, const union in_addr_union *prefix, uint8_t prefixlen,
                             const union in_addr_union *a);
/* Whether two prefixes share an address: the shorter contains the longer's start. */
bool in_addr_prefix_overlaps(int family, const union in_addr_union *a, uint8_t a_prefixlen,
                             const union in_addr_union *b, uint8_t b_prefixlen);

/* An address range: the mesh's own IPv4 or IPv6 range. */
typedef struct InAddrPrefix {
        int family;
        union in_addr_union address;
        uint8_t prefixlen;
} InAddrPrefix;

/* NULL when a node may announce sa as an endpoint peers send handshakes to;
 * otherwise why not, in a few words: loopback, unspecified, multicast,
 * broadcast, link-local or reserved addresses, port 0, and addresses inside
 * exclude (the mesh's ranges; may be NULL), IPv4-mapped IPv6 judged as the
 * IPv4 address. Such endpoints would make every peer a reflector aimed at
 * the peer itself or at a third party (docs/protocol.md). */
const char *endpoint_unannounceable_reason(const union sockaddr_union *sa, const InAddrPrefix *exclude,
                                           size_t n_exclude);
static inline bool endpoint_is_announceable(const union sockaddr_union *sa, const InAddrPrefix *exclude,
                                            size_t n_exclude) {
        return !endpoint_unannounceable_reason(sa, exclude, n_exclude);
}
