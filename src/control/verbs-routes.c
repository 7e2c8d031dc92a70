/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd-control routes list|approve|reject: the subnet routes nodes
 * advertise, and the admin's verdict on each. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "msg-routes.h"
#include "verbs.h"

static int fill_route_json(cJSON *o, const void *items, size_t i) {
        const StoreRoute *route = (const StoreRoute *) items + i;

        if (!cJSON_AddStringToObject(o, "node", route->node) ||
            !cJSON_AddStringToObject(o, "prefix", route->prefix) ||
            !cJSON_AddStringToObject(o, "state", strna(store_route_state_to_string(route->state))) ||
            !cJSON_AddBoolToObject(o, "advertised", route->advertised))
                return -ENOMEM;
        return 0;
}

int verb_routes_list(const ControlArgs *a) {
        _cleanup_(store_freep) Store *store = NULL;
        StoreRoute *l = NULL;
        size_t n = 0;
        int r;

        r = open_store(a, &store);
        if (r < 0)
                return r;
        r = store_list_routes(store, &l, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to list routes: %m");
        if (a->json)
                r = print_json_list(l, n, fill_route_json);
        else {
                printf("%-24s %-43s %s\n", "NODE", "PREFIX", "STATE");
                for (size_t i = 0; i < n; i++)
                        printf("%-24s %-43s %s%s\n", l[i].node, l[i].prefix,
                               strna(store_route_state_to_string(l[i].state)),
                               l[i].advertised ? "" : " (no longer advertised)");
        }
        store_routes_free(l, n);
        return r;
}

int verb_routes_set(const ControlArgs *a, const char *node, const char *prefix, bool approve) {
        _cleanup_(store_freep) Store *store = NULL;
        char canonical[ROUTE_PREFIX_STRLEN];
        InAddrPrefix p;
        int r;

        /* the store holds the canonical form: 10.1.0.0/16, never 10.1.0/16 */
        r = route_prefix_parse(prefix, &p);
        if (r == -EDOM)
                return log_error_errno(-EINVAL, "Invalid prefix '%s': host bits set.", prefix);
        if (r < 0 || !route_prefix_format(&p, canonical, sizeof(canonical)))
                return log_error_errno(-EINVAL, "Invalid prefix '%s': not an IP prefix.", prefix);

        r = open_store(a, &store);
        if (r < 0)
                return r;
        r = store_set_route_state(store, node, canonical,
                                  approve ? STORE_ROUTE_APPROVED : STORE_ROUTE_REJECTED);
        if (r == -ENOENT)
                return log_error_errno(r, "No node named '%s' in the mesh.", node);
        if (r == -ENXIO)
                return log_error_errno(r, "Node '%s' has not advertised %s.", node, canonical);
        if (r < 0)
                return log_error_errno(r, "Failed to %s route %s of '%s': %m", approve ? "approve" : "reject",
                                       canonical, node);
        log_info("%s route %s of %s%s.", approve ? "Approved" : "Rejected", canonical, node,
                 r == 0 ? " (it was already)" : "");
        return 0;
}
