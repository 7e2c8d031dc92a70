/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Mesh DNS, the pure part: one query datagram and a name table in, the
 * reply datagram (or "forward it", or "drop it") out. No sockets, no
 * clock: dns-server.c does the I/O. Messages are parsed and built with
 * ldns (never by hand), so a query's wire format is checked by the same
 * library that builds the reply.
 *
 * What it answers (docs/protocol.md, "Mesh DNS"):
 *   NAME.DOMAIN       A / AAAA of a node or device (case-insensitive),
 *                     NODATA for other types, NXDOMAIN for names it lacks
 *   DOMAIN            SOA (synthetic), NODATA for other types
 *   reverse names     PTR for the addresses in the table, NXDOMAIN for the
 *                     rest of the mesh ranges (NODATA above a known address)
 *   anything else     forwarded to the host's own resolvers
 * Malformed queries get FORMERR, other opcodes NOTIMP, EDNS versions
 * above 0 BADVERS; replies (QR set) and datagrams shorter than a header
 * are dropped: answering a reply could start a loop between two servers. */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Mesh names change when a node joins or leaves; a resolver that caches a
 * stale address longer than that sends a device's packets nowhere. 30 s
 * is short enough to follow a rename or a removal and long enough that a
 * busy program does not ask for every connection. The SOA minimum (how
 * long NXDOMAIN and NODATA are cached) is the same. */
#define DNS_ANSWER_TTL 30

/* Plain DNS over UDP without EDNS0 (RFC 1035 4.2.1). */
#define DNS_UDP_PAYLOAD_MIN 512
/* The EDNS0 payload size we announce and honour at most (DNS flag day
 * 2020: avoids IP fragmentation). */
#define DNS_UDP_PAYLOAD_MAX 1232
#define DNS_HEADER_SIZE 12

typedef struct DnsName {
        char *name; /* a DNS label, lower case (dns_label_is_valid()) */
        struct in_addr ipv4;
        struct in6_addr ipv6;
        bool has_ipv6;
} DnsName;

/* Immutable once built: dns-server.c swaps whole tables. */
typedef struct DnsNameTable {
        char *domain; /* "mesh.internal", lower case */
        struct in_addr ipv4_range;
        uint8_t ipv4_prefixlen;
        struct in6_addr ipv6_range;
        uint8_t ipv6_prefixlen;
        bool has_ipv6_range;
        DnsName *names; /* sorted by name after dns_name_table_seal() */
        size_t n_names;
        void *domain_dname; /* ldns_rdf of domain, made by dns_name_table_seal() */
} DnsNameTable;

int dns_name_table_new(const char *domain, const struct in_addr *ipv4_range, uint8_t ipv4_prefixlen,
                       const struct in6_addr *ipv6_range, uint8_t ipv6_prefixlen, DnsNameTable **ret);
/* ipv6 may be NULL. -EINVAL for a name that is not a valid label, -EEXIST
 * for a name already in the table. */
int dns_name_table_add(DnsNameTable *t, const char *name, const struct in_addr *ipv4,
                       const struct in6_addr *ipv6);
/* Sorts the names (lookups are binary searches); after it the table is
 * only read. -EEXIST when a name is there twice. */
int dns_name_table_seal(DnsNameTable *t);
DnsNameTable *dns_name_table_free(DnsNameTable *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(DnsNameTable *, dns_name_table_free);

typedef enum DnsVerdict {
        DNS_VERDICT_REPLY,   /* *ret_reply holds the reply */
        DNS_VERDICT_FORWARD, /* not ours: ask the upstream resolvers */
        DNS_VERDICT_DROP,    /* send nothing */
} DnsVerdict;

/* The verdict (>= 0) on one query, or -ENOMEM. t may be NULL (no netmap
 * yet: every name is forwarded, malformed queries still get FORMERR).
 * max_size is the most the reply may take (a UDP query: its payload size,
 * dns_query_max_udp_size(); TCP: 65535); a reply that does not fit is cut
 * to its header and question with TC set. */
int dns_answer(const DnsNameTable *t, const uint8_t *query, size_t size, size_t max_size, uint8_t **ret_reply,
               size_t *ret_size);

/* The reply payload size the sender of a UDP query accepts: 512 without
 * EDNS0, its EDNS0 size clamped to 512…DNS_UDP_PAYLOAD_MAX. */
size_t dns_query_max_udp_size(const uint8_t *query, size_t size);

/* A reply with only header and question (copied from query) and rcode
 * (e.g. LDNS_RCODE_SERVFAIL when no upstream answered). -EBADMSG when query
 * is not one. */
int dns_answer_error(const uint8_t *query, size_t size, int rcode, uint8_t **ret_reply, size_t *ret_size);

/* An upstream's reply that is larger than max_size, cut to its header and
 * question with TC set (the client asks again over TCP). -EBADMSG when it
 * does not parse. */
int dns_reply_truncate(const uint8_t *reply, size_t size, size_t max_size, uint8_t **ret_reply,
                       size_t *ret_size);
