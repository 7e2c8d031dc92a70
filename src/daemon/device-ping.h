/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* io.meshd.Ping for a device (a plain WireGuard peer of the hub, issue 14):
 * it runs no meshd and answers no probe, so the node sends it one ICMP
 * echo request through the hub (the device's addresses are on the hub's
 * WireGuard entry) and times the reply. The socket is an unprivileged
 * ICMP socket (SOCK_DGRAM, IPPROTO_ICMP): meshd has no CAP_NET_RAW, and
 * the kernel allows one only to the groups of net.ipv4.ping_group_range
 * (systemd's default: every group). */

#include <stdint.h>

#include "api.h"
#include "netmap.h"

/* Replies to call itself: the device's name, address, rtt_usec and path
 * "hub", or io.meshd.Timeout with the reason. */
int device_ping(sd_event *event, const NetmapNode *device, ApiCall *call, uint64_t timeout_usec);
