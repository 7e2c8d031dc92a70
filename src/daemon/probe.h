/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Reachability probes (docs/api.md): a 12-byte UDP echo on port 41642 of a
 * peer's mesh address. Sent to a mesh address, the datagram can only travel
 * through the tunnel, so a reply proves the whole path, not just a handshake. */

#include <stdint.h>
#include <systemd/sd-event.h>

#include "endpoint.h"
#include "macro.h"
#include "probe-packet.h"

typedef struct Prober Prober;

typedef void (*ProbeReplyHandler)(Prober *p, int family, const union in_addr_union *from, uint32_t seq,
                                  void *userdata);

/* Listens on [::]:port (dual stack). Requests are answered only when they come
 * from inside the mesh ranges set with prober_set_mesh_ranges(), so the
 * responder cannot be used to reflect traffic from the underlay. */
int prober_new(sd_event *event, uint16_t port, ProbeReplyHandler handler, void *userdata, Prober **ret);
Prober *prober_free(Prober *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Prober *, prober_free);

void prober_set_mesh_ranges(Prober *p, const union in_addr_union *ipv4, uint8_t ipv4_prefixlen,
                            const union in_addr_union *ipv6, uint8_t ipv6_prefixlen);
int prober_send(Prober *p, int family, const union in_addr_union *to, uint32_t seq);
