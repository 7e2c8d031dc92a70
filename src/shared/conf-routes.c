/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "dns-label.h"
#include "macro.h"
#include "msg-routes.h"

/* meshd.conf [Routes]: subnet routes and exit nodes (meshd.conf(5)). Runtime
 * settings of `meshctl up` override these (src/daemon/route-prefs.c). */

void route_settings_done(RouteSettings *s) {
        free(s->advertise);
        free(s->accept);
        free(s->exit_node);
        *s = (RouteSettings) {};
}

static int prefixes_copy(const InAddrPrefix *l, size_t n, InAddrPrefix **ret) {
        *ret = NULL;
        if (n == 0)
                return 0;
        *ret = malloc(n * sizeof(InAddrPrefix));
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, l, n * sizeof(InAddrPrefix));
        return 0;
}

int conf_route_settings(const MeshdConfig *c, RouteSettings *ret) {
        _cleanup_(route_settings_done) RouteSettings s = {
                .n_advertise = c->n_advertise_routes,
                .advertise_exit_node = c->advertise_exit_node,
                .n_accept = c->n_accept_routes,
        };

        if (prefixes_copy(c->advertise_routes, c->n_advertise_routes, &s.advertise) < 0 ||
            prefixes_copy(c->accept_routes, c->n_accept_routes, &s.accept) < 0)
                return -ENOMEM;
        if (c->exit_node) {
                s.exit_node = strdup(c->exit_node);
                if (!s.exit_node)
                        return -ENOMEM;
        }
        *ret = s;
        s = (RouteSettings) {};
        return 0;
}

void conf_take_route_settings(MeshdConfig *to, MeshdConfig *from) {
        free(to->advertise_routes);
        free(to->accept_routes);
        free(to->exit_node);
        to->advertise_routes = TAKE_PTR(from->advertise_routes);
        to->n_advertise_routes = from->n_advertise_routes;
        to->advertise_exit_node = from->advertise_exit_node;
        to->accept_routes = TAKE_PTR(from->accept_routes);
        to->n_accept_routes = from->n_accept_routes;
        to->exit_node = TAKE_PTR(from->exit_node);
        to->subnet_snat = from->subnet_snat;
        to->exit_snat = from->exit_snat;
        from->n_advertise_routes = from->n_accept_routes = 0;
}

static int list_add(InAddrPrefix **l, size_t *n, const InAddrPrefix *p) {
        InAddrPrefix *a;

        for (size_t i = 0; i < *n; i++)
                if (route_prefix_equal(&(*l)[i], p))
                        return 0;
        a = realloc(*l, (*n + 1) * sizeof(InAddrPrefix));
        if (!a)
                return -ENOMEM;
        a[(*n)++] = *p;
        *l = a;
        return 0;
}

static const char *entry_check(const char *entry, bool advertise, InAddrPrefix *p) {
        const char *why;
        int r;

        r = route_prefix_parse(entry, p);
        if (r == -EDOM)
                return "host bits set (use the network address, e.g. 192.168.50.0/24)";
        if (r < 0)
                return "not an IP prefix (ADDRESS/LENGTH)";
        if (advertise && route_prefix_is_default(p))
                return "0.0.0.0/0 and ::/0 are advertised with AdvertiseExitNode= (--advertise-exit-node)";
        why = route_prefix_unroutable_reason(p, NULL, 0);
        return why;
}

int route_list_parse(const char *text, const char *seps, bool advertise, InAddrPrefix **l, size_t *n,
                     const char **ret_entry, size_t *ret_entry_len, const char **ret_reason) {
        for (const char *e = text + strspn(text, seps); *e; e += strspn(e, seps)) {
                size_t len = strcspn(e, seps);
                char entry[ROUTE_PREFIX_STRLEN + 1];
                const char *why = NULL;
                InAddrPrefix p[2];
                size_t k = 1;
                int r;

                if (ret_entry) {
                        *ret_entry = e;
                        *ret_entry_len = len;
                }
                if (len >= sizeof(entry))
                        why = "not an IP prefix (ADDRESS/LENGTH)";
                else {
                        memcpy(entry, e, len);
                        entry[len] = 0;
                        if (!advertise && streq(entry, "all")) {
                                (void) route_prefix_parse("0.0.0.0/0", &p[0]);
                                (void) route_prefix_parse("::/0", &p[1]);
                                k = 2;
                        } else if (!advertise && streq(entry, "none"))
                                k = 0;
                        else
                                why = entry_check(entry, advertise, &p[0]);
                }
                if (why) {
                        *ret_reason = why;
                        return -EINVAL;
                }
                for (size_t i = 0; i < k; i++) {
                        r = list_add(l, n, &p[i]);
                        if (r < 0)
                                return r;
                }
                if (*n > ROUTES_MSG_MAX) {
                        *ret_reason = "more than 64 prefixes";
                        return -EINVAL;
                }
                e += len;
        }
        return 0;
}

/* Repeating the key adds to the list; an empty value empties it. */
static int routes_list(InAddrPrefix **l, size_t *n, const char *value, bool advertise,
                       const char **ret_reason) {
        if (value[0] == '\0') {
                *l = mfree(*l);
                *n = 0;
                return 0;
        }
        return route_list_parse(value, " \t", advertise, l, n, NULL, NULL, ret_reason);
}

static int routes_boolean(bool *b, const char *value, bool empty, const char **ret_reason) {
        int v = value[0] ? parse_boolean(value) : empty;

        if (v < 0) {
                *ret_reason = "yes or no";
                return -EINVAL;
        }
        *b = v;
        return 0;
}

static int routes_exit_fwmark(MeshdConfig *c, const char *value, const char **ret_reason) {
        unsigned long long v;
        char *end = NULL;

        if (value[0] == '\0') {
                c->exit_fwmark = MESHD_DEFAULT_EXIT_FWMARK;
                return 0;
        }
        errno = 0;
        v = isdigit((unsigned char) value[0]) ? strtoull(value, &end, 0) : 0;
        /* table 0 is "unspecified", 253-255 are the kernel's own */
        if (!end || errno != 0 || *end != '\0' || v == 0 || v > UINT32_MAX || (v >= 253 && v <= 255)) {
                *ret_reason = "a number 1 … 4294967295 (0x… allowed), not 253, 254 or 255";
                return -EINVAL;
        }
        c->exit_fwmark = (uint32_t) v;
        return 0;
}

int conf_parse_routes_key(MeshdConfig *c, const char *name, const char *value, const char **ret_reason) {
        if (streq(name, "Advertise"))
                return routes_list(&c->advertise_routes, &c->n_advertise_routes, value, true, ret_reason);
        if (streq(name, "AdvertiseExitNode"))
                return routes_boolean(&c->advertise_exit_node, value, false, ret_reason);
        if (streq(name, "AcceptRoutes"))
                return routes_list(&c->accept_routes, &c->n_accept_routes, value, false, ret_reason);
        if (streq(name, "ExitNode")) {
                char *s = NULL;

                if (value[0] && !dns_label_is_valid(value)) {
                        *ret_reason = "a node's name";
                        return -EINVAL;
                }
                if (value[0]) {
                        s = strdup(value);
                        if (!s)
                                return -ENOMEM;
                }
                free(c->exit_node);
                c->exit_node = s;
                return 0;
        }
        if (streq(name, "SubnetSNAT"))
                return routes_boolean(&c->subnet_snat, value, true, ret_reason);
        if (streq(name, "ExitSNAT"))
                return routes_boolean(&c->exit_snat, value, true, ret_reason);
        if (streq(name, "ExitFwmark"))
                return routes_exit_fwmark(c, value, ret_reason);
        return -ENOENT;
}
