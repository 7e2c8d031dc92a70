/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The text a device imports: wg-quick(8) reads it as it is, and the
 * WireGuard apps (Android, iOS) import the same text from a file or a QR
 * code. The device's only peer is the hub, whose AllowedIPs are the whole
 * mesh: every node and device is reached through the hub. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "device-config.h"
#include "macro.h"

int device_config_render(const DeviceConfig *c, char **ret) {
        _cleanup_free_ char *text = NULL, *address = NULL, *dns = NULL, *allowed = NULL, *private_line = NULL;

        /* With --public-key the private key never passes through us: the
         * user puts it in (a comment, so wg-quick and the apps still read
         * the rest, and fail clearly on the missing key) */
        if (c->private_key
                    ? asprintf(&private_line, "PrivateKey = %s\n", c->private_key) < 0
                    : asprintf(&private_line, "# PrivateKey = (the private key of %s)\n", c->public_key) < 0)
                return -ENOMEM;
        if ((c->ipv6 ? asprintf(&address, "%s/32, %s/128", c->ipv4, c->ipv6)
                     : asprintf(&address, "%s/32", c->ipv4)) < 0)
                return -ENOMEM;
        if ((c->dns6 ? asprintf(&dns, "%s, %s", c->dns4, c->dns6) : asprintf(&dns, "%s", c->dns4)) < 0)
                return -ENOMEM;
        if ((c->ipv6_range ? asprintf(&allowed, "%s, %s", c->ipv4_range, c->ipv6_range)
                           : asprintf(&allowed, "%s", c->ipv4_range)) < 0)
                return -ENOMEM;

        if (asprintf(&text,
                     "[Interface]\n"
                     "%s"
                     "Address = %s\n"
                     "DNS = %s\n"
                     "MTU = %u\n"
                     "\n"
                     "[Peer]\n"
                     "PublicKey = %s\n"
                     "Endpoint = %s\n"
                     "AllowedIPs = %s\n"
                     "PersistentKeepalive = %u\n",
                     private_line, address, dns, c->mtu, c->hub_public_key, c->hub_endpoint, allowed,
                     DEVICE_CONFIG_KEEPALIVE_SEC) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(text);
        return 0;
}
