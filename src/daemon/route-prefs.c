/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns-label.h"
#include "fileio.h"
#include "log.h"
#include "msg-routes.h"
#include "route-prefs.h"
#include "varlink.h" /* _cleanup_json_ */

#define ROUTE_PREFS_SIZE_MAX (64 * 1024)

void route_prefs_done(RoutePrefs *p) {
        route_settings_done(&p->s);
        *p = (RoutePrefs) {};
}

static int prefs_list(const cJSON *a, const char *key, bool advertise, InAddrPrefix **l, size_t *n, char *error,
                      size_t error_size) {
        const cJSON *e;
        size_t i = 0;

        if (!cJSON_IsArray(a)) {
                snprintf(error, error_size, "%s: not an array of prefixes", key);
                return -EINVAL;
        }
        cJSON_ArrayForEach(e, a) {
                const char *entry = NULL, *why = NULL;
                size_t len = 0;
                int r;

                if (!cJSON_IsString(e) || !e->valuestring) {
                        snprintf(error, error_size, "%s[%zu]: not a string", key, i);
                        return -EINVAL;
                }
                r = route_list_parse(e->valuestring, ",", advertise, l, n, &entry, &len, &why);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        snprintf(error, error_size, "%s: '%.*s': %s", key, (int) MIN(len, (size_t) 64),
                                 entry ? entry : "", why);
                        return r;
                }
                i++;
        }
        return 0;
}

int route_prefs_from_json(const cJSON *o, RoutePrefs *ret, char *error, size_t error_size) {
        _cleanup_(route_prefs_done) RoutePrefs p = {};
        const cJSON *v;
        int r;

        v = cJSON_GetObjectItemCaseSensitive(o, "advertise_routes");
        if (v && !cJSON_IsNull(v)) {
                r = prefs_list(v, "advertise_routes", true, &p.s.advertise, &p.s.n_advertise, error,
                               error_size);
                if (r < 0)
                        return r;
                p.has_advertise = true;
        }
        v = cJSON_GetObjectItemCaseSensitive(o, "advertise_exit_node");
        if (v && !cJSON_IsNull(v)) {
                if (!cJSON_IsBool(v)) {
                        snprintf(error, error_size, "advertise_exit_node: not a boolean");
                        return -EINVAL;
                }
                p.s.advertise_exit_node = cJSON_IsTrue(v);
                p.has_advertise_exit_node = true;
        }
        v = cJSON_GetObjectItemCaseSensitive(o, "accept_routes");
        if (v && !cJSON_IsNull(v)) {
                r = prefs_list(v, "accept_routes", false, &p.s.accept, &p.s.n_accept, error, error_size);
                if (r < 0)
                        return r;
                p.has_accept = true;
        }
        v = cJSON_GetObjectItemCaseSensitive(o, "exit_node");
        if (v && !cJSON_IsNull(v)) {
                if (!cJSON_IsString(v) || !v->valuestring ||
                    (v->valuestring[0] && !dns_label_is_valid(v->valuestring))) {
                        snprintf(error, error_size, "exit_node: not a node name");
                        return -EINVAL;
                }
                if (v->valuestring[0]) {
                        p.s.exit_node = strdup(v->valuestring);
                        if (!p.s.exit_node)
                                return -ENOMEM;
                }
                p.has_exit_node = true;
        }
        *ret = p;
        p = (RoutePrefs) {};
        return 0;
}

int route_prefs_to_json(const RoutePrefs *p, char **ret) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();

        if (!o)
                return -ENOMEM;
        if (p->has_advertise && routes_json_add(o, "advertise_routes", p->s.advertise, p->s.n_advertise) < 0)
                return -ENOMEM;
        if (p->has_advertise_exit_node &&
            !cJSON_AddBoolToObject(o, "advertise_exit_node", p->s.advertise_exit_node))
                return -ENOMEM;
        if (p->has_accept) {
                /* "none" keeps an empty list apart from an unset one in the text */
                if (p->s.n_accept == 0) {
                        cJSON *a = cJSON_AddArrayToObject(o, "accept_routes");
                        if (!a || !cJSON_AddItemToArray(a, cJSON_CreateString("none")))
                                return -ENOMEM;
                } else if (routes_json_add(o, "accept_routes", p->s.accept, p->s.n_accept) < 0)
                        return -ENOMEM;
        }
        if (p->has_exit_node && !cJSON_AddStringToObject(o, "exit_node", p->s.exit_node ? p->s.exit_node : ""))
                return -ENOMEM;
        *ret = cJSON_PrintUnformatted(o);
        return *ret ? 0 : -ENOMEM;
}

static int prefixes_dup(const InAddrPrefix *l, size_t n, InAddrPrefix **ret, size_t *ret_n) {
        InAddrPrefix *c = NULL;

        if (n > 0) {
                c = malloc(n * sizeof(InAddrPrefix));
                if (!c)
                        return -ENOMEM;
                memcpy(c, l, n * sizeof(InAddrPrefix));
        }
        free(*ret);
        *ret = c;
        *ret_n = n;
        return 0;
}

static int settings_overlay(RouteSettings *t, const RoutePrefs *from) {
        if (from->has_advertise &&
            prefixes_dup(from->s.advertise, from->s.n_advertise, &t->advertise, &t->n_advertise) < 0)
                return -ENOMEM;
        if (from->has_advertise_exit_node)
                t->advertise_exit_node = from->s.advertise_exit_node;
        if (from->has_accept && prefixes_dup(from->s.accept, from->s.n_accept, &t->accept, &t->n_accept) < 0)
                return -ENOMEM;
        if (from->has_exit_node) {
                char *s = from->s.exit_node ? strdup(from->s.exit_node) : NULL;
                if (from->s.exit_node && !s)
                        return -ENOMEM;
                free(t->exit_node);
                t->exit_node = s;
        }
        return 0;
}

int route_prefs_merge(RoutePrefs *into, const RoutePrefs *from) {
        int r = settings_overlay(&into->s, from);

        if (r < 0)
                return r;
        into->has_advertise |= from->has_advertise;
        into->has_advertise_exit_node |= from->has_advertise_exit_node;
        into->has_accept |= from->has_accept;
        into->has_exit_node |= from->has_exit_node;
        return 0;
}

int route_prefs_effective(const RoutePrefs *p, const MeshdConfig *conf, RouteSettings *ret) {
        _cleanup_(route_settings_done) RouteSettings s = {};
        int r;

        r = conf_route_settings(conf, &s);
        if (r < 0)
                return r;
        r = settings_overlay(&s, p);
        if (r < 0)
                return r;
        *ret = s;
        s = (RouteSettings) {};
        return 0;
}

int route_prefs_load(const char *state_dir, RoutePrefs *ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_json_ cJSON *o = NULL;
        char error[160];
        size_t len;
        int r;

        *ret = (RoutePrefs) {};
        if (asprintf(&path, "%s/%s", state_dir, ROUTE_PREFS_FILE) < 0)
                return -ENOMEM;
        r = read_full_file(path, ROUTE_PREFS_SIZE_MAX, &text, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", path);
        o = cJSON_ParseWithLength(text, len);
        if (!cJSON_IsObject(o))
                return log_error_errno(-EBADMSG, "%s: not a JSON object; ignoring the runtime route settings.",
                                       path);
        r = route_prefs_from_json(o, ret, error, sizeof(error));
        if (r == -EINVAL)
                return log_error_errno(r, "%s: %s; ignoring the runtime route settings.", path, error);
        return r;
}

int route_prefs_save(const char *state_dir, const RoutePrefs *p) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (asprintf(&path, "%s/%s", state_dir, ROUTE_PREFS_FILE) < 0)
                return -ENOMEM;
        r = route_prefs_to_json(p, &text);
        if (r < 0)
                return r;
        r = write_file_atomic(path, text, strlen(text), 0600);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        return 0;
}
