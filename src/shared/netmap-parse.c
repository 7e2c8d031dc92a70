/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* NETMAP (and the reply of POST /v1/register that carries one) from JSON,
 * validated as a whole at the border: docs/protocol.md. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>

#include "dns-label.h"
#include "error-message.h"
#include "msg-routes.h"
#include "netmap.h"
#include "strv.h"

/* Integers above 2^53 lose precision in a JSON double; refuse them rather
 * than round a version number or id. */
#define JSON_INTEGER_MAX 9007199254740992.0

static inline void cjson_deletep(cJSON **j) {
        if (*j)
                cJSON_Delete(*j);
}

/* Every validation failure ends here: one line naming the field, and the
 * same errno for all so callers need not tell them apart. */
#define fail(ret_error, ...) error_setf(ret_error, -EBADMSG, __VA_ARGS__)

/* JSON null counts as absent for optional fields: servers written in
 * other languages often emit null for "not set". */
static const cJSON *get_field(const cJSON *obj, const char *key) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
        return cJSON_IsNull(item) ? NULL : item;
}

static int get_string(const cJSON *obj, const char *key, bool required, const char *path, const char **ret,
                      char **ret_error) {
        const cJSON *item = get_field(obj, key);

        if (!item) {
                if (required)
                        return fail(ret_error, "%s%s: missing", path, key);
                *ret = NULL;
                return 0;
        }
        if (!cJSON_IsString(item) || !item->valuestring)
                return fail(ret_error, "%s%s: not a string", path, key);

        *ret = item->valuestring;
        return 0;
}

static int get_uint(const cJSON *obj, const char *key, const char *path, uint64_t min, uint64_t *ret,
                    char **ret_error) {
        const cJSON *item = get_field(obj, key);

        if (!item)
                return fail(ret_error, "%s%s: missing", path, key);
        if (!cJSON_IsNumber(item))
                return fail(ret_error, "%s%s: not a number", path, key);

        double d = item->valuedouble;
        if (!isfinite(d) || d != floor(d) || d < 0 || d > JSON_INTEGER_MAX)
                return fail(ret_error, "%s%s: not a non-negative integer", path, key);
        if ((uint64_t) d < min)
                return fail(ret_error, "%s%s: must be at least %" PRIu64, path, key, min);

        *ret = (uint64_t) d;
        return 0;
}

static int parse_range(const cJSON *obj, const char *key, int family, const char *path, bool required,
                       bool *ret_present, union in_addr_union *ret, uint8_t *ret_prefixlen, char **ret_error) {
        const char *s = NULL;
        int r, f;

        r = get_string(obj, key, required, path, &s, ret_error);
        if (r < 0)
                return r;
        if (!s) {
                *ret_present = false;
                return 0;
        }

        r = in_addr_prefix_parse(s, &f, ret, ret_prefixlen);
        if (r < 0 || f != family)
                return fail(ret_error, "%s%s: '%s' is not an %s prefix", path, key, s,
                            family == AF_INET ? "IPv4" : "IPv6");

        *ret_present = true;
        return 0;
}

static int parse_node_address(const cJSON *obj, const char *key, int family, bool required, const Netmap *m,
                              const char *path, bool *ret_present, union in_addr_union *ret, char **ret_error) {
        const char *s = NULL;
        int r, f;

        r = get_string(obj, key, required, path, &s, ret_error);
        if (r < 0)
                return r;
        if (!s) {
                *ret_present = false;
                return 0;
        }

        r = in_addr_parse(s, &f, ret);
        if (r < 0 || f != family)
                return fail(ret_error, "%s%s: '%s' is not an %s address", path, key, s,
                            family == AF_INET ? "IPv4" : "IPv6");

        if (family == AF_INET) {
                if (!in_addr_prefix_contains(AF_INET, &m->ipv4_range, m->ipv4_prefixlen, ret))
                        return fail(ret_error, "%s%s: %s is not inside ipv4_range", path, key, s);
        } else {
                if (!m->has_ipv6_range)
                        return fail(ret_error, "%s%s: set, but the netmap has no ipv6_range", path, key);
                if (!in_addr_prefix_contains(AF_INET6, &m->ipv6_range, m->ipv6_prefixlen, ret))
                        return fail(ret_error, "%s%s: %s is not inside ipv6_range", path, key, s);
        }

        *ret_present = true;
        return 0;
}

static int parse_endpoints(const cJSON *obj, const char *path, char ***ret, char **ret_error) {
        const cJSON *array = get_field(obj, "endpoints"), *item;
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0, i = 0;

        /* A node that has not reported any candidate yet has none. */
        if (!array) {
                *ret = NULL;
                return 0;
        }
        if (!cJSON_IsArray(array))
                return fail(ret_error, "%sendpoints: not an array", path);

        n = (size_t) cJSON_GetArraySize(array);
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        cJSON_ArrayForEach(item, array) {
                union sockaddr_union sa;

                if (!cJSON_IsString(item) || !item->valuestring)
                        return fail(ret_error, "%sendpoints[%zu]: not a string", path, i);
                if (endpoint_parse(item->valuestring, &sa) < 0)
                        return fail(ret_error, "%sendpoints[%zu]: '%s' is not ip:port or [ip6]:port", path, i,
                                    item->valuestring);

                l[i] = strdup(item->valuestring);
                if (!l[i])
                        return -ENOMEM;
                i++;
        }

        *ret = TAKE_PTR(l);
        return 0;
}

/* A node's approved subnet routes; absent: none. */
static int parse_routes(const cJSON *obj, const Netmap *m, const char *path, NetmapNode *node,
                        char **ret_error) {
        const cJSON *array = get_field(obj, "routes");
        _cleanup_free_ char *what = NULL;
        _cleanup_free_ InAddrPrefix *l = NULL;
        size_t n = 0;
        char error[256];
        int r;

        if (!array)
                return 0;
        InAddrPrefix mesh[2] = {
                { .family = AF_INET, .address = m->ipv4_range, .prefixlen = m->ipv4_prefixlen },
                { .family = AF_INET6, .address = m->ipv6_range, .prefixlen = m->ipv6_prefixlen },
        };
        if (asprintf(&what, "%sroutes", path) < 0)
                return -ENOMEM;
        r = routes_json_parse(array, what, mesh, m->has_ipv6_range ? 2 : 1, &l, &n, error, sizeof(error));
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fail(ret_error, "%s", error);
        /* kept as canonical text: what the node compares and logs */
        node->routes = calloc(n + 1, sizeof(char *));
        if (!node->routes)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char buf[ROUTE_PREFIX_STRLEN];

                if (!route_prefix_format(&l[i], buf, sizeof(buf)))
                        return fail(ret_error, "%s[%zu]: cannot be formatted", what, i);
                node->routes[i] = strdup(buf);
                if (!node->routes[i])
                        return -ENOMEM;
        }
        return 0;
}

/* path is "self.", "peers[N].", "hub." or "devices[N]."; m carries the
 * ranges, already parsed. */
typedef enum NodeKind {
        NODE_SELF,
        NODE_PEER,
        NODE_HUB,
        NODE_DEVICE,
} NodeKind;

static int parse_node(const cJSON *obj, const Netmap *m, const char *path, NodeKind kind, NetmapNode *node,
                      char **ret_error) {
        const char *s = NULL;
        bool present;
        int r;

        if (!cJSON_IsObject(obj))
                return fail(ret_error, "%.*s: not an object", (int) strlen(path) - 1, path);

        /* The hub is no node of the mesh and has no name of its own. */
        if (kind == NODE_HUB)
                s = "hub";
        else {
                r = get_string(obj, "name", true, path, &s, ret_error);
                if (r < 0)
                        return r;
                if (!dns_label_is_valid(s))
                        return fail(ret_error, "%sname: '%s' is not a valid DNS label", path, s);
        }
        node->name = strdup(s);
        if (!node->name)
                return -ENOMEM;

        r = get_string(obj, "public_key", true, path, &s, ret_error);
        if (r < 0)
                return r;
        /* An all-zero key is what an unset key looks like; WireGuard refuses it too. */
        if (key_from_base64(s, &node->public_key) < 0 || key_is_zero(&node->public_key))
                return fail(ret_error, "%spublic_key: not a WireGuard key", path);

        r = parse_node_address(obj, "ipv4", AF_INET, true, m, path, &present, &node->ipv4, ret_error);
        if (r < 0)
                return r;
        r = parse_node_address(obj, "ipv6", AF_INET6, false, m, path, &node->has_ipv6, &node->ipv6, ret_error);
        if (r < 0)
                return r;

        /* A device never talks to anyone but the hub: no endpoints, no relay. */
        if (kind == NODE_DEVICE)
                return 0;

        r = parse_endpoints(obj, path, &node->endpoints, ret_error);
        if (r < 0)
                return r;

        if (kind == NODE_HUB && strv_length(node->endpoints) != 1)
                return fail(ret_error, "%sendpoints: the hub needs exactly one endpoint", path);

        if (kind != NODE_HUB) {
                r = parse_routes(obj, m, path, node, ret_error);
                if (r < 0)
                        return r;
        }

        const cJSON *relay = get_field(obj, "relay");
        if (relay) {
                if (!cJSON_IsBool(relay))
                        return fail(ret_error, "%srelay: not a boolean", path);
                /* Relaying concerns paths to peers; for self or the hub it means nothing. */
                node->relay = kind == NODE_PEER && cJSON_IsTrue(relay);
        }

        const cJSON *relay_port = kind == NODE_HUB ? get_field(obj, "relay_port") : NULL;
        if (relay_port) {
                double v = cJSON_GetNumberValue(relay_port);

                if (!cJSON_IsNumber(relay_port) || v < 1 || v > 65535 || v != (double) (uint16_t) v)
                        return fail(ret_error, "%srelay_port: not a port (1 … 65535)", path);
                node->relay_port = (uint16_t) v;
        }

        return 0;
}

static bool domain_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 253)
                return false;

        for (const char *p = s;;) {
                size_t l = strcspn(p, ".");
                char label[NETMAP_NAME_MAX + 1];

                if (l == 0 || l > NETMAP_NAME_MAX)
                        return false;
                memcpy(label, p, l);
                label[l] = '\0';
                if (!dns_label_is_valid(label))
                        return false;
                if (p[l] == '\0')
                        return true;
                p += l + 1;
        }
}

/* Duplicate checks sort an index instead of comparing all pairs: a
 * netmap may list thousands of peers. Index 0 is self, i+1 is peers[i],
 * n_peers+1+i is devices[i]: nodes and devices share one namespace. */
typedef enum NodeField {
        NODE_FIELD_NAME,
        NODE_FIELD_PUBLIC_KEY,
        NODE_FIELD_IPV4,
        NODE_FIELD_IPV6,
} NodeField;

typedef struct SortContext {
        const Netmap *m;
        NodeField field;
} SortContext;

static const NetmapNode *node_by_index(const Netmap *m, size_t i) {
        if (i == 0)
                return &m->self;
        if (i <= m->n_peers)
                return &m->peers[i - 1];
        return &m->devices[i - 1 - m->n_peers];
}

static int node_field_compare(const NetmapNode *a, const NetmapNode *b, NodeField field) {
        switch (field) {
        case NODE_FIELD_NAME:
                return strcmp(a->name, b->name);
        case NODE_FIELD_PUBLIC_KEY:
                return memcmp(a->public_key.data, b->public_key.data, WG_KEY_LEN);
        case NODE_FIELD_IPV4:
                return memcmp(&a->ipv4.in, &b->ipv4.in, sizeof(struct in_addr));
        case NODE_FIELD_IPV6:
                return memcmp(&a->ipv6.in6, &b->ipv6.in6, sizeof(struct in6_addr));
        }
        return 0;
}

static int index_compare(const void *x, const void *y, void *userdata) {
        const SortContext *ctx = userdata;
        size_t a = *(const size_t *) x, b = *(const size_t *) y;
        int r;

        r = node_field_compare(node_by_index(ctx->m, a), node_by_index(ctx->m, b), ctx->field);
        if (r != 0)
                return r;
        /* Ties in document order, so the second occurrence is the one reported. */
        return a < b ? -1 : a > b;
}

static void format_node_path(const Netmap *m, size_t i, char *buf, size_t len) {
        if (i == 0)
                snprintf(buf, len, "self");
        else if (i <= m->n_peers)
                snprintf(buf, len, "peers[%zu]", i - 1);
        else
                snprintf(buf, len, "devices[%zu]", i - 1 - m->n_peers);
}

static int check_unique(const Netmap *m, NodeField field, const char *prefix, size_t *scratch,
                        char **ret_error) {
        static const char *const field_names[] = {
                [NODE_FIELD_NAME] = "name",
                [NODE_FIELD_PUBLIC_KEY] = "public_key",
                [NODE_FIELD_IPV4] = "ipv4",
                [NODE_FIELD_IPV6] = "ipv6",
        };
        SortContext ctx = { .m = m, .field = field };
        size_t n = 0, worst = SIZE_MAX, first = 0;

        for (size_t i = 0; i <= m->n_peers + m->n_devices; i++) {
                if (field == NODE_FIELD_IPV6 && !node_by_index(m, i)->has_ipv6)
                        continue;
                scratch[n++] = i;
        }

        qsort_r(scratch, n, sizeof(size_t), index_compare, &ctx);

        /* Report the duplicate that comes first in the document. */
        for (size_t i = 1; i < n; i++)
                if (node_field_compare(node_by_index(m, scratch[i - 1]), node_by_index(m, scratch[i]), field) ==
                            0 &&
                    scratch[i] < worst)
                        worst = scratch[i];

        if (worst == SIZE_MAX)
                return 0;

        /* Among equal values the sorted run starts with the first occurrence. */
        for (size_t i = 0; i < n; i++)
                if (node_field_compare(node_by_index(m, scratch[i]), node_by_index(m, worst), field) == 0) {
                        first = scratch[i];
                        break;
                }

        char a[32], b[32];
        format_node_path(m, worst, a, sizeof(a));
        format_node_path(m, first, b, sizeof(b));
        return fail(ret_error, "%s%s.%s: same as %s%s.%s", prefix, a, field_names[field], prefix, b,
                    field_names[field]);
}

/* The hub must not share a key or an address with any node or device. */
static int check_hub_distinct(const Netmap *m, const char *prefix, char **ret_error) {
        for (size_t i = 0; i <= m->n_peers + m->n_devices; i++) {
                const NetmapNode *n = node_by_index(m, i);
                char where[32];

                format_node_path(m, i, where, sizeof(where));
                if (key_equal(&n->public_key, &m->hub.public_key))
                        return fail(ret_error, "%shub.public_key: same as %s%s.public_key", prefix, prefix,
                                    where);
                if (memcmp(&n->ipv4.in, &m->hub.ipv4.in, sizeof(struct in_addr)) == 0)
                        return fail(ret_error, "%shub.ipv4: same as %s%s.ipv4", prefix, prefix, where);
                if (n->has_ipv6 && m->hub.has_ipv6 &&
                    memcmp(&n->ipv6.in6, &m->hub.ipv6.in6, sizeof(struct in6_addr)) == 0)
                        return fail(ret_error, "%shub.ipv6: same as %s%s.ipv6", prefix, prefix, where);
        }
        return 0;
}

/* version, domain and the ranges */
static int parse_header(const cJSON *obj, const char *prefix, Netmap *m, char **ret_error) {
        const char *s = NULL;
        bool present;
        int r;

        r = get_uint(obj, "version", prefix, 1, &m->version, ret_error);
        if (r < 0)
                return r;

        r = get_string(obj, "domain", true, prefix, &s, ret_error);
        if (r < 0)
                return r;
        if (!domain_is_valid(s))
                return fail(ret_error, "%sdomain: '%s' is not a valid domain name", prefix, s);
        m->domain = strdup(s);
        if (!m->domain)
                return -ENOMEM;

        r = parse_range(obj, "ipv4_range", AF_INET, prefix, true, &present, &m->ipv4_range, &m->ipv4_prefixlen,
                        ret_error);
        if (r < 0)
                return r;
        r = parse_range(obj, "ipv6_range", AF_INET6, prefix, false, &m->has_ipv6_range, &m->ipv6_range,
                        &m->ipv6_prefixlen, ret_error);
        if (r < 0)
                return r;
        return 0;
}

/* The array key ("peers", "devices") into *ret, each entry parsed. */
static int parse_node_list(const cJSON *obj, const char *key, bool required, const char *prefix, Netmap *m,
                           NodeKind kind, NetmapNode **ret, size_t *ret_n, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        const cJSON *item, *e;
        int r;

        /* a required list that is null is "not an array", an optional one absent */
        item = required ? cJSON_GetObjectItemCaseSensitive(obj, key) : get_field(obj, key);
        if (!item) {
                if (required)
                        return fail(ret_error, "%s%s: missing", prefix, key);
                return 0;
        }
        if (!cJSON_IsArray(item))
                return fail(ret_error, "%s%s: not an array", prefix, key);

        size_t n = (size_t) cJSON_GetArraySize(item);
        if (n > 0) {
                *ret = calloc(n, sizeof(NetmapNode));
                if (!*ret)
                        return -ENOMEM;
        }

        cJSON_ArrayForEach(e, item) {
                path = mfree(path);
                if (asprintf(&path, "%s%s[%zu].", prefix, key, *ret_n) < 0)
                        return -ENOMEM;

                /* Counted before parsing, so a half-parsed node is freed too. */
                r = parse_node(e, m, path, kind, &(*ret)[(*ret_n)++], ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The peers and the devices, each parsed, then no name, key or address
 * twice among them and self. */
static int parse_peers(const cJSON *obj, const char *prefix, Netmap *m, char **ret_error) {
        int r;

        r = parse_node_list(obj, "peers", true, prefix, m, NODE_PEER, &m->peers, &m->n_peers, ret_error);
        if (r < 0)
                return r;
        r = parse_node_list(obj, "devices", false, prefix, m, NODE_DEVICE, &m->devices, &m->n_devices,
                            ret_error);
        if (r < 0)
                return r;

        _cleanup_free_ size_t *scratch = calloc(m->n_peers + m->n_devices + 1, sizeof(size_t));
        if (!scratch)
                return -ENOMEM;

        static const NodeField fields[] = {
                NODE_FIELD_NAME,
                NODE_FIELD_PUBLIC_KEY,
                NODE_FIELD_IPV4,
                NODE_FIELD_IPV6,
        };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                r = check_unique(m, fields[i], prefix, scratch, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int netmap_from_json_internal(const cJSON *obj, const char *prefix, Netmap **ret, char **ret_error) {
        _cleanup_(netmap_freep) Netmap *m = NULL;
        const cJSON *item;
        int r;

        if (!cJSON_IsObject(obj)) {
                if (prefix[0] == '\0')
                        return fail(ret_error, "netmap: not a JSON object");
                return fail(ret_error, "%.*s: not a JSON object", (int) strlen(prefix) - 1, prefix);
        }

        m = calloc(1, sizeof(Netmap));
        if (!m)
                return -ENOMEM;

        r = parse_header(obj, prefix, m, ret_error);
        if (r < 0)
                return r;

        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%sself.", prefix) < 0)
                return -ENOMEM;
        item = cJSON_GetObjectItemCaseSensitive(obj, "self");
        if (!item)
                return fail(ret_error, "%sself: missing", prefix);
        r = parse_node(item, m, path, NODE_SELF, &m->self, ret_error);
        if (r < 0)
                return r;

        r = parse_peers(obj, prefix, m, ret_error);
        if (r < 0)
                return r;

        /* absent: no access policy; [] a policy that lets nothing in */
        item = get_field(obj, "filter");
        if (item) {
                r = netmap_filter_from_json(item, prefix, &m->filter, ret_error);
                if (r < 0)
                        return r;
        }

        item = get_field(obj, "hub");
        if (item) {
                free(path);
                if (asprintf(&path, "%shub.", prefix) < 0)
                        return -ENOMEM;
                m->has_hub = true;
                r = parse_node(item, m, path, NODE_HUB, &m->hub, ret_error);
                if (r < 0)
                        return r;
                r = check_hub_distinct(m, prefix, ret_error);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(m);
        return 0;
}

int netmap_from_json(const cJSON *obj, Netmap **ret, char **ret_error) {
        if (!ret)
                return -EINVAL;
        if (ret_error)
                *ret_error = NULL;
        return netmap_from_json_internal(obj, "", ret, ret_error);
}

/* Parses exactly one JSON value filling [json, json+len), trailing white
 * space allowed: a reply with garbage after it was not meant for us. */
static int parse_json(const char *json, size_t len, cJSON **ret, char **ret_error) {
        const char *end = NULL;
        cJSON *j;

        if (!json)
                return fail(ret_error, "truncated or invalid JSON at offset 0");

        j = cJSON_ParseWithLengthOpts(json, len, &end, false);
        if (!j) {
                size_t offset = end && end >= json ? (size_t) (end - json) : 0;
                return fail(ret_error, "truncated or invalid JSON at offset %zu", MIN(offset, len));
        }

        for (size_t offset = (size_t) (end - json); offset < len; offset++)
                if (!strchr(" \t\r\n", json[offset])) {
                        cJSON_Delete(j);
                        return fail(ret_error, "trailing data after JSON at offset %zu", offset);
                }

        *ret = j;
        return 0;
}

int netmap_parse(const char *json, size_t len, Netmap **ret, char **ret_error) {
        _cleanup_(cjson_deletep) cJSON *j = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        if (ret_error)
                *ret_error = NULL;

        r = parse_json(json, len, &j, ret_error);
        if (r < 0)
                return r;

        return netmap_from_json_internal(j, "", ret, ret_error);
}

int netmap_json_parse(const char *json, size_t len, cJSON **ret, char **ret_error) {
        return parse_json(json, len, ret, ret_error);
}

int netmap_from_json_at(const cJSON *obj, const char *prefix, Netmap **ret, char **ret_error) {
        return netmap_from_json_internal(obj, prefix, ret, ret_error);
}
