/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>

#include "error-message.h"
#include "firewall-filter.h"

/* The netmap's "filter" (CONTRACT16 §2) into FirewallRules: the firewall's
 * own types, so that the table's generator depends on no netmap parser. */

#define fail(ret_error, ...) error_setf(ret_error, -EBADMSG, __VA_ARGS__)

static int parse_prefixes(const cJSON *list, const char *what, size_t index, InAddrPrefix **ret, size_t *ret_n,
                          char **ret_error) {
        _cleanup_free_ InAddrPrefix *a = NULL;
        const cJSON *item;
        size_t n = 0;
        int size;

        if (!cJSON_IsArray(list))
                return fail(ret_error, "filter[%zu].%s: not an array", index, what);
        size = cJSON_GetArraySize(list);
        if (size > FIREWALL_FILTER_PREFIXES_MAX)
                return fail(ret_error, "filter[%zu].%s: more than %d prefixes", index, what,
                            FIREWALL_FILTER_PREFIXES_MAX);
        a = calloc(MAX(size, 1), sizeof(InAddrPrefix));
        if (!a)
                return -ENOMEM;
        cJSON_ArrayForEach(item, list) {
                InAddrPrefix *p = &a[n];

                if (!cJSON_IsString(item) ||
                    in_addr_prefix_parse(item->valuestring, &p->family, &p->address, &p->prefixlen) < 0)
                        return fail(ret_error, "filter[%zu].%s[%zu]: not a prefix", index, what, n);
                n++;
        }
        *ret = TAKE_PTR(a);
        *ret_n = n;
        return 0;
}

static int parse_ports(const cJSON *list, size_t index, FirewallRule *rule, char **ret_error) {
        const cJSON *item;
        int size;

        if (!cJSON_IsArray(list))
                return fail(ret_error, "filter[%zu].ports: not an array", index);
        size = cJSON_GetArraySize(list);
        if (size > FIREWALL_FILTER_PORTS_MAX)
                return fail(ret_error, "filter[%zu].ports: more than %d items", index,
                            FIREWALL_FILTER_PORTS_MAX);
        rule->ports = calloc(MAX(size, 1), sizeof(FirewallPort));
        if (!rule->ports)
                return -ENOMEM;
        cJSON_ArrayForEach(item, list) {
                if (!cJSON_IsString(item) ||
                    firewall_port_parse(item->valuestring, &rule->ports[rule->n_ports]) < 0)
                        return fail(ret_error, "filter[%zu].ports[%zu]: not N/PROTO, N-M/PROTO or PROTO", index,
                                    rule->n_ports);
                rule->n_ports++;
        }
        return 0;
}

static int parse_rule(const cJSON *o, size_t index, FirewallRule *rule, char **ret_error) {
        const cJSON *ports;
        int r;

        if (!cJSON_IsObject(o))
                return fail(ret_error, "filter[%zu]: not an object", index);
        r = parse_prefixes(cJSON_GetObjectItemCaseSensitive(o, "src"), "src", index, &rule->src, &rule->n_src,
                           ret_error);
        if (r >= 0)
                r = parse_prefixes(cJSON_GetObjectItemCaseSensitive(o, "dst"), "dst", index, &rule->dst,
                                   &rule->n_dst, ret_error);
        if (r < 0)
                return r;
        ports = cJSON_GetObjectItemCaseSensitive(o, "ports");
        if (!ports || cJSON_IsNull(ports))
                return 0; /* every protocol and port */
        return parse_ports(ports, index, rule, ret_error);
}

int firewall_filter_parse(const cJSON *filter, bool *ret_policy, FirewallRule **ret, size_t *ret_n,
                          char **ret_error) {
        FirewallRule *rules = NULL;
        const cJSON *item;
        size_t n = 0;
        int size, r;

        *ret = NULL;
        *ret_n = 0;
        if (!filter || cJSON_IsNull(filter)) {
                *ret_policy = false;
                return 0;
        }
        if (!cJSON_IsArray(filter))
                return fail(ret_error, "filter: not an array");
        size = cJSON_GetArraySize(filter);
        if (size > FIREWALL_FILTER_MAX)
                return fail(ret_error, "filter: more than %d entries", FIREWALL_FILTER_MAX);
        rules = calloc(MAX(size, 1), sizeof(FirewallRule));
        if (!rules)
                return -ENOMEM;
        cJSON_ArrayForEach(item, filter) {
                r = parse_rule(item, n, &rules[n], ret_error);
                n++;
                if (r < 0) {
                        firewall_rules_free(rules, n);
                        return r;
                }
        }
        *ret_policy = true;
        *ret = rules;
        *ret_n = n;
        return 0;
}

int firewall_filter_parse_netmap(const char *json, size_t len, bool *ret_policy, FirewallRule **ret,
                                 size_t *ret_n, char **ret_error) {
        cJSON *j = cJSON_ParseWithLength(json, len);
        int r;

        if (!j)
                return fail(ret_error, "not JSON");
        r = firewall_filter_parse(cJSON_GetObjectItemCaseSensitive(j, "filter"), ret_policy, ret, ret_n,
                                  ret_error);
        cJSON_Delete(j);
        return r;
}
