/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "wg-internal.h"
#include "wg.h"

static void key_fill(WgKey *k, uint8_t start) {
        for (size_t i = 0; i < WG_KEY_LEN; i++)
                k->data[i] = (uint8_t) (start + i);
}

static void add_ip(WgPeer *p, const char *s) {
        union in_addr_union a;
        uint8_t cidr;
        int family;

        assert_int_equal(in_addr_prefix_parse(s, &family, &a, &cidr), 0);
        assert_int_equal(wg_peer_add_allowed_ip(p, family, &a, cidr), 0);
}

static void test_format_set(void **state) {
        _cleanup_(wg_device_freep) WgDevice *d = calloc(1, sizeof(WgDevice));
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        WgPeer *p;

        assert_non_null(d);
        d->flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT | WG_DEVICE_HAS_FWMARK |
                   WG_DEVICE_REPLACE_PEERS;
        key_fill(&d->private_key, 0x00);
        d->listen_port = 41641;
        d->fwmark = 4660;

        /* full peer */
        assert_int_equal(wg_device_add_peer(d, &p), 0);
        key_fill(&p->public_key, 0x20);
        p->flags = WG_PEER_HAS_PRESHARED_KEY | WG_PEER_HAS_PERSISTENT_KEEPALIVE | WG_PEER_REPLACE_ALLOWED_IPS |
                   WG_PEER_HAS_ENDPOINT;
        key_fill(&p->preshared_key, 0x40);
        p->persistent_keepalive = 25;
        assert_int_equal(endpoint_parse("192.0.2.1:51820", &p->endpoint), 0);
        add_ip(p, "100.64.0.2/32");
        add_ip(p, "fd7a:115c:a1e0::2/128");

        /* removed: nothing but the key and remove=true, even if more is set */
        assert_int_equal(wg_device_add_peer(d, &p), 0);
        key_fill(&p->public_key, 0x60);
        p->flags = WG_PEER_REMOVE_ME | WG_PEER_HAS_PERSISTENT_KEEPALIVE;
        add_ip(p, "100.64.0.3/32");

        /* update only, IPv6 endpoint, keepalive off */
        assert_int_equal(wg_device_add_peer(d, &p), 0);
        key_fill(&p->public_key, 0x80);
        p->flags = WG_PEER_UPDATE_ONLY | WG_PEER_HAS_PERSISTENT_KEEPALIVE;
        assert_int_equal(endpoint_parse("[2001:db8::2]:51821", &p->endpoint), 0);
        add_ip(p, "10.9.0.0/16");

        /* bare peer: just the key */
        assert_int_equal(wg_device_add_peer(d, &p), 0);
        key_fill(&p->public_key, 0xa0);

        assert_int_equal(wg_uapi_format_set_string(d, &text, &len), 0);
        assert_int_equal(len, strlen(text));
        assert_string_equal(text,
                            "set=1\n"
                            "private_key=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
                            "listen_port=41641\n"
                            "fwmark=4660\n"
                            "replace_peers=true\n"
                            "public_key=202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\n"
                            "preshared_key=404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f\n"
                            "endpoint=192.0.2.1:51820\n"
                            "persistent_keepalive_interval=25\n"
                            "replace_allowed_ips=true\n"
                            "allowed_ip=100.64.0.2/32\n"
                            "allowed_ip=fd7a:115c:a1e0::2/128\n"
                            "public_key=606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f\n"
                            "remove=true\n"
                            "public_key=808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f\n"
                            "update_only=true\n"
                            "endpoint=[2001:db8::2]:51821\n"
                            "persistent_keepalive_interval=0\n"
                            "allowed_ip=10.9.0.0/16\n"
                            "public_key=a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\n"
                            "\n");
}

static void test_format_set_minimal_and_invalid(void **state) {
        _cleanup_(wg_device_freep) WgDevice *d = calloc(1, sizeof(WgDevice));
        _cleanup_free_ char *text = NULL;
        WgPeer *p;

        assert_int_equal(wg_uapi_format_set_string(d, &text, NULL), 0);
        assert_string_equal(text, "set=1\n\n");

        /* "has an endpoint" without one is a caller bug, not an empty line */
        assert_int_equal(wg_device_add_peer(d, &p), 0);
        p->flags = WG_PEER_HAS_ENDPOINT;
        free(text);
        text = NULL;
        assert_int_equal(wg_uapi_format_set_string(d, &text, NULL), -EINVAL);
        assert_null(text);
}

/* Captured from wireguard-go 0.0.20220316 after `wg set`, with a handshake
 * time filled in. */
static const char get_reply[] =
        "private_key=c809f3e5317e9575c9b5ed78b638b7ce530dabe85ddab614220241801ddf0669\n"
        "listen_port=51820\n"
        "fwmark=4660\n"
        "public_key=c53201039adba14be71f886da1d8dbe9eebded08cb111b75340078999aa9f038\n"
        "preshared_key=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
        "protocol_version=1\n"
        "endpoint=192.0.2.1:51820\n"
        "last_handshake_time_sec=1700000000\n"
        "last_handshake_time_nsec=123456789\n"
        "tx_bytes=148\n"
        "rx_bytes=92\n"
        "persistent_keepalive_interval=25\n"
        "allowed_ip=100.64.0.2/32\n"
        "allowed_ip=fd7a:115c:a1e0::2/128\n"
        "public_key=4eb32f4a83f88d842563a448cc181bb2c42a637bf12363e2fb2ef594e5965d7d\n"
        "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
        "protocol_version=1\n"
        "endpoint=[2001:db8::2]:51821\n"
        "last_handshake_time_sec=0\n"
        "last_handshake_time_nsec=0\n"
        "tx_bytes=148\n"
        "rx_bytes=0\n"
        "persistent_keepalive_interval=0\n"
        "allowed_ip=100.64.0.3/32\n"
        "allowed_ip=10.9.0.0/16\n"
        "errno=0\n"
        "\n";

static void test_parse_get(void **state) {
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        char b64[WG_KEY_B64_LEN + 1], buf[ENDPOINT_STRLEN];
        const WgPeer *p;

        assert_int_equal(wg_uapi_parse_get(get_reply, strlen(get_reply), &d), 0);
        assert_true(d->flags & WG_DEVICE_HAS_PRIVATE_KEY);
        key_to_base64(&d->private_key, b64);
        assert_string_equal(b64, "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=");
        /* derived, as the UAPI does not carry it */
        key_to_base64(&d->public_key, b64);
        assert_string_equal(b64, "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=");
        assert_int_equal(d->listen_port, 51820);
        assert_int_equal(d->fwmark, 4660);
        assert_int_equal(d->n_peers, 2);

        p = &d->peers[0];
        key_to_base64(&p->public_key, b64);
        assert_string_equal(b64, "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=");
        assert_true(p->flags & WG_PEER_HAS_PRESHARED_KEY);
        key_to_base64(&p->preshared_key, b64);
        assert_string_equal(b64, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        assert_string_equal(endpoint_format(&p->endpoint, buf, sizeof(buf)), "192.0.2.1:51820");
        assert_int_equal(p->last_handshake.tv_sec, 1700000000);
        assert_int_equal(p->last_handshake.tv_nsec, 123456789);
        assert_int_equal(p->tx_bytes, 148);
        assert_int_equal(p->rx_bytes, 92);
        assert_int_equal(p->persistent_keepalive, 25);
        assert_int_equal(p->n_allowed_ips, 2);
        assert_int_equal(p->allowed_ips[0].family, AF_INET);
        assert_int_equal(p->allowed_ips[0].cidr, 32);
        assert_string_equal(in_addr_format(AF_INET, &p->allowed_ips[0].addr, buf, sizeof(buf)), "100.64.0.2");
        assert_int_equal(p->allowed_ips[1].family, AF_INET6);
        assert_int_equal(p->allowed_ips[1].cidr, 128);
        assert_string_equal(in_addr_format(AF_INET6, &p->allowed_ips[1].addr, buf, sizeof(buf)),
                            "fd7a:115c:a1e0::2");

        p = &d->peers[1];
        key_to_base64(&p->public_key, b64);
        assert_string_equal(b64, "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=");
        assert_false(p->flags & WG_PEER_HAS_PRESHARED_KEY);
        assert_string_equal(endpoint_format(&p->endpoint, buf, sizeof(buf)), "[2001:db8::2]:51821");
        assert_int_equal(p->last_handshake.tv_sec, 0);
        assert_int_equal(p->persistent_keepalive, 0);
        assert_int_equal(p->n_allowed_ips, 2);
        assert_string_equal(in_addr_format(AF_INET, &p->allowed_ips[1].addr, buf, sizeof(buf)), "10.9.0.0");
        assert_int_equal(p->allowed_ips[1].cidr, 16);

        assert_ptr_equal(wg_device_find_peer(d, &d->peers[1].public_key), &d->peers[1]);
}

static void test_parse_get_empty_device(void **state) {
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        static const char reply[] = "listen_port=0\nerrno=0\n\n";

        assert_int_equal(wg_uapi_parse_get(reply, strlen(reply), &d), 0);
        assert_false(d->flags & WG_DEVICE_HAS_PRIVATE_KEY);
        assert_int_equal(d->n_peers, 0);
}

static void test_parse_get_errors(void **state) {
        static const struct {
                const char *text;
                int error;
        } cases[] = {
                /* wireguard-go sends negative numbers; either sign means the same */
                { "errno=-22\n\n", -EINVAL },
                { "errno=2\n\n", -ENOENT },
                { "listen_port=1\nerrno=1\n\n", -EPERM },
                /* garbage */
                { "", -EBADMSG },
                { "\n", -EBADMSG },
                { "listen_port=1\n\n", -EBADMSG },        /* no errno */
                { "hello world\nerrno=0\n\n", -EBADMSG }, /* no '=' */
                { "=5\nerrno=0\n\n", -EBADMSG },          /* no key */
                { "listen_port=70000\nerrno=0\n\n", -EBADMSG },
                { "listen_port=-1\nerrno=0\n\n", -EBADMSG },
                { "listen_port=\nerrno=0\n\n", -EBADMSG },
                { "private_key=00\nerrno=0\n\n", -EBADMSG },
                { "private_key=zz09f3e5317e9575c9b5ed78b638b7ce530dabe85ddab614220241801ddf0669\nerrno=0\n\n",
                  -EBADMSG },
                { "endpoint=192.0.2.1:1\nerrno=0\n\n", -EBADMSG }, /* peer key before a peer */
                { "public_key=4eb32f4a83f88d842563a448cc181bb2c42a637bf12363e2fb2ef594e5965d7d\n"
                  "allowed_ip=100.64.0.3/33\nerrno=0\n\n",
                  -EBADMSG },
                { "public_key=4eb32f4a83f88d842563a448cc181bb2c42a637bf12363e2fb2ef594e5965d7d\n"
                  "endpoint=example.com:1\nerrno=0\n\n",
                  -EBADMSG },
                { "public_key=4eb32f4a83f88d842563a448cc181bb2c42a637bf12363e2fb2ef594e5965d7d\n"
                  "listen_port=1\nerrno=0\n\n",
                  -EBADMSG }, /* device key inside a peer */
                { "public_key=4eb32f4a83f88d842563a448cc181bb2c42a637bf12363e2fb2ef594e5965d7d\n"
                  "last_handshake_time_nsec=1000000000\nerrno=0\n\n",
                  -EBADMSG },
                { "public_key=4eb32f4a83f88d842563a448cc181bb2c42a637bf12363e2fb2ef594e5965d7d\n"
                  "rx_bytes=18446744073709551616\nerrno=0\n\n",
                  -EBADMSG },
                { "errno=0\nlisten_port=1\n\n", -EBADMSG }, /* after errno */
                { "errno=0\n\nlisten_port=1\n", -EBADMSG }, /* after the end */
                { "errno=0", -EBADMSG },                    /* unterminated line */
                { "errno=x\n\n", -EBADMSG },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                WgDevice *d = NULL;
                int r = wg_uapi_parse_get(cases[i].text, strlen(cases[i].text), &d);

                if (r != cases[i].error)
                        fail_msg("case %zu: got %i, expected %i", i, r, cases[i].error);
                assert_null(d);
        }

        /* an embedded NUL is garbage too */
        static const char nul[] = "listen_port=1\0\nerrno=0\n\n";
        WgDevice *d = NULL;
        assert_int_equal(wg_uapi_parse_get(nul, sizeof(nul) - 1, &d), -EBADMSG);
}

static void test_parse_set_reply(void **state) {
        assert_int_equal(wg_uapi_parse_set_reply("errno=0\n\n", 9), 0);
        assert_int_equal(wg_uapi_parse_set_reply("errno=-22\n\n", 11), -EINVAL);
        assert_int_equal(wg_uapi_parse_set_reply("errno=98\n\n", 10), -EADDRINUSE);
        assert_int_equal(wg_uapi_parse_set_reply("errno=0\n", 8), -EBADMSG);
        assert_int_equal(wg_uapi_parse_set_reply("errno=\n\n", 8), -EBADMSG);
        assert_int_equal(wg_uapi_parse_set_reply("ok\n\n", 4), -EBADMSG);
        assert_int_equal(wg_uapi_parse_set_reply("", 0), -EBADMSG);
}

static void test_backend_type_strings(void **state) {
        assert_string_equal(wg_backend_type_to_string(WG_BACKEND_AUTO), "auto");
        assert_string_equal(wg_backend_type_to_string(WG_BACKEND_KERNEL), "kernel");
        assert_string_equal(wg_backend_type_to_string(WG_BACKEND_USERSPACE), "userspace");
        assert_null(wg_backend_type_to_string(_WG_BACKEND_MAX));
        assert_int_equal(wg_backend_type_from_string("auto"), WG_BACKEND_AUTO);
        assert_int_equal(wg_backend_type_from_string("kernel"), WG_BACKEND_KERNEL);
        assert_int_equal(wg_backend_type_from_string("userspace"), WG_BACKEND_USERSPACE);
        assert_int_equal(wg_backend_type_from_string("Kernel"), _WG_BACKEND_INVALID);
        assert_int_equal(wg_backend_type_from_string(""), _WG_BACKEND_INVALID);
        assert_int_equal(wg_backend_type_from_string(NULL), _WG_BACKEND_INVALID);
}

static void test_device_helpers(void **state) {
        _cleanup_(wg_device_freep) WgDevice *d = calloc(1, sizeof(WgDevice));
        union in_addr_union a = {};
        WgKey k;
        WgPeer *p;

        for (int i = 0; i < 1000; i++) {
                assert_int_equal(wg_device_add_peer(d, &p), 0);
                assert_int_equal(p->flags, 0);
                assert_true(key_is_zero(&p->public_key));
                key_fill(&p->public_key, (uint8_t) i);
                p->public_key.data[31] = (uint8_t) (i >> 8);
        }
        assert_int_equal(d->n_peers, 1000);
        key_fill(&k, 77);
        k.data[31] = 0;
        assert_ptr_equal(wg_device_find_peer(d, &k), &d->peers[77]);
        key_fill(&k, 77);
        k.data[31] = 9;
        assert_null(wg_device_find_peer(d, &k));

        assert_int_equal(wg_peer_add_allowed_ip(&d->peers[0], AF_INET, &a, 33), -EINVAL);
        assert_int_equal(wg_peer_add_allowed_ip(&d->peers[0], AF_INET6, &a, 129), -EINVAL);
        assert_int_equal(wg_peer_add_allowed_ip(&d->peers[0], AF_UNIX, &a, 0), -EINVAL);
        assert_int_equal(wg_peer_add_allowed_ip(&d->peers[0], AF_INET6, &a, 0), 0);
        assert_int_equal(d->peers[0].n_allowed_ips, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_format_set),
                cmocka_unit_test(test_format_set_minimal_and_invalid),
                cmocka_unit_test(test_parse_get),
                cmocka_unit_test(test_parse_get_empty_device),
                cmocka_unit_test(test_parse_get_errors),
                cmocka_unit_test(test_parse_set_reply),
                cmocka_unit_test(test_backend_type_strings),
                cmocka_unit_test(test_device_helpers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
