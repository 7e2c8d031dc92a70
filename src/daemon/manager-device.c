/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <sys/wait.h>

#include "hub-link.h"
#include "link-watch.h"
#include "link.h"
#include "log.h"
#include "manager-private.h"
#include "peer.h"

/* The WireGuard interface: opening or adopting it, its key, port and
 * addresses, the probe socket, the peer entries (each peer's own, and the
 * hub's that carries the relayed peers), and reading its counters back. */

/* ---- the interface -------------------------------------------------------------------------- */

void manager_release_device(Manager *m, bool destroy) {
        manager_exit_stop(m);
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

static int on_userspace_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Manager *m = userdata;

        m->child_source = sd_event_source_disable_unref(m->child_source);
        log_error("wireguard-go for %s exited (status %i); the tunnel is gone, exiting.", m->config.interface,
                  si->si_status);
        return sd_event_exit(m->event, -ECHILD);
}

static void on_probe_reply(Prober *p, int family, const union in_addr_union *from, uint32_t seq,
                           void *userdata) {
        Manager *m = userdata;
        Peer *peer = manager_find_peer_by_address(m, family, from);

        if (peer)
                peer_handle_probe_reply(peer, seq, manager_now(m));
}

static int manager_setup_prober(Manager *m, const Netmap *nm) {
        int r;

        if (!m->prober) {
                r = prober_new(m->event, PROBE_PORT, on_probe_reply, m, &m->prober);
                if (r < 0)
                        return log_error_errno(r, "Failed to open probe socket on port %u: %m", PROBE_PORT);
        }
        prober_set_mesh_ranges(m->prober, &nm->ipv4_range, nm->ipv4_prefixlen,
                               nm->has_ipv6_range ? &nm->ipv6_range : NULL, nm->ipv6_prefixlen);
        return 0;
}

/* Brings the interface to the state the netmap's self asks for: key, port,
 * addresses, up. An interface that already matches (a restart with
 * KeepInterface=yes) is left alone, so no packet is lost. */
int manager_setup_device(Manager *m, const Netmap *nm) {
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

        r = manager_setup_prober(m, nm);
        if (r < 0)
                return r;

        link_watch_ignore_ifindex(m->link_watch, ifindex);
        (void) manager_underlay_moved(m);
        m->device_configured = true;
        return 0;
}

/* ---- peer entries --------------------------------------------------------------------------- */

static bool wg_peer_matches(const WgPeer *w, const Peer *p) {
        size_t want =
                (peer_is_relayed(p) ? 0 : (p->has_ipv6 ? 2 : 1) + p->n_routes) + p->exit_ipv4 + p->exit_ipv6;

        if (w->n_allowed_ips != want)
                return false;
        for (size_t i = 0; i < w->n_allowed_ips; i++) {
                const WgAllowedIp *a = &w->allowed_ips[i];

                if (peer_has_route(p, a->family, &a->addr, a->cidr))
                        continue;
                if (a->cidr == 0 && (a->family == AF_INET ? p->exit_ipv4 : p->exit_ipv6))
                        continue;
                if (a->family == AF_INET && !(a->cidr == 32 && peer_has_address(p, AF_INET, &a->addr)))
                        return false;
                if (a->family == AF_INET6 && !(a->cidr == 128 && peer_has_address(p, AF_INET6, &a->addr)))
                        return false;
        }
        return w->persistent_keepalive == PEER_KEEPALIVE_SEC;
}

/* A device's own /32 and /128: the hub entry carries them, as the hub's
 * entry for the device does, so this node reaches it node → hub → device. */
static int device_add_allowed_ips(const NetmapNode *n, WgPeer *w) {
        int r = wg_peer_add_allowed_ip(w, AF_INET, &n->ipv4, 32);
        if (r >= 0 && n->has_ipv6)
                r = wg_peer_add_allowed_ip(w, AF_INET6, &n->ipv6, 128);
        return r;
}

/* The hub entry: its own addresses plus those of every relayed peer and of
 * every device in nm (the netmap being applied), so that traffic to them
 * goes through the hub. Written whole (REPLACE_ALLOWED_IPS): a device that
 * left nm is cut off with this very write. */
int manager_hub_to_wg(Manager *m, const Netmap *nm, WgDevice *d) {
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
        for (size_t i = 0; r >= 0 && nm && i < nm->n_devices; i++)
                r = device_add_allowed_ips(&nm->devices[i], w);
        return r;
}

void manager_reroute_peer(Manager *m, Peer *p) {
        _cleanup_(wg_device_freep) WgDevice *own = NULL;
        WgDevice *d = m->device_batch;
        size_t first;
        int r;

        if (!m->wg || !m->hub)
                return;
        if (!d) {
                d = own = calloc(1, sizeof(WgDevice));
                if (!d)
                        return (void) log_oom();
        }
        first = d->n_peers;
        r = peer_to_wg(p, d);
        if (r < 0)
                return (void) log_warning_errno(r, "Failed to move %s's addresses for its new path: %m",
                                                p->name);
        /* the endpoint stays where WireGuard has it (it may have roamed) */
        d->peers[first].flags &= ~WG_PEER_HAS_ENDPOINT;
        if (!own) {
                /* the hub entry once at the end of the tick, with every peer
                 * moved in it: not once per peer, 10,000 addresses each */
                m->device_batch_hub = true;
                return;
        }
        r = manager_hub_to_wg(m, m->netmap, d);
        if (r >= 0) {
                d->peers[first + 1].flags &= ~WG_PEER_HAS_ENDPOINT;
                r = wg_set_device(m->wg, d);
        }
        if (r < 0)
                log_warning_errno(r, "Failed to move %s's addresses for its new path: %m", p->name);
}

void manager_device_batch_begin(Manager *m) {
        if (m->device_batch) /* one is open: its flush writes */
                return;
        /* without memory, each change and probe goes out on its own as before */
        m->device_batch = calloc(1, sizeof(WgDevice));
        m->batch_probes = calloc(m->n_peers + 1, sizeof(Peer *));
        if (!m->device_batch || !m->batch_probes) {
                m->device_batch = mfree(m->device_batch);
                m->batch_probes = mfree(m->batch_probes);
        }
        m->n_batch_probes = 0;
        m->device_batch_hub = false;
}

bool manager_device_batch_add_probe(Manager *m, Peer *p) {
        if (!m->batch_probes || m->n_batch_probes > m->n_peers)
                return false;
        m->batch_probes[m->n_batch_probes++] = p;
        return true;
}

void manager_device_batch_flush(Manager *m) {
        _cleanup_(wg_device_freep) WgDevice *d = TAKE_PTR(m->device_batch);
        _cleanup_free_ Peer **probes = TAKE_PTR(m->batch_probes);
        size_t n_probes = m->n_batch_probes;
        int r = 0;

        m->n_batch_probes = 0;
        if (!d)
                return;
        if (m->device_batch_hub && m->hub && m->wg) {
                size_t hub = d->n_peers;

                r = manager_hub_to_wg(m, m->netmap, d);
                if (r >= 0)
                        d->peers[hub].flags &= ~WG_PEER_HAS_ENDPOINT;
        }
        m->device_batch_hub = false;
        if (r >= 0 && d->n_peers > 0 && m->wg)
                r = wg_set_device(m->wg, d);
        if (r < 0)
                log_warning_errno(r, "Failed to write %zu peer changes to %s: %m", d->n_peers,
                                  m->config.interface);
        for (size_t i = 0; i < n_probes; i++)
                peer_send_probe_now(probes[i]);
}

bool manager_hub_over_tls(const Manager *m) {
        return m->hub_tls;
}

int wg_device_add_removal(WgDevice *d, const WgKey *key) {
        WgPeer *w;
        int r = wg_device_add_peer(d, &w);
        if (r < 0)
                return r;
        w->public_key = *key;
        w->flags = WG_PEER_REMOVE_ME;
        return 0;
}

/* Full reconciliation of the device's peers with ours (nm: the netmap being
 * applied), used once after the device is opened: it may hold peers from
 * before a crash or restart. Peers that already match are not touched (a
 * roamed endpoint stays as it is). */
int manager_sync_device_peers(Manager *m, const Netmap *nm) {
        _cleanup_(wg_device_freep) WgDevice *current = NULL, *d = NULL;
        _cleanup_free_ bool *wanted = NULL;
        int r;

        r = wg_get_device(m->wg, &current);
        if (r < 0)
                return r;
        d = calloc(1, sizeof(*d));
        wanted = calloc(current->n_peers + 1, sizeof(bool));
        if (!d || !wanted)
                return -ENOMEM;

        /* by key: O(n log n) where comparing each with each was O(n²) after
         * a restart onto a device with 10,000 peers */
        wg_device_sort_peers(current);
        for (size_t j = 0; j <= m->n_peers; j++) {
                const Peer *p = j < m->n_peers ? m->peers[j] : m->hub;
                const WgPeer *w = p ? wg_device_find_peer_sorted(current, &p->public_key) : NULL;

                if (w)
                        wanted[w - current->peers] = true;
        }
        for (size_t i = 0; i < current->n_peers; i++)
                if (!wanted[i]) {
                        r = wg_device_add_removal(d, &current->peers[i].public_key);
                        if (r < 0)
                                return r;
                }
        for (size_t j = 0; j < m->n_peers; j++) {
                const WgPeer *w = wg_device_find_peer_sorted(current, &m->peers[j]->public_key);
                if (w && wg_peer_matches(w, m->peers[j]) && w->endpoint.sa.sa_family != AF_UNSPEC)
                        continue;
                r = peer_to_wg(m->peers[j], d);
                if (r < 0)
                        return r;
        }
        if (m->hub) {
                r = manager_hub_to_wg(m, nm, d);
                if (r < 0)
                        return r;
        }
        if (d->n_peers == 0)
                return 0;
        log_debug("Reconciling %zu peers on %s.", d->n_peers, m->config.interface);
        r = wg_set_device(m->wg, d);
        return r < 0 ? r : (int) MIN(d->n_peers, (size_t) INT_MAX);
}

/* ---- counters and endpoints ----------------------------------------------------------------- */

int manager_refresh_device_stats(Manager *m) {
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        int r;

        if (!m->wg)
                return 0;
        r = wg_get_device(m->wg, &d);
        if (r < 0)
                return r;
        wg_device_sort_peers(d);
        uint64_t now = manager_now(m);
        for (size_t i = 0; i <= m->n_peers; i++) {
                Peer *p = i < m->n_peers ? m->peers[i] : m->hub;
                const WgPeer *w;

                if (!p)
                        continue;
                w = wg_device_find_peer_sorted(d, &p->public_key);
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

/* wireguard-go remembers the local address each peer was last reached
 * from and keeps sending from it even when that address is gone (it only
 * notices when the route's interface changes; the kernel module checks the
 * address itself). Setting an endpoint anew forgets that source. */
void manager_renew_endpoints(Manager *m) {
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
