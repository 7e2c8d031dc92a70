/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The probe datagram of docs/api.md ("Probes"): 12 bytes, "MSHP", a type
 * (1 request, 2 reply), three zero bytes, a 32-bit sequence number in
 * network byte order. Pure encoding, shared by meshd's prober and the
 * control server's hub, which answers probes like a node. */

#include <stddef.h>
#include <stdint.h>

#include "constants.h"

#define PROBE_PACKET_SIZE 12

typedef struct ProbePacket {
        uint8_t type; /* PROBE_REQUEST or PROBE_REPLY */
        uint32_t seq;
} ProbePacket;

enum {
        PROBE_REQUEST = 1,
        PROBE_REPLY = 2,
};

void probe_packet_encode(const ProbePacket *p, uint8_t buf[static PROBE_PACKET_SIZE]);
/* -EBADMSG for anything that is not exactly a probe packet. */
int probe_packet_decode(const uint8_t *buf, size_t len, ProbePacket *ret);
