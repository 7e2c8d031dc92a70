/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* How this node reaches the hub right now (hub-path.h decides): keeps the
 * TLS relay (relay-client.h) while it is needed and points the hub's
 * WireGuard entry at it or back at the hub's UDP endpoint. */

#include <stdbool.h>
#include <stdint.h>

#include "endpoint.h"
#include "hub-path.h"
#include "macro.h"

typedef struct Manager Manager;
typedef struct HubLink HubLink;

int hub_link_new(Manager *m, HubLink **ret);
HubLink *hub_link_free(HubLink *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(HubLink *, hub_link_free);

/* Once a second, after the hub was probed. */
void hub_link_tick(HubLink *l, uint64_t now);
/* The hub went away or changed: back to UDP, relay closed. */
void hub_link_reset(HubLink *l);
HubTransport hub_link_transport(const HubLink *l);
/* 1 and the relay's loopback address while the hub entry must point
 * there, 0 when it points at the hub's own endpoint. */
int hub_link_endpoint(const HubLink *l, union sockaddr_union *ret);
