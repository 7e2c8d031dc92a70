/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The mesh's nodes and devices as the policy's members: the same text the
 * netmap renders, parsed once for the evaluator and the compiler. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "log.h"
#include "policy-mesh.h"

void policy_members_done(PolicyMembers *m) {
        free(m->v);
        free(m->routes);
        *m = (PolicyMembers) {};
}

static int member_from_node(const NetmapMeshNode *n, bool device, PolicyMember *m, InAddrPrefix **routes) {
        int family;

        *m = (PolicyMember) { .name = n->name, .tags = n->tags, .device = device };
        if (in_addr_parse(n->ipv4, &family, &m->ipv4) < 0 || family != AF_INET)
                return log_error_errno(-EINVAL, "Member '%s': bad IPv4 address '%s'.", n->name, n->ipv4);
        m->has_ipv4 = true;
        if (n->ipv6) {
                if (in_addr_parse(n->ipv6, &family, &m->ipv6) < 0 || family != AF_INET6)
                        return log_error_errno(-EINVAL, "Member '%s': bad IPv6 address '%s'.", n->name,
                                               n->ipv6);
                m->has_ipv6 = true;
        }
        m->routes = *routes;
        for (size_t i = 0; n->routes && n->routes[i]; i++) {
                InAddrPrefix *p = &(*routes)[m->n_routes];
                /* the store checked it; one that does not parse is left out, not the mesh */
                if (in_addr_prefix_parse(n->routes[i], &p->family, &p->address, &p->prefixlen) < 0) {
                        log_warning("Member '%s': ignoring route '%s', not an IP prefix.", n->name,
                                    n->routes[i]);
                        continue;
                }
                m->n_routes++;
        }
        *routes += m->n_routes;
        return 0;
}

int policy_members_from_mesh(const NetmapMesh *mesh, PolicyMembers *ret) {
        _cleanup_(policy_members_done) PolicyMembers m = {};
        size_t n_routes = 0;
        InAddrPrefix *next;
        int r;

        for (size_t i = 0; i < mesh->n_nodes; i++)
                n_routes += strv_length(mesh->nodes[i].routes);
        for (size_t i = 0; i < mesh->n_devices; i++)
                n_routes += strv_length(mesh->devices[i].routes);
        m.v = calloc(mesh->n_nodes + mesh->n_devices + 1, sizeof(PolicyMember));
        m.routes = calloc(n_routes + 1, sizeof(InAddrPrefix));
        if (!m.v || !m.routes)
                return log_oom();

        next = m.routes;
        for (size_t i = 0; i < mesh->n_nodes + mesh->n_devices; i++) {
                bool device = i >= mesh->n_nodes;
                const NetmapMeshNode *n = device ? &mesh->devices[i - mesh->n_nodes] : &mesh->nodes[i];

                r = member_from_node(n, device, &m.v[i], &next);
                if (r < 0)
                        return r;
                m.n++;
        }
        m.n_nodes = mesh->n_nodes;
        *ret = m;
        m = (PolicyMembers) {};
        return 0;
}
