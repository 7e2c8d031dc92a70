/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "api.h"
#include "cert.h"
#include "conf.h"
#include "control-client.h"
#include "key.h"
#include "netmap.h"
#include "probe.h"
#include "route-prefs.h"
#include "state.h"
#include "wg.h"

typedef struct Peer Peer;

typedef enum ManagerState {
        MANAGER_NEEDS_LOGIN, /* no credentials: waiting for `meshctl up` */
        MANAGER_STARTING,    /* joined, online policy not yet met */
        MANAGER_ONLINE,
        MANAGER_DEGRADED, /* READY=1 sent on timeout, policy still not met */
        MANAGER_STOPPED,  /* `meshctl down` */
} ManagerState;

const char *manager_state_to_string(ManagerState s);

typedef struct ManagerOptions {
        const char *config_path;
        const char *state_dir;
        const char *runtime_dir;
} ManagerOptions;

typedef struct WaitOnlineRequest WaitOnlineRequest;

/* How long the last netmap took to apply, from its arrival (the reply
 * complete, the cache read or the join's answer) to the device holding it
 * and to everything else done: Status's netmap_apply, read by
 * bench/apply.py. CLOCK_MONOTONIC. */
/* With this many peers the heap is trimmed after each apply and every
 * MANAGER_TRIM_TICKS ticks (manager.c). */
#define MANAGER_TRIM_PEERS 1000
#define MANAGER_TRIM_TICKS 10

typedef struct NetmapApplyStats {
        uint64_t received_usec; /* when the netmap being applied arrived, 0: none pending */
        uint64_t version;
        uint64_t prepare_usec; /* arrival → the entries ready for the backend (our own share) */
        uint64_t device_usec;  /* arrival → device updated */
        uint64_t total_usec;   /* arrival → hosts, cache, DNS, firewall and routes done too */
        size_t device_peers;   /* peer entries written to the device */
} NetmapApplyStats;

typedef struct Manager {
        sd_event *event;
        char *config_path;
        char *state_dir;
        char *runtime_dir;
        char *hostname; /* what we register as */
        MeshdConfig config;

        WgKey private_key;
        WgKey public_key;
        char public_key_b64[WG_KEY_B64_LEN + 1];

        bool joined;
        Credentials credentials;
        Netmap *netmap;    /* last applied */
        char *netmap_json; /* its text, the base of the next delta */
        size_t netmap_json_len;
        NetmapApplyStats apply_stats;

        WgBackend *wg;
        bool device_configured;
        /* during a tick: the peers' device changes, written once at its end
         * (manager_device_batch_flush()); hub: the hub entry is rewritten too */
        WgDevice *device_batch;
        bool device_batch_hub;
        bool trim_pending; /* a large netmap was applied: malloc_trim() at the next tick */
        unsigned ticks_untrimmed;
        uint64_t stats_read_at_usec; /* the tick's last read of the device's counters */
        uint64_t stats_read_usec;    /* ... and how long it took */
        Peer **batch_probes;         /* probes of the tick, sent after the write, so they take the new path */
        size_t n_batch_probes;
        uint16_t listen_port; /* actual, after the device is set up */

        Peer **peers; /* one per netmap peer, same order */
        size_t n_peers;
        Peer **peers_by_ipv4; /* the same sorted by IPv4 for probe replies, built at need; NULL: none */
        Peer *hub;            /* the control server's hub, when the netmap has one */
        uint64_t underlay_changed_usec; /* CLOCK_MONOTONIC of the latest underlay change */
        char **underlay_candidates;     /* this host's endpoint candidates as last seen */
        bool hub_tls;                   /* the hub entry points at the TLS relay */
        struct HubLink *hub_link;       /* how the hub is reached (hub-link.h) */
        uint32_t probe_seq;

        ControlClient *control;
        CertKeeper *cert_keeper;    /* while joined */
        char **announced_endpoints; /* last POST /v1/endpoints that went out */
        ControlClient *registering; /* during Up/AuthKeyFile registration */
        ApiCall *up_call;
        sd_event_source *join_retry_source;
        uint64_t join_retry_usec;

        Prober *prober;
        struct LinkWatch *link_watch;
        ApiServer *api;
        char *api_socket_path;

        ManagerState state; /* written only by manager_set_state() (manager-private.h) */
        bool ready_sent;
        char *status_text;
        uint64_t started_usec;
        sd_event_source *online_timeout_source;
        sd_event_source *tick_source;
        sd_event_source *child_source;

        WaitOnlineRequest *wait_online_requests;
        char *last_refusal; /* why the last netmap was refused: the same again is not logged again */

        struct DnsServer *dns;              /* mesh DNS (manager-dns.c), NULL when off */
        union sockaddr_union dns_listen[2]; /* where it listens (or failed to) */
        size_t n_dns_listen;
        struct ResolvedLink *resolved; /* its registration with systemd-resolved (resolved-link.h) */

        /* subnet routes (manager-routes.c) */
        RoutePrefs route_prefs; /* `meshctl up`'s, kept in routes.json */
        bool route_prefs_loaded;
        RouteSettings routes;        /* effective: meshd.conf's with route_prefs on top */
        InAddrPrefix *routes_posted; /* the advertised set last sent */
        size_t n_routes_posted;
        bool routes_post_ok;            /* ... and the server stored it */
        bool routes_post_pending;       /* ... or it is on its way */
        InAddrPrefix *routes_installed; /* routes PREFIX dev MESH we added */
        size_t n_routes_installed;
        char **routes_refused;     /* "PREFIX PEER NETWORK" refused at the last sync: logged once */
        bool forwarding_warned[2]; /* IPv4, IPv6 */
        struct ExitRoute
                *exit_route; /* policy routing to the exit node (manager-exit.c), NULL until the device */
        char *exit_peer;     /* the exit node in use, NULL: none */
        char *exit_problem;  /* why ExitNode= is not used: logged once */
        bool exit_offered;   /* this node is an exit node (forwarding checked) */
        struct RuleWatch *rule_watch; /* re-adds the rules and routes others remove (manager-routes.c) */
        struct Firewall *firewall;    /* table inet meshd (manager-firewall.c), NULL until needed */
} Manager;

int manager_new(const ManagerOptions *opts, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

int manager_start(Manager *m);
int manager_reload(Manager *m);
/* Leaves the interface up when KeepInterface=yes. */
void manager_stop(Manager *m);

/* Join with an auth key. Replies to call (may be NULL for AuthKeyFile=). */
int manager_up(Manager *m, const char *url, const char *pin, const char *authkey, ApiCall *call);
int manager_down(Manager *m);
/* `meshctl up`'s route settings: merged, saved, applied (manager-routes.c). */
int manager_set_route_prefs(Manager *m, const RoutePrefs *p, char *error, size_t error_size);
int manager_logout(Manager *m);

Peer *manager_find_peer(Manager *m, const char *name_or_address);
Peer *manager_find_peer_by_address(Manager *m, int family, const union in_addr_union *addr);
/* After m->peers or a peer's addresses changed: the address index is rebuilt at need. */
void manager_forget_peer_index(Manager *m);
uint32_t manager_next_probe_seq(Manager *m);
/* Re-evaluates the online policy and WaitOnline requests after any reachability change. */
void manager_check_online(Manager *m);
/* A peer's path changed between direct and relay: moves its addresses
 * between its own WireGuard entry and the hub's. */
void manager_reroute_peer(Manager *m, Peer *p);
/* Collects the peers' device changes until the flush writes them at once. */
void manager_device_batch_begin(Manager *m);
void manager_device_batch_flush(Manager *m);
/* Holds p's probe (its sequence number set) for the flush: false when no batch is open. */
bool manager_device_batch_add_probe(Manager *m, Peer *p);
bool manager_hub_over_tls(const Manager *m);
/* Refreshes handshake/traffic counters of all peers from the device. */
int manager_refresh_device_stats(Manager *m);

int manager_wait_online(Manager *m, ApiCall *call, char **peers, bool any, uint64_t timeout_usec);

cJSON *manager_status_json(Manager *m);

/* Varlink method table of io.meshd (api-methods.c). */
extern const ApiMethod manager_api_methods[];
extern const size_t manager_api_methods_count;
extern const char manager_api_description[];
