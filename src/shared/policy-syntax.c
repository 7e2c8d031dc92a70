/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The small languages inside the policy file's strings: selectors
 * ("*", "alpha", "group:admins", "tag:server", "192.168.50.0/24"),
 * rules ("allow SRC -> DST[:PORTS]") and tests ("alpha can reach nas:22/tcp"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns-label.h"
#include "error-message.h"
#include "policy-internal.h"

#define POLICY_PORTS_MAX NETMAP_FILTER_PORTS_MAX

#define bad(ret_error, ...) error_setf(ret_error, -EINVAL, __VA_ARGS__)

bool policy_name_is_valid(const char *s) {
        return dns_label_is_valid(s);
}

void policy_selector_done(PolicySelector *s) {
        s->name = mfree(s->name);
}

static bool prefix_has_host_bits(const InAddrPrefix *p) {
        size_t bytes = p->family == AF_INET ? 4 : 16;

        for (size_t i = 0; i < bytes; i++) {
                unsigned bit0 = (unsigned) i * 8;

                if (bit0 + 8 <= p->prefixlen)
                        continue;
                if (p->address.bytes[i] & (bit0 >= p->prefixlen ? 0xff : 0xffu >> (p->prefixlen - bit0)))
                        return true;
        }
        return false;
}

int policy_prefix_parse(const char *s, InAddrPrefix *ret) {
        InAddrPrefix p = {};

        if (strchr(s, '/')) {
                if (in_addr_prefix_parse(s, &p.family, &p.address, &p.prefixlen) < 0)
                        return -EINVAL;
        } else {
                if (in_addr_parse(s, &p.family, &p.address) < 0)
                        return -EINVAL;
                p.prefixlen = p.family == AF_INET ? 32 : 128;
        }
        if (prefix_has_host_bits(&p))
                return -EINVAL;
        *ret = p;
        return 0;
}

int policy_selector_parse(const char *s, bool dst, PolicySelector *ret, char **ret_error) {
        PolicySelector sel = {};
        const char *rest;

        if (streq(s, "*")) {
                *ret = (PolicySelector) { .kind = POLICY_SELECT_ALL };
                return 0;
        }
        if ((rest = startswith(s, "group:")))
                sel.kind = POLICY_SELECT_GROUP;
        else if ((rest = startswith(s, "tag:")))
                sel.kind = POLICY_SELECT_TAG;
        else if (dst && policy_prefix_parse(s, &sel.prefix) >= 0) {
                sel.kind = POLICY_SELECT_PREFIX;
                *ret = sel;
                return 0;
        } else {
                rest = s;
                sel.kind = POLICY_SELECT_NAME;
        }

        if (!policy_name_is_valid(rest)) {
                if (sel.kind == POLICY_SELECT_NAME && strpbrk(s, "./:"))
                        return bad(ret_error, "bad selector '%s': not a name%s", s,
                                   dst ? " or an IP prefix without host bits"
                                       : " (no prefixes on the source side)");
                return bad(ret_error, "bad selector '%s': '%s' is not a valid name", s, rest);
        }
        sel.name = strdup(rest);
        if (!sel.name)
                return -ENOMEM;
        *ret = sel;
        return 0;
}

int policy_ports_parse(const char *s, NetmapFilterPort **ret, size_t *ret_n, char **ret_error) {
        _cleanup_free_ NetmapFilterPort *ports = NULL;
        _cleanup_free_ char *copy = strdup(s);
        size_t n = 0;
        char *item, *save = NULL;

        if (!copy)
                return -ENOMEM;
        ports = calloc(POLICY_PORTS_MAX, sizeof(NetmapFilterPort));
        if (!ports)
                return -ENOMEM;
        if (s[0] == '\0' || s[strlen(s) - 1] == ',' || s[0] == ',' || strstr(s, ",,"))
                return bad(ret_error, "bad ports '%s': an empty item", s);
        for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
                if (n == POLICY_PORTS_MAX)
                        return bad(ret_error, "bad ports '%s': more than %d items", s, POLICY_PORTS_MAX);
                if (netmap_filter_port_parse(item, &ports[n]) < 0)
                        return bad(ret_error, "bad port '%s': not N/PROTO, N-M/PROTO or PROTO (tcp, udp, icmp)",
                                   item);
                n++;
        }
        *ret = TAKE_PTR(ports);
        *ret_n = n;
        return 0;
}

/* DST[:PORTS]: IPv6 in brackets when ports follow; "group:G:22/tcp". */
static int split_dst(const char *s, char **ret_dst, const char **ret_ports, char **ret_error) {
        InAddrPrefix p;
        const char *colon, *rest;

        *ret_ports = NULL;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || (close[1] != '\0' && close[1] != ':'))
                        return bad(ret_error, "bad selector '%s': unbalanced '[' ']'", s);
                *ret_dst = strndup(s + 1, close - s - 1);
                if (close[1] == ':')
                        *ret_ports = close + 2;
                return *ret_dst ? 0 : -ENOMEM;
        }
        if (policy_prefix_parse(s, &p) >= 0) { /* an IPv6 prefix without ports */
                *ret_dst = strdup(s);
                return *ret_dst ? 0 : -ENOMEM;
        }
        rest = startswith(s, "group:");
        if (!rest)
                rest = startswith(s, "tag:");
        colon = strchr(rest ?: s, ':');
        if (colon) {
                *ret_dst = strndup(s, colon - s);
                *ret_ports = colon + 1;
        } else
                *ret_dst = strdup(s);
        return *ret_dst ? 0 : -ENOMEM;
}

/* Splits "A SEP B" where SEP is surrounded by spaces; words are trimmed. */
static int split_words(const char *s, const char *sep, char **ret_a, char **ret_b) {
        const char *p = strstr(s, sep);
        const char *a0 = s, *a1, *b0;
        size_t bl;

        if (!p)
                return -EINVAL;
        a1 = p;
        b0 = p + strlen(sep);
        while (a0 < a1 && *a0 == ' ')
                a0++;
        while (a1 > a0 && a1[-1] == ' ')
                a1--;
        while (*b0 == ' ')
                b0++;
        bl = strlen(b0);
        while (bl > 0 && b0[bl - 1] == ' ')
                bl--;
        if (a1 == a0 || bl == 0 || memchr(a0, ' ', a1 - a0) || memchr(b0, ' ', bl))
                return -EINVAL;
        *ret_a = strndup(a0, a1 - a0);
        *ret_b = strndup(b0, bl);
        if (!*ret_a || !*ret_b) {
                *ret_a = mfree(*ret_a);
                *ret_b = mfree(*ret_b);
                return -ENOMEM;
        }
        return 0;
}

int policy_rule_parse(const char *s, PolicyRule *ret, char **ret_error) {
        _cleanup_free_ char *src = NULL, *dst_ports = NULL, *dst = NULL;
        PolicyRule rule = {};
        const char *body, *ports;
        int r;

        body = startswith(s, "allow ");
        if (!body)
                return bad(ret_error, "bad rule '%s': not 'allow SRC -> DST[:PORTS]'", s);
        r = split_words(body, " -> ", &src, &dst_ports);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return bad(ret_error, "bad rule '%s': not 'allow SRC -> DST[:PORTS]' (one selector each side)",
                           s);
        r = split_dst(dst_ports, &dst, &ports, ret_error);
        if (r < 0)
                return r;

        r = policy_selector_parse(src, false, &rule.src, ret_error);
        if (r < 0)
                return r;
        r = policy_selector_parse(dst, true, &rule.dst, ret_error);
        if (r < 0)
                goto fail;
        if (ports) {
                r = policy_ports_parse(ports, &rule.ports, &rule.n_ports, ret_error);
                if (r < 0)
                        goto fail;
        }
        *ret = rule;
        return 0;
fail:
        policy_selector_done(&rule.src);
        policy_selector_done(&rule.dst);
        return r;
}

static int test_dst_parse(const char *s, PolicyTest *t, char **ret_error) {
        _cleanup_free_ char *dst = NULL;
        const char *ports;
        InAddrPrefix p;
        int r;

        r = split_dst(s, &dst, &ports, ret_error);
        if (r < 0)
                return r;
        if (!policy_name_is_valid(dst) &&
            (policy_prefix_parse(dst, &p) < 0 || p.prefixlen != (p.family == AF_INET ? 32 : 128)))
                return bad(ret_error, "bad test destination '%s': not a name or an address", dst);
        if (ports) {
                if (netmap_filter_port_parse(ports, &t->port) < 0 ||
                    (t->port.proto != NETMAP_FILTER_ICMP && t->port.port_first != t->port.port_last))
                        return bad(ret_error, "bad test port '%s': not N/tcp, N/udp or icmp", ports);
                t->has_port = true;
        }
        t->dst = TAKE_PTR(dst);
        return 0;
}

int policy_test_parse(const char *s, PolicyTest *ret, char **ret_error) {
        _cleanup_free_ char *src = NULL, *dst = NULL;
        PolicyTest t = {};
        int r;

        r = split_words(s, " cannot reach ", &src, &dst);
        if (r == -EINVAL) {
                t.can = true;
                r = split_words(s, " can reach ", &src, &dst);
        }
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return bad(ret_error,
                           "bad test '%s': not 'NAME can reach DST[:PORT]' or 'NAME cannot reach DST[:PORT]'",
                           s);
        if (!policy_name_is_valid(src))
                return bad(ret_error, "bad test '%s': '%s' is not a node or device name", s, src);
        r = test_dst_parse(dst, &t, ret_error);
        if (r < 0)
                return r;
        t.src = TAKE_PTR(src);
        *ret = t;
        return 0;
}
