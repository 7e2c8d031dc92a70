/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* When is the mesh "online"? Pure functions over a snapshot of peer
 * reachability, so the policy is testable without sockets or timers. */

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

typedef struct OnlinePeerView {
        const char *name;
        bool reachable;
} OnlinePeerView;

/* names == NULL means every peer. any: one of them suffices (an empty set
 * counts as online: nothing to wait for); else all of them must be reachable,
 * and a name that is not a peer at all is missing ("nas (unknown)").
 * Returns 1 when the condition holds, 0 when not, <0 on error.
 * *ret_missing (optional) lists what is missing: "nas, backup" (at most
 * five names, then "and N more"), or NULL when nothing is. */
int online_evaluate_names(char *const *names, bool any, const OnlinePeerView *peers, size_t n_peers,
                          char **ret_missing);

/* The [Online] Policy= of meshd.conf over the same snapshot. */
int online_evaluate_policy(OnlinePolicy policy, char *const *required_peers, const OnlinePeerView *peers,
                           size_t n_peers, char **ret_missing);
