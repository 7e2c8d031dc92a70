/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>

#include "dns-server.h"
#include "http-internal.h"
#include "log.h"

/* The hub's mesh DNS server (issue 14): on the hub's mesh IPv4 and IPv6,
 * port --dns-port (53), the address every device config names as DNS=.
 * Names come from the same one read of the store that every netmap is
 * rendered from (the snapshot's store_read_mesh(), http-poll.c), again
 * whenever the netmap version moves; the rest is forwarded to the
 * resolvers of --resolv-conf, re-read whenever that file changes. */

/* Reads "ADDRESS" into a, of family. */
static int address_parse(const char *s, int family, union in_addr_union *a) {
        int f;

        if (!s || in_addr_parse(s, &f, a) < 0 || f != family)
                return -EBADMSG;
        return 0;
}

static int table_add(DnsNameTable *t, const char *name, const char *ipv4, const char *ipv6) {
        union in_addr_union a4, a6;
        int r;

        r = address_parse(ipv4, AF_INET, &a4);
        if (r < 0)
                return r;
        bool v6 = ipv6 && address_parse(ipv6, AF_INET6, &a6) >= 0;
        return dns_name_table_add(t, name, &a4.in, v6 ? &a6.in6 : NULL);
}

static int table_new(const NetmapMesh *m, DnsNameTable **ret) {
        union in_addr_union r4 = {}, r6 = {};
        uint8_t p4 = 0, p6 = 0;
        int f4 = 0, f6 = 0;

        if (!m->ipv4_range || in_addr_prefix_parse(m->ipv4_range, &f4, &r4, &p4) < 0 || f4 != AF_INET)
                return -EBADMSG;
        bool v6 = m->ipv6_range && in_addr_prefix_parse(m->ipv6_range, &f6, &r6, &p6) >= 0 && f6 == AF_INET6;
        return dns_name_table_new(m->domain, &r4.in, p4, v6 ? &r6.in6 : NULL, p6, ret);
}

static int dns_table_from_mesh(const NetmapMesh *m, DnsNameTable **ret) {
        _cleanup_(dns_name_table_freep) DnsNameTable *t = NULL;
        int r;

        r = table_new(m, &t);
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_nodes; i++) {
                const NetmapMeshNode *n = &m->nodes[i];

                r = table_add(t, n->name, n->ipv4, n->ipv6);
                if (r < 0)
                        return r;
        }
        /* devices like the nodes: one name space */
        for (size_t i = 0; i < m->n_devices; i++) {
                const NetmapMeshNode *d = &m->devices[i];

                r = table_add(t, d->name, d->ipv4, d->ipv6);
                if (r < 0)
                        return r;
        }
        if (m->has_hub) {
                r = table_add(t, "hub", m->hub.ipv4, m->hub.ipv6);
                if (r < 0)
                        return r;
        }
        r = dns_name_table_seal(t);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}

static int hub_listen_addresses(Server *s, const NetmapMesh *m) {
        union in_addr_union a;

        s->n_dns_listen = 0;
        if (address_parse(m->hub.ipv4, AF_INET, &a) >= 0)
                s->dns_listen[s->n_dns_listen++] = (union sockaddr_union) {
                        .in.sin_family = AF_INET,
                        .in.sin_port = htons(s->dns_port),
                        .in.sin_addr = a.in,
                };
        if (m->ipv6_range && address_parse(m->hub.ipv6, AF_INET6, &a) >= 0)
                s->dns_listen[s->n_dns_listen++] = (union sockaddr_union) {
                        .in6.sin6_family = AF_INET6,
                        .in6.sin6_port = htons(s->dns_port),
                        .in6.sin6_addr = a.in6,
                };
        return s->n_dns_listen > 0 ? 0 : -EADDRNOTAVAIL;
}

void server_dns_set_names(Server *s, const NetmapMesh *m) {
        DnsNameTable *t = NULL;
        int r;

        if (!s->dns)
                return;
        r = dns_table_from_mesh(m, &t);
        if (r < 0)
                log_warning_errno(r, "Failed to build the mesh DNS names, keeping the old ones: %m");
        else
                dns_server_set_names(s->dns, t);
}

void server_dns_update(Server *s) {
        NetmapSnapshot *snap;

        if (!s->dns)
                return;
        /* a newer version loads the snapshot, whose mesh gives the names
         * (server_dns_set_names()): one read of the store per change */
        (void) server_get_snapshot(s, &snap);
}

/* After the hub: it owns the addresses. Without the hub there is no mesh
 * address to serve on. A failure leaves the server running without DNS. */
void server_start_dns(Server *s) {
        _cleanup_(netmap_mesh_done) NetmapMesh m = {};
        const char *path = s->dns_resolv_conf ?: "/etc/resolv.conf";
        int r;

        if (!s->hub || s->dns_port == 0)
                return;
        r = store_read_mesh(s->store, &s->netmap_hub, &m);
        if (r >= 0)
                r = hub_listen_addresses(s, &m);
        if (r >= 0)
                r = dns_server_new(s->event, s->dns_listen, s->n_dns_listen, &s->dns);
        if (r < 0) {
                log_warning_errno(r, "Mesh DNS on the hub is off: %m");
                return;
        }
        server_dns_set_names(s, &m);
        /* the host's resolvers change with its networks, not with the netmap */
        r = dns_server_watch_resolv_conf(s->dns, path);
        if (r < 0)
                log_warning_errno(r, "Failed to read the upstream resolvers from %s: %m", path);
}

void server_set_dns(Server *s, uint16_t port, const char *resolv_conf) {
        s->dns_port = port;
        free(s->dns_resolv_conf);
        s->dns_resolv_conf = resolv_conf ? strdup(resolv_conf) : NULL;
}
