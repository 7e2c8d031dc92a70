/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The hub's firewall: one nftables table of our own ("inet meshd_hub_IFNAME")
 * that lets the hub forward only between mesh members and keeps nodes off
 * the control host's services. A node is root on its machine and can widen
 * its hub peer's AllowedIPs to 0.0.0.0/0: WireGuard then carries whatever it
 * sends to the hub, so the check must be here, in the kernel, on the hub
 * side. The rules (see hub_firewall_script_install()):
 *
 *   forward: in on the hub → must leave on the hub, source and destination
 *            both in the member sets (IPv4 and IPv6), else dropped; out on
 *            the hub from any other interface → dropped.
 *   input:   from the hub → only replies (established, related), the probe
 *            responder (UDP 41642 on the hub's mesh addresses) and the
 *            --hub-allow services, from member sources; else dropped.
 *            From anywhere: handshake initiations to the hub's UDP port
 *            above a per-source rate are dropped.
 *
 * The script builders are pure (unit-tested); hub_firewall_new/update/remove
 * run them through libnftables, each script one transaction. */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define HUB_FIREWALL_TABLE_PREFIX "meshd_hub_"
#define HUB_FIREWALL_TABLE_MAX (sizeof(HUB_FIREWALL_TABLE_PREFIX) + 16)
#define HUB_ALLOW_MAX 64

/* Handshake initiations per source (IPv4 address or IPv6 /64) that the hub
 * takes before dropping: a node initiates at most every 5 s per peer, and
 * a NAT hides many nodes behind one address. */
#define HUB_HANDSHAKE_RATE 50
#define HUB_HANDSHAKE_BURST 100

typedef struct HubAllow {
        int protocol; /* IPPROTO_TCP or IPPROTO_UDP */
        uint16_t port;
} HubAllow;

/* "tcp/443", "udp/53": lower-case protocol, port 1 … 65535. */
int hub_allow_parse(const char *s, HubAllow *ret);

typedef struct HubFirewallConfig {
        const char *ifname; /* the hub interface */
        struct in_addr hub_ipv4;
        struct in6_addr hub_ipv6;
        uint16_t listen_port; /* the hub's WireGuard port (handshake rate limit); 0: none */
        const HubAllow *allow;
        size_t n_allow;
} HubFirewallConfig;

/* The member addresses; hub_firewall_members_normalize() sorts them
 * (memcmp order) and drops duplicates, which the builders below need. */
typedef struct HubFirewallMembers {
        struct in_addr *ipv4;
        size_t n_ipv4;
        struct in6_addr *ipv6;
        size_t n_ipv6;
} HubFirewallMembers;

void hub_firewall_members_normalize(HubFirewallMembers *m);
void hub_firewall_members_done(HubFirewallMembers *m);

/* "meshd_hub_" + the interface name; -EINVAL for a name with characters
 * other than letters, digits, '_', '-' and '.' (it goes into the rules as
 * a quoted string, and into the table name). */
int hub_firewall_table_name(const char *ifname, char ret[static HUB_FIREWALL_TABLE_MAX]);

/* Pure builders of nft scripts (one transaction each); *ret malloc'ed. */
/* The whole table, replacing any table of the same name (a stale one). */
int hub_firewall_script_install(const HubFirewallConfig *c, const HubFirewallMembers *members, char **ret);
/* Only the differences between two normalized member lists; *ret = NULL
 * when there are none. */
int hub_firewall_script_update(const char *table, const HubFirewallMembers *old, const HubFirewallMembers *new,
                               char **ret);
/* Both sets emptied and refilled, in one transaction. */
int hub_firewall_script_reload(const char *table, const HubFirewallMembers *members, char **ret);
/* The table gone; succeeds whether or not it exists. */
int hub_firewall_script_remove(const char *table, char **ret);

typedef struct HubFirewall HubFirewall;

/* Installs the table (replacing a stale one) with these members; takes
 * them (normalized) on success. */
int hub_firewall_new(const HubFirewallConfig *c, HubFirewallMembers *members, HubFirewall **ret);
/* Brings the sets in step with members (taken, normalized, on success and
 * on failure alike). A failed update leaves the firewall pending: the next
 * call reloads both sets whole. */
int hub_firewall_update(HubFirewall *fw, HubFirewallMembers *members);
bool hub_firewall_pending(const HubFirewall *fw);
/* Deletes the table. */
int hub_firewall_remove(HubFirewall *fw);
HubFirewall *hub_firewall_free(HubFirewall *fw);
DEFINE_TRIVIAL_CLEANUP_FUNC(HubFirewall *, hub_firewall_free);

/* 0 when the kernel speaks nfnetlink, else -errno (EPROTONOSUPPORT: no
 * nf_tables). */
int hub_firewall_available(void);

/* --no-hub-firewall: deletes a table a previous run left (best effort: its
 * stale member sets would drop new members' relayed traffic). */
int hub_firewall_remove_stale(const char *ifname);

/* One more script on fw's table, for the device chain of hub-policy.c. */
int hub_firewall_apply(HubFirewall *fw, const char *script, char *error, size_t error_size);
const char *hub_firewall_table(const HubFirewall *fw);
