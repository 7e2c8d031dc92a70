/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The configuration of a device (`meshd-control devices add`): the
 * wg-quick(8) / WireGuard-app text with one peer, the hub. */

/* What meshd sets on its own interface when nothing else is asked for
 * (src/shared/link.c): 1500 minus WireGuard's IPv6 overhead, as wg-quick. */
#define DEVICE_CONFIG_MTU 1420U
#define DEVICE_CONFIG_KEEPALIVE_SEC 25U

typedef struct DeviceConfig {
        const char *private_key;             /* base64; NULL: a commented placeholder the user fills */
        const char *public_key;              /* base64, named in the placeholder */
        const char *ipv4, *ipv6;             /* the device's; ipv6 NULL: none */
        const char *dns4, *dns6;             /* the hub's mesh addresses (its DNS server); dns6 may be NULL */
        const char *hub_public_key;          /* base64 */
        const char *hub_endpoint;            /* "ip:port" or "[ip]:port" */
        const char *ipv4_range, *ipv6_range; /* the mesh's; ipv6_range may be NULL */
        unsigned mtu;
} DeviceConfig;

/* The text, each line ending in '\n'. -ENOMEM */
int device_config_render(const DeviceConfig *c, char **ret);
