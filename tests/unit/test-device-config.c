/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "device-config.h"
#include "macro.h"

static const DeviceConfig cam1 = {
        .private_key = "eGVzdCBwcml2YXRlIGtleSwgbm90IGEgcmVhbCBvbmU=",
        .public_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAM=",
        .ipv4 = "100.64.0.9",
        .ipv6 = "fd7a:115c:a1e0::9",
        .dns4 = "100.64.0.1",
        .dns6 = "fd7a:115c:a1e0::1",
        .hub_public_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAk=",
        .hub_endpoint = "192.0.2.1:41641",
        .ipv4_range = "100.64.0.0/10",
        .ipv6_range = "fd7a:115c:a1e0::/48",
        .mtu = DEVICE_CONFIG_MTU,
};

static void test_generated_key(void **state) {
        _cleanup_free_ char *text = NULL;

        assert_int_equal(device_config_render(&cam1, &text), 0);
        assert_string_equal(text, "[Interface]\n"
                                  "PrivateKey = eGVzdCBwcml2YXRlIGtleSwgbm90IGEgcmVhbCBvbmU=\n"
                                  "Address = 100.64.0.9/32, fd7a:115c:a1e0::9/128\n"
                                  "DNS = 100.64.0.1, fd7a:115c:a1e0::1\n"
                                  "MTU = 1420\n"
                                  "\n"
                                  "[Peer]\n"
                                  "PublicKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAk=\n"
                                  "Endpoint = 192.0.2.1:41641\n"
                                  "AllowedIPs = 100.64.0.0/10, fd7a:115c:a1e0::/48\n"
                                  "PersistentKeepalive = 25\n");
}

/* --public-key: the private key is the user's to fill in; IPv4 only. */
static void test_own_key_ipv4_only(void **state) {
        _cleanup_free_ char *text = NULL;
        DeviceConfig c = cam1;

        c.private_key = NULL;
        c.ipv6 = c.dns6 = c.ipv6_range = NULL;
        c.hub_endpoint = "[2001:db8::1]:41641";
        assert_int_equal(device_config_render(&c, &text), 0);
        assert_string_equal(text,
                            "[Interface]\n"
                            "# PrivateKey = (the private key of AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAM=)\n"
                            "Address = 100.64.0.9/32\n"
                            "DNS = 100.64.0.1\n"
                            "MTU = 1420\n"
                            "\n"
                            "[Peer]\n"
                            "PublicKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAk=\n"
                            "Endpoint = [2001:db8::1]:41641\n"
                            "AllowedIPs = 100.64.0.0/10\n"
                            "PersistentKeepalive = 25\n");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_generated_key),
                cmocka_unit_test(test_own_key_ipv4_only),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
