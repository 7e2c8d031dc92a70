/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "exit-route.h"
#include "log.h"
#include "manager-private.h"
#include "peer.h"

/* This node's exit node (ExitNode=, meshd.conf(5)): which peer it is, its
 * WireGuard entry's 0.0.0.0/0 and ::/0, the interface's fwmark, and the
 * policy routing of exit-route.c; and, on a node that is an exit node
 * itself, the forwarding check. Cryptokey routing picks the most specific
 * allowed IP, so the hub's and the other peers' entries keep their own. */

/* One journal line per new reason the exit node is not used. */
static void exit_problem(Manager *m, const char *text) {
        if (streq_ptr(m->exit_problem, text))
                return;
        free(m->exit_problem);
        m->exit_problem = text ? strdup(text) : NULL;
        if (text)
                log_warning("%s", text);
}

/* Only a peer whose approved routes hold 0.0.0.0/0 or ::/0 may take the
 * traffic: a peer not approved as an exit node would not forward it (and
 * should not see it). */
static Peer *exit_candidate(Manager *m, bool *ret_ipv4, bool *ret_ipv6) {
        const char *name = m->routes.exit_node;
        const NetmapNode *n;
        char buf[256];

        if (!name || !m->netmap || !m->wg || !m->device_configured)
                return NULL;
        n = netmap_find_peer_by_name(m->netmap, name);
        if (!n) {
                (void) snprintf(buf, sizeof(buf),
                                "Exit node %s is not a peer in the netmap; not using an exit node.", name);
                exit_problem(m, buf);
                return NULL;
        }
        if (!exit_route_offered(n, ret_ipv4, ret_ipv6)) {
                (void) snprintf(
                        buf, sizeof(buf),
                        "Peer %s is no approved exit node (its routes hold neither 0.0.0.0/0 nor ::/0); "
                        "not using an exit node.",
                        name);
                exit_problem(m, buf);
                return NULL;
        }
        for (size_t i = 0; i < m->n_peers; i++)
                if (key_equal(&m->peers[i]->public_key, &n->public_key))
                        return m->peers[i];
        return NULL;
}

/* Rewrites the peer's own entry (REPLACE_ALLOWED_IPS) with or without the default routes. */
static int exit_set_peer(Manager *m, Peer *p, bool ipv4, bool ipv6) {
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        int r;

        if (p->exit_ipv4 == ipv4 && p->exit_ipv6 == ipv6)
                return 0;
        p->exit_ipv4 = ipv4;
        p->exit_ipv6 = ipv6;
        if (!m->wg)
                return 0;
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        r = peer_to_wg(p, d);
        if (r < 0)
                return r;
        /* the endpoint stays where WireGuard has it (it may have roamed) */
        d->peers[0].flags &= ~WG_PEER_HAS_ENDPOINT;
        return wg_set_device(m->wg, d);
}

/* WireGuard's own UDP carries the mark: it skips table T and stays on the underlay. */
static int exit_set_fwmark(Manager *m, uint32_t mark) {
        _cleanup_(wg_device_freep) WgDevice *d = calloc(1, sizeof(WgDevice));

        if (!d)
                return -ENOMEM;
        if (!m->wg)
                return 0;
        d->flags = WG_DEVICE_HAS_FWMARK;
        d->fwmark = mark;
        return wg_set_device(m->wg, d);
}

/* keep: the exit node staying in use (its rules stay too: taking them away
 * for a moment would send traffic past the tunnel); NULL: off altogether. */
static void exit_turn_off(Manager *m, Peer *keep) {
        bool was = exit_route_is_enabled(m->exit_route);

        if (!keep)
                (void) exit_route_disable(m->exit_route);
        for (size_t i = 0; i < m->n_peers; i++)
                if (m->peers[i] != keep && exit_set_peer(m, m->peers[i], false, false) < 0)
                        log_warning("Failed to remove the default routes from peer %s.", m->peers[i]->name);
        if (was && !keep) {
                if (exit_set_fwmark(m, 0) < 0)
                        log_warning("Failed to clear the fwmark of %s.", m->config.interface);
                log_info("Exit node %s is no longer used; traffic goes as before.", strna(m->exit_peer));
                m->exit_peer = mfree(m->exit_peer);
        }
}

static int exit_turn_on(Manager *m, Peer *p, bool ipv4, bool ipv6) {
        uint32_t mark = exit_route_get_fwmark(m->exit_route);
        bool changed = !streq_ptr(m->exit_peer, p->name) || p->exit_ipv4 != ipv4 || p->exit_ipv6 != ipv6;
        int r;

        r = exit_set_fwmark(m, mark);
        if (r < 0)
                return log_error_errno(r, "Failed to set fwmark %#" PRIx32 " on %s: %m", mark,
                                       m->config.interface);
        r = exit_set_peer(m, p, ipv4, ipv6);
        if (r < 0)
                return log_error_errno(r, "Failed to give exit node %s the default routes: %m", p->name);
        r = exit_route_enable(m->exit_route, wg_backend_get_ifindex(m->wg), ipv4, ipv6);
        if (r < 0)
                return r;
        if (changed) {
                exit_route_check_rp_filter(m->config.interface);
                free(m->exit_peer);
                m->exit_peer = strdup(p->name);
                log_info("Sending all other traffic through exit node %s (%s%s%s); fwmark and table %" PRIu32
                         ".",
                         p->name, ipv4 ? "IPv4" : "", ipv4 && ipv6 ? ", " : "", ipv6 ? "IPv6" : "", mark);
        }
        exit_problem(m, NULL);
        return 0;
}

/* This node as an exit node: forwarding must be on, or exit traffic dies here. */
static void exit_check_self(Manager *m) {
        bool ipv4 = false, ipv6 = false;
        bool offered = m->netmap && exit_route_offered(&m->netmap->self, &ipv4, &ipv6);

        if (offered && !m->exit_offered && m->device_configured)
                (void) exit_route_check_forwarding(m->config.interface, ipv4, ipv6);
        m->exit_offered = offered && m->device_configured;
}

void manager_exit_update(Manager *m) {
        bool ipv4 = false, ipv6 = false;
        Peer *p;
        int r;

        exit_check_self(m);
        if (!m->exit_route) {
                if (!m->wg || !m->device_configured || m->config.exit_fwmark == 0)
                        return;
                r = exit_route_new(m->config.exit_fwmark, &m->exit_route);
                if (r < 0)
                        return (void) log_oom();
                exit_route_remove_stale(m->exit_route, wg_backend_get_ifindex(m->wg));
        }
        if (!m->routes.exit_node)
                exit_problem(m, NULL);
        p = exit_candidate(m, &ipv4, &ipv6);
        exit_turn_off(m, p);
        if (p && exit_turn_on(m, p, ipv4, ipv6) < 0) {
                exit_turn_off(m, NULL);
                /* exit_turn_off() clears the fwmark only of an exit route that was up */
                (void) exit_set_fwmark(m, 0);
                exit_problem(m, "The exit node could not be set up; traffic goes as before.");
        }
        manager_routes_watch(m);
}

void manager_exit_stop(Manager *m) {
        if (!m->exit_route)
                return;
        exit_turn_off(m, NULL);
        m->exit_offered = false;
        manager_routes_watch(m);
}
