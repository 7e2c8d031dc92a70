/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The access policy of the control server (docs/policy.md): who may reach
 * what. policy-parse.c reads the policy file (JSON) with the line of every
 * error; policy.c evaluates it and compiles it, for one receiving node, into
 * the netmap's "filter" (netmap-filter.h) and its peer set. Pure: members
 * come in as a plain array, nothing here does I/O. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"
#include "macro.h"
#include "netmap-filter.h"

typedef enum PolicySelectorKind {
        POLICY_SELECT_ALL,    /* "*" */
        POLICY_SELECT_NAME,   /* a node or device name */
        POLICY_SELECT_GROUP,  /* "group:G" */
        POLICY_SELECT_TAG,    /* "tag:T" */
        POLICY_SELECT_PREFIX, /* DST only: an address or prefix */
} PolicySelectorKind;

typedef struct PolicySelector {
        PolicySelectorKind kind;
        char *name; /* NAME, GROUP (index into groups in group), TAG */
        size_t group;
        InAddrPrefix prefix;
} PolicySelector;

typedef struct PolicyGroup {
        char *name;
        PolicySelector *members; /* NAME, TAG or GROUP */
        size_t n_members;
        unsigned line;
} PolicyGroup;

typedef struct PolicyRule {
        PolicySelector src, dst;
        NetmapFilterPort *ports; /* n_ports == 0: every protocol and port */
        size_t n_ports;
        unsigned line;
} PolicyRule;

typedef struct PolicyTest {
        char *src;             /* a member name */
        char *dst;             /* a member name or an address */
        bool has_port;         /* else: any protocol and port */
        NetmapFilterPort port; /* one port (or "icmp") */
        bool can;              /* "can reach" / "cannot reach" */
        unsigned line;
} PolicyTest;

typedef struct PolicyAutoApprove {
        InAddrPrefix prefix;
        PolicySelector *selectors; /* NAME, TAG, GROUP or ALL */
        size_t n_selectors;
        unsigned line;
} PolicyAutoApprove;

typedef struct Policy {
        PolicyGroup *groups;
        size_t n_groups;
        PolicyRule *rules;
        size_t n_rules;
        PolicyTest *tests;
        size_t n_tests;
        PolicyAutoApprove *auto_approve;
        size_t n_auto_approve;
} Policy;

Policy *policy_free(Policy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Policy *, policy_free);

/* The policy file's text (need not be NUL-terminated). -EINVAL with
 * *ret_error "line N: what is wrong" (bad JSON, unknown key, unknown group,
 * group cycle, bad selector, bad ports, bad test, bad prefix). */
int policy_parse(const char *text, size_t len, Policy **ret, char **ret_error);

/* A node or device as the policy sees it. */
typedef struct PolicyMember {
        const char *name;
        char *const *tags; /* strv without "tag:", may be NULL */
        union in_addr_union ipv4;
        bool has_ipv4;
        union in_addr_union ipv6;
        bool has_ipv6;
        const InAddrPrefix *routes; /* approved routes (subnets, 0.0.0.0/0, ::/0) */
        size_t n_routes;
        bool device;
} PolicyMember;

/* Whether selector sel (of p) takes in member m. */
bool policy_selects(const Policy *p, const PolicySelector *sel, const PolicyMember *m);

/* May member src open a connection to dst ("name", or an address) with
 * port (NULL: any protocol and port at all)? A member name means any of its
 * own addresses. 1 yes, 0 no, -ENOENT src (or a dst name) is no member,
 * -EINVAL dst is neither a name nor an address. p NULL: no policy, 1. */
int policy_allows(const Policy *p, const PolicyMember *members, size_t n_members, const char *src_name,
                  const char *dst_name_or_address, const NetmapFilterPort *port);

/* Whether a may open connections to anything of b: its addresses or its
 * approved routes, on any port (the peer relation is this, either way). */
bool policy_member_reaches(const Policy *p, const PolicyMember *a, const PolicyMember *b);
static inline bool policy_peers(const Policy *p, const PolicyMember *a, const PolicyMember *b) {
        return !p || policy_member_reaches(p, a, b) || policy_member_reaches(p, b, a);
}
/* Whether receiver may use route (one of owner's approved routes): a rule
 * lets it reach some address of the prefix. */
bool policy_route_usable(const Policy *p, const PolicyMember *receiver, const InAddrPrefix *route);

/* The "filter" of member self (index into members): every rule whose DST
 * covers self's addresses or routes, with the addresses of the members its
 * SRC selects. -E2BIG when it would exceed the netmap's bounds. */
int policy_compile_filter(const Policy *p, const PolicyMember *members, size_t n_members, size_t self,
                          NetmapFilter **ret);

/* Whether an advertised prefix of member m is approved by "auto_approve":
 * it lies inside (or is) a listed prefix whose selectors take m in. */
bool policy_auto_approves(const Policy *p, const PolicyMember *m, const InAddrPrefix *prefix);

/* Runs the policy's own tests against members: 0 all pass, -EPERM with
 * *ret_error "line N: test 'alpha cannot reach nas' fails" naming the
 * first that does not. */
int policy_run_tests(const Policy *p, const PolicyMember *members, size_t n_members, char **ret_error);
