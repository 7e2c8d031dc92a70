/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Internal to firewall-*.c: the filter as named sets of concatenations
 * (source . destination . port), one per family and protocol, so that
 * 1,000 filter entries are eight rules and a few thousand set elements
 * instead of thousands of rules with an anonymous set each (libnftables
 * and the kernel take seconds for those: bench/nftables.py). */

#include <stdbool.h>
#include <stdio.h>

#include "firewall.h"

/* More elements than this from one entry (its sources × destinations ×
 * port ranges, both families, counted after the mesh's ranges are cut
 * out of the destinations) and it gets rules of its own instead. */
#define FIREWALL_ENTRY_ELEMENTS_MAX 65536

typedef enum FirewallSetKind {
        FIREWALL_SET_TCP,
        FIREWALL_SET_UDP,
        FIREWALL_SET_ICMP,
        FIREWALL_SET_ALL, /* every protocol and port */
        _FIREWALL_SET_MAX,
} FirewallSetKind;

typedef struct FirewallElement {
        InAddrPrefix src, dst;
        uint16_t from, to; /* 0, 0 in the ICMP and ALL sets */
} FirewallElement;

typedef struct FirewallSets {
        FirewallElement *elements[2][_FIREWALL_SET_MAX]; /* [0] IPv4, [1] IPv6 */
        size_t n[2][_FIREWALL_SET_MAX];
        size_t allocated[2][_FIREWALL_SET_MAX];
        /* per filter entry: it did not fit a set (a source that is no
         * single address, too many elements) and gets rules of its own */
        bool *own_rules;
} FirewallSets;

/* Normalizing, shared with firewall-script.c. */
int firewall_prefixes_of_family(const InAddrPrefix *list, size_t n, int family, InAddrPrefix **ret,
                                size_t *ret_n);
/* A filter entry's destinations of one family, normalized, with the mesh's
 * ranges (spec->mesh) cut out of every wider prefix: a routed destination
 * never covers a mesh address (policy.c), so that "0.0.0.0/0" granted
 * through an exit node does not open the exit node's own address in the
 * input chain. Destinations inside a mesh range (own addresses) stay. */
int firewall_dst_of_family(const FirewallSpec *spec, const InAddrPrefix *list, size_t n, int family,
                           InAddrPrefix **ret, size_t *ret_n);
int firewall_ports_normalize(const FirewallPort *ports, size_t n, FirewallPort **ret, size_t *ret_n);

/* The elements of spec's filter, pairwise disjoint (the kernel refuses
 * overlapping elements in a set of concatenated intervals): ranges of one
 * source and destination merged; where a destination lies inside another
 * of the same source, the ports of the wider one taken out of the
 * narrower one's. */
int firewall_sets_build(const FirewallSpec *spec, FirewallSets *ret);
void firewall_sets_done(FirewallSets *s);
/* "set in4_tcp { ... }" for every non-empty set. */
void firewall_sets_put_definitions(FILE *f, const FirewallSets *s);
/* The rules that look them up, one per non-empty set. */
void firewall_sets_put_rules(FILE *f, const FirewallSets *s);

/* Whether the sets let this packet in, as the kernel's lookups would
 * (entries with rules of their own not included): for tests and fuzzers
 * that compare the table with the policy's own evaluation. Linear. */
bool firewall_sets_match(const FirewallSets *s, int family, const union in_addr_union *src,
                         const union in_addr_union *dst, FirewallProto proto, uint16_t port);
/* Whether no two elements of a set overlap (what the kernel demands). Quadratic. */
bool firewall_sets_disjoint(const FirewallSets *s);
