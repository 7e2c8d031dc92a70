/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The route settings of `meshctl up` (--advertise-routes=,
 * --advertise-exit-node, --accept-routes=, --exit-node=): kept in the state
 * directory (routes.json), so a restart keeps them, and laid over
 * meshd.conf's [Routes]: a setting given at runtime wins over the file,
 * one not given leaves the file's value. */

#include <stdbool.h>

#include "conf.h"

struct cJSON;

#define ROUTE_PREFS_FILE "routes.json"

typedef struct RoutePrefs {
        bool has_advertise, has_advertise_exit_node, has_accept, has_exit_node;
        RouteSettings s;
} RoutePrefs;

void route_prefs_done(RoutePrefs *p);
/* The io.meshd.Up parameters (and the file, which has the same keys):
 * "advertise_routes": ["P", ...], "advertise_exit_node": bool,
 * "accept_routes": ["P", ..., "all", "none"], "exit_node": "NAME" ("": none).
 * Absent or null keys stay unset. -EINVAL with error naming the key and
 * entry at fault, -ENOMEM. */
int route_prefs_from_json(const struct cJSON *o, RoutePrefs *ret, char *error, size_t error_size);
int route_prefs_to_json(const RoutePrefs *p, char **ret);
/* Every setting of from that is set overrides into's. */
int route_prefs_merge(RoutePrefs *into, const RoutePrefs *from);
/* conf's [Routes] with p's settings laid over it. */
int route_prefs_effective(const RoutePrefs *p, const MeshdConfig *conf, RouteSettings *ret);

/* STATE_DIR/routes.json; a missing file is no settings. */
int route_prefs_load(const char *state_dir, RoutePrefs *ret);
int route_prefs_save(const char *state_dir, const RoutePrefs *p);
