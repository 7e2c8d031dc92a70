/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The UDP echo of docs/protocol.md ("The UDP echo"): on the HTTPS listen
 * address and port number, over UDP, every exact 24-byte request (MSHE,
 * type 1) comes back as the same datagram with type 2, from the address it
 * was sent to. Nothing else is answered, never larger than asked, and at
 * most UDP_ECHO_RATE replies a second in all, so the echo cannot serve a
 * reflection flood. A node on the TLS relay learns from it that UDP works
 * again. */

#include <systemd/sd-event.h>

#include "endpoint.h"
#include "macro.h"

#define UDP_ECHO_RATE 200
#define UDP_ECHO_BURST 200

typedef struct UdpEcho UdpEcho;

int udp_echo_new(sd_event *event, const union sockaddr_union *listen, UdpEcho **ret);
UdpEcho *udp_echo_free(UdpEcho *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(UdpEcho *, udp_echo_free);

/* The reply to a datagram of len bytes in buf, written over it: true when
 * there is one (pure; the socket side is udp_echo_new()'s). */
bool udp_echo_answer(uint8_t *buf, size_t len);
