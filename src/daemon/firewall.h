/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The node's own nftables table, "table inet meshd" (docs/firewall.md):
 * what may arrive on the mesh interface (the netmap's "filter", enforced on
 * the receiving node), what may be forwarded from it (to the prefixes this
 * node routes for, and to everything when it is an exit node), and the
 * masquerading of forwarded mesh traffic. Generated whole from one
 * FirewallSpec (firewall-script.c, pure) and replaced in one transaction
 * (firewall.c): a failed replacement leaves the old table as it was. meshd
 * touches no other table. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"
#include "macro.h"

#define FIREWALL_TABLE "meshd"

/* Our base chains' priorities: after conntrack (-200), so ct state is
 * known, and before the usual filter chains at 0 (nft's, iptables-nft's,
 * ufw's, Docker's), so what we drop never reaches them; everything we
 * accept still passes through theirs. Masquerading after the usual srcnat
 * chains (100), so an admin's own SNAT rule for the same packets wins. */
#define FIREWALL_FILTER_PRIORITY "filter - 5"
#define FIREWALL_NAT_PRIORITY "srcnat + 5"

typedef enum FirewallProto {
        FIREWALL_PROTO_TCP,
        FIREWALL_PROTO_UDP,
        FIREWALL_PROTO_ICMP, /* ICMP and ICMPv6; no ports */
        _FIREWALL_PROTO_MAX,
} FirewallProto;

/* A PORTS item (netmap-filter.h): "22/tcp" (from = to = 22), "8000-8100/udp", "tcp" (from 0, to 65535), "icmp".
 */
typedef struct FirewallPort {
        FirewallProto proto;
        uint16_t from, to;
} FirewallPort;

/* Traffic from any of src to any of dst on any of ports ([] = every
 * protocol and port) is allowed in. */
typedef struct FirewallRule {
        InAddrPrefix *src;
        size_t n_src;
        InAddrPrefix *dst;
        size_t n_dst;
        FirewallPort *ports;
        size_t n_ports;
} FirewallRule;

typedef struct FirewallSpec {
        const char *ifname; /* the mesh interface */
        /* the netmap's "filter": policy false = no policy, everything from
         * the mesh may arrive; policy true with no rules = nothing may
         * (replies to this node's own connections still pass) */
        bool policy;
        const FirewallRule *filter;
        size_t n_filter;
        /* forwarding from the mesh interface: to these prefixes (approved
         * routes; a /0 among them counts as exit) and, with exit, to
         * everything; with a policy only what a filter rule allows */
        const InAddrPrefix *routes;
        size_t n_routes;
        bool exit;
        /* masquerade forwarded mesh traffic leaving through another
         * interface: to the routes (subnet_snat), to the rest (exit_snat) */
        bool subnet_snat, exit_snat;
        /* the mesh's ranges: the sources that get masqueraded */
        const InAddrPrefix *mesh;
        size_t n_mesh;
} FirewallSpec;

/* Whether the spec needs a table at all: a policy, routes or exit. */
bool firewall_spec_wanted(const FirewallSpec *spec);

/* The whole table as an nft script: "add, delete, define" in one buffer, so
 * the kernel replaces any table of that name in one transaction, or NULL in
 * *ret when no table is wanted. -EINVAL for an interface name unfit for a
 * rule or an invalid rule. *ret malloc'ed. */
int firewall_script_install(const FirewallSpec *spec, char **ret);
/* The table gone; succeeds whether or not it exists. */
int firewall_script_remove(char **ret);

typedef struct Firewall Firewall;

/* In the state directory while a table of ours may exist. */
#define FIREWALL_MARKER_NAME "nftables-table"

int firewall_new(const char *state_dir, Firewall **ret);
Firewall *firewall_free(Firewall *fw);
DEFINE_TRIVIAL_CLEANUP_FUNC(Firewall *, firewall_free);

/* Makes the kernel's table what spec says (installs, replaces or deletes
 * it), only when the script differs from the one applied last. Logs one
 * line with the counts, or one error naming the table (the old table then
 * stays as it was). */
int firewall_apply(Firewall *fw, const FirewallSpec *spec);
/* Deletes the table (meshd stopping, leaving the mesh). */
int firewall_remove(Firewall *fw);
