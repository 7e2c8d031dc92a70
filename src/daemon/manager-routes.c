/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exit-route.h"
#include "fileio.h"
#include "link.h"
#include "log.h"
#include "manager-private.h"
#include "messages.h"
#include "msg-routes.h"
#include "peer.h"
#include "rule-watch.h"
#include "strv.h"

/* Subnet routes on a node (meshd.conf(5) [Routes], docs/protocol.md): the set this node advertises,
 * posted to the control server whenever it changes; and the peers' approved
 * routes this node accepts (AcceptRoutes=): each one a prefix on the peer's
 * WireGuard entry plus a route PREFIX dev MESH, never when it overlaps a
 * network this host is connected to. 0.0.0.0/0 and ::/0 (exit nodes) are
 * not handled here. */

/* The effective settings: meshd.conf's [Routes] with `meshctl up`'s on top. */
int manager_routes_load(Manager *m) {
        RouteSettings s = {};
        int r;

        if (!m->route_prefs_loaded) {
                r = route_prefs_load(m->state_dir, &m->route_prefs);
                if (r == -ENOMEM)
                        return log_oom();
                m->route_prefs_loaded = true;
        }
        r = route_prefs_effective(&m->route_prefs, &m->config, &s);
        if (r < 0)
                return log_oom();
        route_settings_done(&m->routes);
        m->routes = s;
        return 0;
}

void manager_routes_done(Manager *m) {
        route_prefs_done(&m->route_prefs);
        route_settings_done(&m->routes);
        m->routes_posted = mfree(m->routes_posted);
        m->routes_installed = mfree(m->routes_installed);
        m->n_routes_installed = 0;
        m->routes_refused = strv_free(m->routes_refused);
        m->rule_watch = rule_watch_free(m->rule_watch);
}

/* ---- advertising ----------------------------------------------------------------------------- */

static int advertised_set(const Manager *m, InAddrPrefix **ret, size_t *ret_n) {
        size_t n = m->routes.n_advertise;
        InAddrPrefix *l = calloc(n + 2, sizeof(InAddrPrefix));

        if (!l)
                return -ENOMEM;
        if (n > 0)
                memcpy(l, m->routes.advertise, n * sizeof(InAddrPrefix));
        if (m->routes.advertise_exit_node) {
                (void) route_prefix_parse("0.0.0.0/0", &l[n++]);
                (void) route_prefix_parse("::/0", &l[n++]);
        }
        *ret = l;
        *ret_n = n;
        return 0;
}

static bool prefixes_equal(const InAddrPrefix *a, size_t n_a, const InAddrPrefix *b, size_t n_b) {
        if (n_a != n_b)
                return false;
        for (size_t i = 0; i < n_a; i++)
                if (!route_prefix_equal(&a[i], &b[i]))
                        return false;
        return true;
}

static void on_routes_posted(ControlClient *c, int error, const char *message, const char *body, size_t len,
                             void *userdata) {
        Manager *m = userdata;

        m->routes_post_pending = false;
        if (error < 0) {
                /* posted again with the next netmap */
                m->routes_post_ok = false;
                log_full_errno(error == -EBADMSG ? LOG_ERR : LOG_DEBUG, error,
                               "The control server did not take the advertised routes: %s", strna(message));
                return;
        }
        m->routes_post_ok = true;
        log_debug("Advertised %zu route(s) to the control server.", m->n_routes_posted);
}

void manager_post_routes(Manager *m) {
        _cleanup_free_ InAddrPrefix *l = NULL;
        size_t n;
        int r;

        if (!m->control || !m->joined || advertised_set(m, &l, &n) < 0)
                return;
        /* the set went out and was stored, or is on its way */
        if (m->routes_posted && prefixes_equal(l, n, m->routes_posted, m->n_routes_posted) &&
            (m->routes_post_ok || m->routes_post_pending))
                return;
        r = control_client_post_routes(m->control, l, n, on_routes_posted, m);
        if (r < 0) {
                log_debug_errno(r, "Failed to advertise routes: %m");
                return;
        }
        free(m->routes_posted);
        m->routes_posted = TAKE_PTR(l);
        m->n_routes_posted = n;
        m->routes_post_ok = false;
        m->routes_post_pending = true;
}

/* A router forwards only with forwarding on for the mesh interface (IPv4:
 * the interface packets come in on decides). meshd does not set it: that
 * is the admin's choice (sysctl net.ipv4.ip_forward=1, or per interface);
 * it says so once, clearly. */
static void check_forwarding(Manager *m) {
        static const char *const families[2] = { "ipv4", "ipv6" };
        bool want[2] = { m->routes.advertise_exit_node, m->routes.advertise_exit_node };

        for (size_t i = 0; i < m->routes.n_advertise; i++)
                want[m->routes.advertise[i].family == AF_INET6] = true;
        for (size_t f = 0; f < 2; f++) {
                _cleanup_free_ char *path = NULL, *v = NULL;
                size_t len;

                if (!want[f] || m->forwarding_warned[f])
                        continue;
                if (asprintf(&path, "/proc/sys/net/%s/conf/%s/forwarding", families[f], m->config.interface) <
                    0)
                        return (void) log_oom();
                if (read_full_file(path, 64, &v, &len) < 0 || v[0] != '0')
                        continue;
                m->forwarding_warned[f] = true;
                log_warning("%s forwarding is off on %s (%s is 0): the routes this node advertises are not "
                            "reachable through it. Turn it on with sysctl net.%s.conf.%s.forwarding=1 (or "
                            "net.ipv4.ip_forward=1 / net.ipv6.conf.all.forwarding=1) on the mesh interface "
                            "and the LAN.",
                            f == 0 ? "IPv4" : "IPv6", m->config.interface, path, families[f],
                            m->config.interface);
        }
}

/* ---- accepting ------------------------------------------------------------------------------- */

typedef struct WantedRoute {
        InAddrPrefix prefix;
        size_t peer; /* index into m->peers (the netmap's peer order) */
} WantedRoute;

static bool prefix_accepted(const Manager *m, const InAddrPrefix *p) {
        for (size_t i = 0; i < m->routes.n_accept; i++)
                if (route_prefix_contains(&m->routes.accept[i], p))
                        return true;
        return false;
}

/* One warning per refused (prefix, peer, network), not one per netmap. */
static void log_refusal(Manager *m, char ***refused, const char *prefix, const char *peer, const char *net) {
        _cleanup_free_ char *key = NULL;

        if (asprintf(&key, "%s %s %s", prefix, peer, net) < 0)
                return (void) log_oom();
        for (char **i = m->routes_refused; i && *i; i++)
                if (streq(*i, key))
                        goto keep;
        log_peer_full(peer, LOG_WARNING,
                      "Refusing route %s of peer %s: it overlaps %s, a network this host is connected to.",
                      prefix, peer, net);
keep:
        (void) strv_consume(refused, TAKE_PTR(key));
}

/* The route p of peer i is wanted unless this host has an overlapping
 * network of its own, or another peer offers it already. */
static bool route_wanted(Manager *m, const InAddrPrefix *p, size_t i, const InAddrPrefix *conn, size_t n_conn,
                         const WantedRoute *w, size_t n_w, char ***refused) {
        char a[ROUTE_PREFIX_STRLEN], b[ROUTE_PREFIX_STRLEN];

        const InAddrPrefix *net = NULL;

        /* named by the widest network it overlaps: the LAN, not an address on it */
        for (size_t j = 0; j < n_conn; j++)
                if (route_prefix_overlaps(p, &conn[j]) && (!net || conn[j].prefixlen < net->prefixlen))
                        net = &conn[j];
        if (net) {
                InAddrPrefix network = route_prefix_network(net);

                log_refusal(m, refused, strna(route_prefix_format(p, a, sizeof(a))), m->peers[i]->name,
                            strna(route_prefix_format(&network, b, sizeof(b))));
                return false;
        }
        /* the same prefix from two peers: the first in the netmap (the
         * lower node id at the control server) carries it */
        for (size_t j = 0; j < n_w; j++)
                if (route_prefix_equal(&w[j].prefix, p)) {
                        log_debug("Route %s is offered by %s and %s; using %s.",
                                  strna(route_prefix_format(p, a, sizeof(a))), m->peers[w[j].peer]->name,
                                  m->peers[i]->name, m->peers[w[j].peer]->name);
                        return false;
                }
        return true;
}

static int wanted_routes(Manager *m, int ifindex, WantedRoute **ret, size_t *ret_n, char ***refused) {
        _cleanup_free_ InAddrPrefix *conn = NULL;
        _cleanup_free_ WantedRoute *w = NULL;
        size_t n_conn = 0, n = 0;
        int r;

        *ret = NULL;
        *ret_n = 0;
        if (!m->netmap || m->routes.n_accept == 0)
                return 0;
        r = link_list_underlay_prefixes(ifindex, &conn, &n_conn);
        if (r < 0)
                return log_warning_errno(r, "Failed to list this host's networks; accepting no routes: %m");

        for (size_t i = 0; i < m->n_peers && i < m->netmap->n_peers; i++) {
                const NetmapNode *node = &m->netmap->peers[i];

                for (char **k = node->routes; k && *k; k++) {
                        InAddrPrefix p;
                        WantedRoute *a;

                        /* exit routes are the exit node's business */
                        if (route_prefix_parse(*k, &p) < 0 || route_prefix_is_default(&p) ||
                            !prefix_accepted(m, &p) || !route_wanted(m, &p, i, conn, n_conn, w, n, refused))
                                continue;
                        a = realloc(w, (n + 1) * sizeof(WantedRoute));
                        if (!a)
                                return log_oom();
                        w = a;
                        w[n++] = (WantedRoute) { .prefix = p, .peer = i };
                }
        }
        *ret = TAKE_PTR(w);
        *ret_n = n;
        return 0;
}

/* Peer i's share of w into its object; 1 when it changed. */
static int peer_take_routes(Peer *p, size_t i, const WantedRoute *w, size_t n) {
        _cleanup_free_ InAddrPrefix *l = calloc(MAX(n, (size_t) 1), sizeof(InAddrPrefix));
        size_t k = 0;

        if (!l)
                return -ENOMEM;
        for (size_t j = 0; j < n; j++)
                if (w[j].peer == i)
                        l[k++] = w[j].prefix;
        if (prefixes_equal(l, k, p->routes, p->n_routes))
                return 0;
        free(p->routes);
        p->routes = k > 0 ? TAKE_PTR(l) : NULL;
        p->n_routes = k;
        return 1;
}

/* The peers' WireGuard entries whose routes changed, rewritten. */
static int sync_allowed_ips(Manager *m, const WantedRoute *w, size_t n) {
        _cleanup_(wg_device_freep) WgDevice *d = calloc(1, sizeof(WgDevice));
        int r;

        if (!d)
                return log_oom();
        for (size_t i = 0; i < m->n_peers; i++) {
                r = peer_take_routes(m->peers[i], i, w, n);
                if (r < 0)
                        return log_oom();
                if (r == 0)
                        continue;
                r = peer_to_wg(m->peers[i], d);
                if (r < 0)
                        return log_oom();
                /* the endpoint stays where WireGuard has it (it may have roamed) */
                d->peers[d->n_peers - 1].flags &= ~WG_PEER_HAS_ENDPOINT;
        }
        if (d->n_peers == 0 || !m->wg)
                return 0;
        r = wg_set_device(m->wg, d);
        if (r < 0)
                return log_warning_errno(r, "Failed to write the peers' routes to %s: %m", m->config.interface);
        return 0;
}

static bool wanted_has(const WantedRoute *w, size_t n, const InAddrPrefix *p) {
        for (size_t i = 0; i < n; i++)
                if (route_prefix_equal(&w[i].prefix, p))
                        return true;
        return false;
}

/* The kernel's routes PREFIX dev MESH: those no longer wanted go, the
 * wanted ones are (re)written. */
static void sync_kernel_routes(Manager *m, int ifindex, const WantedRoute *w, size_t n) {
        _cleanup_free_ InAddrPrefix *installed = calloc(MAX(n, (size_t) 1), sizeof(InAddrPrefix));
        size_t k = 0;
        char a[ROUTE_PREFIX_STRLEN];
        int r;

        if (!installed)
                return (void) log_oom();
        for (size_t i = 0; i < m->n_routes_installed; i++) {
                const InAddrPrefix *p = &m->routes_installed[i];

                if (wanted_has(w, n, p))
                        continue;
                r = link_route_mesh_prefix(ifindex, p, false);
                if (r < 0)
                        log_warning_errno(r, "Failed to remove route %s dev %s: %m",
                                          strna(route_prefix_format(p, a, sizeof(a))), m->config.interface);
                else
                        log_info("Removed route %s dev %s.", strna(route_prefix_format(p, a, sizeof(a))),
                                 m->config.interface);
        }
        for (size_t i = 0; i < n; i++) {
                bool had = false;

                for (size_t j = 0; j < m->n_routes_installed && !had; j++)
                        had = route_prefix_equal(&m->routes_installed[j], &w[i].prefix);
                /* replaced every time: the interface may be new (down, up)
                 * or someone (networkd) may have flushed it */
                r = link_route_mesh_prefix(ifindex, &w[i].prefix, true);
                if (r < 0) {
                        log_warning_errno(r, "Failed to add route %s dev %s: %m",
                                          strna(route_prefix_format(&w[i].prefix, a, sizeof(a))),
                                          m->config.interface);
                        continue;
                }
                if (!had)
                        log_peer_full(m->peers[w[i].peer]->name, LOG_INFO,
                                      "Route %s via peer %s added (dev %s).",
                                      strna(route_prefix_format(&w[i].prefix, a, sizeof(a))),
                                      m->peers[w[i].peer]->name, m->config.interface);
                installed[k++] = w[i].prefix;
        }
        free(m->routes_installed);
        m->routes_installed = TAKE_PTR(installed);
        m->n_routes_installed = k;
}

/* ---- keeping them: what others remove comes back ------------------------------------------- */

/* The accepted routes someone removed (or the kernel, with the interface going down), re-added. */
static int routes_repair(Manager *m, int ifindex, char ***what) {
        _cleanup_free_ InAddrPrefix *present = NULL;
        size_t n_present;
        char a[ROUTE_PREFIX_STRLEN], *s;
        int n = 0, r;

        if (m->n_routes_installed == 0)
                return 0;
        r = rule_watch_dump_routes(ifindex, RT_TABLE_MAIN, &present, &n_present);
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_routes_installed; i++) {
                const InAddrPrefix *p = &m->routes_installed[i];
                bool there = false;

                for (size_t j = 0; j < n_present && !there; j++)
                        there = route_prefix_equal(&present[j], p);
                if (there)
                        continue;
                r = link_route_mesh_prefix(ifindex, p, true);
                if (r < 0)
                        return r;
                if (asprintf(&s, "route %s dev %s", strna(route_prefix_format(p, a, sizeof(a))),
                             m->config.interface) < 0 ||
                    strv_consume(what, s) < 0)
                        return -ENOMEM;
                n++;
        }
        return n;
}

/* The mesh interface came back up: the kernel took its IPv6 address away
 * when it went down (IPv4's stays), and with it the mesh's IPv6 route. */
static void addresses_repair(Manager *m, int ifindex) {
        const Netmap *nm = m->netmap;

        if (!nm || !nm->self.has_ipv6 || !nm->has_ipv6_range)
                return;
        (void) link_address_add(ifindex, AF_INET6, &nm->self.ipv6, nm->ipv6_prefixlen);
}

static char *strv_join_comma(char **l) {
        size_t len = 1;
        char *s;

        for (char **i = l; i && *i; i++)
                len += strlen(*i) + 2;
        s = calloc(len, 1);
        for (char **i = l; s && i && *i; i++) {
                if (i != l)
                        strcat(s, ", ");
                strcat(s, *i);
        }
        return s;
}

static int on_routes_removed(RuleWatch *w, void *userdata) {
        _cleanup_strv_free_ char **what = NULL;
        _cleanup_free_ char *text = NULL;
        Manager *m = userdata;
        int ifindex, n, r;

        if (!m->device_configured || !m->wg)
                return 0;
        ifindex = wg_backend_get_ifindex(m->wg);
        addresses_repair(m, ifindex);
        n = exit_route_repair(m->exit_route, &what);
        r = n < 0 ? n : routes_repair(m, ifindex, &what);
        if (r >= 0)
                n += r;
        if (r < 0 && r != -ENETDOWN)
                log_warning_errno(r, "Failed to re-add the routing rules and routes of %s: %m",
                                  m->config.interface);
        if (strv_length(what) == 0)
                return r < 0 ? r : 0;
        text = strv_join_comma(what);
        log_full_errno_fields(LOG_NOTICE, 0,
                              &((LogFields) { .message_id = MESSAGE_ROUTES_RESTORED, .routes = text }),
                              "Re-added what something else removed: %s.", strna(text));
        return (int) strv_length(what);
}

/* The watch follows what meshd keeps: the mesh interface's routes, and the
 * exit node's table and rules while one is used. */
void manager_routes_watch(Manager *m) {
        bool exit = exit_route_is_enabled(m->exit_route);
        int r;

        if (!m->device_configured || !m->wg)
                return;
        if (!m->rule_watch) {
                r = rule_watch_new(m->event, on_routes_removed, m, &m->rule_watch);
                if (r < 0)
                        return (void) log_warning_errno(
                                r, "Failed to watch for removed routing rules; they will not be re-added: %m");
        }
        rule_watch_set(m->rule_watch, wg_backend_get_ifindex(m->wg),
                       exit ? exit_route_get_fwmark(m->exit_route) : 0, exit ? EXIT_ROUTE_PRIORITY : 0);
}
void manager_sync_routes(Manager *m) {
        _cleanup_free_ WantedRoute *w = NULL;
        _cleanup_strv_free_ char **refused = NULL;
        size_t n = 0;
        int ifindex;

        if (!m->device_configured)
                return;
        check_forwarding(m);
        ifindex = (int) if_nametoindex(m->config.interface);
        if (ifindex <= 0)
                return;
        if (wanted_routes(m, ifindex, &w, &n, &refused) < 0)
                return;
        (void) sync_allowed_ips(m, w, n);
        sync_kernel_routes(m, ifindex, w, n);
        strv_free(m->routes_refused);
        m->routes_refused = TAKE_PTR(refused);
        manager_routes_watch(m);
}

/* ---- status -------------------------------------------------------------------------------- */

/* Status's "exit_node" (null without ExitNode=) and "accepted_routes": what
 * `meshctl status` shows of this node's routing. */
int manager_routes_status_json(const Manager *m, cJSON *o) {
        const char *wanted = m->routes.exit_node;
        bool in_use = exit_route_is_enabled(m->exit_route) && m->exit_peer;
        cJSON *routes, *exit;
        char a[ROUTE_PREFIX_STRLEN];

        if (!wanted) {
                if (!cJSON_AddNullToObject(o, "exit_node"))
                        return -ENOMEM;
        } else {
                exit = cJSON_AddObjectToObject(o, "exit_node");
                if (!exit || !cJSON_AddStringToObject(exit, "name", wanted) ||
                    !cJSON_AddBoolToObject(exit, "in_use", in_use) ||
                    !(m->exit_problem ? cJSON_AddStringToObject(exit, "problem", m->exit_problem)
                                      : cJSON_AddNullToObject(exit, "problem")))
                        return -ENOMEM;
        }
        routes = cJSON_AddArrayToObject(o, "accepted_routes");
        if (!routes)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_peers; i++)
                for (size_t j = 0; j < m->peers[i]->n_routes; j++) {
                        cJSON *r = cJSON_CreateObject();

                        if (!r)
                                return -ENOMEM;
                        cJSON_AddItemToArray(routes, r);
                        if (!cJSON_AddStringToObject(r, "prefix",
                                                     strna(route_prefix_format(&m->peers[i]->routes[j], a,
                                                                               sizeof(a)))) ||
                            !cJSON_AddStringToObject(r, "peer", m->peers[i]->name))
                                return -ENOMEM;
                }
        return 0;
}

/* The mesh's ranges are known once joined: an advertised prefix inside
 * them would hijack members' addresses (the server refuses it too). */
static int check_advertise(Manager *m, const RoutePrefs *p, char *error, size_t error_size) {
        char a[ROUTE_PREFIX_STRLEN];

        if (!p->has_advertise || !m->netmap)
                return 0;
        InAddrPrefix mesh[2] = {
                { .family = AF_INET, .address = m->netmap->ipv4_range, .prefixlen = m->netmap->ipv4_prefixlen },
                { .family = AF_INET6,
                  .address = m->netmap->ipv6_range,
                  .prefixlen = m->netmap->ipv6_prefixlen },
        };
        for (size_t i = 0; i < p->s.n_advertise; i++) {
                const char *why = route_prefix_unroutable_reason(&p->s.advertise[i], mesh,
                                                                 m->netmap->has_ipv6_range ? 2 : 1);
                if (why) {
                        snprintf(error, error_size, "advertise_routes: %s: %s",
                                 strna(route_prefix_format(&p->s.advertise[i], a, sizeof(a))), why);
                        return -EINVAL;
                }
        }
        return 0;
}

/* This node's own approved subnet routes, as the netmap lists them under
 * "self", for FirewallSpec.routes (manager-firewall.c); the exit routes
 * 0.0.0.0/0 and ::/0 are FirewallSpec.exit. */
size_t manager_routes_own_approved(const Manager *m, InAddrPrefix *ret, size_t max) {
        size_t n = 0;

        for (char **i = m->netmap ? m->netmap->self.routes : NULL; i && *i && n < max; i++)
                if (route_prefix_parse(*i, &ret[n]) >= 0 && !route_prefix_is_default(&ret[n]))
                        n++;
        return n;
}

int manager_set_route_prefs(Manager *m, const RoutePrefs *p, char *error, size_t error_size) {
        int r;

        if (!p->has_advertise && !p->has_advertise_exit_node && !p->has_accept && !p->has_exit_node)
                return 0;
        r = check_advertise(m, p, error, error_size);
        if (r < 0)
                return r;
        r = route_prefs_merge(&m->route_prefs, p);
        if (r < 0)
                return log_oom();
        r = route_prefs_save(m->state_dir, &m->route_prefs);
        if (r < 0) {
                snprintf(error, error_size, "route settings not saved: %s", strerror(-r));
                return r;
        }
        r = manager_routes_load(m);
        if (r < 0)
                return r;
        log_info("Route settings changed: %zu advertised, exit node %s, %zu accepted prefixes.",
                 m->routes.n_advertise, m->routes.advertise_exit_node ? "yes" : "no", m->routes.n_accept);
        manager_post_routes(m);
        manager_sync_routes(m);
        manager_exit_update(m);
        return 0;
}
