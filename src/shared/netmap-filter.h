/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The netmap's "filter" (docs/protocol.md, CONTRACT of issue 16 §2): the
 * compiled inbound rules of the access policy where this node is the
 * receiver. Produced by the control server's policy compiler (policy.h),
 * rendered by netmap-render.c, parsed and bounded by netmap-parse.c,
 * checked against the node's own addresses and routes by netmap-trust.c,
 * consumed by the node's firewall (meshd's nftables table).
 *
 * Semantics: traffic arriving on the mesh interface from an address inside
 * one of src, to an address inside one of dst, matching one of ports (none
 * = every protocol and port) is accepted; everything else new is dropped
 * (replies to the node's own connections pass: the firewall is stateful).
 * Netmap.filter == NULL: no policy, accept everything from the mesh.
 * Netmap.filter != NULL with n_entries == 0: a policy exists and nothing
 * may reach this node. */

#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"
#include "macro.h"

#define NETMAP_FILTER_ENTRIES_MAX 4096
#define NETMAP_FILTER_PREFIXES_MAX 256
#define NETMAP_FILTER_PORTS_MAX 64

typedef enum NetmapFilterProto {
        NETMAP_FILTER_TCP,
        NETMAP_FILTER_UDP,
        NETMAP_FILTER_ICMP, /* ICMP and ICMPv6; port_first/port_last unused (0) */
        _NETMAP_FILTER_PROTO_MAX,
} NetmapFilterProto;

/* "22/tcp" → {TCP, 22, 22}; "8000-8080/udp" → {UDP, 8000, 8080};
 * "tcp" → {TCP, 0, 65535}; "icmp" → {ICMP, 0, 0}. port_first <= port_last. */
typedef struct NetmapFilterPort {
        NetmapFilterProto proto;
        uint16_t port_first;
        uint16_t port_last;
} NetmapFilterPort;

typedef struct NetmapFilterEntry {
        InAddrPrefix *src; /* 1..NETMAP_FILTER_PREFIXES_MAX, host bits clear */
        size_t n_src;
        InAddrPrefix *dst; /* 1..NETMAP_FILTER_PREFIXES_MAX, host bits clear */
        size_t n_dst;
        NetmapFilterPort *ports; /* 0..NETMAP_FILTER_PORTS_MAX; 0 = every protocol and port */
        size_t n_ports;
} NetmapFilterEntry;

typedef struct NetmapFilter {
        NetmapFilterEntry *entries; /* 0..NETMAP_FILTER_ENTRIES_MAX */
        size_t n_entries;
} NetmapFilter;

NetmapFilter *netmap_filter_free(NetmapFilter *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(NetmapFilter *, netmap_filter_free);
/* A deep copy (the netmap of a delta keeps its base's filter). */
int netmap_filter_copy(const NetmapFilter *f, NetmapFilter **ret);

/* "22/tcp", "1-5/udp", "tcp", "icmp": 0 or -EINVAL. Shared by the policy
 * parser and the netmap parser, so both read one grammar. */
int netmap_filter_port_parse(const char *s, NetmapFilterPort *ret);
/* The canonical text of the above ("22/tcp", "1-5/udp", "tcp", "icmp");
 * buf of at least NETMAP_FILTER_PORT_STRLEN. */
#define NETMAP_FILTER_PORT_STRLEN 16
const char *netmap_filter_port_format(const NetmapFilterPort *p, char *buf, size_t len);
const char *netmap_filter_proto_to_string(NetmapFilterProto p);

/* The "filter" array of a netmap (item borrowed), bounded and validated:
 * -EBADMSG with a one-line message under prefix ("filter[3].src[0]: …").
 * Prefixes must have no host bits set. netmap-trust.c checks them against
 * the mesh ranges and the node's own addresses. */
struct cJSON;
int netmap_filter_from_json(const struct cJSON *item, const char *prefix, NetmapFilter **ret, char **ret_error);
