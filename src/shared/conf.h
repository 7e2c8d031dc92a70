/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* meshd.conf(5): systemd-style INI parsed with inih. Unknown sections or
 * keys and bad values are errors (naming file, line and key), never guesses. */

#include <stdbool.h>
#include <stdint.h>

#include "constants.h"
#include "endpoint.h"
#include "wg.h"

typedef enum OnlinePolicy {
        ONLINE_POLICY_ANY,
        ONLINE_POLICY_ALL,
        ONLINE_POLICY_REQUIRED,
        ONLINE_POLICY_NONE,
        _ONLINE_POLICY_MAX,
        _ONLINE_POLICY_INVALID = -EINVAL,
} OnlinePolicy;

const char *online_policy_to_string(OnlinePolicy p);
OnlinePolicy online_policy_from_string(const char *s);

#define MESHD_DEFAULT_INTERFACE "mesh0"
#define MESHD_DEFAULT_ONLINE_TIMEOUT_USEC (60 * USEC_PER_SEC)

/* What a node advertises and accepts ([Routes], or `meshctl up` at runtime). */
typedef struct RouteSettings {
        InAddrPrefix *advertise; /* subnet routes, never 0.0.0.0/0 or ::/0 */
        size_t n_advertise;
        bool advertise_exit_node; /* 0.0.0.0/0 and ::/0 go with the advertised set */
        InAddrPrefix *accept;     /* a peer route inside one of these is installed; "all": 0.0.0.0/0 + ::/0 */
        size_t n_accept;
        char *exit_node; /* NULL: none */
} RouteSettings;

void route_settings_done(RouteSettings *s);

typedef struct MeshdConfig {
        /* [Mesh] */
        char *control_url;
        char *control_pin; /* "sha256//BASE64" */
        char *auth_key_file;
        char *hostname;       /* NULL: the machine's host name */
        char *interface;      /* never NULL after conf_load() */
        uint16_t listen_port; /* 0 = random */
        WgBackendType backend;
        bool keep_interface;
        /* [Online] */
        OnlinePolicy online_policy;
        char **required_peers; /* strv, may be NULL */
        uint64_t online_timeout_usec;
        /* [Certificate] */
        char *cert_reload_command; /* /bin/sh -c line, NULL: none */
        /* [DNS] (conf-dns.c) */
        uint16_t dns_port;     /* on the node's mesh addresses; 0: no mesh DNS server */
        char *dns_resolv_conf; /* where the upstream resolvers are read; NULL: MESHD_DEFAULT_RESOLV_CONF */
        bool dns_resolved;     /* register the server with systemd-resolved (resolved-link.c) */
        /* [Routes] (conf-routes.c); as RouteSettings has them */
        InAddrPrefix *advertise_routes;
        size_t n_advertise_routes;
        bool advertise_exit_node;
        InAddrPrefix *accept_routes;
        size_t n_accept_routes;
        char *exit_node;      /* peer name to send all other traffic to; NULL: none */
        bool subnet_snat;     /* masquerade mesh sources into the advertised subnets */
        bool exit_snat;       /* masquerade mesh sources leaving through this exit node */
        uint32_t exit_fwmark; /* fwmark of meshd's underlay sockets and table of the exit route; 0: off */
} MeshdConfig;

#define MESHD_DEFAULT_DNS_PORT 53
#define MESHD_DEFAULT_RESOLV_CONF "/etc/resolv.conf"

/* Exit nodes (exit-route.c): the mark meshd's underlay packets carry and
 * the routing table of the exit route, one number as wg-quick does; not
 * wg-quick's 51820 (and the 51821… it falls back to), nor a mark bit of
 * kube-proxy (0x4000, 0x8000), Tailscale (0xff0000) or NetBird (0x1bd00). */
#define MESHD_DEFAULT_EXIT_FWMARK 0x13caU

/* conf-routes.c: one key of [Routes]; -ENOENT for a key it does not have. */
int conf_parse_routes_key(MeshdConfig *c, const char *name, const char *value, const char **ret_reason);
/* conf-dns.c: one key of [DNS]; -ENOENT for a key it does not have. */
int conf_parse_dns_key(MeshdConfig *c, const char *name, const char *value, const char **ret_reason);

/* conf-routes.c: one key of [Routes]; -ENOENT for a key it does not have. */
/* c's [Routes] settings, copied. */
int conf_route_settings(const MeshdConfig *c, RouteSettings *ret);
/* Moves the [Routes] settings of from into to (reload). */
void conf_take_route_settings(MeshdConfig *to, MeshdConfig *from);
int conf_parse_routes_key(MeshdConfig *c, const char *name, const char *value, const char **ret_reason);
/* A list of prefixes separated by any of seps. advertise: the set a node
 * advertises (no 0.0.0.0/0, ::/0: that is the exit node's setting), else
 * AcceptRoutes= ("all" and "none" too). Appends to *l (none twice);
 * *ret_entry (may be NULL) points at the entry at fault in text, its
 * length in *ret_entry_len, and *ret_reason says what is wrong with it.
 * -EINVAL, -ENOMEM. */
int route_list_parse(const char *text, const char *seps, bool advertise, InAddrPrefix **l, size_t *n,
                     const char **ret_entry, size_t *ret_entry_len, const char **ret_reason);

/* Allocates nothing: interface stays NULL until conf_load(). */
void conf_init_defaults(MeshdConfig *c);
/* Loads path over the defaults. A missing file is not an error (defaults
 * only). On a parse error returns -EINVAL and sets *ret_error to one line,
 * "PATH:LINE: unknown key 'Foo' in section [Mesh]" or
 * "PATH:LINE: invalid ListenPort= value 'x': ..." and leaves *c unchanged.
 * *c must be initialised (conf_init_defaults() or an earlier conf_load()).
 * Lines are limited to inih's 200 bytes; a longer one is an error. */
int conf_load(const char *path, MeshdConfig *c, char **ret_error);
void conf_done(MeshdConfig *c);

/* Time spans as systemd writes them: "60", "60s", "2min", "500ms", "1h". */
int parse_timespan_usec(const char *s, uint64_t *ret);
int parse_boolean(const char *s);
