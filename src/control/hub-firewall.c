/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub-firewall.h"
#include "log.h"
#include "nft-run.h"
#include "probe-packet.h"

/* Our chains run after conntrack (-200) and mangle (-150), so ct state is
 * known, and before the usual filter chains (nftables' and iptables-nft's
 * "filter", priority 0), so what we drop never reaches them. They only
 * drop or fall through (policy accept, "return"): an accept in one base
 * chain hands the packet on to the next base chain of the hook, so an
 * administrator's rules in other tables still see, and may still drop,
 * everything we let through. We never touch another table. */
#define HUB_FIREWALL_PRIORITY "filter - 10"

/* WireGuard's handshake initiation: message type 1 in the first byte, then
 * three zero bytes, 148 bytes in all (UDP length 156). */
#define WG_INITIATION_UDP_LENGTH 156

struct HubFirewall {
        Nftables *nft;
        char table[HUB_FIREWALL_TABLE_MAX];
        HubFirewallMembers applied; /* what the kernel's sets hold, normalized */
        bool pending;               /* an update failed: the next one reloads whole */
};

int hub_allow_parse(const char *s, HubAllow *ret) {
        const char *slash;
        unsigned long port;
        char *end;
        int protocol;

        if (!s)
                return -EINVAL;
        slash = strchr(s, '/');
        if (!slash)
                return -EINVAL;
        if (slash - s == 3 && strncmp(s, "tcp", 3) == 0)
                protocol = IPPROTO_TCP;
        else if (slash - s == 3 && strncmp(s, "udp", 3) == 0)
                protocol = IPPROTO_UDP;
        else
                return -EINVAL;
        if (slash[1] < '1' || slash[1] > '9')
                return -EINVAL;
        errno = 0;
        port = strtoul(slash + 1, &end, 10);
        if (errno != 0 || *end != 0 || port > 65535)
                return -EINVAL;
        *ret = (HubAllow) { .protocol = protocol, .port = (uint16_t) port };
        return 0;
}

static int compare_in4(const void *a, const void *b) {
        return memcmp(a, b, sizeof(struct in_addr));
}

static int compare_in6(const void *a, const void *b) {
        return memcmp(a, b, sizeof(struct in6_addr));
}

static size_t dedup(void *base, size_t n, size_t size) {
        uint8_t *p = base;
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                if (k == 0 || memcmp(p + (k - 1) * size, p + i * size, size) != 0) {
                        if (k != i)
                                memcpy(p + k * size, p + i * size, size);
                        k++;
                }
        return k;
}

void hub_firewall_members_normalize(HubFirewallMembers *m) {
        if (m->n_ipv4 > 0) {
                qsort(m->ipv4, m->n_ipv4, sizeof(struct in_addr), compare_in4);
                m->n_ipv4 = dedup(m->ipv4, m->n_ipv4, sizeof(struct in_addr));
        }
        if (m->n_ipv6 > 0) {
                qsort(m->ipv6, m->n_ipv6, sizeof(struct in6_addr), compare_in6);
                m->n_ipv6 = dedup(m->ipv6, m->n_ipv6, sizeof(struct in6_addr));
        }
}

void hub_firewall_members_done(HubFirewallMembers *m) {
        free(m->ipv4);
        free(m->ipv6);
        *m = (HubFirewallMembers) {};
}

static bool ifname_char_ok(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '-' || c == '.';
}

int hub_firewall_table_name(const char *ifname, char ret[static HUB_FIREWALL_TABLE_MAX]) {
        size_t n;

        if (!ifname)
                return -EINVAL;
        n = strlen(ifname);
        if (n == 0 || n > 15)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!ifname_char_ok(ifname[i]))
                        return -EINVAL;
        (void) snprintf(ret, HUB_FIREWALL_TABLE_MAX, HUB_FIREWALL_TABLE_PREFIX "%s", ifname);
        return 0;
}

/* ---- script text ---- */

/* "{ a, b, c }" of n addresses of one family. */
static void put_elements(FILE *f, int family, const void *addrs, size_t n) {
        size_t size = family == AF_INET ? sizeof(struct in_addr) : sizeof(struct in6_addr);
        char buf[INET6_ADDRSTRLEN];

        fputs("{ ", f);
        for (size_t i = 0; i < n; i++) {
                (void) inet_ntop(family, (const uint8_t *) addrs + i * size, buf, sizeof(buf));
                fprintf(f, "%s%s", i > 0 ? ", " : "", buf);
        }
        fputs(" }", f);
}

static void put_element_command(FILE *f, const char *verb, const char *table, const char *set, int family,
                                const void *addrs, size_t n) {
        if (n == 0) /* "{ }" is a syntax error */
                return;
        fprintf(f, "%s element inet %s %s ", verb, table, set);
        put_elements(f, family, addrs, n);
        fputc('\n', f);
}

static int finish_script(FILE **f, char **text, char **ret) {
        if (ferror(*f) || fclose(*f) != 0) {
                *f = NULL;
                return -ENOMEM;
        }
        *f = NULL;
        *ret = TAKE_PTR(*text);
        return 0;
}

static void put_member_set(FILE *f, const char *name, int family, const void *addrs, size_t n) {
        fprintf(f, "\tset %s {\n\t\ttype %s\n", name, family == AF_INET ? "ipv4_addr" : "ipv6_addr");
        if (n > 0) {
                fputs("\t\telements = ", f);
                put_elements(f, family, addrs, n);
                fputc('\n', f);
        }
        fputs("\t}\n", f);
}

static void put_forward_chains(FILE *f, const char *ifname) {
        fprintf(f,
                "\tchain forward {\n"
                "\t\ttype filter hook forward priority " HUB_FIREWALL_PRIORITY "; policy accept;\n"
                "\t\toifname \"%1$s\" iifname != \"%1$s\" counter drop comment \"into the hub from another "
                "interface\"\n"
                "\t\tiifname \"%1$s\" jump from_hub\n"
                "\t}\n"
                "\tchain from_hub {\n"
                "\t\toifname != \"%1$s\" counter drop comment \"out of the mesh\"\n"
                "\t\tip saddr @members4 ip daddr @members4 return\n"
                "\t\tip6 saddr @members6 ip6 daddr @members6 return\n"
                "\t\tcounter drop comment \"not between two members\"\n"
                "\t}\n",
                ifname);
}

static void put_handshake_limit(FILE *f, uint16_t port) {
        if (port == 0)
                return;
        /* The TLS relay hands every stream's datagrams to the hub from
         * 127.0.0.1: one source address for all of them, so a per-source
         * limit would let one stream's flood starve the handshakes of every
         * other. meshd-control limits handshakes per stream instead
         * (relay-server.c). */
        fprintf(f,
                "\t\tiifname \"lo\" udp dport %u counter return comment \"TLS relay streams, limited per stream\"\n",
                port);
        fprintf(f,
                "\t\tmeta nfproto ipv4 udp dport %1$u udp length %2$u @th,64,32 0x01000000 "
                "update @handshakes4 { ip saddr limit rate over %3$u/second burst %4$u packets } "
                "counter drop comment \"handshake flood\"\n"
                "\t\tmeta nfproto ipv6 udp dport %1$u udp length %2$u @th,64,32 0x01000000 "
                "update @handshakes6 { ip6 saddr & ffff:ffff:ffff:ffff:: limit rate over %3$u/second burst "
                "%4$u packets } "
                "counter drop comment \"handshake flood\"\n",
                port, WG_INITIATION_UDP_LENGTH, HUB_HANDSHAKE_RATE, HUB_HANDSHAKE_BURST);
}

static void put_input_chains(FILE *f, const HubFirewallConfig *c) {
        char a4[INET_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];

        (void) inet_ntop(AF_INET, &c->hub_ipv4, a4, sizeof(a4));
        (void) inet_ntop(AF_INET6, &c->hub_ipv6, a6, sizeof(a6));

        fprintf(f,
                "\tchain input {\n"
                "\t\ttype filter hook input priority " HUB_FIREWALL_PRIORITY "; policy accept;\n"
                "\t\tiifname \"%s\" jump to_hub\n",
                c->ifname);
        put_handshake_limit(f, c->listen_port);
        fprintf(f,
                "\t}\n"
                "\tchain to_hub {\n"
                "\t\tct state established,related return\n"
                "\t\tip saddr @members4 ip daddr %1$s udp dport %3$u return comment \"probes\"\n"
                "\t\tip6 saddr @members6 ip6 daddr %2$s udp dport %3$u return comment \"probes\"\n",
                a4, a6, PROBE_PORT);
        for (size_t i = 0; i < c->n_allow; i++) {
                const char *proto = c->allow[i].protocol == IPPROTO_TCP ? "tcp" : "udp";

                fprintf(f,
                        "\t\tip saddr @members4 ip daddr %1$s %3$s dport %4$u return comment "
                        "\"--hub-allow\"\n"
                        "\t\tip6 saddr @members6 ip6 daddr %2$s %3$s dport %4$u return comment "
                        "\"--hub-allow\"\n",
                        a4, a6, proto, c->allow[i].port);
        }
        fputs("\t\tcounter drop comment \"not a hub service\"\n"
              "\t}\n",
              f);
}

static void put_handshake_sets(FILE *f) {
        for (int i = 0; i < 2; i++)
                fprintf(f,
                        "\tset handshakes%s {\n"
                        "\t\ttype %s\n"
                        "\t\tsize 65536\n"
                        "\t\tflags dynamic,timeout\n"
                        "\t\ttimeout 60s\n"
                        "\t}\n",
                        i == 0 ? "4" : "6", i == 0 ? "ipv4_addr" : "ipv6_addr");
}

int hub_firewall_script_install(const HubFirewallConfig *c, const HubFirewallMembers *members, char **ret) {
        _cleanup_free_ char *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        char table[HUB_FIREWALL_TABLE_MAX];
        size_t size;
        int r;

        r = hub_firewall_table_name(c->ifname, table);
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->n_allow; i++)
                if ((c->allow[i].protocol != IPPROTO_TCP && c->allow[i].protocol != IPPROTO_UDP) ||
                    c->allow[i].port == 0)
                        return -EINVAL;
        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;

        /* add (a no-op when it exists), delete, create: one transaction
         * that replaces a stale table and never leaves the hub without one */
        fprintf(f,
                "table inet %1$s {}\n"
                "delete table inet %1$s\n"
                "table inet %1$s {\n"
                "\tcomment \"meshd-control: the hub forwards between mesh members only, see "
                "meshd-control(8)\"\n",
                table);
        put_member_set(f, "members4", AF_INET, members->ipv4, members->n_ipv4);
        put_member_set(f, "members6", AF_INET6, members->ipv6, members->n_ipv6);
        if (c->listen_port != 0)
                put_handshake_sets(f);
        put_forward_chains(f, c->ifname);
        put_input_chains(f, c);
        fputs("}\n", f);
        return finish_script(&f, &text, ret);
}

/* Merge of two sorted lists: what is only in old is deleted, what is only
 * in new added, deletions first, so an address that moved from one member
 * to another in the same round is deleted and added back, never the
 * reverse. */
static int put_set_diff(FILE *f, const char *table, const char *set, int family, const void *old, size_t n_old,
                        const void *new, size_t n_new) {
        size_t size = family == AF_INET ? sizeof(struct in_addr) : sizeof(struct in6_addr);
        const uint8_t *o = old, *n = new;
        _cleanup_free_ char *adds = NULL;
        _cleanup_fclose_ FILE *fa = NULL;
        size_t n_del = 0, n_add = 0, adds_size, i = 0, j = 0;
        char buf[INET6_ADDRSTRLEN];

        fa = open_memstream(&adds, &adds_size);
        if (!fa)
                return -ENOMEM;
        while (i < n_old || j < n_new) {
                int c = i == n_old ? 1 : j == n_new ? -1 : memcmp(o + i * size, n + j * size, size);

                if (c < 0) {
                        (void) inet_ntop(family, o + i * size, buf, sizeof(buf));
                        if (n_del++ == 0)
                                fprintf(f, "delete element inet %s %s { %s", table, set, buf);
                        else
                                fprintf(f, ", %s", buf);
                        i++;
                } else if (c > 0) {
                        (void) inet_ntop(family, n + j * size, buf, sizeof(buf));
                        if (n_add++ == 0)
                                fprintf(fa, "add element inet %s %s { %s", table, set, buf);
                        else
                                fprintf(fa, ", %s", buf);
                        j++;
                } else {
                        i++;
                        j++;
                }
        }
        if (n_del > 0)
                fputs(" }\n", f);
        if (n_add > 0)
                fputs(" }\n", fa);
        if (fflush(fa) != 0 || ferror(fa))
                return -ENOMEM;
        fputs(adds, f);
        return 0;
}

int hub_firewall_script_update(const char *table, const HubFirewallMembers *old, const HubFirewallMembers *new,
                               char **ret) {
        _cleanup_free_ char *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size;
        int r;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        r = put_set_diff(f, table, "members4", AF_INET, old->ipv4, old->n_ipv4, new->ipv4, new->n_ipv4);
        if (r >= 0)
                r = put_set_diff(f, table, "members6", AF_INET6, old->ipv6, old->n_ipv6, new->ipv6,
                                 new->n_ipv6);
        if (r < 0)
                return r;
        r = finish_script(&f, &text, ret);
        if (r < 0)
                return r;
        if (size == 0)
                *ret = mfree(*ret);
        return 0;
}

int hub_firewall_script_reload(const char *table, const HubFirewallMembers *members, char **ret) {
        _cleanup_free_ char *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f, "flush set inet %1$s members4\nflush set inet %1$s members6\n", table);
        put_element_command(f, "add", table, "members4", AF_INET, members->ipv4, members->n_ipv4);
        put_element_command(f, "add", table, "members6", AF_INET6, members->ipv6, members->n_ipv6);
        return finish_script(&f, &text, ret);
}

int hub_firewall_script_remove(const char *table, char **ret) {
        return asprintf(ret, "table inet %1$s {}\ndelete table inet %1$s\n", table) < 0 ? -ENOMEM : 0;
}

/* ---- running scripts ---- */

int hub_firewall_available(void) {
        return nftables_available();
}

int hub_firewall_new(const HubFirewallConfig *c, HubFirewallMembers *members, HubFirewall **ret) {
        _cleanup_(hub_firewall_freep) HubFirewall *fw = NULL;
        _cleanup_free_ char *script = NULL;
        char error[256];
        int r;

        hub_firewall_members_normalize(members);
        fw = calloc(1, sizeof(*fw));
        if (!fw)
                return log_oom();
        r = hub_firewall_table_name(c->ifname, fw->table);
        if (r < 0)
                return log_error_errno(r,
                                       "Hub interface name '%s' cannot be used in nftables rules "
                                       "(letters, digits, '_', '-', '.' only).",
                                       c->ifname);
        r = hub_firewall_script_install(c, members, &script);
        if (r < 0)
                return log_error_errno(r, "Failed to build the hub firewall: %m");
        r = nftables_open(&fw->nft);
        if (r < 0)
                return log_error_errno(r,
                                       "Failed to install the hub firewall (nftables table inet %s): "
                                       "no nftables (%m); without it a node can reach this host and its "
                                       "networks through the hub (--no-hub-firewall runs without it anyway).",
                                       fw->table);
        r = nftables_run(fw->nft, script, error, sizeof(error));
        if (r < 0)
                return log_error_errno(r,
                                       "Failed to install the hub firewall (nftables table inet %s): %s; "
                                       "without it a node can reach this host and its networks through "
                                       "the hub (--no-hub-firewall runs without it anyway).",
                                       fw->table, error);
        log_info("Hub firewall: nftables table inet %s, %zu IPv4 and %zu IPv6 member address(es), "
                 "%zu service(s) allowed on the hub address.",
                 fw->table, members->n_ipv4, members->n_ipv6, c->n_allow);
        fw->applied = *members;
        *members = (HubFirewallMembers) {};
        *ret = TAKE_PTR(fw);
        return 0;
}

/* Incremental by default: membership changes one node at a time (a
 * registration, a removal), and at 10,000 nodes a whole reload is 20,000
 * elements for libnftables to parse and the kernel to rebuild on every
 * join (~75 ms measured, on the server's only thread, during a mass
 * join), while a difference is a line or two (~0.15 ms). A member's peer
 * goes before its addresses leave the sets, so a set that lags a removal
 * lets nothing through. A reload (one transaction: flush both sets, add
 * all) only after an update failed, when what the kernel holds is
 * uncertain. */
int hub_firewall_update(HubFirewall *fw, HubFirewallMembers *members) {
        _cleanup_free_ char *script = NULL;
        char error[256];
        bool reload;
        int r;

        hub_firewall_members_normalize(members);
        reload = fw->pending;
        if (reload)
                r = hub_firewall_script_reload(fw->table, members, &script);
        else
                r = hub_firewall_script_update(fw->table, &fw->applied, members, &script);
        if (r < 0) {
                hub_firewall_members_done(members);
                fw->pending = true;
                return log_oom();
        }
        if (script) {
                r = nftables_run(fw->nft, script, error, sizeof(error));
                if (r < 0) {
                        hub_firewall_members_done(members);
                        fw->pending = true;
                        /* retried every second: one error, then quietly */
                        return log_full_errno(reload ? LOG_DEBUG : LOG_ERR, r,
                                              "Failed to update the hub firewall's member sets "
                                              "(table inet %s): %s; retrying.",
                                              fw->table, error);
                }
                log_debug("Hub firewall: member sets %s, %zu IPv4 and %zu IPv6 address(es).",
                          reload ? "reloaded" : "updated", members->n_ipv4, members->n_ipv6);
        }
        hub_firewall_members_done(&fw->applied);
        fw->applied = *members;
        *members = (HubFirewallMembers) {};
        fw->pending = false;
        return 0;
}

bool hub_firewall_pending(const HubFirewall *fw) {
        return fw && fw->pending;
}

int hub_firewall_remove(HubFirewall *fw) {
        _cleanup_free_ char *script = NULL;
        char error[256];
        int r;

        r = hub_firewall_script_remove(fw->table, &script);
        if (r < 0)
                return log_oom();
        r = nftables_run(fw->nft, script, error, sizeof(error));
        if (r < 0)
                return log_warning_errno(r, "Failed to remove the hub firewall (table inet %s): %s", fw->table,
                                         error);
        log_info("Removed the hub firewall (table inet %s).", fw->table);
        return 0;
}

HubFirewall *hub_firewall_free(HubFirewall *fw) {
        if (!fw)
                return NULL;
        if (fw->nft)
                nftables_close(fw->nft);
        hub_firewall_members_done(&fw->applied);
        free(fw);
        return NULL;
}

int hub_firewall_remove_stale(const char *ifname) {
        _cleanup_free_ char *script = NULL;
        char table[HUB_FIREWALL_TABLE_MAX], error[256];
        Nftables *nft = NULL;
        int r;

        if (hub_firewall_table_name(ifname, table) < 0)
                return 0; /* we never made one for such a name */
        r = hub_firewall_script_remove(table, &script);
        if (r < 0)
                return r;
        r = nftables_open(&nft);
        if (r < 0)
                return r;
        r = nftables_run(nft, script, error, sizeof(error));
        nftables_close(nft);
        if (r < 0)
                return log_debug_errno(r, "No stale hub firewall removed (table inet %s): %s", table, error);
        return 0;
}

int hub_firewall_apply(HubFirewall *fw, const char *script, char *error, size_t error_size) {
        return nftables_run(fw->nft, script, error, error_size);
}

const char *hub_firewall_table(const HubFirewall *fw) {
        return fw->table;
}
