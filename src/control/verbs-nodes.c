/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd-control nodes list|remove|expire|renew: the mesh's members, as
 * the database holds them. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "strv.h"
#include "verbs.h"

static char *strv_join_comma(char *const *l) {
        size_t size = 1;
        char *s, *p;

        for (size_t i = 0; l && l[i]; i++)
                size += strlen(l[i]) + 1;
        s = p = malloc(size);
        if (!s)
                return NULL;
        *p = 0;
        for (size_t i = 0; l && l[i]; i++)
                p += sprintf(p, "%s%s", i > 0 ? "," : "", l[i]);
        return s;
}

static int fill_node_json(cJSON *o, const void *items, size_t i) {
        const StoreNode *node = (const StoreNode *) items + i;
        char created[32];

        format_utc_time(node->created, created);
        if (!cJSON_AddNumberToObject(o, "id", (double) node->id) ||
            !cJSON_AddStringToObject(o, "name", node->name) ||
            !cJSON_AddStringToObject(o, "ipv4", node->ipv4) ||
            !cJSON_AddStringToObject(o, "ipv6", node->ipv6) ||
            !cJSON_AddStringToObject(o, "public_key", node->public_key) ||
            json_add_strv(o, "endpoints", node->endpoints) < 0 ||
            !cJSON_AddStringToObject(o, "created", created) ||
            !cJSON_AddBoolToObject(o, "expired", node->expired) || json_add_strv(o, "tags", node->tags) < 0)
                return -ENOMEM;
        return 0;
}

static int print_nodes_table(const StoreNode *nodes, size_t n) {
        _cleanup_strv_free_ char **endpoints = calloc(n + 1, sizeof(char *));
        int w_name = 4, w_ipv4 = 4, w_ipv6 = 4, w_key = 10, w_ep = 9;

        if (!endpoints)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                endpoints[i] = strv_join_comma(nodes[i].endpoints);
                if (!endpoints[i])
                        return log_oom();
                w_name = MAX(w_name, (int) strlen(nodes[i].name));
                w_ipv4 = MAX(w_ipv4, (int) strlen(nodes[i].ipv4));
                w_ipv6 = MAX(w_ipv6, (int) strlen(nodes[i].ipv6));
                w_key = MAX(w_key, (int) strlen(nodes[i].public_key));
                w_ep = MAX(w_ep, (int) strlen(endpoints[i]) ?: 1);
        }

        printf("%-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w_name, "NAME", w_ipv4, "IPV4", w_ipv6, "IPV6", w_key,
               "PUBLIC KEY", w_ep, "ENDPOINTS", "CREATED");
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *tags = store_tags_format(nodes[i].tags);
                char created[32];

                if (!tags)
                        return log_oom();
                format_utc_time(nodes[i].created, created);
                printf("%-*s  %-*s  %-*s  %-*s  %-*s  %s%s%s%s\n", w_name, nodes[i].name, w_ipv4, nodes[i].ipv4,
                       w_ipv6, nodes[i].ipv6, w_key, nodes[i].public_key, w_ep,
                       endpoints[i][0] ? endpoints[i] : "-", created, nodes[i].expired ? "  expired" : "",
                       tags[0] ? "  tags=" : "", tags);
        }
        if (isatty(STDOUT_FILENO))
                printf("\n%zu node%s.\n", n, n == 1 ? "" : "s");
        return 0;
}

/* Removed nodes whose certificates are still valid: their names and
 * addresses are nobody's until then (docs/protocol.md, "Certificates"). */
static int print_held(Store *store) {
        StoreHeld *held = NULL;
        size_t n = 0;
        int r;

        r = store_list_held(store, time(NULL), &held, &n);
        if (r < 0)
                return r;
        if (n > 0)
                printf("\nRemoved, name and addresses held back while their certificates are valid:\n");
        for (size_t i = 0; i < n; i++) {
                char until[32];

                format_utc_time(held[i].until, until);
                printf("  %s  %s  %s  held until %s\n", held[i].name, held[i].ipv4, held[i].ipv6, until);
        }
        store_held_free(held, n);
        return 0;
}

int verb_nodes_list(const ControlArgs *a) {
        _cleanup_(store_freep) Store *store = NULL;
        StoreNode *nodes = NULL;
        size_t n = 0;
        int r;

        r = open_store(a, &store);
        if (r < 0)
                return r;
        r = store_list_nodes(store, true, &nodes, &n);
        if (r < 0)
                return r;
        r = a->json ? print_json_list(nodes, n, fill_node_json) : print_nodes_table(nodes, n);
        store_nodes_free(nodes, n);
        if (r >= 0 && !a->json)
                r = print_held(store);
        return r;
}

int verb_nodes_remove(const ControlArgs *a, const char *name) {
        _cleanup_(store_freep) Store *store = NULL;
        int r;

        r = open_store(a, &store);
        if (r < 0)
                return r;
        r = store_remove_node(store, name);
        if (r == -ENOENT)
                return log_error_errno(r, "No node named '%s' in the mesh.", name);
        if (r < 0)
                return log_error_errno(r, "Failed to remove node '%s': %m", name);
        log_info("Removed node %s.", name);
        return 0;
}

int verb_nodes_expire(const ControlArgs *a, const char *name) {
        _cleanup_(store_freep) Store *store = NULL;
        int r;

        r = open_store(a, &store);
        if (r < 0)
                return r;
        r = store_expire_node(store, name);
        if (r == -ENOENT)
                return log_error_errno(r, "No node named '%s' in the mesh.", name);
        if (r == -EALREADY)
                return log_error_errno(r, "Node '%s' has expired already.", name);
        if (r == -EPERM)
                return log_error_errno(r,
                                       "Node '%s' is tagged: tagged nodes do not expire (remove it instead).",
                                       name);
        if (r < 0)
                return log_error_errno(r, "Failed to expire node '%s': %m", name);
        log_info("Expired node %s: it is out of the mesh until it joins again with its key.", name);
        return 0;
}

int verb_nodes_renew(const ControlArgs *a, const char *name) {
        _cleanup_(store_freep) Store *store = NULL;
        int r;

        r = open_store(a, &store);
        if (r < 0)
                return r;
        r = store_renew_node(store, name);
        if (r == -ENOENT)
                return log_error_errno(r, "No node named '%s' in the mesh.", name);
        if (r == -EALREADY)
                return log_error_errno(r, "Node '%s' has not expired.", name);
        if (r < 0)
                return log_error_errno(r, "Failed to renew node '%s': %m", name);
        log_info("Renewed node %s: it is back in the mesh with its key and token.", name);
        return 0;
}
