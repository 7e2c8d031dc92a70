/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The policy's members (policy.h) made from the mesh as the store has it
 * (netmap-render.h): its nodes, in order, then its devices. */

#include "netmap-render.h"
#include "policy.h"

typedef struct PolicyMembers {
        PolicyMember *v; /* n_nodes nodes, then the devices */
        size_t n, n_nodes;
        InAddrPrefix *routes; /* every member's routes; v[i].routes point in */
} PolicyMembers;

/* -EINVAL (logged) for an address or route of the store that does not parse. */
int policy_members_from_mesh(const NetmapMesh *mesh, PolicyMembers *ret);
void policy_members_done(PolicyMembers *m);
