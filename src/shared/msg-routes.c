/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "msg-routes.h"
#include "varlink.h" /* _cleanup_json_ */

static size_t family_len(int family) {
        return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

InAddrPrefix route_prefix_network(const InAddrPrefix *p) {
        InAddrPrefix n = { .family = p->family, .prefixlen = p->prefixlen };
        size_t full = MIN((size_t) p->prefixlen / 8, family_len(p->family));

        memcpy(n.address.bytes, p->address.bytes, full);
        if (p->prefixlen % 8 != 0 && full < family_len(p->family))
                n.address.bytes[full] = (uint8_t) (p->address.bytes[full] & (0xff << (8 - p->prefixlen % 8)));
        return n;
}

int route_prefix_parse(const char *s, InAddrPrefix *ret) {
        union in_addr_union a = {};
        uint8_t plen;
        int family, r;

        if (!s || !strchr(s, '/'))
                return -EINVAL;
        r = in_addr_prefix_parse(s, &family, &a, &plen);
        if (r < 0)
                return -EINVAL;
        InAddrPrefix p = { .family = family, .address = a, .prefixlen = plen };
        InAddrPrefix n = route_prefix_network(&p);
        if (memcmp(n.address.bytes, a.bytes, family_len(family)) != 0)
                return -EDOM;
        *ret = (InAddrPrefix) { .family = family, .address = a, .prefixlen = plen };
        return 0;
}

const char *route_prefix_format(const InAddrPrefix *p, char *buf, size_t len) {
        char a[INET6_ADDRSTRLEN];

        if (!in_addr_format(p->family, &p->address, a, sizeof(a)))
                return NULL;
        if ((size_t) snprintf(buf, len, "%s/%u", a, p->prefixlen) >= len)
                return NULL;
        return buf;
}

bool route_prefix_is_default(const InAddrPrefix *p) {
        return p->prefixlen == 0;
}

bool route_prefix_equal(const InAddrPrefix *a, const InAddrPrefix *b) {
        return a->family == b->family && a->prefixlen == b->prefixlen &&
               memcmp(a->address.bytes, b->address.bytes, family_len(a->family)) == 0;
}

bool route_prefix_contains(const InAddrPrefix *outer, const InAddrPrefix *inner) {
        return outer->family == inner->family && outer->prefixlen <= inner->prefixlen &&
               in_addr_prefix_contains(outer->family, &outer->address, outer->prefixlen, &inner->address);
}

bool route_prefix_overlaps(const InAddrPrefix *a, const InAddrPrefix *b) {
        return a->family == b->family &&
               in_addr_prefix_overlaps(a->family, &a->address, a->prefixlen, &b->address, b->prefixlen);
}

const char *route_prefix_unroutable_reason(const InAddrPrefix *p, const InAddrPrefix *mesh, size_t n_mesh) {
        static const struct {
                const char *prefix, *why;
        } reserved[] = {
                { "0.0.0.0/8", "inside 0.0.0.0/8" },     { "127.0.0.0/8", "loopback" },
                { "169.254.0.0/16", "link-local" },      { "224.0.0.0/3", "multicast or reserved" },
                { "::/128", "the unspecified address" }, { "::1/128", "loopback" },
                { "fe80::/10", "link-local" },           { "ff00::/8", "multicast" },
        };

        if (p->family != AF_INET && p->family != AF_INET6)
                return "not an IP prefix";
        /* an exit node's routes: everything not more specific elsewhere */
        if (route_prefix_is_default(p))
                return NULL;
        for (size_t i = 0; i < n_mesh; i++)
                if (route_prefix_overlaps(p, &mesh[i]))
                        return "overlaps the mesh range";
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++) {
                InAddrPrefix r;

                if (route_prefix_parse(reserved[i].prefix, &r) >= 0 && route_prefix_overlaps(p, &r))
                        return reserved[i].why;
        }
        return NULL;
}

int routes_json_parse(const cJSON *a, const char *what, const InAddrPrefix *mesh, size_t n_mesh,
                      InAddrPrefix **ret, size_t *ret_n, char *error, size_t error_size) {
        _cleanup_free_ InAddrPrefix *l = NULL;
        const cJSON *e;
        size_t n, i = 0;

        if (!cJSON_IsArray(a)) {
                snprintf(error, error_size, "%s: not an array", what);
                return -EINVAL;
        }
        n = (size_t) cJSON_GetArraySize(a);
        if (n > ROUTES_MSG_MAX) {
                snprintf(error, error_size, "%s: more than %i prefixes", what, ROUTES_MSG_MAX);
                return -EINVAL;
        }
        l = calloc(MAX(n, (size_t) 1), sizeof(InAddrPrefix));
        if (!l)
                return -ENOMEM;
        cJSON_ArrayForEach(e, a) {
                const char *why;
                int r;

                if (!cJSON_IsString(e) || !e->valuestring) {
                        snprintf(error, error_size, "%s[%zu]: not a string", what, i);
                        return -EINVAL;
                }
                r = route_prefix_parse(e->valuestring, &l[i]);
                if (r < 0) {
                        snprintf(error, error_size, "%s[%zu]: '%.64s' %s", what, i, e->valuestring,
                                 r == -EDOM ? "has host bits set" : "is not an IP prefix");
                        return -EINVAL;
                }
                why = route_prefix_unroutable_reason(&l[i], mesh, n_mesh);
                if (why) {
                        snprintf(error, error_size, "%s[%zu]: %s: %s", what, i, e->valuestring, why);
                        return -EINVAL;
                }
                /* at most ROUTES_MSG_MAX: quadratic is cheapest */
                for (size_t j = 0; j < i; j++)
                        if (route_prefix_equal(&l[j], &l[i])) {
                                snprintf(error, error_size, "%s[%zu]: %s: listed twice", what, i,
                                         e->valuestring);
                                return -EINVAL;
                        }
                i++;
        }
        *ret = TAKE_PTR(l);
        *ret_n = i;
        return 0;
}

int routes_json_add(cJSON *o, const char *key, const InAddrPrefix *l, size_t n) {
        cJSON *a = cJSON_AddArrayToObject(o, key);

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char buf[ROUTE_PREFIX_STRLEN];
                cJSON *s;

                if (!route_prefix_format(&l[i], buf, sizeof(buf)))
                        return -EINVAL;
                s = cJSON_CreateString(buf);
                if (!s || !cJSON_AddItemToArray(a, s)) {
                        cJSON_Delete(s);
                        return -ENOMEM;
                }
        }
        return 0;
}

int routes_request_render(const InAddrPrefix *l, size_t n, char **ret) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        int r;

        if (!o)
                return -ENOMEM;
        r = routes_json_add(o, "routes", l, n);
        if (r < 0)
                return r;
        *ret = cJSON_PrintUnformatted(o);
        return *ret ? 0 : -ENOMEM;
}

int routes_request_parse(const cJSON *body, const InAddrPrefix *mesh, size_t n_mesh, InAddrPrefix **ret,
                         size_t *ret_n, char *error, size_t error_size) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(body, "routes");

        if (!a) {
                snprintf(error, error_size, "routes: missing");
                return -EINVAL;
        }
        return routes_json_parse(a, "routes", mesh, n_mesh, ret, ret_n, error, error_size);
}
