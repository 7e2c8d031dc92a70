/* SPDX-License-Identifier: LGPL-2.1-or-later */
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

#include "msg-register.h" /* register_reply_parse() */
#include "netmap.h"
#include "varlink.h"

/* A key whose 32 bytes are all b: distinct, valid and readable in failures. */
static char *key_text(uint8_t b) {
        WgKey k;
        char *buf = malloc(WG_KEY_B64_LEN + 1);

        assert_non_null(buf);
        memset(k.data, b, sizeof(k.data));
        key_to_base64(&k, buf);
        return buf;
}

static cJSON *make_node(const char *name, uint8_t key, int host, bool relay) {
        _cleanup_free_ char *k = key_text(key);
        char a4[32], a6[64], ep[64];
        cJSON *n = cJSON_CreateObject(), *eps = cJSON_CreateArray();

        snprintf(a4, sizeof(a4), "100.64.0.%d", host);
        snprintf(a6, sizeof(a6), "fd7a:115c:a1e0::%d", host);
        snprintf(ep, sizeof(ep), "192.0.2.%d:41641", host);
        cJSON_AddItemToArray(eps, cJSON_CreateString(ep));
        cJSON_AddItemToArray(eps, cJSON_CreateString("[2001:db8::1]:41641"));

        cJSON_AddStringToObject(n, "name", name);
        cJSON_AddStringToObject(n, "public_key", k);
        cJSON_AddStringToObject(n, "ipv4", a4);
        cJSON_AddStringToObject(n, "ipv6", a6);
        cJSON_AddItemToObject(n, "endpoints", eps);
        cJSON_AddBoolToObject(n, "relay", relay);
        return n;
}

/* self "nas" (.3), peers laptop (.2), backup (.4, relay), phone (.5, no ipv6, no endpoints). */
static cJSON *make_netmap(void) {
        cJSON *m = cJSON_CreateObject(), *peers = cJSON_CreateArray(), *phone;

        cJSON_AddNumberToObject(m, "version", 12);
        cJSON_AddStringToObject(m, "domain", "mesh.internal");
        cJSON_AddStringToObject(m, "ipv4_range", "100.64.0.0/10");
        cJSON_AddStringToObject(m, "ipv6_range", "fd7a:115c:a1e0::/48");
        cJSON_AddItemToObject(m, "self", make_node("nas", 1, 3, false));
        cJSON_AddItemToArray(peers, make_node("laptop", 2, 2, false));
        cJSON_AddItemToArray(peers, make_node("backup", 3, 4, true));
        phone = make_node("phone", 4, 5, false);
        cJSON_DeleteItemFromObject(phone, "ipv6");
        cJSON_DeleteItemFromObject(phone, "endpoints");
        cJSON_DeleteItemFromObject(phone, "relay");
        cJSON_AddItemToArray(peers, phone);
        cJSON_AddItemToObject(m, "peers", peers);
        /* Unknown fields are for newer nodes; we must ignore them. */
        cJSON_AddStringToObject(m, "future_field", "ignored");
        return m;
}

static Netmap *parse_ok(const cJSON *j) {
        _cleanup_free_ char *s = cJSON_PrintUnformatted(j), *error = NULL;
        Netmap *m = NULL;

        assert_int_equal(netmap_parse(s, strlen(s), &m, &error), 0);
        assert_null(error);
        assert_non_null(m);
        return m;
}

static void parse_fail(const cJSON *j, const char *expected) {
        _cleanup_free_ char *s = cJSON_PrintUnformatted(j), *error = NULL;
        Netmap *m = NULL;

        assert_int_equal(netmap_parse(s, strlen(s), &m, &error), -EBADMSG);
        assert_null(m);
        assert_non_null(error);
        assert_string_equal(error, expected);
}

static cJSON *peer(cJSON *m, int i) {
        return cJSON_GetArrayItem(cJSON_GetObjectItem(m, "peers"), i);
}

static void set(cJSON *obj, const char *key, cJSON *value) {
        if (cJSON_GetObjectItemCaseSensitive(obj, key))
                cJSON_ReplaceItemInObjectCaseSensitive(obj, key, value);
        else
                cJSON_AddItemToObject(obj, key, value);
}

static void test_valid(void **state) {
        _cleanup_json_ cJSON *j = make_netmap();
        _cleanup_(netmap_freep) Netmap *m = parse_ok(j);
        char buf[INET6_ADDRSTRLEN];

        assert_int_equal(m->version, 12);
        assert_string_equal(m->domain, "mesh.internal");
        assert_int_equal(m->ipv4_prefixlen, 10);
        assert_true(m->has_ipv6_range);
        assert_int_equal(m->ipv6_prefixlen, 48);
        assert_string_equal(m->self.name, "nas");
        assert_string_equal(inet_ntop(AF_INET, &m->self.ipv4.in, buf, sizeof(buf)), "100.64.0.3");
        assert_false(m->self.relay);

        assert_int_equal(m->n_peers, 3);
        assert_string_equal(m->peers[0].name, "laptop");
        assert_true(m->peers[0].has_ipv6);
        assert_string_equal(inet_ntop(AF_INET6, &m->peers[0].ipv6.in6, buf, sizeof(buf)), "fd7a:115c:a1e0::2");
        assert_int_equal(strv_length(m->peers[0].endpoints), 2);
        assert_string_equal(m->peers[0].endpoints[0], "192.0.2.2:41641");
        assert_string_equal(m->peers[0].endpoints[1], "[2001:db8::1]:41641");
        assert_false(m->peers[0].relay);
        assert_true(m->peers[1].relay);
        assert_false(m->peers[2].has_ipv6);
        assert_null(m->peers[2].endpoints);
        assert_int_equal(m->peers[1].public_key.data[0], 3);
}

static void test_minimal(void **state) {
        _cleanup_json_ cJSON *j = make_netmap();
        _cleanup_(netmap_freep) Netmap *m = NULL;

        /* No IPv6 at all and no peers. */
        cJSON_DeleteItemFromObject(j, "ipv6_range");
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(j, "self"), "ipv6");
        set(j, "peers", cJSON_CreateArray());
        set(j, "version", cJSON_CreateNumber(1));
        m = parse_ok(j);
        assert_false(m->has_ipv6_range);
        assert_false(m->self.has_ipv6);
        assert_int_equal(m->n_peers, 0);

        /* null means absent for the optional fields */
        _cleanup_json_ cJSON *j2 = make_netmap();
        _cleanup_(netmap_freep) Netmap *m2 = NULL;
        set(peer(j2, 0), "ipv6", cJSON_CreateNull());
        set(peer(j2, 0), "endpoints", cJSON_CreateNull());
        set(peer(j2, 0), "relay", cJSON_CreateNull());
        m2 = parse_ok(j2);
        assert_false(m2->peers[0].has_ipv6);
}

typedef void (*Mutation)(cJSON *m);

static void check_rejected(Mutation mutate, const char *expected) {
        _cleanup_json_ cJSON *j = make_netmap();
        mutate(j);
        parse_fail(j, expected);
}

static void m_no_version(cJSON *m) {
        cJSON_DeleteItemFromObject(m, "version");
}
static void m_version_zero(cJSON *m) {
        set(m, "version", cJSON_CreateNumber(0));
}
static void m_version_string(cJSON *m) {
        set(m, "version", cJSON_CreateString("12"));
}
static void m_version_fraction(cJSON *m) {
        set(m, "version", cJSON_CreateNumber(1.5));
}
static void m_version_negative(cJSON *m) {
        set(m, "version", cJSON_CreateNumber(-3));
}
static void m_no_domain(cJSON *m) {
        cJSON_DeleteItemFromObject(m, "domain");
}
static void m_bad_domain(cJSON *m) {
        set(m, "domain", cJSON_CreateString("mesh..internal"));
}
static void m_no_range(cJSON *m) {
        cJSON_DeleteItemFromObject(m, "ipv4_range");
}
static void m_range_v6(cJSON *m) {
        set(m, "ipv4_range", cJSON_CreateString("fd00::/8"));
}
static void m_range6_bad(cJSON *m) {
        set(m, "ipv6_range", cJSON_CreateString("nonsense"));
}
static void m_no_self(cJSON *m) {
        cJSON_DeleteItemFromObject(m, "self");
}
static void m_self_array(cJSON *m) {
        set(m, "self", cJSON_CreateArray());
}
static void m_no_peers(cJSON *m) {
        cJSON_DeleteItemFromObject(m, "peers");
}
static void m_peers_object(cJSON *m) {
        set(m, "peers", cJSON_CreateObject());
}
static void m_peer_string(cJSON *m) {
        cJSON_AddItemToArray(cJSON_GetObjectItem(m, "peers"), cJSON_CreateString("x"));
}
static void m_bad_key(cJSON *m) {
        set(peer(m, 2), "public_key", cJSON_CreateString("not-a-key"));
}
static void m_zero_key(cJSON *m) {
        set(peer(m, 2), "public_key", cJSON_CreateString("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
}
static void m_key_number(cJSON *m) {
        set(peer(m, 0), "public_key", cJSON_CreateNumber(5));
}
static void m_no_key(cJSON *m) {
        cJSON_DeleteItemFromObject(peer(m, 1), "public_key");
}
static void m_bad_self_key(cJSON *m) {
        set(cJSON_GetObjectItem(m, "self"), "public_key", cJSON_CreateString("AAAA"));
}
static void m_bad_name(cJSON *m) {
        set(peer(m, 1), "name", cJSON_CreateString("Bad_Name"));
}
static void m_no_name(cJSON *m) {
        cJSON_DeleteItemFromObject(peer(m, 0), "name");
}
static void m_long_name(cJSON *m) {
        char s[70];
        memset(s, 'a', 64);
        s[64] = '\0';
        set(peer(m, 0), "name", cJSON_CreateString(s));
}
static void m_dup_name(cJSON *m) {
        set(peer(m, 2), "name", cJSON_CreateString("laptop"));
}
static void m_name_is_self(cJSON *m) {
        set(peer(m, 1), "name", cJSON_CreateString("nas"));
}
static void m_dup_key(cJSON *m) {
        _cleanup_free_ char *k = key_text(2);
        set(peer(m, 2), "public_key", cJSON_CreateString(k));
}
static void m_key_is_self(cJSON *m) {
        _cleanup_free_ char *k = key_text(1);
        set(peer(m, 1), "public_key", cJSON_CreateString(k));
}
static void m_ipv4_outside(cJSON *m) {
        set(peer(m, 0), "ipv4", cJSON_CreateString("10.0.0.2"));
}
static void m_ipv4_is_v6(cJSON *m) {
        set(peer(m, 0), "ipv4", cJSON_CreateString("fd7a:115c:a1e0::9"));
}
static void m_ipv4_garbage(cJSON *m) {
        set(peer(m, 0), "ipv4", cJSON_CreateString("100.64.0.256"));
}
static void m_no_ipv4(cJSON *m) {
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(m, "self"), "ipv4");
}
static void m_ipv6_outside(cJSON *m) {
        set(peer(m, 1), "ipv6", cJSON_CreateString("fd00::4"));
}
static void m_ipv6_no_range(cJSON *m) {
        cJSON_DeleteItemFromObject(m, "ipv6_range");
}
static void m_ipv4_dup(cJSON *m) {
        set(peer(m, 2), "ipv4", cJSON_CreateString("100.64.0.2"));
}
static void m_ipv4_dup_self(cJSON *m) {
        set(peer(m, 0), "ipv4", cJSON_CreateString("100.64.0.3"));
}
static void m_ipv6_dup(cJSON *m) {
        set(peer(m, 1), "ipv6", cJSON_CreateString("fd7a:115c:a1e0::2"));
}
static void m_endpoint_bad(cJSON *m) {
        cJSON_AddItemToArray(cJSON_GetObjectItem(peer(m, 1), "endpoints"), cJSON_CreateString("host:1"));
}
static void m_endpoint_no_port(cJSON *m) {
        cJSON_ReplaceItemInArray(cJSON_GetObjectItem(peer(m, 0), "endpoints"), 0,
                                 cJSON_CreateString("192.0.2.1"));
}
static void m_endpoint_number(cJSON *m) {
        cJSON_ReplaceItemInArray(cJSON_GetObjectItem(peer(m, 0), "endpoints"), 1, cJSON_CreateNumber(1));
}
static void m_endpoints_string(cJSON *m) {
        set(peer(m, 0), "endpoints", cJSON_CreateString("192.0.2.1:1"));
}
static void m_relay_string(cJSON *m) {
        set(peer(m, 0), "relay", cJSON_CreateString("false"));
}

static void test_rejected(void **state) {
        check_rejected(m_no_version, "version: missing");
        check_rejected(m_version_zero, "version: must be at least 1");
        check_rejected(m_version_string, "version: not a number");
        check_rejected(m_version_fraction, "version: not a non-negative integer");
        check_rejected(m_version_negative, "version: not a non-negative integer");
        check_rejected(m_no_domain, "domain: missing");
        check_rejected(m_bad_domain, "domain: 'mesh..internal' is not a valid domain name");
        check_rejected(m_no_range, "ipv4_range: missing");
        check_rejected(m_range_v6, "ipv4_range: 'fd00::/8' is not an IPv4 prefix");
        check_rejected(m_range6_bad, "ipv6_range: 'nonsense' is not an IPv6 prefix");
        check_rejected(m_no_self, "self: missing");
        check_rejected(m_self_array, "self: not an object");
        check_rejected(m_no_peers, "peers: missing");
        check_rejected(m_peers_object, "peers: not an array");
        check_rejected(m_peer_string, "peers[3]: not an object");
        check_rejected(m_bad_key, "peers[2].public_key: not a WireGuard key");
        check_rejected(m_zero_key, "peers[2].public_key: not a WireGuard key");
        check_rejected(m_key_number, "peers[0].public_key: not a string");
        check_rejected(m_no_key, "peers[1].public_key: missing");
        check_rejected(m_bad_self_key, "self.public_key: not a WireGuard key");
        check_rejected(m_bad_name, "peers[1].name: 'Bad_Name' is not a valid DNS label");
        check_rejected(m_no_name, "peers[0].name: missing");
        check_rejected(
                m_long_name,
                "peers[0].name: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is not a valid DNS label");
        check_rejected(m_dup_name, "peers[2].name: same as peers[0].name");
        check_rejected(m_name_is_self, "peers[1].name: same as self.name");
        check_rejected(m_dup_key, "peers[2].public_key: same as peers[0].public_key");
        check_rejected(m_key_is_self, "peers[1].public_key: same as self.public_key");
        check_rejected(m_ipv4_outside, "peers[0].ipv4: 10.0.0.2 is not inside ipv4_range");
        check_rejected(m_ipv4_is_v6, "peers[0].ipv4: 'fd7a:115c:a1e0::9' is not an IPv4 address");
        check_rejected(m_ipv4_garbage, "peers[0].ipv4: '100.64.0.256' is not an IPv4 address");
        check_rejected(m_no_ipv4, "self.ipv4: missing");
        check_rejected(m_ipv6_outside, "peers[1].ipv6: fd00::4 is not inside ipv6_range");
        check_rejected(m_ipv6_no_range, "self.ipv6: set, but the netmap has no ipv6_range");
        check_rejected(m_ipv4_dup, "peers[2].ipv4: same as peers[0].ipv4");
        check_rejected(m_ipv4_dup_self, "peers[0].ipv4: same as self.ipv4");
        check_rejected(m_ipv6_dup, "peers[1].ipv6: same as peers[0].ipv6");
        check_rejected(m_endpoint_bad, "peers[1].endpoints[2]: 'host:1' is not ip:port or [ip6]:port");
        check_rejected(m_endpoint_no_port, "peers[0].endpoints[0]: '192.0.2.1' is not ip:port or [ip6]:port");
        check_rejected(m_endpoint_number, "peers[0].endpoints[1]: not a string");
        check_rejected(m_endpoints_string, "peers[0].endpoints: not an array");
        check_rejected(m_relay_string, "peers[0].relay: not a boolean");
}

static void test_range_boundaries(void **state) {
        _cleanup_json_ cJSON *j = make_netmap();

        /* 100.64.0.0/10 ends at 100.127.255.255. */
        set(peer(j, 0), "ipv4", cJSON_CreateString("100.127.255.255"));
        netmap_free(parse_ok(j));
        set(peer(j, 0), "ipv4", cJSON_CreateString("100.128.0.0"));
        parse_fail(j, "peers[0].ipv4: 100.128.0.0 is not inside ipv4_range");
        set(peer(j, 0), "ipv4", cJSON_CreateString("100.63.255.255"));
        parse_fail(j, "peers[0].ipv4: 100.63.255.255 is not inside ipv4_range");
}

static void test_invalid_json(void **state) {
        _cleanup_json_ cJSON *j = make_netmap();
        _cleanup_free_ char *s = cJSON_PrintUnformatted(j);
        Netmap *m = NULL;
        char *error = NULL;

        /* Truncated at every length: always an error, never a crash or leak. */
        for (size_t len = 0; len < strlen(s); len++) {
                assert_int_equal(netmap_parse(s, len, &m, &error), -EBADMSG);
                assert_null(m);
                assert_non_null(error);
                assert_true(strncmp(error, "truncated or invalid JSON at offset ", 36) == 0 ||
                            strcmp(error, "netmap: not a JSON object") == 0);
                free(error);
                error = NULL;
        }

        /* cJSON reports a truncation at the last byte it had. */
        assert_int_equal(netmap_parse("{\"version\": 1,", 14, &m, &error), -EBADMSG);
        assert_string_equal(error, "truncated or invalid JSON at offset 13");
        free(error);

        assert_int_equal(netmap_parse("{\"version\": x}", 14, &m, &error), -EBADMSG);
        assert_string_equal(error, "truncated or invalid JSON at offset 12");
        free(error);

        assert_int_equal(netmap_parse("[1]", 3, &m, &error), -EBADMSG);
        assert_string_equal(error, "netmap: not a JSON object");
        free(error);

        assert_int_equal(netmap_parse("{} {}", 5, &m, &error), -EBADMSG);
        assert_string_equal(error, "trailing data after JSON at offset 3");
        free(error);

        /* Error text is optional. */
        assert_int_equal(netmap_parse("{", 1, &m, NULL), -EBADMSG);
}

static void test_from_json(void **state) {
        _cleanup_json_ cJSON *j = make_netmap();
        _cleanup_(netmap_freep) Netmap *m = NULL;
        _cleanup_free_ char *error = NULL;

        assert_int_equal(netmap_from_json(j, &m, &error), 0);
        assert_int_equal(m->n_peers, 3);
        assert_int_equal(netmap_from_json(NULL, &m, &error), -EBADMSG);
        assert_string_equal(error, "netmap: not a JSON object");
}

static void test_find_and_resolve(void **state) {
        _cleanup_json_ cJSON *j = make_netmap();
        _cleanup_(netmap_freep) Netmap *m = parse_ok(j);
        WgKey k;

        assert_ptr_equal(netmap_find_peer_by_name(m, "backup"), &m->peers[1]);
        assert_null(netmap_find_peer_by_name(m, "nas")); /* self is not a peer */
        assert_null(netmap_find_peer_by_name(m, "nothing"));

        memset(k.data, 4, sizeof(k.data));
        assert_ptr_equal(netmap_find_peer_by_key(m, &k), &m->peers[2]);
        memset(k.data, 9, sizeof(k.data));
        assert_null(netmap_find_peer_by_key(m, &k));

        assert_ptr_equal(netmap_resolve_peer(m, "laptop"), &m->peers[0]);
        assert_ptr_equal(netmap_resolve_peer(m, "LAPTOP"), &m->peers[0]);
        assert_ptr_equal(netmap_resolve_peer(m, "laptop.mesh.internal"), &m->peers[0]);
        assert_ptr_equal(netmap_resolve_peer(m, "Laptop.Mesh.Internal."), &m->peers[0]);
        assert_ptr_equal(netmap_resolve_peer(m, "100.64.0.4"), &m->peers[1]);
        assert_ptr_equal(netmap_resolve_peer(m, "fd7a:115c:a1e0::4"), &m->peers[1]);
        assert_ptr_equal(netmap_resolve_peer(m, "FD7A:115C:A1E0:0::2"), &m->peers[0]);
        assert_ptr_equal(netmap_resolve_peer(m, "100.64.0.5"), &m->peers[2]);

        assert_null(netmap_resolve_peer(m, "laptop.example.com"));
        assert_null(netmap_resolve_peer(m, "laptop.mesh"));
        assert_null(netmap_resolve_peer(m, ".mesh.internal"));
        assert_null(netmap_resolve_peer(m, "100.64.0.3")); /* self */
        assert_null(netmap_resolve_peer(m, "100.64.0.9"));
        assert_null(netmap_resolve_peer(m, "fd7a:115c:a1e0::5")); /* phone has no IPv6 */
        assert_null(netmap_resolve_peer(m, ""));
        assert_null(netmap_resolve_peer(m, NULL));
}

static void test_diff(void **state) {
        _cleanup_json_ cJSON *j1 = make_netmap(), *j2 = make_netmap();
        _cleanup_(netmap_freep) Netmap *old = NULL, *new = NULL;
        _cleanup_(netmap_diff_done) NetmapDiff d = {};
        cJSON *peers2 = cJSON_GetObjectItem(j2, "peers");

        /* new: laptop unchanged, backup now direct (changed), phone removed, tv added. */
        set(peer(j2, 1), "relay", cJSON_CreateFalse());
        cJSON_DeleteItemFromArray(peers2, 2);
        cJSON_AddItemToArray(peers2, make_node("tv", 5, 6, false));
        set(j2, "version", cJSON_CreateNumber(13));

        old = parse_ok(j1);
        new = parse_ok(j2);

        assert_int_equal(netmap_diff(old, new, &d), 0);
        assert_int_equal(d.n_added, 1);
        assert_ptr_equal(d.added[0], &new->peers[2]);
        assert_string_equal(d.added[0]->name, "tv");
        assert_int_equal(d.n_removed, 1);
        assert_ptr_equal(d.removed[0], &old->peers[2]);
        assert_string_equal(d.removed[0]->name, "phone");
        assert_int_equal(d.n_changed, 1);
        assert_ptr_equal(d.changed[0], &new->peers[1]);
        assert_false(d.self_changed);
        netmap_diff_done(&d);

        /* Identical maps: nothing to do. */
        assert_int_equal(netmap_diff(old, old, &d), 0);
        assert_int_equal(d.n_added + d.n_removed + d.n_changed, 0);
        assert_false(d.self_changed);
        netmap_diff_done(&d);

        /* No old map: everything is new. */
        assert_int_equal(netmap_diff(NULL, new, &d), 0);
        assert_int_equal(d.n_added, 3);
        assert_int_equal(d.n_removed + d.n_changed, 0);
        assert_true(d.self_changed);
}

static void diff_one_change(const char *key, cJSON *value, bool expect_changed) {
        _cleanup_json_ cJSON *j1 = make_netmap(), *j2 = make_netmap();
        _cleanup_(netmap_freep) Netmap *old = NULL, *new = NULL;
        _cleanup_(netmap_diff_done) NetmapDiff d = {};

        set(peer(j2, 0), key, value);
        old = parse_ok(j1);
        new = parse_ok(j2);
        assert_int_equal(netmap_diff(old, new, &d), 0);
        assert_int_equal(d.n_changed, expect_changed);
        assert_int_equal(d.n_added + d.n_removed, 0);
        assert_int_equal(netmap_node_equal(&old->peers[0], &new->peers[0]), !expect_changed);
}

static void test_diff_fields(void **state) {
        diff_one_change("name", cJSON_CreateString("laptop2"), true);
        diff_one_change("ipv4", cJSON_CreateString("100.64.0.77"), true);
        diff_one_change("ipv6", cJSON_CreateString("fd7a:115c:a1e0::77"), true);
        diff_one_change("ipv6", cJSON_CreateNull(), true);
        diff_one_change("relay", cJSON_CreateTrue(), true);
        diff_one_change("endpoints", cJSON_CreateArray(), true);
        diff_one_change("future", cJSON_CreateString("x"), false);

        /* Endpoint order is part of the node: the first is the observed one. */
        _cleanup_json_ cJSON *swapped = cJSON_CreateArray();
        cJSON_AddItemToArray(swapped, cJSON_CreateString("[2001:db8::1]:41641"));
        cJSON_AddItemToArray(swapped, cJSON_CreateString("192.0.2.2:41641"));
        diff_one_change("endpoints", cJSON_Duplicate(swapped, true), true);
}

static void test_diff_self(void **state) {
        _cleanup_json_ cJSON *j1 = make_netmap(), *j2 = make_netmap(), *j3 = make_netmap();
        _cleanup_(netmap_freep) Netmap *m1 = NULL, *m2 = NULL, *m3 = NULL;
        _cleanup_(netmap_diff_done) NetmapDiff d = {};

        set(cJSON_GetObjectItem(j2, "self"), "ipv4", cJSON_CreateString("100.64.0.33"));
        /* Own endpoints are for the others; they do not change our setup. */
        set(cJSON_GetObjectItem(j3, "self"), "endpoints", cJSON_CreateArray());
        m1 = parse_ok(j1);
        m2 = parse_ok(j2);
        m3 = parse_ok(j3);

        assert_int_equal(netmap_diff(m1, m2, &d), 0);
        assert_true(d.self_changed);
        assert_int_equal(d.n_added + d.n_removed + d.n_changed, 0);
        netmap_diff_done(&d);

        assert_int_equal(netmap_diff(m1, m3, &d), 0);
        assert_false(d.self_changed);
}

static void test_diff_many(void **state) {
        _cleanup_json_ cJSON *j1 = make_netmap(), *j2 = NULL;
        _cleanup_(netmap_freep) Netmap *old = NULL, *new = NULL;
        _cleanup_(netmap_diff_done) NetmapDiff d = {};
        cJSON *peers = cJSON_CreateArray();

        /* 2,000 peers: checks the sorted paths (uniqueness and diff) stay correct. */
        for (int i = 0; i < 2000; i++) {
                char name[32], a4[32], k[WG_KEY_B64_LEN + 1];
                WgKey key = {};
                cJSON *n = cJSON_CreateObject();

                snprintf(name, sizeof(name), "node-%d", i);
                snprintf(a4, sizeof(a4), "100.65.%d.%d", i / 256, i % 256);
                key.data[0] = 0xff;
                key.data[1] = (uint8_t) (i >> 8);
                key.data[2] = (uint8_t) i;
                key_to_base64(&key, k);
                cJSON_AddStringToObject(n, "name", name);
                cJSON_AddStringToObject(n, "public_key", k);
                cJSON_AddStringToObject(n, "ipv4", a4);
                cJSON_AddItemToArray(peers, n);
        }
        set(j1, "peers", peers);
        j2 = cJSON_Duplicate(j1, true);
        cJSON_DeleteItemFromArray(cJSON_GetObjectItem(j2, "peers"), 1000);
        set(peer(j2, 1500), "relay", cJSON_CreateTrue());

        old = parse_ok(j1);
        new = parse_ok(j2);
        assert_int_equal(netmap_diff(old, new, &d), 0);
        assert_int_equal(d.n_added, 0);
        assert_int_equal(d.n_removed, 1);
        assert_string_equal(d.removed[0]->name, "node-1000");
        assert_int_equal(d.n_changed, 1);
        assert_string_equal(d.changed[0]->name, "node-1501");

        /* A duplicate far apart in the list is still found. */
        set(peer(j1, 1999), "name", cJSON_CreateString("node-7"));
        parse_fail(j1, "peers[1999].name: same as peers[7].name");
}

static const char *register_json(const char *name, const char *token, cJSON *node_id) {
        static char buf[4096];
        _cleanup_json_ cJSON *r = cJSON_CreateObject();
        _cleanup_free_ char *s = NULL;

        if (node_id)
                cJSON_AddItemToObject(r, "node_id", node_id);
        if (name)
                cJSON_AddStringToObject(r, "name", name);
        if (token)
                cJSON_AddStringToObject(r, "token", token);
        cJSON_AddItemToObject(r, "netmap", make_netmap());
        s = cJSON_PrintUnformatted(r);
        snprintf(buf, sizeof(buf), "%s", s);
        return buf;
}

static void register_fail(const char *json, const char *expected) {
        RegisterReply r = {};
        _cleanup_free_ char *error = NULL;

        assert_int_equal(register_reply_parse(json, strlen(json), &r, &error), -EBADMSG);
        assert_string_equal(error, expected);
        assert_null(r.token);
        assert_null(r.netmap);
}

static void test_register_reply(void **state) {
        _cleanup_(register_reply_done) RegisterReply r = {};
        _cleanup_free_ char *error = NULL;
        const char *s;

        s = register_json("nas", "secret", cJSON_CreateNumber(3));
        assert_int_equal(register_reply_parse(s, strlen(s), &r, &error), 0);
        assert_null(error);
        assert_int_equal(r.node_id, 3);
        assert_string_equal(r.token, "secret");
        assert_string_equal(r.netmap->self.name, "nas");
        assert_int_equal(r.netmap->n_peers, 3);

        register_fail(register_json("laptop", "secret", cJSON_CreateNumber(3)),
                      "name: 'laptop' differs from netmap.self.name 'nas'");
        register_fail(register_json(NULL, "secret", cJSON_CreateNumber(3)), "name: missing");
        register_fail(register_json("nas", "", cJSON_CreateNumber(3)), "token: empty");
        register_fail(register_json("nas", NULL, cJSON_CreateNumber(3)), "token: missing");
        register_fail(register_json("nas", "secret", NULL), "node_id: missing");
        register_fail(register_json("nas", "secret", cJSON_CreateString("3")), "node_id: not a number");
        register_fail("{\"node_id\":1,\"name\":\"nas\",\"token\":\"t\"}", "netmap: missing");
        register_fail("{\"node_id\":1,\"name\":\"nas\",\"token\":\"t\",\"netmap\":{\"version\":1}}",
                      "netmap.domain: missing");
        register_fail("{\"node_id\":1,\"name\":\"nas\",\"token\":\"t\",\"netmap\":[]}",
                      "netmap: not a JSON object");
        register_fail("{\"node_id\":1,", "truncated or invalid JSON at offset 12");

        /* Errors inside the netmap carry the "netmap." prefix. */
        _cleanup_json_ cJSON *reply = cJSON_CreateObject(), *nm = make_netmap();
        set(peer(nm, 2), "name", cJSON_CreateString("laptop"));
        cJSON_AddNumberToObject(reply, "node_id", 1);
        cJSON_AddStringToObject(reply, "name", "nas");
        cJSON_AddStringToObject(reply, "token", "t");
        cJSON_AddItemToObject(reply, "netmap", TAKE_PTR(nm));
        _cleanup_free_ char *p = cJSON_PrintUnformatted(reply);
        register_fail(p, "netmap.peers[2].name: same as netmap.peers[0].name");
}

static cJSON *make_hub(void) {
        cJSON *hub = make_node("ignored", 9, 1, true), *eps = cJSON_CreateArray();

        cJSON_DeleteItemFromObject(hub, "name");
        cJSON_AddItemToArray(eps, cJSON_CreateString("192.0.2.1:41640"));
        set(hub, "endpoints", eps);
        return hub;
}

static void test_hub(void **state) {
        _cleanup_json_ cJSON *j = make_netmap();
        _cleanup_(netmap_freep) Netmap *without = NULL, *with = NULL, *moved = NULL;
        _cleanup_(netmap_diff_done) NetmapDiff d1 = {}, d2 = {}, d3 = {};
        char buf[INET6_ADDRSTRLEN];

        without = parse_ok(j);
        assert_false(without->has_hub);

        cJSON_AddItemToObject(j, "hub", make_hub());
        with = parse_ok(j);
        assert_true(with->has_hub);
        assert_string_equal(with->hub.name, "hub");
        assert_string_equal(inet_ntop(AF_INET, &with->hub.ipv4.in, buf, sizeof(buf)), "100.64.0.1");
        assert_string_equal(with->hub.endpoints[0], "192.0.2.1:41640");
        /* The relay flag concerns peers only. */
        assert_false(with->hub.relay);

        assert_int_equal(netmap_diff(without, with, &d1), 0);
        assert_true(d1.hub_changed);
        assert_int_equal(d1.n_added + d1.n_removed + d1.n_changed, 0);

        cJSON *eps = cJSON_CreateArray();
        cJSON_AddItemToArray(eps, cJSON_CreateString("198.51.100.1:41640"));
        set(cJSON_GetObjectItem(j, "hub"), "endpoints", eps);
        moved = parse_ok(j);
        assert_int_equal(netmap_diff(with, moved, &d2), 0);
        assert_true(d2.hub_changed);
        assert_int_equal(netmap_diff(moved, moved, &d3), 0);
        assert_false(d3.hub_changed);
        assert_int_equal(moved->hub.relay_port, 0);
}

static void test_hub_relay_port(void **state) {
        _cleanup_json_ cJSON *j = make_netmap();
        _cleanup_(netmap_freep) Netmap *without = NULL, *with = NULL;
        _cleanup_(netmap_diff_done) NetmapDiff d = {};

        cJSON_AddItemToObject(j, "hub", make_hub());
        without = parse_ok(j);
        cJSON_AddNumberToObject(cJSON_GetObjectItem(j, "hub"), "relay_port", 443);
        with = parse_ok(j);
        assert_int_equal(with->hub.relay_port, 443);
        /* a new relay port is a hub change: the relay moves */
        assert_int_equal(netmap_diff(without, with, &d), 0);
        assert_true(d.hub_changed);
        /* on a peer it means nothing */
        cJSON_AddNumberToObject(peer(j, 0), "relay_port", 0);
        netmap_free(parse_ok(j));
}

static void m_hub_two_endpoints(cJSON *m) {
        cJSON *hub = make_hub();
        cJSON_AddItemToArray(cJSON_GetObjectItem(hub, "endpoints"), cJSON_CreateString("192.0.2.2:1"));
        cJSON_AddItemToObject(m, "hub", hub);
}
static void m_hub_no_endpoint(cJSON *m) {
        cJSON *hub = make_hub();
        cJSON_DeleteItemFromObject(hub, "endpoints");
        cJSON_AddItemToObject(m, "hub", hub);
}
static void m_hub_key_of_peer(cJSON *m) {
        cJSON *hub = make_hub();
        _cleanup_free_ char *k = key_text(3);
        set(hub, "public_key", cJSON_CreateString(k));
        cJSON_AddItemToObject(m, "hub", hub);
}
static void m_hub_address_of_self(cJSON *m) {
        cJSON *hub = make_hub();
        set(hub, "ipv4", cJSON_CreateString("100.64.0.3"));
        cJSON_AddItemToObject(m, "hub", hub);
}
static void m_hub_outside(cJSON *m) {
        cJSON *hub = make_hub();
        set(hub, "ipv4", cJSON_CreateString("192.0.2.1"));
        cJSON_AddItemToObject(m, "hub", hub);
}
static void m_hub_string(cJSON *m) {
        cJSON_AddStringToObject(m, "hub", "192.0.2.1");
}
static void m_hub_relay_port(cJSON *m, cJSON *v) {
        cJSON *hub = make_hub();
        cJSON_AddItemToObject(hub, "relay_port", v);
        cJSON_AddItemToObject(m, "hub", hub);
}
static void m_hub_relay_port_0(cJSON *m) {
        m_hub_relay_port(m, cJSON_CreateNumber(0));
}
static void m_hub_relay_port_big(cJSON *m) {
        m_hub_relay_port(m, cJSON_CreateNumber(65536));
}
static void m_hub_relay_port_frac(cJSON *m) {
        m_hub_relay_port(m, cJSON_CreateNumber(443.5));
}
static void m_hub_relay_port_string(cJSON *m) {
        m_hub_relay_port(m, cJSON_CreateString("443"));
}

static void test_hub_rejected(void **state) {
        check_rejected(m_hub_two_endpoints, "hub.endpoints: the hub needs exactly one endpoint");
        check_rejected(m_hub_no_endpoint, "hub.endpoints: the hub needs exactly one endpoint");
        check_rejected(m_hub_key_of_peer, "hub.public_key: same as peers[1].public_key");
        check_rejected(m_hub_address_of_self, "hub.ipv4: same as self.ipv4");
        check_rejected(m_hub_outside, "hub.ipv4: 192.0.2.1 is not inside ipv4_range");
        check_rejected(m_hub_string, "hub: not an object");
        check_rejected(m_hub_relay_port_0, "hub.relay_port: not a port (1 … 65535)");
        check_rejected(m_hub_relay_port_big, "hub.relay_port: not a port (1 … 65535)");
        check_rejected(m_hub_relay_port_frac, "hub.relay_port: not a port (1 … 65535)");
        check_rejected(m_hub_relay_port_string, "hub.relay_port: not a port (1 … 65535)");
}

/* An error quotes the offending value, but stays one short line. */
static void test_error_one_line(void **state) {
        _cleanup_free_ char *long_name = malloc(5000);
        cJSON *m = make_netmap();

        set(peer(m, 0), "name", cJSON_CreateString("evil\nInjected: yes"));
        parse_fail(m, "peers[0].name: 'evil?Injected: yes' is not a valid DNS label");
        cJSON_Delete(m);

        assert_non_null(long_name);
        memset(long_name, 'x', 4999);
        long_name[4999] = 0;
        m = make_netmap();
        set(peer(m, 0), "name", cJSON_CreateString(long_name));
        {
                _cleanup_free_ char *text = cJSON_PrintUnformatted(m), *error = NULL;
                Netmap *nm = NULL;

                assert_int_equal(netmap_parse(text, strlen(text), &nm, &error), -EBADMSG);
                assert_int_equal(strlen(error), 256);
                assert_string_equal(error + 253, "...");
        }
        cJSON_Delete(m);
}

/* delta: version 13 from 12; laptop changed (relay), backup removed, tablet new */
static cJSON *make_delta(void) {
        cJSON *d = make_netmap(), *changed = cJSON_CreateArray(), *removed = cJSON_CreateArray();
        _cleanup_free_ char *backup = key_text(3);

        cJSON_DeleteItemFromObject(d, "peers");
        set(d, "version", cJSON_CreateNumber(13));
        set(d, "delta_from", cJSON_CreateNumber(12));
        cJSON_AddItemToArray(changed, make_node("laptop", 2, 2, true));
        cJSON_AddItemToArray(changed, make_node("tablet", 5, 6, false));
        cJSON_AddItemToArray(removed, cJSON_CreateString(backup));
        cJSON_AddItemToObject(d, "peers_changed", changed);
        cJSON_AddItemToObject(d, "peers_removed", removed);
        return d;
}

static int merge(cJSON *base, cJSON *delta, char **ret, char **error) {
        _cleanup_free_ char *b = cJSON_PrintUnformatted(base), *d = cJSON_PrintUnformatted(delta);
        size_t len = 0;
        int r;

        cJSON_Delete(base);
        cJSON_Delete(delta);
        assert_true(netmap_json_is_delta(d, strlen(d)));
        assert_false(netmap_json_is_delta(b, strlen(b)));
        r = netmap_delta_merge(b, strlen(b), d, strlen(d), ret, &len, error);
        if (r >= 0)
                assert_int_equal(len, strlen(*ret));
        return r;
}

static void test_delta_merge(void **state) {
        _cleanup_free_ char *text = NULL, *error = NULL;
        _cleanup_(netmap_freep) Netmap *m = NULL;
        const NetmapNode *n;
        cJSON *bad;

        assert_int_equal(merge(make_netmap(), make_delta(), &text, &error), 0);
        assert_int_equal(netmap_parse(text, strlen(text), &m, &error), 0);
        assert_int_equal(m->version, 13);
        assert_int_equal(m->n_peers, 3);
        assert_non_null(n = netmap_find_peer_by_name(m, "laptop"));
        assert_true(n->relay);
        assert_non_null(netmap_find_peer_by_name(m, "tablet"));
        assert_non_null(netmap_find_peer_by_name(m, "phone"));
        assert_null(netmap_find_peer_by_name(m, "backup"));
        assert_null(strstr(text, "delta_from"));
        text = mfree(text);

        /* not based on the version we have */
        bad = make_delta();
        set(bad, "delta_from", cJSON_CreateNumber(11));
        assert_int_equal(merge(make_netmap(), bad, &text, &error), -ESTALE);

        bad = make_delta();
        set(bad, "peers_removed", cJSON_CreateString("x"));
        assert_int_equal(merge(make_netmap(), bad, &text, &error), -EBADMSG);
        assert_string_equal(error, "peers_removed: not an array");
        error = mfree(error);

        bad = make_delta();
        cJSON_AddItemToArray(cJSON_GetObjectItem(bad, "peers_changed"), cJSON_CreateNumber(1));
        assert_int_equal(merge(make_netmap(), bad, &text, &error), -EBADMSG);
        error = mfree(error);

        bad = make_delta();
        cJSON_AddItemToArray(cJSON_GetObjectItem(bad, "peers_removed"), cJSON_CreateNull());
        assert_int_equal(merge(make_netmap(), bad, &text, &error), -EBADMSG);
        error = mfree(error);

        bad = make_netmap();
        cJSON_DeleteItemFromObject(bad, "peers");
        assert_int_equal(merge(bad, make_delta(), &text, &error), -EBADMSG);
        assert_null(text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_minimal),
                cmocka_unit_test(test_rejected),
                cmocka_unit_test(test_range_boundaries),
                cmocka_unit_test(test_invalid_json),
                cmocka_unit_test(test_from_json),
                cmocka_unit_test(test_find_and_resolve),
                cmocka_unit_test(test_diff),
                cmocka_unit_test(test_diff_fields),
                cmocka_unit_test(test_diff_self),
                cmocka_unit_test(test_diff_many),
                cmocka_unit_test(test_register_reply),
                cmocka_unit_test(test_hub),
                cmocka_unit_test(test_hub_relay_port),
                cmocka_unit_test(test_hub_rejected),
                cmocka_unit_test(test_delta_merge),
                cmocka_unit_test(test_error_one_line),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
