/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>

#include "fileio.h"
#include "hub-link.h"
#include "link-watch.h"
#include "link.h"
#include "log.h"
#include "manager.h"
#include "messages.h"
#include "netmap-trust.h"
#include "online.h"
#include "peer.h"
#include "strv.h"
#include "varlink.h"

#define MANAGER_TICK_USEC (1 * USEC_PER_SEC)
#define WAIT_ONLINE_DEFAULT_STATUS "Starting."

struct WaitOnlineRequest {
        WaitOnlineRequest *next;
        Manager *manager;
        ApiCall *call;
        char **peers; /* NULL: the configured policy */
        bool any;
        sd_event_source *timeout;
};

static const char *const manager_state_table[] = {
        [MANAGER_NEEDS_LOGIN] = "needs-login",
        [MANAGER_STARTING] = "starting",
        [MANAGER_ONLINE] = "online",
        [MANAGER_DEGRADED] = "degraded",
        [MANAGER_STOPPED] = "stopped",
};

const char *manager_state_to_string(ManagerState s) {
        if ((size_t) s >= ELEMENTSOF(manager_state_table))
                return NULL;
        return manager_state_table[s];
}

static bool manager_underlay_moved(Manager *m);

static uint64_t now_monotonic(Manager *m) {
        uint64_t t;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &t);
        return t;
}

static void wait_online_request_free(WaitOnlineRequest *w) {
        if (!w)
                return;
        sd_event_source_disable_unref(w->timeout);
        api_call_unref(w->call);
        strv_free(w->peers);
        free(w);
}

static void manager_unlink_wait_online(Manager *m, WaitOnlineRequest *w) {
        for (WaitOnlineRequest **i = &m->wait_online_requests; *i; i = &(*i)->next)
                if (*i == w) {
                        *i = w->next;
                        return;
                }
}

static void manager_set_status(Manager *m, const char *text) {
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

        r = sd_event_default(&m->event);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

static void manager_drop_peers(Manager *m) {
        hub_link_reset(m->hub_link);
        m->hub = peer_free(m->hub);
        for (size_t i = 0; i < m->n_peers; i++)
                peer_free(m->peers[i]);
        free(m->peers);
        m->peers = NULL;
        m->n_peers = 0;
}

static void manager_release_device(Manager *m, bool destroy) {
        m->child_source = sd_event_source_disable_unref(m->child_source);
        m->prober = prober_free(m->prober);
        if (m->wg) {
                if (destroy) {
                        int r = wg_backend_destroy(m->wg);
                        if (r < 0)
                                log_warning_errno(r, "Failed to remove interface %s: %m",
                                                  wg_backend_get_ifname(m->wg));
                }
                m->wg = wg_backend_free(m->wg);
        }
        m->device_configured = false;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;

        while (m->wait_online_requests) {
                WaitOnlineRequest *w = m->wait_online_requests;
                m->wait_online_requests = w->next;
                wait_online_request_free(w);
        }
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
        hub_link_free(m->hub_link);
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

Peer *manager_find_peer_by_address(Manager *m, int family, const union in_addr_union *addr) {
        if (m->hub && peer_has_address(m->hub, family, addr))
                return m->hub;
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

/* ---- online policy and readiness ------------------------------------------------------------ */

static int manager_peer_views(Manager *m, OnlinePeerView **ret) {
        OnlinePeerView *v = calloc(m->n_peers + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_peers; i++)
                v[i] = (OnlinePeerView) { .name = m->peers[i]->name, .reachable = m->peers[i]->reachable };
        *ret = v;
        return 0;
}

static void manager_check_wait_online(Manager *m, const OnlinePeerView *views) {
        WaitOnlineRequest *w, *next;

        for (w = m->wait_online_requests; w; w = next) {
                int r;
                next = w->next;
                if (w->peers)
                        r = online_evaluate_names(w->peers, w->any, views, m->n_peers, NULL);
                else
                        r = online_evaluate_policy(m->config.online_policy, m->config.required_peers, views,
                                                   m->n_peers, NULL);
                if (r == 0)
                        continue;
                if (r > 0)
                        (void) api_call_reply(w->call, cJSON_CreateObject());
                else
                        (void) api_call_reply_errorf(w->call, "org.varlink.service.InternalError",
                                                     "failed to evaluate online state: %s", strerror(-r));
                manager_unlink_wait_online(m, w);
                wait_online_request_free(w);
        }
}

void manager_check_online(Manager *m) {
        _cleanup_free_ OnlinePeerView *views = NULL;
        _cleanup_free_ char *missing = NULL, *text = NULL;
        size_t reachable = 0;
        int r;

        if (!m->joined || m->state == MANAGER_STOPPED || !m->device_configured)
                return;

        r = manager_peer_views(m, &views);
        if (r < 0) {
                log_oom();
                return;
        }
        for (size_t i = 0; i < m->n_peers; i++)
                reachable += m->peers[i]->reachable;

        manager_check_wait_online(m, views);

        r = online_evaluate_policy(m->config.online_policy, m->config.required_peers, views, m->n_peers,
                                   &missing);
        if (r < 0) {
                log_error_errno(r, "Failed to evaluate online policy: %m");
                return;
        }

        if (r > 0) {
                if (asprintf(&text, "Online: %zu of %zu peers reachable.", reachable, m->n_peers) < 0)
                        text = NULL;
                if (m->state != MANAGER_ONLINE) {
                        m->state = MANAGER_ONLINE;
                        log_full_errno_fields(LOG_NOTICE, 0, &((LogFields) { .message_id = MESSAGE_MESH_ONLINE }),
                                              "Mesh online (policy %s): %zu of %zu peers reachable.",
                                              online_policy_to_string(m->config.online_policy), reachable,
                                              m->n_peers);
                }
                manager_set_status(m, text);
                if (!m->ready_sent) {
                        m->ready_sent = true;
                        m->online_timeout_source = sd_event_source_disable_unref(m->online_timeout_source);
                        (void) sd_notify(false, "READY=1");
                }
                return;
        }

        if (m->ready_sent) {
                m->state = MANAGER_DEGRADED;
                if (asprintf(&text, "degraded: %s unreachable", strna(missing)) < 0)
                        text = NULL;
        } else {
                m->state = MANAGER_STARTING;
                if (asprintf(&text, "Waiting for %s%s.",
                             m->config.online_policy == ONLINE_POLICY_ANY ? "any of " : "", strna(missing)) < 0)
                        text = NULL;
        }
        manager_set_status(m, text);
}

static int on_online_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ OnlinePeerView *views = NULL;
        _cleanup_free_ char *missing = NULL, *text = NULL;

        m->online_timeout_source = sd_event_source_disable_unref(m->online_timeout_source);
        if (m->ready_sent)
                return 0;

        if (manager_peer_views(m, &views) >= 0)
                (void) online_evaluate_policy(m->config.online_policy, m->config.required_peers, views,
                                              m->n_peers, &missing);
        if (!m->joined)
                missing = strdup("control server (not joined yet)");
        else if (!m->device_configured)
                missing = strdup("control server (no netmap yet)");

        log_full_errno_fields(LOG_WARNING, 0, &((LogFields) { .message_id = MESSAGE_ONLINE_TIMEOUT }),
                              "Online policy %s not met after %llus: %s unreachable. Continuing degraded.",
                              online_policy_to_string(m->config.online_policy),
                              (unsigned long long) (m->config.online_timeout_usec / USEC_PER_SEC),
                              strna(missing));
        if (asprintf(&text, "degraded: %s unreachable", strna(missing)) < 0)
                text = NULL;
        m->state = MANAGER_DEGRADED;
        m->ready_sent = true;
        free(m->status_text);
        m->status_text = text ? strdup(text) : NULL;
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", strna(text));
        return 0;
}

static int manager_arm_online_timeout(Manager *m) {
        if (m->ready_sent || m->online_timeout_source || m->config.online_timeout_usec == 0)
                return 0;
        /* Tell systemd the start may take longer than its default, so our own
         * timeout, which ends in a degraded READY=1, always wins. */
        (void) sd_notifyf(false, "EXTEND_TIMEOUT_USEC=%llu",
                          (unsigned long long) (m->config.online_timeout_usec + 10 * USEC_PER_SEC));
        return sd_event_add_time(m->event, &m->online_timeout_source, CLOCK_MONOTONIC,
                                 m->started_usec + m->config.online_timeout_usec, 0, on_online_timeout, m);
}

/* ---- device -------------------------------------------------------------------------------- */

static int on_userspace_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Manager *m = userdata;

        m->child_source = sd_event_source_disable_unref(m->child_source);
        log_error("wireguard-go for %s exited (status %i); the tunnel is gone, exiting.",
                  m->config.interface, si->si_status);
        return sd_event_exit(m->event, -ECHILD);
}

static int manager_write_hosts(Manager *m) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size = 0;
        char a[INET6_ADDRSTRLEN];
        const char *domain;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        fputs("# Mesh names, written by meshd; read by nss-mesh(8). Do not edit.\n", f);
        /* Without a netmap (logged out, removed, down) the table is emptied
         * rather than deleted, so stale names stop resolving at once. */
        if (!m->netmap)
                goto write;
        domain = m->netmap->domain;
        /* Lets nss-mesh answer "not found" for every other name from the
         * header alone; older readers skip it as a comment. */
        fprintf(f, "# domain: %s\n", domain);
#define HOSTS_LINE(family, addr, name) \
        fprintf(f, "%s\t%s %s.%s\n", in_addr_format(family, addr, a, sizeof(a)), name, name, domain)
        HOSTS_LINE(AF_INET, &m->netmap->self.ipv4, m->netmap->self.name);
        if (m->netmap->self.has_ipv6)
                HOSTS_LINE(AF_INET6, &m->netmap->self.ipv6, m->netmap->self.name);
        for (size_t i = 0; i < m->netmap->n_peers; i++) {
                const NetmapNode *n = &m->netmap->peers[i];
                HOSTS_LINE(AF_INET, &n->ipv4, n->name);
                if (n->has_ipv6)
                        HOSTS_LINE(AF_INET6, &n->ipv6, n->name);
        }
#undef HOSTS_LINE
write:
        if (fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;
        if (asprintf(&path, "%s/" MESHD_HOSTS_NAME, m->runtime_dir) < 0)
                return -ENOMEM;
        return write_file_atomic(path, text, size, 0644);
}

static void on_probe_reply(Prober *p, int family, const union in_addr_union *from, uint32_t seq, void *userdata) {
        Manager *m = userdata;
        Peer *peer = manager_find_peer_by_address(m, family, from);

        if (peer)
                peer_handle_probe_reply(peer, seq, now_monotonic(m));
}

/* Brings the interface to the state the netmap's self asks for: key, port,
 * addresses, up. An interface that already matches (a restart with
 * KeepInterface=yes) is left alone, so no packet is lost. */
static int manager_setup_device(Manager *m, const Netmap *nm) {
        _cleanup_(wg_device_freep) WgDevice *current = NULL;
        WgBackendOptions opts = {
                .type = m->config.backend,
                .ifname = m->config.interface,
                .userspace_command = getenv("MESHD_WIREGUARD_GO"),
        };
        bool created = false;
        int ifindex, r;

        if (!m->wg) {
                r = wg_backend_open(&opts, &m->wg, &created);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up WireGuard interface %s: %m",
                                               m->config.interface);
                log_info("%s WireGuard interface %s (%s backend).", created ? "Created" : "Adopted",
                         m->config.interface, wg_backend_type_to_string(wg_backend_get_type(m->wg)));

                pid_t child = wg_backend_get_child_pid(m->wg);
                if (child > 0) {
                        r = sd_event_add_child(m->event, &m->child_source, child, WEXITED,
                                               on_userspace_child_exit, m);
                        if (r < 0)
                                return log_error_errno(r, "Failed to watch wireguard-go: %m");
                }
        }

        r = wg_get_device(m->wg, &current);
        if (r < 0)
                return log_error_errno(r, "Failed to read interface %s: %m", m->config.interface);

        if (!key_equal(&current->private_key, &m->private_key) ||
            (m->config.listen_port != 0 && current->listen_port != m->config.listen_port)) {
                _cleanup_(wg_device_freep) WgDevice *d = calloc(1, sizeof(*d));
                if (!d)
                        return log_oom();
                d->flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT;
                d->private_key = m->private_key;
                d->listen_port = m->config.listen_port;
                r = wg_set_device(m->wg, d);
                explicit_bzero(&d->private_key, sizeof(d->private_key));
                if (r < 0)
                        return log_error_errno(r, "Failed to set key and port of %s: %m", m->config.interface);
                current = wg_device_free(current);
                r = wg_get_device(m->wg, &current);
                if (r < 0)
                        return log_error_errno(r, "Failed to read interface %s: %m", m->config.interface);
        }
        m->listen_port = current->listen_port;

        ifindex = wg_backend_get_ifindex(m->wg);
        r = link_address_add(ifindex, AF_INET, &nm->self.ipv4, nm->ipv4_prefixlen);
        if (r < 0)
                return log_error_errno(r, "Failed to add mesh address to %s: %m", m->config.interface);
        (void) link_address_flush_except(ifindex, AF_INET, &nm->self.ipv4, nm->ipv4_prefixlen);
        if (nm->self.has_ipv6 && nm->has_ipv6_range) {
                r = link_address_add(ifindex, AF_INET6, &nm->self.ipv6, nm->ipv6_prefixlen);
                if (r < 0)
                        return log_error_errno(r, "Failed to add mesh IPv6 address to %s: %m",
                                               m->config.interface);
                (void) link_address_flush_except(ifindex, AF_INET6, &nm->self.ipv6, nm->ipv6_prefixlen);
        }
        r = link_set_up(ifindex, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to bring up %s: %m", m->config.interface);

        if (!m->prober) {
                r = prober_new(m->event, PROBE_PORT, on_probe_reply, m, &m->prober);
                if (r < 0)
                        return log_error_errno(r, "Failed to open probe socket on port %u: %m", PROBE_PORT);
        }
        prober_set_mesh_ranges(m->prober, &nm->ipv4_range, nm->ipv4_prefixlen,
                               nm->has_ipv6_range ? &nm->ipv6_range : NULL, nm->ipv6_prefixlen);

        link_watch_ignore_ifindex(m->link_watch, ifindex);
        (void) manager_underlay_moved(m);
        m->device_configured = true;
        return 0;
}

static bool wg_peer_matches(const WgPeer *w, const Peer *p) {
        size_t want = peer_is_relayed(p) ? 0 : p->has_ipv6 ? 2 : 1;

        if (w->n_allowed_ips != want)
                return false;
        for (size_t i = 0; i < w->n_allowed_ips; i++) {
                const WgAllowedIp *a = &w->allowed_ips[i];
                if (a->family == AF_INET && !(a->cidr == 32 && peer_has_address(p, AF_INET, &a->addr)))
                        return false;
                if (a->family == AF_INET6 && !(a->cidr == 128 && peer_has_address(p, AF_INET6, &a->addr)))
                        return false;
        }
        return w->persistent_keepalive == PEER_KEEPALIVE_SEC;
}

/* The hub entry: its own addresses plus those of every relayed peer, so
 * that traffic to them goes node → hub → node. */
static int manager_hub_to_wg(Manager *m, WgDevice *d) {
        const char *endpoint = peer_current_endpoint(m->hub);
        WgPeer *w;
        int r;

        r = wg_device_add_peer(d, &w);
        if (r < 0)
                return r;
        w->public_key = m->hub->public_key;
        w->flags = WG_PEER_REPLACE_ALLOWED_IPS | WG_PEER_HAS_PERSISTENT_KEEPALIVE;
        w->persistent_keepalive = PEER_KEEPALIVE_SEC;
        /* over the TLS relay, the hub is at the relay's loopback socket */
        if (hub_link_endpoint(m->hub_link, &w->endpoint) > 0 ||
            (endpoint && endpoint_parse(endpoint, &w->endpoint) >= 0))
                w->flags |= WG_PEER_HAS_ENDPOINT;
        r = peer_add_allowed_ips(m->hub, w);
        for (size_t i = 0; r >= 0 && i < m->n_peers; i++)
                if (peer_is_relayed(m->peers[i]))
                        r = peer_add_allowed_ips(m->peers[i], w);
        return r;
}

void manager_reroute_peer(Manager *m, Peer *p) {
        _cleanup_(wg_device_freep) WgDevice *d = calloc(1, sizeof(WgDevice));
        int r;

        if (!d)
                return (void) log_oom();
        if (!m->wg || !m->hub)
                return;
        r = peer_to_wg(p, d);
        if (r >= 0) {
                /* the endpoint stays where WireGuard has it (it may have roamed) */
                d->peers[0].flags &= ~WG_PEER_HAS_ENDPOINT;
                r = manager_hub_to_wg(m, d);
        }
        if (r >= 0) {
                d->peers[1].flags &= ~WG_PEER_HAS_ENDPOINT;
                r = wg_set_device(m->wg, d);
        }
        if (r < 0)
                log_warning_errno(r, "Failed to move %s's addresses for its new path: %m", p->name);
}

bool manager_hub_over_tls(const Manager *m) {
        return m->hub_tls;
}

static int wg_device_add_removal(WgDevice *d, const WgKey *key) {
        WgPeer *w;
        int r = wg_device_add_peer(d, &w);
        if (r < 0)
                return r;
        w->public_key = *key;
        w->flags = WG_PEER_REMOVE_ME;
        return 0;
}

/* Full reconciliation of the device's peers with ours, used once after the
 * device is opened: it may hold peers from before a crash or restart. Peers
 * that already match are not touched (a roamed endpoint stays as it is). */
static int manager_sync_device_peers(Manager *m) {
        _cleanup_(wg_device_freep) WgDevice *current = NULL, *d = NULL;
        int r;

        r = wg_get_device(m->wg, &current);
        if (r < 0)
                return r;
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;

        for (size_t i = 0; i < current->n_peers; i++) {
                const WgPeer *w = &current->peers[i];
                bool wanted = m->hub && key_equal(&w->public_key, &m->hub->public_key);
                for (size_t j = 0; j < m->n_peers && !wanted; j++)
                        wanted = key_equal(&w->public_key, &m->peers[j]->public_key);
                if (!wanted) {
                        r = wg_device_add_removal(d, &w->public_key);
                        if (r < 0)
                                return r;
                }
        }
        for (size_t j = 0; j < m->n_peers; j++) {
                const WgPeer *w = wg_device_find_peer(current, &m->peers[j]->public_key);
                if (w && wg_peer_matches(w, m->peers[j]) && w->endpoint.sa.sa_family != AF_UNSPEC)
                        continue;
                r = peer_to_wg(m->peers[j], d);
                if (r < 0)
                        return r;
        }
        if (m->hub) {
                r = manager_hub_to_wg(m, d);
                if (r < 0)
                        return r;
        }
        if (d->n_peers == 0)
                return 0;
        log_debug("Reconciling %zu peers on %s.", d->n_peers, m->config.interface);
        return wg_set_device(m->wg, d);
}

/* ---- netmap -------------------------------------------------------------------------------- */

/* Only what endpoint_is_announceable() allows, the same predicate the
 * control server applies: an address inside the mesh ranges (another
 * tunnel on this host, a hub running beside us) is reachable only through
 * the mesh, and the server would refuse the whole list for it. */
static void manager_drop_mesh_candidates(Manager *m, char **candidates) {
        InAddrPrefix mesh[2] = {};
        size_t j = 0, n_mesh = 0;

        if (!candidates)
                return;
        if (m->netmap) {
                mesh[n_mesh++] = (InAddrPrefix) { .family = AF_INET, .address = m->netmap->ipv4_range,
                                                  .prefixlen = m->netmap->ipv4_prefixlen };
                if (m->netmap->has_ipv6_range)
                        mesh[n_mesh++] = (InAddrPrefix) { .family = AF_INET6, .address = m->netmap->ipv6_range,
                                                          .prefixlen = m->netmap->ipv6_prefixlen };
        }
        for (size_t i = 0; candidates[i]; i++) {
                union sockaddr_union sa;

                if (endpoint_parse(candidates[i], &sa) < 0 || !endpoint_is_announceable(&sa, mesh, n_mesh))
                        free(candidates[i]);
                else
                        candidates[j++] = candidates[i];
        }
        candidates[j] = NULL;
}

static void manager_post_endpoints(Manager *m) {
        _cleanup_strv_free_ char **candidates = NULL;
        int r;

        if (!m->control || !m->wg)
                return;
        r = link_list_endpoint_candidates(wg_backend_get_ifindex(m->wg), m->listen_port, &candidates);
        if (r < 0) {
                log_debug_errno(r, "Failed to list endpoint candidates: %m");
                return;
        }
        manager_drop_mesh_candidates(m, candidates);
        /* Compared with what we announced last, not with the netmap's list:
         * there the server puts the endpoint the hub observed in front, so
         * behind NAT they never match and every netmap would cause a POST. */
        if (m->announced_endpoints && strv_equal(candidates, m->announced_endpoints))
                return;
        r = control_client_post_endpoints(m->control, candidates);
        if (r < 0) {
                log_debug_errno(r, "Failed to announce endpoints: %m");
                return;
        }
        strv_free(m->announced_endpoints);
        m->announced_endpoints = TAKE_PTR(candidates);
}

/* Keeps m->hub in step with the netmap's hub; queues its WireGuard entry in
 * d when it or the set of relayed peers changed (the first apply writes
 * everything in manager_sync_device_peers() instead). */
static int manager_update_hub(Manager *m, const Netmap *new, bool first, bool changed, WgDevice *d) {
        int r;

        if (!new->has_hub) {
                if (m->hub && !first)
                        (void) wg_device_add_removal(d, &m->hub->public_key);
                hub_link_reset(m->hub_link);
                m->hub = peer_free(m->hub);
                return 0;
        }

        if (m->hub && !key_equal(&m->hub->public_key, &new->hub.public_key)) {
                if (!first)
                        (void) wg_device_add_removal(d, &m->hub->public_key);
                hub_link_reset(m->hub_link);
                m->hub = peer_free(m->hub);
        }
        if (!m->hub_link) {
                r = hub_link_new(m, &m->hub_link);
                if (r < 0)
                        return r;
        }
        if (!m->hub) {
                r = peer_new(m, &new->hub, new->domain, &m->hub);
                if (r < 0)
                        return r;
                m->hub->is_hub = true;
                changed = true;
                log_info("Control server hub at %s.", strna(peer_current_endpoint(m->hub)));
        } else {
                r = peer_update(m->hub, &new->hub, new->domain);
                if (r < 0)
                        return r;
        }
        return changed && !first ? manager_hub_to_wg(m, d) : 0;
}

/* ---- trust in the control server (netmap-trust.h) ------------------------------------------ */

/* The host of an https://HOST[:PORT] URL when it is an address literal. */
static bool url_host_address(const char *url, InAddrPrefix *ret) {
        char host[INET6_ADDRSTRLEN + 1];
        const char *h = url && strncmp(url, "https://", 8) == 0 ? url + 8 : NULL;
        size_t n;

        if (!h)
                return false;
        if (*h == '[')
                n = strcspn(++h, "]");
        else
                n = strcspn(h, ":/");
        if (n == 0 || n >= sizeof(host))
                return false;
        memcpy(host, h, n);
        host[n] = 0;
        if (in_addr_parse(host, &ret->family, &ret->address) < 0)
                return false;
        ret->prefixlen = ret->family == AF_INET ? 32 : 128;
        return true;
}

/* What a mesh range must stay clear of: the underlay (not the mesh
 * interface itself), and the control server's address, from the URL and
 * as the hub's endpoint. */
static int manager_avoid_prefixes(Manager *m, const Netmap *nm, const char *url, InAddrPrefix **ret,
                                  size_t *ret_n) {
        _cleanup_free_ InAddrPrefix *l = NULL;
        size_t n = 0;
        int ifindex, r;

        ifindex = m->wg ? wg_backend_get_ifindex(m->wg) : link_get_ifindex(m->config.interface);
        r = link_list_underlay_prefixes(MAX(ifindex, 0), &l, &n);
        if (r < 0)
                return log_warning_errno(r, "Failed to list this host's addresses and routes: %m");
        InAddrPrefix *nl = reallocarray(l, n + 2, sizeof(InAddrPrefix));
        if (!nl)
                return log_oom();
        l = nl;
        if (url_host_address(url, &l[n]))
                n++;
        if (nm->has_hub && nm->hub.endpoints && nm->hub.endpoints[0]) {
                union sockaddr_union sa;

                if (endpoint_parse(nm->hub.endpoints[0], &sa) >= 0) {
                        l[n].family = sa.sa.sa_family;
                        if (sa.sa.sa_family == AF_INET)
                                memcpy(l[n].address.bytes, &sa.in.sin_addr, 4);
                        else
                                memcpy(l[n].address.bytes, &sa.in6.sin6_addr, 16);
                        l[n].prefixlen = sa.sa.sa_family == AF_INET ? 32 : 128;
                        n++;
                }
        }
        *ret = TAKE_PTR(l);
        *ret_n = n;
        return 0;
}

/* A netmap offered at join: sane bounds, including the underlay. */
static int manager_check_join_netmap(Manager *m, const Netmap *nm, const char *url, char **ret_error) {
        _cleanup_free_ InAddrPrefix *avoid = NULL;
        size_t n = 0;
        int r;

        r = manager_avoid_prefixes(m, nm, url, &avoid, &n);
        if (r < 0)
                return r;
        return netmap_check_bounds(nm, avoid, n, ret_error);
}

static void manager_log_refusal(Manager *m, const char *what, const char *error) {
        /* a control server that keeps sending it is one line, not one per poll */
        if (streq_ptr(m->last_refusal, error)) {
                log_debug("Still refusing what the control server sends (%s): same reason.", what);
                return;
        }
        log_full_errno_fields(LOG_WARNING, 0, &((LogFields) { .message_id = MESSAGE_NETMAP_REFUSED }),
                              "Refusing %s from the control server: %s; keeping netmap version %llu.", what,
                              strna(error), (unsigned long long) (m->netmap ? m->netmap->version : 0));
        free(m->last_refusal);
        m->last_refusal = error ? strdup(error) : NULL;
}

/* A node.json from before pins takes them from the first netmap applied
 * after the upgrade, once that passed the join-time bounds. */
static int manager_adopt_pins(Manager *m, const Netmap *nm, char **ret_error) {
        int r;

        r = manager_check_join_netmap(m, nm, m->credentials.control_url, ret_error);
        if (r < 0)
                return r;
        r = credentials_pin_netmap(&m->credentials, nm);
        if (r >= 0)
                r = state_save_credentials(m->state_dir, &m->credentials);
        if (r < 0)
                return log_error_errno(r, "Failed to pin the mesh's domain and ranges in %s/node.json: %m",
                                       m->state_dir);
        if (m->cert_keeper)
                (void) cert_keeper_set_pins(m->cert_keeper, m->credentials.domain, m->credentials.ipv4_range,
                                            m->credentials.ipv6_range, m->credentials.ca_sha256);
        log_full_errno_fields(LOG_NOTICE, 0, &((LogFields) { .message_id = MESSAGE_PINS_ADOPTED }),
                              "Pinned domain %s, ranges %s%s%s from netmap version %llu (node.json had no pins).",
                              m->credentials.domain, m->credentials.ipv4_range,
                              m->credentials.ipv6_range ? " and " : "", m->credentials.ipv6_range ?: "",
                              (unsigned long long) nm->version);
        return 0;
}

/* Whether nm may be applied; logs the refusal (what: "netmap version N"). */
static bool manager_netmap_trusted(Manager *m, const Netmap *nm, const char *what) {
        _cleanup_free_ char *error = NULL;
        int r;

        if (credentials_have_pins(&m->credentials)) {
                r = netmap_check_pins(nm, &m->credentials, &error);
                /* the underlay was checked when the ranges were pinned, and the netmap cannot move them */
                if (r >= 0)
                        r = netmap_check_bounds(nm, NULL, 0, &error);
        } else
                r = manager_adopt_pins(m, nm, &error);
        if (r < 0) {
                manager_log_refusal(m, what, error ?: "cannot check it");
                return false;
        }
        m->last_refusal = mfree(m->last_refusal);
        return true;
}

static void on_ca_pinned(const char *sha256_hex, void *userdata) {
        Manager *m = userdata;
        char *copy = strdup(sha256_hex);
        int r;

        if (!copy) {
                log_oom();
                return;
        }
        free(m->credentials.ca_sha256);
        m->credentials.ca_sha256 = copy;
        r = state_save_credentials(m->state_dir, &m->credentials);
        if (r < 0)
                log_warning_errno(r, "Failed to pin the mesh CA in %s/node.json: %m", m->state_dir);
        else
                log_info("Pinned the mesh CA, SHA-256 %s.", sha256_hex);
}

/* ---- certificates -------------------------------------------------------------------------- */

/* Only once joined: the certificate keeper asks with the node token. */
static void manager_start_cert_keeper(Manager *m) {
        _cleanup_free_ char *directory = NULL;
        int r;

        if (m->cert_keeper || !m->credentials.token)
                return;
        if (asprintf(&directory, "%s/certs", m->state_dir) < 0) {
                log_oom();
                return;
        }
        r = cert_keeper_new(m->event,
                            &(CertKeeperOptions) {
                                    .directory = directory,
                                    .control_url = m->credentials.control_url,
                                    .control_pin = m->credentials.control_pin,
                                    .token = m->credentials.token,
                                    .reload_command = m->config.cert_reload_command,
                                    .ca_pinned = on_ca_pinned,
                                    .userdata = m,
                            },
                            &m->cert_keeper);
        if (r >= 0)
                r = cert_keeper_set_pins(m->cert_keeper, m->credentials.domain, m->credentials.ipv4_range,
                                         m->credentials.ipv6_range, m->credentials.ca_sha256);
        if (r < 0)
                log_warning_errno(r, "Failed to set up TLS certificates, GetCertificate will not work: %m");
}

static void manager_feed_cert_names(Manager *m) {
        char a4[INET6_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];
        const NetmapNode *self;
        int r;

        if (!m->cert_keeper || !m->netmap)
                return;
        self = &m->netmap->self;
        in_addr_format(AF_INET, &self->ipv4, a4, sizeof(a4));
        if (self->has_ipv6)
                in_addr_format(AF_INET6, &self->ipv6, a6, sizeof(a6));
        r = cert_keeper_set_names(m->cert_keeper, self->name, m->netmap->domain, a4, self->has_ipv6 ? a6 : NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to pass this node's names to the certificate keeper: %m");
}

static int peer_compare_key(const void *a, const void *b) {
        const Peer *x = *(Peer *const *) a, *y = *(Peer *const *) b;
        return memcmp(x->public_key.data, y->public_key.data, sizeof(x->public_key.data));
}

/* The index of the peer with key in peers (sorted by peer_compare_key()),
 * or -1: O(log n), where a linear search made every netmap change
 * O(peers²) for a node. */
static ssize_t peers_find_by_key(Peer *const *peers, size_t n, const WgKey *key) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = memcmp(key->data, peers[mid]->public_key.data, sizeof(key->data));

                if (c == 0)
                        return (ssize_t) mid;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return -1;
}

/* More peers joining or leaving at once than this are one log line, not
 * one each: the first netmap of a large mesh would flood the journal (and
 * cost a tenth of the apply time of 1,000 peers). */
#define PEER_EVENTS_MAX 16

/* Applies a validated netmap as a difference to what we have: only peers
 * that were added, removed or changed reach the device. Takes nm. */
static int manager_apply_netmap(Manager *m, Netmap *nm, const char *json, size_t len, bool from_cache) {
        _cleanup_(netmap_freep) Netmap *new = nm;
        _cleanup_(netmap_diff_done) NetmapDiff diff = {};
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        Peer **peers = NULL;
        _cleanup_free_ bool *taken = NULL;
        bool first = !m->device_configured;
        int r;

        if (!key_equal(&new->self.public_key, &m->public_key))
                return log_error_errno(-EBADMSG, "Netmap version %llu is for another node (key %s…), ignoring.",
                                       (unsigned long long) new->version, m->public_key_b64);

        r = netmap_diff(first ? NULL : m->netmap, new, &diff);
        if (r < 0)
                return log_error_errno(r, "Failed to compare netmaps: %m");

        if (first || diff.self_changed) {
                r = manager_setup_device(m, new);
                if (r < 0)
                        return r;
        }

        /* Build the new peer list, reusing Peer objects (and their reachability) by key. */
        peers = calloc(new->n_peers + 1, sizeof(Peer *));
        if (!peers)
                return log_oom();
        d = calloc(1, sizeof(*d));
        if (!d) {
                free(peers);
                return log_oom();
        }

        /* by key, so that finding each peer's old object is a binary search
         * (qsort() wants a non-NULL array even for none) */
        if (m->n_peers > 0)
                qsort(m->peers, m->n_peers, sizeof(Peer *), peer_compare_key);
        taken = calloc(MAX(m->n_peers, (size_t) 1), sizeof(bool));
        if (!taken) {
                free(peers);
                return log_oom();
        }
        bool relay_changed = false;
        for (size_t i = 0; i < new->n_peers; i++) {
                const NetmapNode *n = &new->peers[i];
                Peer *p = NULL;

                ssize_t old_index = peers_find_by_key(m->peers, m->n_peers, &n->public_key);
                if (old_index >= 0 && !taken[old_index]) {
                        p = m->peers[old_index];
                        taken[old_index] = true;
                }
                if (p) {
                        bool endpoints_differ = !strv_equal(p->endpoints, n->endpoints);

                        r = peer_update(p, n, new->domain);
                        /* a relayed peer's new addresses live on the hub entry */
                        relay_changed |= r > 0 && peer_is_relayed(p);
                        if (r > 0 && !first) {
                                /* A peer not reached yet starts afresh at a new endpoint:
                                 * WireGuard would otherwise hold its next handshake
                                 * back for up to 5 s after the last futile one, and
                                 * hole punching needs both sides to send now. */
                                if (endpoints_differ && !p->reachable)
                                        r = peer_to_wg_fresh(p, d);
                                else
                                        r = peer_to_wg(p, d);
                        }
                } else {
                        r = peer_new(m, n, new->domain, &p);
                        if (r >= 0 && !first)
                                r = peer_to_wg(p, d);
                        if (r >= 0)
                                log_full_errno_fields(diff.n_added <= PEER_EVENTS_MAX ? LOG_INFO : LOG_DEBUG, 0,
                                                      &((LogFields) { .peer = n->name }),
                                                      "Peer %s joined the netmap (%s).", n->name,
                                                      p->public_key_b64);
                }
                peers[i] = p;
                if (r < 0) {
                        /* the old objects taken so far go with the new list;
                         * the rest stay, without holes */
                        size_t kept = 0;
                        for (size_t j = 0; j < m->n_peers; j++)
                                if (!taken[j])
                                        m->peers[kept++] = m->peers[j];
                        m->n_peers = kept;
                        for (size_t k = 0; k <= i; k++)
                                peer_free(peers[k]);
                        free(peers);
                        return log_error_errno(r, "Failed to prepare peer %s: %m", n->name);
                }
        }

        if (diff.n_added > PEER_EVENTS_MAX)
                log_info("%zu peers joined the netmap.", diff.n_added);

        /* Whatever is left in the old list is gone from the netmap. */
        for (size_t j = 0; j < m->n_peers; j++) {
                Peer *p = m->peers[j];
                if (taken[j])
                        continue;
                log_full_errno_fields(diff.n_removed <= PEER_EVENTS_MAX ? LOG_INFO : LOG_DEBUG, 0,
                                      &((LogFields) { .peer = p->name }), "Peer %s left the netmap.", p->name);
                relay_changed |= peer_is_relayed(p);
                if (!first)
                        (void) wg_device_add_removal(d, &p->public_key);
                peer_free(p);
        }
        if (diff.n_removed > PEER_EVENTS_MAX)
                log_info("%zu peers left the netmap.", diff.n_removed);
        free(m->peers);
        m->peers = peers;
        m->n_peers = new->n_peers;

        r = manager_update_hub(m, new, first, diff.hub_changed || relay_changed, d);
        if (r < 0)
                return log_error_errno(r, "Failed to prepare the hub peer: %m");

        if (first)
                r = manager_sync_device_peers(m);
        else
                r = d->n_peers > 0 ? wg_set_device(m->wg, d) : 0;
        if (r < 0)
                log_error_errno(r, "Failed to apply netmap version %llu to %s: %m",
                                (unsigned long long) new->version, m->config.interface);
        else
                log_debug("Applied netmap version %llu: %zu added, %zu removed, %zu changed.",
                          (unsigned long long) new->version, diff.n_added, diff.n_removed, diff.n_changed);

        netmap_free(m->netmap);
        m->netmap = TAKE_PTR(new);
        free(m->netmap_json);
        m->netmap_json = strndup(json, len);
        m->netmap_json_len = m->netmap_json ? len : 0;
        manager_feed_cert_names(m);

        if (!from_cache && r >= 0) {
                int k = state_save_netmap(m->state_dir, json, len);
                if (k < 0)
                        log_warning_errno(k, "Failed to cache netmap: %m");
        }
        r = manager_write_hosts(m);
        if (r < 0)
                log_warning_errno(r, "Failed to write %s/hosts: %m", m->runtime_dir);

        uint64_t now = now_monotonic(m);
        for (size_t i = 0; i < m->n_peers; i++)
                if (m->peers[i]->last_probe_usec == 0)
                        peer_tick(m->peers[i], now);
        if (m->hub && m->hub->last_probe_usec == 0)
                peer_tick(m->hub, now);

        if (m->state == MANAGER_NEEDS_LOGIN || m->state == MANAGER_STOPPED)
                m->state = MANAGER_STARTING;
        manager_check_online(m);
        return 0;
}

static int manager_load_cached_netmap(Manager *m) {
        _cleanup_free_ char *json = NULL, *error = NULL;
        Netmap *nm = NULL;
        size_t len;
        int r;

        r = state_load_netmap(m->state_dir, &json, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_warning_errno(r, "Failed to read cached netmap: %m");
        r = netmap_parse(json, len, &nm, &error);
        if (r < 0)
                return log_warning_errno(r, "Ignoring cached netmap: %s", strna(error));
        if (!manager_netmap_trusted(m, nm, "the cached netmap")) {
                netmap_free(nm);
                return -EBADMSG;
        }

        log_info("Applying cached netmap version %llu (%zu peers).", (unsigned long long) nm->version,
                 nm->n_peers);
        return manager_apply_netmap(m, nm, json, len, true);
}

/* ---- control server ------------------------------------------------------------------------ */

static void manager_forget_membership(Manager *m, const char *why) {
        int r;

        if (m->control) {
                control_client_stop_polling(m->control);
        }
        manager_drop_peers(m);
        manager_release_device(m, true);
        /* The certificate files stay, valid until they expire; renewal
         * stops, as the control server would refuse it. */
        m->cert_keeper = cert_keeper_free(m->cert_keeper);
        r = state_remove_membership(m->state_dir);
        if (r < 0)
                log_warning_errno(r, "Failed to remove membership files: %m");
        credentials_done(&m->credentials);
        m->netmap = netmap_free(m->netmap);
        m->netmap_json = mfree(m->netmap_json);
        m->announced_endpoints = strv_free(m->announced_endpoints);
        (void) manager_write_hosts(m);
        m->joined = false;
        m->state = MANAGER_NEEDS_LOGIN;
        manager_set_status(m, why);
}

static void on_netmap(ControlClient *c, int error, const char *message, const char *body, size_t len,
                      void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *parse_error = NULL, *merged = NULL;
        Netmap *nm = NULL;
        int r;

        if (error == -EPERM || error == -EACCES) {
                log_full_errno_fields(LOG_WARNING, 0, &((LogFields) { .message_id = MESSAGE_NODE_REMOVED }),
                                      "Control server no longer accepts this node (%s); leaving the mesh.",
                                      strna(message));
                manager_forget_membership(m, "Removed from the mesh; run meshctl up to join again.");
                return;
        }
        if (error < 0) {
                log_full_errno(control_client_is_connected(c) ? LOG_WARNING : LOG_DEBUG, error,
                               "Control server %s: %s", control_client_get_url(c), strna(message));
                return;
        }

        if (netmap_json_is_delta(body, len)) {
                r = m->netmap_json ? netmap_delta_merge(m->netmap_json, m->netmap_json_len, body, len, &merged,
                                                        &len, &parse_error)
                                   : -ESTALE;
                if (r < 0) {
                        if (r != -ESTALE)
                                log_warning("Ignoring invalid netmap delta from control server: %s",
                                            strna(parse_error));
                        /* ask for the whole netmap */
                        control_client_set_netmap_version(c, 0);
                        return;
                }
                log_debug("Merged a netmap delta onto version %llu.",
                          (unsigned long long) (m->netmap ? m->netmap->version : 0));
                body = merged;
        }
        r = netmap_parse(body, len, &nm, &parse_error);
        if (r < 0) {
                log_warning("Ignoring invalid netmap from control server: %s", strna(parse_error));
                return;
        }
        uint64_t version = nm->version;
        if (m->netmap && version <= m->netmap->version) {
                netmap_free(nm);
                control_client_set_netmap_version(c, m->netmap->version);
                return;
        }
        char what[64];
        snprintf(what, sizeof(what), "netmap version %llu", (unsigned long long) version);
        if (!manager_netmap_trusted(m, nm, what)) {
                /* not applied, not cached; the version stays, so the poll backs off */
                netmap_free(nm);
                return;
        }
        (void) manager_apply_netmap(m, nm, body, len, false);
        control_client_set_netmap_version(c, version);
        manager_post_endpoints(m);
}

static int manager_start_polling(Manager *m) {
        int r;

        if (!m->control) {
                r = control_client_new(m->event, m->credentials.control_url, m->credentials.control_pin,
                                       &m->control);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up control client: %m");
        }
        r = control_client_start_polling(m->control, m->credentials.token, m->netmap ? m->netmap->version : 0,
                                         on_netmap, m);
        if (r < 0)
                return log_error_errno(r, "Failed to start polling the control server: %m");
        return 0;
}

static const char *register_error_name(int error) {
        switch (error) {
        case -EACCES:
        case -EPERM:
        case -EEXIST:
                return "io.meshd.AuthFailed";
        case -EKEYREJECTED:
                return "io.meshd.PinMismatch";
        case -EBADMSG:
                return "io.meshd.ProtocolError";
        default:
                return "io.meshd.ControlUnreachable";
        }
}

static void manager_finish_up(Manager *m, const char *error_name, const char *message) {
        _cleanup_(api_call_unrefp) ApiCall *call = TAKE_PTR(m->up_call);

        if (!call)
                return;
        if (error_name)
                (void) api_call_reply_errorf(call, error_name, "%s", message);
        else
                (void) api_call_reply(call, manager_status_json(m));
}

static int manager_read_auth_key_file(Manager *m, char **ret);

static int on_join_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *authkey = NULL;

        m->join_retry_source = sd_event_source_disable_unref(m->join_retry_source);
        if (m->joined || m->registering)
                return 0;
        if (manager_read_auth_key_file(m, &authkey) < 0)
                return 0;
        (void) manager_up(m, m->config.control_url, m->config.control_pin, authkey, NULL);
        explicit_bzero(authkey, strlen(authkey));
        return 0;
}

/* An unattended join (AuthKeyFile=) at boot may well find the control server
 * or the network not there yet: retry transient failures with backoff. A
 * refused key or a wrong pin will not get better by retrying. */
static void manager_schedule_join_retry(Manager *m, int error) {
        if (error == -EACCES || error == -EPERM || error == -EEXIST || error == -EKEYREJECTED)
                return;
        m->join_retry_usec = m->join_retry_usec == 0 ? 2 * USEC_PER_SEC : MIN(m->join_retry_usec * 2, 60 * USEC_PER_SEC);
        m->join_retry_source = sd_event_source_disable_unref(m->join_retry_source);
        if (sd_event_add_time_relative(m->event, &m->join_retry_source, CLOCK_MONOTONIC, m->join_retry_usec, 0,
                                       on_join_retry, m) >= 0)
                log_info("Retrying to join in %llus.", (unsigned long long) (m->join_retry_usec / USEC_PER_SEC));
}

static void on_register_reply(ControlClient *c, int error, const char *message, const char *body, size_t len,
                              void *userdata) {
        Manager *m = userdata;
        _cleanup_(register_reply_done) RegisterReply reply = {};
        _cleanup_free_ char *parse_error = NULL, *netmap_text = NULL, *msg = NULL;
        Credentials creds = {};
        int r;

        if (error < 0) {
                log_error_errno(error, "Joining the mesh at %s failed: %s", control_client_get_url(c),
                                strna(message));
                if (!m->up_call)
                        manager_schedule_join_retry(m, error);
                manager_finish_up(m, register_error_name(error), strna(message));
                goto drop_client;
        }

        r = register_reply_parse(body, len, &reply, &parse_error);
        if (r < 0 || !key_equal(&reply.netmap->self.public_key, &m->public_key)) {
                if (asprintf(&msg, "%s", r < 0 ? strna(parse_error) : "netmap is for another key") < 0)
                        msg = NULL;
                log_error("Joining the mesh failed, malformed reply from control server: %s", strna(msg));
                manager_finish_up(m, "io.meshd.ProtocolError", strna(msg));
                goto drop_client;
        }

        r = manager_check_join_netmap(m, reply.netmap, control_client_get_url(c), &parse_error);
        if (r < 0) {
                if (asprintf(&msg, "refusing the control server's netmap: %s",
                             strna(parse_error ?: "cannot check it")) < 0)
                        msg = NULL;
                log_full_errno_fields(LOG_ERR, 0, &((LogFields) { .message_id = MESSAGE_NETMAP_REFUSED }),
                                      "Refusing to join the mesh at %s: %s", control_client_get_url(c),
                                      strna(parse_error ?: "cannot check its netmap"));
                manager_finish_up(m, "io.meshd.ProtocolError", strna(msg));
                goto drop_client;
        }

        /* Store exactly the netmap object the server sent, for the cache. */
        netmap_text = TAKE_PTR(reply.netmap_json);
        if (!netmap_text) {
                manager_finish_up(m, "org.varlink.service.InternalError", "out of memory");
                goto drop_client;
        }

        creds.control_url = strdup(control_client_get_url(c));
        creds.control_pin = strdup(m->credentials.control_pin ? m->credentials.control_pin : "");
        creds.node_id = reply.node_id;
        creds.name = strdup(reply.netmap->self.name);
        creds.token = TAKE_PTR(reply.token);
        if (!creds.control_url || !creds.control_pin || !creds.name ||
            credentials_pin_netmap(&creds, reply.netmap) < 0) {
                credentials_done(&creds);
                manager_finish_up(m, "org.varlink.service.InternalError", "out of memory");
                goto drop_client;
        }

        /* node.json is the commit point: without it, a cached netmap is never used. */
        r = state_save_netmap(m->state_dir, netmap_text, strlen(netmap_text));
        if (r >= 0)
                r = state_save_credentials(m->state_dir, &creds);
        if (r < 0) {
                log_error_errno(r, "Failed to store credentials in %s: %m", m->state_dir);
                (void) state_remove_membership(m->state_dir);
                credentials_done(&creds);
                manager_finish_up(m, "org.varlink.service.InternalError", "cannot write the state directory");
                goto drop_client;
        }

        credentials_done(&m->credentials);
        m->credentials = creds;
        m->joined = true;
        m->state = MANAGER_STARTING;
        m->join_retry_usec = 0;
        log_notice("Joined the mesh at %s as %s.", m->credentials.control_url, m->credentials.name);

        m->control = TAKE_PTR(m->registering);
        manager_start_cert_keeper(m);
        uint64_t version = reply.netmap->version;
        (void) manager_apply_netmap(m, TAKE_PTR(reply.netmap), netmap_text, strlen(netmap_text), true);
        (void) manager_arm_online_timeout(m);
        (void) manager_start_polling(m);
        control_client_set_netmap_version(m->control, version);
        manager_post_endpoints(m);
        manager_finish_up(m, NULL, NULL);
        return;

drop_client:
        m->registering = control_client_free(m->registering);
        if (!m->joined) {
                free(m->credentials.control_pin);
                m->credentials.control_pin = NULL;
        }
}

static bool pin_is_valid(const char *pin) {
        WgKey k; /* a SHA-256 is 32 bytes, like a key, and uses the same base64 form */
        return pin && strncmp(pin, "sha256//", 8) == 0 && key_from_base64(pin + 8, &k) >= 0;
}

int manager_up(Manager *m, const char *url, const char *pin, const char *authkey, ApiCall *call) {
        _cleanup_strv_free_ char **candidates = NULL;
        int r;

        if (m->joined) {
                if (!url && !authkey) {
                        /* `meshctl up` after `meshctl down`: come back with what we have. */
                        if (m->state != MANAGER_STOPPED)
                                return call ? api_call_reply(call, manager_status_json(m)) : 0;
                        m->state = MANAGER_STARTING;
                        (void) manager_load_cached_netmap(m);
                        (void) manager_start_polling(m);
                        return call ? api_call_reply(call, manager_status_json(m)) : 0;
                }
                return call ? api_call_reply_errorf(call, "io.meshd.AlreadyJoined",
                                                    "already joined as %s at %s; run meshctl logout first",
                                                    m->credentials.name, m->credentials.control_url)
                            : -EALREADY;
        }
        if (!url || strncmp(url, "https://", 8) != 0)
                return call ? api_call_reply_errorf(call, "io.meshd.InvalidParameter",
                                                    "server: must be an https:// URL")
                            : -EINVAL;
        if (!pin_is_valid(pin))
                return call ? api_call_reply_errorf(call, "io.meshd.InvalidParameter",
                                                    "pin: must be sha256// followed by 44 base64 characters")
                            : -EINVAL;
        if (!authkey || !*authkey)
                return call ? api_call_reply_errorf(call, "io.meshd.InvalidParameter", "authkey: empty")
                            : -EINVAL;
        if (m->registering)
                return call ? api_call_reply_errorf(call, "io.meshd.InvalidParameter",
                                                    "a join is already in progress")
                            : -EBUSY;

        r = control_client_new(m->event, url, pin, &m->registering);
        if (r < 0)
                return log_error_errno(r, "Failed to set up control client: %m");
        free(m->credentials.control_pin);
        m->credentials.control_pin = strdup(pin);

        /* The port is known only when configured; with ListenPort=0 the
         * endpoints follow once the interface exists. */
        /* Our own mesh interface may be there already (KeepInterface=):
         * its addresses are no endpoints. */
        if (m->config.listen_port > 0 &&
            link_list_endpoint_candidates((int) if_nametoindex(m->config.interface), m->config.listen_port,
                                          &candidates) >= 0)
                manager_drop_mesh_candidates(m, candidates);

        r = control_client_register(m->registering, authkey, &m->private_key, m->hostname, candidates,
                                    on_register_reply, m);
        if (r < 0) {
                m->registering = control_client_free(m->registering);
                return log_error_errno(r, "Failed to send registration: %m");
        }
        if (call)
                m->up_call = api_call_ref(call);
        log_info("Joining the mesh at %s as %s.", url, m->hostname);
        return 0;
}

int manager_down(Manager *m) {
        if (m->control)
                control_client_stop_polling(m->control);
        m->control = control_client_free(m->control);
        manager_drop_peers(m);
        /* Explicitly asked for: the interface goes even with KeepInterface=yes. */
        manager_release_device(m, true);
        m->netmap = netmap_free(m->netmap);
        m->netmap_json = mfree(m->netmap_json);
        (void) manager_write_hosts(m);
        m->state = MANAGER_STOPPED;
        manager_set_status(m, "Stopped (meshctl down).");
        log_notice("Mesh interface taken down on request.");
        return 0;
}

int manager_logout(Manager *m) {
        (void) manager_down(m);
        m->control = control_client_free(m->control);
        manager_forget_membership(m, "Logged out; run meshctl up to join again.");
        log_notice("Logged out of the mesh.");
        return 0;
}

/* ---- status -------------------------------------------------------------------------------- */

int manager_refresh_device_stats(Manager *m) {
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        int r;

        if (!m->wg)
                return 0;
        r = wg_get_device(m->wg, &d);
        if (r < 0)
                return r;
        uint64_t now = now_monotonic(m);
        for (size_t i = 0; i <= m->n_peers; i++) {
                Peer *p = i < m->n_peers ? m->peers[i] : m->hub;
                const WgPeer *w;

                if (!p)
                        continue;
                w = wg_device_find_peer(d, &p->public_key);
                char buf[ENDPOINT_STRLEN];

                if (!w)
                        continue;
                peer_take_device_stats(p, w, now);
                free(p->device_endpoint);
                p->device_endpoint = w->endpoint.sa.sa_family != AF_UNSPEC
                                             ? strdup(endpoint_format(&w->endpoint, buf, sizeof(buf)))
                                             : NULL;
        }
        return 0;
}

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
            !ADD_STRING_OR_NULL("fqdn", fqdn) ||
            !ADD_STRING_OR_NULL("ipv4", ipv4) ||
            !ADD_STRING_OR_NULL("ipv6", ipv6) ||
            !cJSON_AddStringToObject(o, "public_key", m->public_key_b64) ||
            !cJSON_AddStringToObject(o, "interface", m->config.interface) ||
            !ADD_STRING_OR_NULL("backend", m->wg ? wg_backend_type_to_string(wg_backend_get_type(m->wg)) : NULL) ||
            !cJSON_AddNumberToObject(o, "listen_port", m->listen_port) ||
            !ADD_STRING_OR_NULL("control_url", m->credentials.control_url) ||
            !cJSON_AddBoolToObject(o, "control_connected", m->control && control_client_is_connected(m->control)) ||
            !cJSON_AddNumberToObject(o, "netmap_version", m->netmap ? (double) m->netmap->version : 0) ||
            !cJSON_AddNumberToObject(o, "peers_total", (double) m->n_peers) ||
            !cJSON_AddNumberToObject(o, "peers_reachable", (double) reachable))
                return NULL;
#undef ADD_STRING_OR_NULL
        if (m->hub) {
                const char *endpoint = m->hub->device_endpoint ?: peer_current_endpoint(m->hub);
                cJSON *hub = cJSON_AddObjectToObject(o, "hub");
                if (!hub ||
                    !cJSON_AddStringToObject(hub, "public_key", m->hub->public_key_b64) ||
                    !cJSON_AddStringToObject(hub, "endpoint", strna(endpoint)) ||
                    !cJSON_AddBoolToObject(hub, "reachable", m->hub->reachable) ||
                    !cJSON_AddNumberToObject(hub, "rtt_usec", (double) m->hub->rtt_usec) ||
                    !cJSON_AddStringToObject(hub, "transport", m->hub_tls ? "tls" : "udp"))
                        return NULL;
        } else if (!cJSON_AddNullToObject(o, "hub"))
                return NULL;
        return TAKE_PTR(o);
}

/* Why a peer is not reachable, in the words mount.mesh and meshd-wait-online print. */
static const char *peer_unreachable_reason(const Peer *p) {
        if (!p)
                return "unknown peer";
        if (p->last_handshake_realtime_usec == 0)
                return "no handshake";
        return "no probe reply";
}

static int on_wait_online_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        WaitOnlineRequest *w = userdata;
        Manager *m = w->manager;
        _cleanup_json_ cJSON *params = cJSON_CreateObject();
        _cleanup_free_ char *message = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size = 0, n = 0;
        cJSON *list;

        (void) manager_refresh_device_stats(m);
        list = params ? cJSON_AddArrayToObject(params, "unreachable") : NULL;
        f = open_memstream(&message, &size);
        if (!list || !f)
                return log_oom();

        /* One peer: just the reason ("no handshake"); several: "nas: no handshake, backup: …". */
        if (w->peers) {
                for (char **name = w->peers; *name; name++) {
                        Peer *p = manager_find_peer(m, *name);
                        if (p && p->reachable)
                                continue;
                        cJSON_AddItemToArray(list, cJSON_CreateString(*name));
                        fprintf(f, "%s%s: %s", n++ > 0 ? ", " : "", *name, peer_unreachable_reason(p));
                }
        } else
                for (size_t i = 0; i < m->n_peers; i++) {
                        Peer *p = m->peers[i];
                        if (p->reachable)
                                continue;
                        cJSON_AddItemToArray(list, cJSON_CreateString(p->name));
                        fprintf(f, "%s%s: %s", n++ > 0 ? ", " : "", p->name, peer_unreachable_reason(p));
                }
        if (fclose(TAKE_PTR(f)) != 0)
                return log_oom();

        const char *text = message;
        if (n == 1 && strchr(text, ':'))
                text = strchr(text, ':') + 2;
        cJSON_AddStringToObject(params, "message", n > 0 ? text : "online policy not met");
        (void) api_call_reply_error(w->call, "io.meshd.Timeout", TAKE_PTR(params));
        manager_unlink_wait_online(m, w);
        wait_online_request_free(w);
        return 0;
}

int manager_wait_online(Manager *m, ApiCall *call, char **peers, bool any, uint64_t timeout_usec) {
        _cleanup_strv_free_ char **owned = peers;
        WaitOnlineRequest *w;
        int r;

        if (!m->joined)
                return api_call_reply_errorf(call, "io.meshd.NotJoined", "this node has not joined a mesh");
        /* Once a netmap is there, a name that is not in it will not become
         * reachable by waiting: say so at once instead of at the timeout. */
        if (owned && m->netmap)
                for (char **name = owned; *name; name++)
                        if (!manager_find_peer(m, *name)) {
                                cJSON *p = cJSON_CreateObject();
                                _cleanup_free_ char *text = NULL;
                                if (asprintf(&text, "no peer named '%s' in the mesh", *name) < 0)
                                        text = NULL;
                                cJSON_AddStringToObject(p, "message", text ? text : "unknown peer");
                                cJSON_AddStringToObject(p, "peer", *name);
                                return api_call_reply_error(call, "io.meshd.PeerNotFound", p);
                        }

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->manager = m;
        w->call = api_call_ref(call);
        w->peers = TAKE_PTR(owned);
        w->any = any;
        if (timeout_usec > 0) {
                r = sd_event_add_time_relative(m->event, &w->timeout, CLOCK_MONOTONIC, timeout_usec, 0,
                                               on_wait_online_timeout, w);
                if (r < 0) {
                        wait_online_request_free(w);
                        return r;
                }
        }
        w->next = m->wait_online_requests;
        m->wait_online_requests = w;

        if (m->device_configured) {
                _cleanup_free_ OnlinePeerView *views = NULL;
                r = manager_peer_views(m, &views);
                if (r < 0)
                        return r;
                manager_check_wait_online(m, views);
        }
        return 0;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static int on_tick(sd_event_source *s, uint64_t scheduled, void *userdata) {
        Manager *m = userdata;
        /* Not the scheduled time: a probe reply handled in this same loop
         * iteration carries the loop's time, which may be later. */
        uint64_t usec = now_monotonic(m);
        bool judging = false;

        /* Judging a path needs fresh counters from the device; read them
         * only while some peer is relayed or silent, not every second for all. */
        for (size_t i = 0; m->hub && !judging && i < m->n_peers; i++)
                judging = peer_is_relayed(m->peers[i]) || m->peers[i]->oldest_unanswered_usec > 0;
        if (judging)
                (void) manager_refresh_device_stats(m);

        for (size_t i = 0; i < m->n_peers; i++)
                peer_tick(m->peers[i], usec);
        if (m->hub) {
                peer_tick(m->hub, usec);
                hub_link_tick(m->hub_link, usec);
        }
        return sd_event_source_set_time(s, usec + MANAGER_TICK_USEC);
}

/* The underlay changed (an address came or went, a route moved): tell the
 * control server our new candidates and send something to everyone, so
 * that the hub and the peers' WireGuard learn where we are now. */
/* wireguard-go remembers the local address each peer was last reached
 * from and keeps sending from it even when that address is gone (it only
 * notices when the route's interface changes; the kernel module checks the
 * address itself). Setting an endpoint anew forgets that source. */
static void manager_renew_endpoints(Manager *m) {
        _cleanup_(wg_device_freep) WgDevice *d = calloc(1, sizeof(WgDevice));
        int r;

        if (!d || !m->wg || wg_backend_get_type(m->wg) != WG_BACKEND_USERSPACE)
                return;
        (void) manager_refresh_device_stats(m);
        for (size_t i = 0; i <= m->n_peers; i++) {
                Peer *p = i < m->n_peers ? m->peers[i] : m->hub;
                const char *endpoint;
                WgPeer *w;

                if (!p)
                        continue;
                endpoint = p->device_endpoint ?: peer_current_endpoint(p);
                if (!endpoint || wg_device_add_peer(d, &w) < 0)
                        continue;
                w->public_key = p->public_key;
                w->flags = WG_PEER_UPDATE_ONLY;
                if (endpoint_parse(endpoint, &w->endpoint) >= 0)
                        w->flags |= WG_PEER_HAS_ENDPOINT;
        }
        r = d->n_peers > 0 ? wg_set_device(m->wg, d) : 0;
        if (r < 0)
                log_debug_errno(r, "Failed to renew endpoints: %m");
}

/* Whether this host's endpoint candidates differ from the last look. */
static bool manager_underlay_moved(Manager *m) {
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

static void on_link_change(LinkWatch *w, void *userdata) {
        Manager *m = userdata;
        uint64_t now = now_monotonic(m);

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

        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long) now_monotonic(m));
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
        if (m->cert_keeper && cert_keeper_set_reload_command(m->cert_keeper, m->config.cert_reload_command) < 0)
                log_oom();
        conf_done(&c);

        log_info("Reloaded configuration from %s.", m->config_path);
        manager_check_online(m);
        (void) sd_notify(false, "READY=1");
        return 0;
}

static int manager_read_auth_key_file(Manager *m, char **ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_full_file(m->config.auth_key_file, 4096, &text, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read AuthKeyFile=%s: %m", m->config.auth_key_file);
        text[strcspn(text, "\r\n")] = 0;
        if (!*text)
                return log_error_errno(-EINVAL, "AuthKeyFile=%s is empty.", m->config.auth_key_file);
        *ret = TAKE_PTR(text);
        return 0;
}

/* A node.json that does not parse would otherwise be tried at every start;
 * the key stays, so a re-join is recognised by the control server. */
static void manager_set_aside_credentials(Manager *m) {
        int r = state_set_aside_credentials(m->state_dir);

        if (r < 0)
                log_full_errno_fields(LOG_ERR, r, &((LogFields) { .message_id = MESSAGE_STATE_CORRUPT }),
                                      "%s/node.json is corrupt (not JSON or fields missing) and could not be moved "
                                      "aside (%m); starting as a node that has not joined, key kept. Join again "
                                      "with meshctl up or AuthKeyFile=.",
                                      m->state_dir);
        else
                log_full_errno_fields(LOG_ERR, 0, &((LogFields) { .message_id = MESSAGE_STATE_CORRUPT }),
                                      "%s/node.json is corrupt (not JSON or fields missing); moved it to "
                                      "node.json.corrupt, starting as a node that has not joined, key kept. Join "
                                      "again with meshctl up or AuthKeyFile=.",
                                      m->state_dir);
}

int manager_start(Manager *m) {
        bool created;
        int r;

        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &m->started_usec);

        r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGHUP, on_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up signal handling: %m");
        (void) sd_event_set_watchdog(m->event, true);

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

        r = api_server_new(m->event, m->api_socket_path, manager_api_methods, manager_api_methods_count,
                           "io.meshd", manager_api_description, m, &m->api);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s: %m", m->api_socket_path);

        r = link_watch_new(m->event, on_link_change, m, &m->link_watch);
        if (r < 0)
                log_warning_errno(r, "Failed to watch network changes, roaming will be slow: %m");

        r = sd_event_add_time_relative(m->event, &m->tick_source, CLOCK_MONOTONIC, MANAGER_TICK_USEC, 0, on_tick, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up timer: %m");
        (void) sd_event_source_set_enabled(m->tick_source, SD_EVENT_ON);

        r = state_load_credentials(m->state_dir, &m->credentials);
        if (r >= 0) {
                m->joined = true;
                m->state = MANAGER_STARTING;
                manager_set_status(m, "Connecting to the mesh.");
                (void) manager_arm_online_timeout(m);
                manager_start_cert_keeper(m);
                /* The cache first: the mesh works even while the control server is down. */
                (void) manager_load_cached_netmap(m);
                r = manager_start_polling(m);
                if (r < 0)
                        return r;
                return 0;
        }
        if (r == -EBADMSG)
                manager_set_aside_credentials(m);
        else if (r != -ENOENT)
                log_warning_errno(r, "Ignoring unreadable credentials, joining anew: %m");

        if (m->config.auth_key_file && m->config.control_url && m->config.control_pin) {
                _cleanup_free_ char *authkey = NULL;
                m->state = MANAGER_STARTING;
                manager_set_status(m, "Joining the mesh.");
                (void) manager_arm_online_timeout(m);
                r = manager_read_auth_key_file(m, &authkey);
                if (r >= 0)
                        r = manager_up(m, m->config.control_url, m->config.control_pin, authkey, NULL);
                if (authkey)
                        explicit_bzero(authkey, strlen(authkey));
                if (r < 0)
                        log_error_errno(r, "Unattended join failed: %m");
                return 0;
        }

        /* Nothing to wait for: not being joined must never hold up the boot. */
        m->state = MANAGER_NEEDS_LOGIN;
        m->ready_sent = true;
        free(m->status_text);
        m->status_text = strdup("Not joined to a mesh; run meshctl up.");
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", m->status_text);
        log_notice("Not joined to a mesh yet; waiting for meshctl up.");
        return 0;
}

void manager_stop(Manager *m) {
        bool keep = m->config.keep_interface;

        if (m->wg)
                log_info("%s interface %s.", keep ? "Keeping" : "Removing", m->config.interface);
        manager_release_device(m, !keep);
}
