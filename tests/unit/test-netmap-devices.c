/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The "devices" of a netmap (docs/protocol.md): parsed and checked with the
 * nodes as one namespace, merged by deltas as a whole list, and reported by
 * netmap_diff() so that the node rewrites its hub entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "netmap.h"

static char *key_text(uint8_t b) {
        WgKey k;
        char *buf = malloc(WG_KEY_B64_LEN + 1);

        assert_non_null(buf);
        memset(k.data, b, sizeof(k.data));
        key_to_base64(&k, buf);
        return buf;
}

static cJSON *make_node(const char *name, uint8_t key, int host) {
        _cleanup_free_ char *k = key_text(key);
        char a4[32], a6[64];
        cJSON *n = cJSON_CreateObject();

        snprintf(a4, sizeof(a4), "100.64.0.%d", host);
        snprintf(a6, sizeof(a6), "fd7a:115c:a1e0::%d", host);
        if (name)
                cJSON_AddStringToObject(n, "name", name);
        cJSON_AddStringToObject(n, "public_key", k);
        cJSON_AddStringToObject(n, "ipv4", a4);
        cJSON_AddStringToObject(n, "ipv6", a6);
        return n;
}

/* self nas (.3, key 3), peer laptop (.2, key 2), hub (.1, key 1), devices
 * cam1 (.9, key 9) and phone (.10, key 10, no IPv6). */
static cJSON *make_netmap(void) {
        cJSON *m = cJSON_CreateObject(), *peers = cJSON_CreateArray(), *devices = cJSON_CreateArray();
        cJSON *hub = make_node(NULL, 1, 1), *eps = cJSON_CreateArray(), *phone;

        cJSON_AddNumberToObject(m, "version", 12);
        cJSON_AddStringToObject(m, "domain", "mesh.internal");
        cJSON_AddStringToObject(m, "ipv4_range", "100.64.0.0/10");
        cJSON_AddStringToObject(m, "ipv6_range", "fd7a:115c:a1e0::/48");
        cJSON_AddItemToObject(m, "self", make_node("nas", 3, 3));
        cJSON_AddItemToArray(peers, make_node("laptop", 2, 2));
        cJSON_AddItemToObject(m, "peers", peers);
        cJSON_AddItemToArray(devices, make_node("cam1", 9, 9));
        phone = make_node("phone", 10, 10);
        cJSON_DeleteItemFromObject(phone, "ipv6");
        cJSON_AddItemToArray(devices, phone);
        cJSON_AddItemToObject(m, "devices", devices);
        cJSON_AddItemToArray(eps, cJSON_CreateString("192.0.2.1:41640"));
        cJSON_AddItemToObject(hub, "endpoints", eps);
        cJSON_AddItemToObject(m, "hub", hub);
        return m;
}

static cJSON *device(cJSON *m, int i) {
        return cJSON_GetArrayItem(cJSON_GetObjectItem(m, "devices"), i);
}

static void set(cJSON *o, const char *key, cJSON *value) {
        if (cJSON_HasObjectItem(o, key))
                cJSON_ReplaceItemInObject(o, key, value);
        else
                cJSON_AddItemToObject(o, key, value);
}

static int parse(cJSON *j, Netmap **ret, char **error) {
        _cleanup_free_ char *s = cJSON_PrintUnformatted(j);

        cJSON_Delete(j);
        *error = mfree(*error);
        return netmap_parse(s, strlen(s), ret, error);
}

static void assert_refused(cJSON *j, const char *why) {
        _cleanup_(netmap_freep) Netmap *m = NULL;
        _cleanup_free_ char *error = NULL;

        assert_int_equal(parse(j, &m, &error), -EBADMSG);
        assert_null(m);
        assert_non_null(error);
        if (!streq(error, why))
                fail_msg("expected '%s', got '%s'", why, error);
}

static void test_valid(void **state) {
        _cleanup_(netmap_freep) Netmap *m = NULL;
        _cleanup_free_ char *error = NULL, *k9 = key_text(9);
        const NetmapNode *d;
        char buf[INET6_ADDRSTRLEN];
        WgKey key;

        assert_int_equal(parse(make_netmap(), &m, &error), 0);
        assert_int_equal(m->n_devices, 2);
        d = netmap_find_device_by_name(m, "CAM1");
        assert_ptr_equal(d, &m->devices[0]);
        assert_string_equal(d->name, "cam1");
        assert_int_equal(key_from_base64(k9, &key), 0);
        assert_true(key_equal(&d->public_key, &key));
        assert_string_equal(in_addr_format(AF_INET, &d->ipv4, buf, sizeof(buf)), "100.64.0.9");
        assert_true(d->has_ipv6);
        assert_string_equal(in_addr_format(AF_INET6, &d->ipv6, buf, sizeof(buf)), "fd7a:115c:a1e0::9");
        assert_null(d->endpoints);
        assert_false(d->relay);
        assert_false(m->devices[1].has_ipv6);
        /* devices are no peers: the diff of peers never sees them; ping and
         * wait-online look them up on their own */
        assert_null(netmap_find_peer_by_name(m, "cam1"));
        assert_null(netmap_resolve_peer(m, "100.64.0.9"));
        assert_null(netmap_find_device_by_name(m, "laptop"));
        assert_ptr_equal(netmap_resolve_device(m, "Cam1"), d);
        assert_ptr_equal(netmap_resolve_device(m, "cam1.Mesh.Internal."), d);
        assert_ptr_equal(netmap_resolve_device(m, "100.64.0.9"), d);
        assert_ptr_equal(netmap_resolve_device(m, "fd7a:115c:a1e0::9"), d);
        assert_null(netmap_resolve_device(m, "laptop"));
        assert_null(netmap_resolve_device(NULL, "cam1"));
}

static void test_absent_empty_null(void **state) {
        _cleanup_free_ char *error = NULL;
        Netmap *m = NULL;
        cJSON *j;

        j = make_netmap();
        cJSON_DeleteItemFromObject(j, "devices");
        assert_int_equal(parse(j, &m, &error), 0);
        assert_int_equal(m->n_devices, 0);
        m = netmap_free(m);

        j = make_netmap();
        set(j, "devices", cJSON_CreateArray());
        assert_int_equal(parse(j, &m, &error), 0);
        assert_int_equal(m->n_devices, 0);
        m = netmap_free(m);

        j = make_netmap();
        set(j, "devices", cJSON_CreateNull());
        assert_int_equal(parse(j, &m, &error), 0);
        assert_int_equal(m->n_devices, 0);
        m = netmap_free(m);

        /* no hub: the devices are listed (and unreachable from here) */
        j = make_netmap();
        cJSON_DeleteItemFromObject(j, "hub");
        assert_int_equal(parse(j, &m, &error), 0);
        assert_int_equal(m->n_devices, 2);
        m = netmap_free(m);
}

static void test_rejected(void **state) {
        _cleanup_free_ char *k2 = key_text(2), *k3 = key_text(3), *k1 = key_text(1);
        cJSON *j;

        j = make_netmap();
        set(j, "devices", cJSON_CreateString("cam1"));
        assert_refused(j, "devices: not an array");

        j = make_netmap();
        cJSON_AddItemToArray(cJSON_GetObjectItem(j, "devices"), cJSON_CreateNumber(1));
        assert_refused(j, "devices[2]: not an object");

        j = make_netmap();
        set(device(j, 0), "name", cJSON_CreateString("cam_1"));
        assert_refused(j, "devices[0].name: 'cam_1' is not a valid DNS label");

        j = make_netmap();
        cJSON_DeleteItemFromObject(device(j, 1), "name");
        assert_refused(j, "devices[1].name: missing");

        /* one namespace with the nodes */
        j = make_netmap();
        set(device(j, 1), "name", cJSON_CreateString("laptop"));
        assert_refused(j, "devices[1].name: same as peers[0].name");

        j = make_netmap();
        set(device(j, 0), "name", cJSON_CreateString("nas"));
        assert_refused(j, "devices[0].name: same as self.name");

        j = make_netmap();
        set(device(j, 1), "name", cJSON_CreateString("cam1"));
        assert_refused(j, "devices[1].name: same as devices[0].name");

        j = make_netmap();
        set(device(j, 0), "public_key", cJSON_CreateString("not a key"));
        assert_refused(j, "devices[0].public_key: not a WireGuard key");

        j = make_netmap();
        set(device(j, 0), "public_key", cJSON_CreateString(k2));
        assert_refused(j, "devices[0].public_key: same as peers[0].public_key");

        j = make_netmap();
        set(device(j, 0), "public_key", cJSON_CreateString(k3));
        assert_refused(j, "devices[0].public_key: same as self.public_key");

        j = make_netmap();
        set(device(j, 0), "public_key", cJSON_CreateString(k1));
        assert_refused(j, "hub.public_key: same as devices[0].public_key");

        j = make_netmap();
        set(device(j, 0), "ipv4", cJSON_CreateString("10.0.0.9"));
        assert_refused(j, "devices[0].ipv4: 10.0.0.9 is not inside ipv4_range");

        j = make_netmap();
        set(device(j, 0), "ipv6", cJSON_CreateString("fd00::9"));
        assert_refused(j, "devices[0].ipv6: fd00::9 is not inside ipv6_range");

        j = make_netmap();
        cJSON_DeleteItemFromObject(device(j, 0), "ipv4");
        assert_refused(j, "devices[0].ipv4: missing");

        j = make_netmap();
        set(device(j, 1), "ipv4", cJSON_CreateString("100.64.0.2"));
        assert_refused(j, "devices[1].ipv4: same as peers[0].ipv4");

        j = make_netmap();
        set(device(j, 0), "ipv6", cJSON_CreateString("fd7a:115c:a1e0::3"));
        assert_refused(j, "devices[0].ipv6: same as self.ipv6");

        j = make_netmap();
        set(device(j, 0), "ipv4", cJSON_CreateString("100.64.0.1"));
        assert_refused(j, "hub.ipv4: same as devices[0].ipv4");

        /* a mesh without IPv6 gives its devices none */
        j = make_netmap();
        cJSON_DeleteItemFromObject(j, "ipv6_range");
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(j, "self"), "ipv6");
        cJSON_DeleteItemFromObject(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "peers"), 0), "ipv6");
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(j, "hub"), "ipv6");
        assert_refused(j, "devices[0].ipv6: set, but the netmap has no ipv6_range");
}

static void test_diff(void **state) {
        _cleanup_(netmap_freep) Netmap *a = NULL, *b = NULL;
        _cleanup_free_ char *error = NULL;
        NetmapDiff d = {};
        cJSON *j;

        assert_int_equal(parse(make_netmap(), &a, &error), 0);

        assert_int_equal(netmap_diff(NULL, a, &d), 0);
        assert_true(d.devices_changed);
        netmap_diff_done(&d);
        assert_int_equal(netmap_diff(a, a, &d), 0);
        assert_false(d.devices_changed || d.hub_changed || d.self_changed);
        assert_int_equal(d.n_added + d.n_removed + d.n_changed, 0);
        netmap_diff_done(&d);

        /* a device's address changed: nothing else did */
        j = make_netmap();
        set(device(j, 0), "ipv4", cJSON_CreateString("100.64.0.19"));
        assert_int_equal(parse(j, &b, &error), 0);
        assert_int_equal(netmap_diff(a, b, &d), 0);
        assert_true(d.devices_changed);
        assert_false(d.hub_changed || d.self_changed);
        assert_int_equal(d.n_added + d.n_removed + d.n_changed, 0);
        netmap_diff_done(&d);
        b = netmap_free(b);

        /* a device went, and came back under another name */
        j = make_netmap();
        cJSON_DeleteItemFromArray(cJSON_GetObjectItem(j, "devices"), 1);
        assert_int_equal(parse(j, &b, &error), 0);
        assert_int_equal(netmap_diff(a, b, &d), 0);
        assert_true(d.devices_changed);
        netmap_diff_done(&d);
        assert_int_equal(netmap_diff(b, a, &d), 0);
        assert_true(d.devices_changed);
        netmap_diff_done(&d);
        b = netmap_free(b);

        j = make_netmap();
        set(device(j, 0), "name", cJSON_CreateString("cam2"));
        assert_int_equal(parse(j, &b, &error), 0);
        assert_int_equal(netmap_diff(a, b, &d), 0);
        assert_true(d.devices_changed);
        netmap_diff_done(&d);
}

/* ---- deltas ---- */

static cJSON *make_delta(void) {
        cJSON *d = make_netmap();

        cJSON_DeleteItemFromObject(d, "peers");
        cJSON_DeleteItemFromObject(d, "devices");
        set(d, "version", cJSON_CreateNumber(13));
        cJSON_AddNumberToObject(d, "delta_from", 12);
        cJSON_AddItemToObject(d, "peers_changed", cJSON_CreateArray());
        cJSON_AddItemToObject(d, "peers_removed", cJSON_CreateArray());
        return d;
}

/* base and delta merged and parsed; both consumed */
static Netmap *merge(cJSON *base, cJSON *delta) {
        _cleanup_free_ char *b = cJSON_PrintUnformatted(base), *d = cJSON_PrintUnformatted(delta);
        _cleanup_free_ char *text = NULL, *error = NULL;
        Netmap *m = NULL;
        size_t len;

        cJSON_Delete(base);
        cJSON_Delete(delta);
        assert_int_equal(netmap_delta_merge(b, strlen(b), d, strlen(d), &text, &len, &error), 0);
        assert_int_equal(len, strlen(text));
        if (netmap_parse(text, len, &m, &error) < 0)
                fail_msg("%s: %s", text, error);
        /* an empty list is no list: the merged text is what a full netmap says */
        if (m->n_devices == 0)
                assert_null(strstr(text, "\"devices\""));
        return m;
}

static void test_delta(void **state) {
        Netmap *m;
        cJSON *d, *base;

        /* absent: unchanged */
        m = merge(make_netmap(), make_delta());
        assert_int_equal(m->version, 13);
        assert_int_equal(m->n_devices, 2);
        assert_non_null(netmap_find_device_by_name(m, "phone"));
        m = netmap_free(m);

        /* null counts as absent */
        d = make_delta();
        cJSON_AddNullToObject(d, "devices");
        m = merge(make_netmap(), d);
        assert_int_equal(m->n_devices, 2);
        m = netmap_free(m);

        /* the whole current list replaces the base's */
        d = make_delta();
        cJSON_AddItemToObject(d, "devices", cJSON_CreateArray());
        cJSON_AddItemToArray(cJSON_GetObjectItem(d, "devices"), make_node("door", 11, 11));
        m = merge(make_netmap(), d);
        assert_int_equal(m->n_devices, 1);
        assert_string_equal(m->devices[0].name, "door");
        m = netmap_free(m);

        /* [] when the last one went */
        d = make_delta();
        cJSON_AddItemToObject(d, "devices", cJSON_CreateArray());
        m = merge(make_netmap(), d);
        assert_int_equal(m->n_devices, 0);
        m = netmap_free(m);

        /* the first device of a mesh that had none */
        base = make_netmap();
        cJSON_DeleteItemFromObject(base, "devices");
        d = make_delta();
        cJSON_AddItemToObject(d, "devices", cJSON_CreateArray());
        cJSON_AddItemToArray(cJSON_GetObjectItem(d, "devices"), make_node("cam1", 9, 9));
        m = merge(base, d);
        assert_int_equal(m->n_devices, 1);
        m = netmap_free(m);

        /* a base without devices and a delta without: none */
        base = make_netmap();
        cJSON_DeleteItemFromObject(base, "devices");
        m = merge(base, make_delta());
        assert_int_equal(m->n_devices, 0);
        m = netmap_free(m);
}

static void test_delta_bad(void **state) {
        _cleanup_free_ char *b = NULL, *d = NULL, *text = NULL, *error = NULL;
        _cleanup_(netmap_freep) Netmap *m = NULL;
        cJSON *base = make_netmap(), *delta = make_delta();
        size_t len;

        /* a device list that is no list passes the merge, and netmap_parse() refuses it */
        cJSON_AddStringToObject(delta, "devices", "cam1");
        b = cJSON_PrintUnformatted(base);
        d = cJSON_PrintUnformatted(delta);
        cJSON_Delete(base);
        cJSON_Delete(delta);
        assert_int_equal(netmap_delta_merge(b, strlen(b), d, strlen(d), &text, &len, &error), 0);
        assert_int_equal(netmap_parse(text, len, &m, &error), -EBADMSG);
        assert_string_equal(error, "devices: not an array");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),    cmocka_unit_test(test_absent_empty_null),
                cmocka_unit_test(test_rejected), cmocka_unit_test(test_diff),
                cmocka_unit_test(test_delta),    cmocka_unit_test(test_delta_bad),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
