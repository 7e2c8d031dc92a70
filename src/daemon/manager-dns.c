/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>

#include "dns-server.h"
#include "log.h"
#include "manager-private.h"
#include "resolved-link.h"

/* The node's mesh DNS server (issue 14): on its own mesh addresses, port
 * [DNS] Port=, names from the applied netmap (so it answers from the
 * cached netmap with the control server down), the rest forwarded to the
 * resolvers of [DNS] ResolvConf=, re-read whenever that file changes. With
 * [DNS] Resolved=yes it is registered with systemd-resolved for the mesh
 * domain on the mesh interface. */

static int table_add_node(DnsNameTable *t, const NetmapNode *n) {
        return dns_name_table_add(t, n->name, &n->ipv4.in, n->has_ipv6 ? &n->ipv6.in6 : NULL);
}

static int dns_table_from_netmap(const Netmap *nm, DnsNameTable **ret) {
        _cleanup_(dns_name_table_freep) DnsNameTable *t = NULL;
        int r;

        r = dns_name_table_new(nm->domain, &nm->ipv4_range.in, nm->ipv4_prefixlen,
                               nm->has_ipv6_range ? &nm->ipv6_range.in6 : NULL, nm->ipv6_prefixlen, &t);
        if (r < 0)
                return r;
        r = table_add_node(t, &nm->self);
        for (size_t i = 0; r >= 0 && i < nm->n_peers; i++)
                r = table_add_node(t, &nm->peers[i]);
        if (r >= 0 && nm->has_hub)
                r = table_add_node(t, &nm->hub);
        /* devices share the nodes' name space: no clash possible */
        for (size_t i = 0; r >= 0 && i < nm->n_devices; i++)
                r = table_add_node(t, &nm->devices[i]);
        if (r < 0)
                return r;
        r = dns_name_table_seal(t);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}

/* The node's mesh addresses, port [DNS] Port=. */
static size_t dns_listen_addresses(Manager *m, union sockaddr_union ret[static 2]) {
        const NetmapNode *self = &m->netmap->self;
        size_t n = 0;

        ret[n++] = (union sockaddr_union) {
                .in.sin_family = AF_INET,
                .in.sin_port = htons(m->config.dns_port),
                .in.sin_addr = self->ipv4.in,
        };
        if (self->has_ipv6)
                ret[n++] = (union sockaddr_union) {
                        .in6.sin6_family = AF_INET6,
                        .in6.sin6_port = htons(m->config.dns_port),
                        .in6.sin6_addr = self->ipv6.in6,
                };
        return n;
}

static bool dns_listen_changed(Manager *m, const union sockaddr_union *listen, size_t n) {
        if (n != m->n_dns_listen)
                return true;
        for (size_t i = 0; i < n; i++)
                if (!endpoint_equal(&listen[i], &m->dns_listen[i]))
                        return true;
        return false;
}

/* Read now and whenever the file changes: the host's resolvers change
 * with its networks, not with the netmap. */
static void manager_dns_watch_upstreams(Manager *m) {
        const char *path = m->config.dns_resolv_conf ?: MESHD_DEFAULT_RESOLV_CONF;
        int r;

        r = dns_server_watch_resolv_conf(m->dns, path);
        if (r < 0)
                log_warning_errno(r, "Failed to read the upstream resolvers from %s: %m", path);
}

/* systemd-resolved sends the mesh domain's queries to the server, on the
 * mesh interface; the bus connection is made at the first registration. */
static void manager_dns_register(Manager *m) {
        int ifindex = m->wg ? wg_backend_get_ifindex(m->wg) : 0;
        int r;

        if (!m->config.dns_resolved || ifindex <= 0) {
                resolved_link_clear(m->resolved);
                return;
        }
        if (!m->resolved) {
                r = resolved_link_new(m->event, &m->resolved);
                if (r < 0) {
                        log_warning_errno(r, "Failed to set up the systemd-resolved registration: %m");
                        return;
                }
        }
        r = resolved_link_set(m->resolved, ifindex, m->netmap->domain, m->dns_listen, m->n_dns_listen);
        if (r < 0)
                log_warning_errno(r, "Failed to register mesh DNS with systemd-resolved: %m");
}

void manager_dns_update(Manager *m) {
        union sockaddr_union listen[2];
        DnsNameTable *t = NULL;
        size_t n;
        int r;

        if (m->config.dns_port == 0 || !m->netmap)
                return;

        n = dns_listen_addresses(m, listen);
        if (dns_listen_changed(m, listen, n)) {
                manager_dns_stop(m);
                /* tried once per set of addresses: a port held by another
                 * server would otherwise fail (and log) at every netmap */
                memcpy(m->dns_listen, listen, n * sizeof(listen[0]));
                m->n_dns_listen = n;
                r = dns_server_new(m->event, listen, n, &m->dns);
                if (r < 0)
                        log_warning_errno(
                                r, "Mesh DNS is off until the node's addresses change or meshd restarts: %m");
                else
                        manager_dns_watch_upstreams(m);
        }
        if (!m->dns)
                return;

        manager_dns_register(m);
        r = dns_table_from_netmap(m->netmap, &t);
        if (r < 0)
                log_warning_errno(r, "Failed to build the mesh DNS names, keeping the old ones: %m");
        else
                dns_server_set_names(m->dns, t);
}

void manager_dns_stop(Manager *m) {
        resolved_link_clear(m->resolved);
        m->dns = dns_server_free(m->dns);
        m->n_dns_listen = 0;
}
