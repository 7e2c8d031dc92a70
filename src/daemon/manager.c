/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "exit-route.h"
#include "firewall.h"
#include "hub-link.h"
#include "link-watch.h"
#include "link.h"
#include "log.h"
#include "manager-private.h"
#include "messages.h"
#include "peer.h"
#include "resolved-link.h"
#include "strv.h"
#include "varlink.h"

/* The Manager object: its life cycle, its state, and the event loop's
 * sources (signals, the tick, underlay changes). The rest of its concerns
 * live in manager-*.c (manager-private.h). */

#define MANAGER_TICK_USEC (1 * USEC_PER_SEC)

/* ---- object and state ----------------------------------------------------------------------- */

/* clang-format off */
static const char *const manager_state_table[] = {
        [MANAGER_NEEDS_LOGIN] = "needs-login",
        [MANAGER_STARTING] = "starting",
        [MANAGER_ONLINE] = "online",
        [MANAGER_DEGRADED] = "degraded",
        [MANAGER_STOPPED] = "stopped",
};
/* clang-format on */

const char *manager_state_to_string(ManagerState s) {
        if ((size_t) s >= ELEMENTSOF(manager_state_table))
                return NULL;
        return manager_state_table[s];
}

uint64_t manager_now(Manager *m) {
        uint64_t t;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &t);
        return t;
}

bool manager_set_state(Manager *m, ManagerState s) {
        ManagerState old = m->state;

        if (old == s)
                return false;
        m->state = s;
        log_full_errno_fields(LOG_INFO, 0,
                              &((LogFields) { .message_id = MESSAGE_MANAGER_STATE,
                                              .state = manager_state_to_string(s) }),
                              "Mesh state: %s -> %s.", strna(manager_state_to_string(old)),
                              strna(manager_state_to_string(s)));
        return true;
}

void manager_set_status(Manager *m, const char *text) {
        if (streq_ptr(m->status_text, text))
                return;
        free(m->status_text);
        m->status_text = text ? strdup(text) : NULL;
        (void) sd_notifyf(false, "STATUS=%s", strna(text));
}

static int manager_parse_config(Manager *m, MeshdConfig *c) {
        _cleanup_free_ char *message = NULL;
        int r;

        conf_init_defaults(c);
        r = conf_load(m->config_path, c, &message);
        if (r < 0) {
                if (message)
                        log_error("%s", message);
                return log_error_errno(r, "Failed to load configuration %s: %m", m->config_path);
        }
        return 0;
}

int manager_new(const ManagerOptions *opts, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        conf_init_defaults(&m->config);

        m->config_path = strdup(opts->config_path);
        m->state_dir = strdup(opts->state_dir);
        m->runtime_dir = strdup(opts->runtime_dir);
        if (!m->config_path || !m->state_dir || !m->runtime_dir)
                return -ENOMEM;
        if (asprintf(&m->api_socket_path, "%s/" MESHD_SOCKET_NAME, m->runtime_dir) < 0)
                return -ENOMEM;

        r = manager_parse_config(m, &m->config);
        if (r < 0)
                return r;
        r = manager_routes_load(m);
        if (r < 0)
                return r;

        r = sd_event_default(&m->event);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

void manager_drop_peers(Manager *m) {
        manager_forget_peer_index(m);
        hub_link_reset(m->hub_link);
        m->hub = peer_free(m->hub);
        for (size_t i = 0; i < m->n_peers; i++)
                peer_free(m->peers[i]);
        free(m->peers);
        m->peers = NULL;
        m->n_peers = 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;

        manager_free_wait_online(m);
        manager_dns_stop(m);
        m->resolved = resolved_link_free(m->resolved);
        m->up_call = api_call_unref(m->up_call);
        m->cert_keeper = cert_keeper_free(m->cert_keeper);
        manager_drop_peers(m);
        control_client_free(m->control);
        control_client_free(m->registering);
        m->api = api_server_free(m->api);
        link_watch_free(m->link_watch);
        manager_release_device(m, false);
        sd_event_source_disable_unref(m->online_timeout_source);
        sd_event_source_disable_unref(m->tick_source);
        sd_event_source_disable_unref(m->join_retry_source);
        netmap_free(m->netmap);
        free(m->netmap_json);
        strv_free(m->announced_endpoints);
        strv_free(m->underlay_candidates);
        manager_routes_done(m);
        hub_link_free(m->hub_link);
        exit_route_free(m->exit_route);
        free(m->exit_peer);
        free(m->exit_problem);
        firewall_free(m->firewall);
        credentials_done(&m->credentials);
        conf_done(&m->config);
        explicit_bzero(&m->private_key, sizeof(m->private_key));
        free(m->hostname);
        free(m->status_text);
        free(m->last_refusal);
        free(m->api_socket_path);
        free(m->config_path);
        free(m->state_dir);
        free(m->runtime_dir);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

uint32_t manager_next_probe_seq(Manager *m) {
        return ++m->probe_seq;
}

static int peer_ipv4_compare(const void *a, const void *b) {
        return memcmp(&(*(Peer *const *) a)->ipv4.in, &(*(Peer *const *) b)->ipv4.in, sizeof(struct in_addr));
}

static int ipv4_peer_compare(const void *key, const void *elem) {
        return memcmp(key, &(*(Peer *const *) elem)->ipv4.in, sizeof(struct in_addr));
}

/* Every probe reply comes here: with 10,000 peers a linear search made the
 * replies of one round O(peers²). IPv4 addresses are unique in a netmap. */
static Peer *manager_find_peer_by_ipv4(Manager *m, const struct in_addr *a) {
        Peer **found;

        if (!m->peers_by_ipv4) {
                m->peers_by_ipv4 = malloc(m->n_peers * sizeof(Peer *));
                if (!m->peers_by_ipv4)
                        return NULL;
                memcpy(m->peers_by_ipv4, m->peers, m->n_peers * sizeof(Peer *));
                qsort(m->peers_by_ipv4, m->n_peers, sizeof(Peer *), peer_ipv4_compare);
        }
        found = bsearch(a, m->peers_by_ipv4, m->n_peers, sizeof(Peer *), ipv4_peer_compare);
        return found ? *found : NULL;
}

void manager_forget_peer_index(Manager *m) {
        m->peers_by_ipv4 = mfree(m->peers_by_ipv4);
}

Peer *manager_find_peer_by_address(Manager *m, int family, const union in_addr_union *addr) {
        if (m->hub && peer_has_address(m->hub, family, addr))
                return m->hub;
        if (family == AF_INET && m->n_peers > 0) {
                Peer *p = manager_find_peer_by_ipv4(m, &addr->in);
                if (p || m->peers_by_ipv4)
                        return p;
        }
        for (size_t i = 0; i < m->n_peers; i++)
                if (peer_has_address(m->peers[i], family, addr))
                        return m->peers[i];
        return NULL;
}

Peer *manager_find_peer(Manager *m, const char *name_or_address) {
        const NetmapNode *n;

        if (!m->netmap)
                return NULL;
        n = netmap_resolve_peer(m->netmap, name_or_address);
        if (!n)
                return NULL;
        for (size_t i = 0; i < m->n_peers; i++)
                if (key_equal(&m->peers[i]->public_key, &n->public_key))
                        return m->peers[i];
        return NULL;
}

/* ---- status --------------------------------------------------------------------------------- */

cJSON *manager_status_json(Manager *m) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        char a4[INET6_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];
        _cleanup_free_ char *fqdn = NULL;
        size_t reachable = 0;
        const NetmapNode *self = m->netmap ? &m->netmap->self : NULL;

        if (!o)
                return NULL;
        for (size_t i = 0; i < m->n_peers; i++)
                reachable += m->peers[i]->reachable;
        if (self) {
                in_addr_format(AF_INET, &self->ipv4, a4, sizeof(a4));
                if (self->has_ipv6)
                        in_addr_format(AF_INET6, &self->ipv6, a6, sizeof(a6));
                if (asprintf(&fqdn, "%s.%s", self->name, m->netmap->domain) < 0)
                        return NULL;
        }
        const char *ipv4 = self ? a4 : NULL, *ipv6 = self && self->has_ipv6 ? a6 : NULL;

#define ADD_STRING_OR_NULL(key, value) \
        ((value) ? cJSON_AddStringToObject(o, key, value) : cJSON_AddNullToObject(o, key))
        if (!cJSON_AddStringToObject(o, "state", manager_state_to_string(m->state)) ||
            !ADD_STRING_OR_NULL("status_text", m->status_text) ||
            !ADD_STRING_OR_NULL("name", self ? self->name : m->credentials.name) ||
            !ADD_STRING_OR_NULL("fqdn", fqdn) || !ADD_STRING_OR_NULL("ipv4", ipv4) ||
            !ADD_STRING_OR_NULL("ipv6", ipv6) || !cJSON_AddStringToObject(o, "public_key", m->public_key_b64) ||
            !cJSON_AddStringToObject(o, "interface", m->config.interface) ||
            !ADD_STRING_OR_NULL("backend",
                                m->wg ? wg_backend_type_to_string(wg_backend_get_type(m->wg)) : NULL) ||
            !cJSON_AddNumberToObject(o, "listen_port", m->listen_port) ||
            !ADD_STRING_OR_NULL("control_url", m->credentials.control_url) ||
            !ADD_STRING_OR_NULL("control_url_active", m->control ? control_client_get_url(m->control) : NULL) ||
            !cJSON_AddBoolToObject(o, "control_connected",
                                   m->control && control_client_is_connected(m->control)) ||
            !cJSON_AddNumberToObject(o, "netmap_version", m->netmap ? (double) m->netmap->version : 0) ||
            !cJSON_AddNumberToObject(o, "peers_total", (double) m->n_peers) ||
            !cJSON_AddNumberToObject(o, "peers_reachable", (double) reachable))
                return NULL;
#undef ADD_STRING_OR_NULL
        if (m->hub) {
                const char *endpoint = m->hub->device_endpoint ?: peer_current_endpoint(m->hub);
                cJSON *hub = cJSON_AddObjectToObject(o, "hub");
                if (!hub || !cJSON_AddStringToObject(hub, "public_key", m->hub->public_key_b64) ||
                    !cJSON_AddStringToObject(hub, "endpoint", strna(endpoint)) ||
                    !cJSON_AddBoolToObject(hub, "reachable", m->hub->reachable) ||
                    !cJSON_AddNumberToObject(hub, "rtt_usec", (double) m->hub->rtt_usec) ||
                    !cJSON_AddStringToObject(hub, "transport", m->hub_tls ? "tls" : "udp"))
                        return NULL;
        } else if (!cJSON_AddNullToObject(o, "hub"))
                return NULL;
        if (manager_routes_status_json(m, o) < 0)
                return NULL;
        if (m->apply_stats.version > 0) {
                const NetmapApplyStats *st = &m->apply_stats;
                cJSON *apply = cJSON_AddObjectToObject(o, "netmap_apply");
                if (!apply || !cJSON_AddNumberToObject(apply, "version", (double) st->version) ||
                    !cJSON_AddNumberToObject(apply, "prepare_usec", (double) st->prepare_usec) ||
                    !cJSON_AddNumberToObject(apply, "device_usec", (double) st->device_usec) ||
                    !cJSON_AddNumberToObject(apply, "total_usec", (double) st->total_usec) ||
                    !cJSON_AddNumberToObject(apply, "device_peers", (double) st->device_peers))
                        return NULL;
        } else if (!cJSON_AddNullToObject(o, "netmap_apply"))
                return NULL;
        return TAKE_PTR(o);
}

/* ---- life cycle ----------------------------------------------------------------------------- */

static int on_tick(sd_event_source *s, uint64_t scheduled, void *userdata) {
        Manager *m = userdata;
        /* Not the scheduled time: a probe reply handled in this same loop
         * iteration carries the loop's time, which may be later. */
        uint64_t usec = manager_now(m);
        bool judging = false;

        /* Judging a path needs fresh counters from the device; read them
         * only while some peer is relayed or silent, not every second for all. */
        for (size_t i = 0; m->hub && !judging && i < m->n_peers; i++)
                judging = peer_is_relayed(m->peers[i]) || m->peers[i]->oldest_unanswered_usec > 0;
        /* A read costs the backend O(peers) (wireguard-go: a text dump of
         * all), and we wait for it: not more than a tenth of the time. */
        if (judging && usec - m->stats_read_at_usec >= 10 * m->stats_read_usec) {
                uint64_t t = clock_usec(CLOCK_MONOTONIC);

                m->stats_read_at_usec = usec;
                (void) manager_refresh_device_stats(m);
                m->stats_read_usec = clock_usec(CLOCK_MONOTONIC) - t;
        }

        /* Large netmaps, thousands of peers changing path at once (a log
         * line each), a ListPeers of all: each leaves megabytes of freed
         * heap that glibc keeps. Given back after a large apply and every
         * MANAGER_TRIM_TICKS with many peers: RssAnon of a node with 10,000
         * peers ~11 MiB, not 20-36 MiB. A millisecond or so. */
        if (m->trim_pending ||
            (m->n_peers >= MANAGER_TRIM_PEERS && ++m->ticks_untrimmed >= MANAGER_TRIM_TICKS)) {
                m->trim_pending = false;
                m->ticks_untrimmed = 0;
                (void) malloc_trim(0);
        }

        manager_device_batch_begin(m);
        for (size_t i = 0; i < m->n_peers; i++)
                peer_tick(m->peers[i], usec);
        if (m->hub)
                peer_tick(m->hub, usec);
        manager_device_batch_flush(m);
        if (m->hub)
                hub_link_tick(m->hub_link, usec);
        return sd_event_source_set_time(s, usec + MANAGER_TICK_USEC);
}

/* Whether this host's endpoint candidates differ from the last look. */
bool manager_underlay_moved(Manager *m) {
        _cleanup_strv_free_ char **candidates = NULL;
        int ifindex = m->wg ? wg_backend_get_ifindex(m->wg) : 0;

        if (link_list_endpoint_candidates(MAX(ifindex, 0), m->listen_port, &candidates) < 0)
                return true;
        if (m->underlay_candidates && strv_equal(candidates, m->underlay_candidates))
                return false;
        strv_free(m->underlay_candidates);
        m->underlay_candidates = TAKE_PTR(candidates);
        return true;
}

/* The underlay changed (an address came or went, a route moved): tell the
 * control server our new candidates and send something to everyone, so
 * that the hub and the peers' WireGuard learn where we are now. */
static void on_link_change(LinkWatch *w, void *userdata) {
        Manager *m = userdata;
        uint64_t now = manager_now(m);

        if (!m->device_configured)
                return;
        /* Paths get a fresh grace only when where we can be reached really
         * moved, not for every address flag (IPv6 DAD ends seconds after
         * an interface comes up). */
        if (manager_underlay_moved(m))
                m->underlay_changed_usec = now;
        manager_renew_endpoints(m);
        log_debug("Underlay changed; reconnecting, announcing endpoints and probing peers.");
        if (m->control)
                (void) control_client_reconnect(m->control);
        manager_post_endpoints(m);
        /* a network that came may overlap a route we accepted */
        manager_sync_routes(m);
        if (m->hub)
                peer_probe_now(m->hub, now);
        for (size_t i = 0; i < m->n_peers; i++)
                peer_probe_now(m->peers[i], now);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        if (si->ssi_signo == SIGHUP)
                return manager_reload(m);
        (void) sd_notify(false, "STOPPING=1");
        return sd_event_exit(m->event, 0);
}

int manager_reload(Manager *m) {
        MeshdConfig c;
        int r;

        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long) manager_now(m));
        r = manager_parse_config(m, &c);
        if (r < 0) {
                (void) sd_notify(false, "READY=1");
                return 0; /* keep running with the old configuration */
        }

        /* What can change without touching the tunnel changes now; the rest needs a restart. */
        if (!streq_ptr(c.interface, m->config.interface) || c.listen_port != m->config.listen_port ||
            c.backend != m->config.backend)
                log_warning("Interface=, ListenPort= and Backend= changes take effect at the next restart.");
        strv_free(m->config.required_peers);
        m->config.required_peers = TAKE_PTR(c.required_peers);
        m->config.online_policy = c.online_policy;
        m->config.online_timeout_usec = c.online_timeout_usec;
        m->config.keep_interface = c.keep_interface;
        free(m->config.cert_reload_command);
        m->config.cert_reload_command = TAKE_PTR(c.cert_reload_command);
        if (c.exit_fwmark != m->config.exit_fwmark)
                log_warning("ExitFwmark= changes take effect at the next restart.");
        if (m->cert_keeper && cert_keeper_set_reload_command(m->cert_keeper, m->config.cert_reload_command) < 0)
                log_oom();
        conf_take_route_settings(&m->config, &c);
        conf_done(&c);
        if (manager_routes_load(m) >= 0) {
                manager_post_routes(m);
                manager_sync_routes(m);
        }

        log_info("Reloaded configuration from %s.", m->config_path);
        manager_exit_update(m);
        manager_firewall_update(m); /* SubnetSNAT=, ExitSNAT= */
        manager_check_online(m);
        (void) sd_notify(false, "READY=1");
        return 0;
}

static int manager_add_signals(Manager *m) {
        int r;

        r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGHUP, on_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up signal handling: %m");
        (void) sd_event_set_watchdog(m->event, true);
        return 0;
}

/* The directories, the node key and the name we register as. */
static int manager_load_identity(Manager *m) {
        bool created;
        int r;

        r = state_dir_prepare(m->state_dir);
        if (r < 0)
                return log_error_errno(r, "Failed to create state directory %s: %m", m->state_dir);
        if (mkdir(m->runtime_dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to create runtime directory %s: %m", m->runtime_dir);

        r = state_load_or_create_key(m->state_dir, &m->private_key, &created);
        if (r < 0)
                return r;
        r = key_public_from_private(&m->private_key, &m->public_key);
        if (r < 0)
                return log_error_errno(r, "Failed to derive public key: %m");
        key_to_base64(&m->public_key, m->public_key_b64);

        if (m->config.hostname)
                m->hostname = strdup(m->config.hostname);
        else {
                char h[HOST_NAME_MAX + 1] = {};
                (void) gethostname(h, sizeof(h) - 1);
                m->hostname = strdup(h[0] ? h : "node");
        }
        if (!m->hostname)
                return log_oom();
        return 0;
}

/* The Varlink socket, the underlay watch and the tick. */
static int manager_add_sources(Manager *m) {
        int r;

        r = api_server_new(m->event, m->api_socket_path, manager_api_methods, manager_api_methods_count,
                           "io.meshd", manager_api_description, m, &m->api);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s: %m", m->api_socket_path);

        r = link_watch_new(m->event, on_link_change, m, &m->link_watch);
        if (r < 0)
                log_warning_errno(r, "Failed to watch network changes, roaming will be slow: %m");

        r = sd_event_add_time_relative(m->event, &m->tick_source, CLOCK_MONOTONIC, MANAGER_TICK_USEC, 0,
                                       on_tick, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up timer: %m");
        (void) sd_event_source_set_enabled(m->tick_source, SD_EVENT_ON);
        return 0;
}

int manager_start(Manager *m) {
        int r;

        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &m->started_usec);

        r = manager_add_signals(m);
        if (r < 0)
                return r;
        r = manager_load_identity(m);
        if (r < 0)
                return r;
        r = manager_add_sources(m);
        if (r < 0)
                return r;
        return manager_join_at_start(m);
}

void manager_stop(Manager *m) {
        bool keep = m->config.keep_interface;

        /* while meshd is still on the bus for resolved to check: a kept
         * interface would otherwise keep pointing resolved at a dead server */
        resolved_link_revert_now(m->resolved);
        if (m->wg)
                log_info("%s interface %s.", keep ? "Keeping" : "Removing", m->config.interface);
        manager_release_device(m, !keep);
        /* A kept interface keeps its peers, so traffic still arrives: the
         * table keeps enforcing the policy. With the interface gone the
         * table would only match nothing (docs/firewall.md). */
        if (!keep)
                manager_firewall_remove(m);
}
