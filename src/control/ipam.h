/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Address management: a node's addresses are one "host number" h, giving
 * IPv4 = ipv4_range + h and IPv6 = ipv6_range (a /48) + h. h = 1 is the hub;
 * nodes get 2 … capacity. The functions here are pure; the store keeps the
 * "next" counter and answers whether a host number is taken. */

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "endpoint.h"

#define IPAM_HOST_HUB UINT64_C(1)
#define IPAM_HOST_FIRST UINT64_C(2)

typedef struct IpamRange {
        struct in_addr ipv4;    /* network address, host bits zero */
        uint8_t ipv4_prefixlen; /* 8 … 30 */
        struct in6_addr ipv6;   /* network address, host bits zero */
        uint8_t ipv6_prefixlen; /* 16 … 96 */
} IpamRange;

/* "100.64.0.0/10": host bits must be zero, prefix 8…30 (a /30 holds the hub and one node). */
int ipam_parse_ipv4_range(const char *s, struct in_addr *ret, uint8_t *ret_prefixlen);
/* "fd12:3456:789a::/48": host bits zero, prefix 16…96. */
int ipam_parse_ipv6_range(const char *s, struct in6_addr *ret, uint8_t *ret_prefixlen);
int ipam_range_parse(const char *ipv4_range, const char *ipv6_range, IpamRange *ret);

/* A random unique local /48 (RFC 4193: fd00::/8 + 40 random bits). */
int ipam_random_ula(char **ret);

/* Highest host number a node can get (the broadcast address is left out). */
uint64_t ipam_max_host(const IpamRange *r);

/* Returns the first host number ≥ next that is free, wrapping around to
 * IPAM_HOST_FIRST once the end of the range is reached, so an address that
 * was given up is handed out again only when everything after it is taken.
 * in_use() returns > 0 for taken, 0 for free, < 0 on error (passed on).
 * -ENOSPC when every host number is taken. */
typedef int (*ipam_in_use_t)(uint64_t host, void *userdata);
int ipam_allocate(const IpamRange *r, uint64_t next, ipam_in_use_t in_use, void *userdata, uint64_t *ret_host);

int ipam_host_ipv4(const IpamRange *r, uint64_t host, struct in_addr *ret);
int ipam_host_ipv6(const IpamRange *r, uint64_t host, struct in6_addr *ret);
/* Text forms, into buffers of INET6_ADDRSTRLEN. */
int ipam_host_format(const IpamRange *r, uint64_t host, char ipv4[static INET6_ADDRSTRLEN],
                     char ipv6[static INET6_ADDRSTRLEN]);

/* Whether a (AF_INET or AF_INET6) lies inside the mesh range of its family. */
bool ipam_range_contains(const IpamRange *r, int family, const union in_addr_union *a);
