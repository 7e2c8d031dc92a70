/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* netmap_delta_apply() against the text path it stands in for
 * (netmap_delta_merge() + netmap_parse()): where it takes a delta, the same
 * netmap; where the text path refuses one, it refuses it too (-EAGAIN).
 * And netmap_diff()'s in-order pairing against a plain O(n²) diff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "netmap.h"
#include "strv.h"

static char *key_text(unsigned k) {
        WgKey key = {};
        char *buf = malloc(WG_KEY_B64_LEN + 1);

        assert_non_null(buf);
        key.data[0] = 0x42;
        key.data[30] = (uint8_t) (k >> 8);
        key.data[31] = (uint8_t) k;
        key_to_base64(&key, buf);
        return buf;
}

/* host: the last two bytes of its addresses; name "nNAME" */
static cJSON *make_node(unsigned name, unsigned key, unsigned host) {
        _cleanup_free_ char *k = key_text(key);
        char n[32], a4[32], a6[64], ep[64];
        cJSON *o = cJSON_CreateObject(), *eps = cJSON_CreateArray();

        snprintf(n, sizeof(n), "n%u", name);
        snprintf(a4, sizeof(a4), "100.64.%u.%u", host >> 8, host & 255);
        snprintf(a6, sizeof(a6), "fd7a:115c:a1e0::%x", host);
        snprintf(ep, sizeof(ep), "192.0.2.%u:%u", 1 + host % 250, 20000 + host);
        cJSON_AddItemToArray(eps, cJSON_CreateString(ep));
        cJSON_AddStringToObject(o, "name", n);
        cJSON_AddStringToObject(o, "public_key", k);
        cJSON_AddStringToObject(o, "ipv4", a4);
        cJSON_AddStringToObject(o, "ipv6", a6);
        cJSON_AddItemToObject(o, "endpoints", eps);
        cJSON_AddBoolToObject(o, "relay", host % 3 == 0);
        return o;
}

static void add_header(cJSON *m, unsigned version, const char *v4_range) {
        cJSON_AddNumberToObject(m, "version", version);
        cJSON_AddStringToObject(m, "domain", "mesh.internal");
        cJSON_AddStringToObject(m, "ipv4_range", v4_range);
        cJSON_AddStringToObject(m, "ipv6_range", "fd7a:115c:a1e0::/48");
        cJSON_AddItemToObject(m, "self", make_node(9000, 9000, 9000));
}

/* version 12: self (9000), peers 0..n-1 (name, key, host = i + 10), a hub,
 * and with extras two devices and a filter */
static cJSON *make_base(unsigned n, bool extras) {
        cJSON *m = cJSON_CreateObject(), *peers = cJSON_CreateArray(), *hub = make_node(0, 9001, 1);

        add_header(m, 12, "100.64.0.0/10");
        for (unsigned i = 0; i < n; i++)
                cJSON_AddItemToArray(peers, make_node(i, i, i + 10));
        cJSON_AddItemToObject(m, "peers", peers);
        cJSON_DeleteItemFromObject(hub, "name");
        cJSON_AddItemToObject(m, "hub", hub);
        if (extras) {
                cJSON *devices = cJSON_CreateArray(),
                      *f = cJSON_Parse("[{\"src\":[\"100.64.0.0/10\"],\"dst\":[\"100.64.35."
                                       "40/32\"],\"ports\":[\"22/tcp\",\"icmp\"]}]");

                for (unsigned i = 0; i < 2; i++) {
                        cJSON *d = make_node(8000 + i, 8000 + i, 8000 + i);
                        cJSON_DeleteItemFromObject(d, "endpoints");
                        cJSON_DeleteItemFromObject(d, "relay");
                        cJSON_AddItemToArray(devices, d);
                }
                cJSON_AddItemToObject(m, "devices", devices);
                cJSON_AddItemToObject(m, "filter", f);
        }
        return m;
}

static cJSON *make_delta(void) {
        cJSON *d = cJSON_CreateObject(), *hub = make_node(0, 9001, 1);

        add_header(d, 13, "100.64.0.0/10");
        cJSON_AddNumberToObject(d, "delta_from", 12);
        cJSON_AddItemToObject(d, "peers_changed", cJSON_CreateArray());
        cJSON_AddItemToObject(d, "peers_removed", cJSON_CreateArray());
        cJSON_DeleteItemFromObject(hub, "name");
        cJSON_AddItemToObject(d, "hub", hub);
        return d;
}

static void delta_change(cJSON *d, unsigned name, unsigned key, unsigned host) {
        cJSON_AddItemToArray(cJSON_GetObjectItem(d, "peers_changed"), make_node(name, key, host));
}

static void delta_remove(cJSON *d, unsigned key) {
        _cleanup_free_ char *k = key_text(key);
        cJSON_AddItemToArray(cJSON_GetObjectItem(d, "peers_removed"), cJSON_CreateString(k));
}

static bool filters_equal(const NetmapFilter *a, const NetmapFilter *b) {
        if (!a || !b)
                return a == b;
        if (a->n_entries != b->n_entries)
                return false;
        for (size_t i = 0; i < a->n_entries; i++) {
                const NetmapFilterEntry *x = &a->entries[i], *y = &b->entries[i];

                if (x->n_src != y->n_src || x->n_dst != y->n_dst || x->n_ports != y->n_ports ||
                    memcmp(x->src, y->src, x->n_src * sizeof(*x->src)) != 0 ||
                    memcmp(x->dst, y->dst, x->n_dst * sizeof(*x->dst)) != 0 ||
                    (x->n_ports > 0 && memcmp(x->ports, y->ports, x->n_ports * sizeof(*x->ports)) != 0))
                        return false;
        }
        return true;
}

static void assert_netmaps_equal(const Netmap *a, const Netmap *b) {
        assert_int_equal(a->version, b->version);
        assert_string_equal(a->domain, b->domain);
        assert_memory_equal(&a->ipv4_range, &b->ipv4_range, sizeof(a->ipv4_range));
        assert_int_equal(a->ipv4_prefixlen, b->ipv4_prefixlen);
        assert_int_equal(a->has_ipv6_range, b->has_ipv6_range);
        assert_true(netmap_node_equal(&a->self, &b->self));
        assert_int_equal(a->has_hub, b->has_hub);
        assert_true(!a->has_hub || netmap_node_equal(&a->hub, &b->hub));
        assert_int_equal(a->n_peers, b->n_peers);
        for (size_t i = 0; i < a->n_peers; i++) {
                assert_true(netmap_node_equal(&a->peers[i], &b->peers[i]));
                assert_int_equal(a->peers[i].has_ipv6, b->peers[i].has_ipv6);
        }
        assert_int_equal(a->n_devices, b->n_devices);
        for (size_t i = 0; i < a->n_devices; i++)
                assert_true(netmap_node_equal(&a->devices[i], &b->devices[i]));
        assert_true(filters_equal(a->filter, b->filter));
}

/* Both paths on (base, delta), which it frees: 1 when both take it (the
 * same netmap), 0 when both refuse it, -1 when only the text path takes it
 * (a delta left to it on purpose). */
static int both_paths(cJSON *base, cJSON *delta) {
        _cleanup_free_ char *b = cJSON_PrintUnformatted(base), *d = cJSON_PrintUnformatted(delta);
        _cleanup_free_ char *merged = NULL, *error = NULL;
        _cleanup_(netmap_freep) Netmap *bm = NULL, *fast = NULL, *slow = NULL;
        size_t len = 0;
        int r_fast, r_slow;

        cJSON_Delete(base);
        cJSON_Delete(delta);
        assert_int_equal(netmap_parse(b, strlen(b), &bm, &error), 0);
        r_fast = netmap_delta_apply(bm, d, strlen(d), &fast);
        r_slow = netmap_delta_merge(b, strlen(b), d, strlen(d), &merged, &len, &error);
        if (r_slow >= 0)
                r_slow = netmap_parse(merged, len, &slow, &error);
        if (r_fast >= 0) {
                assert_int_equal(r_slow, 0);
                assert_netmaps_equal(fast, slow);
                return 1;
        }
        assert_int_equal(r_fast, -EAGAIN);
        return r_slow >= 0 ? -1 : 0;
}

static void test_common(void **state) {
        cJSON *d = make_delta();

        delta_change(d, 3, 3, 500);   /* moved */
        delta_change(d, 100, 100, 7); /* new */
        delta_remove(d, 5);
        assert_int_equal(1, both_paths(make_base(20, false), d));

        /* devices and filter of the base stay */
        d = make_delta();
        delta_change(d, 4, 4, 600);
        assert_int_equal(1, both_paths(make_base(20, true), d));

        /* nothing changed but the version */
        assert_int_equal(1, both_paths(make_base(20, true), make_delta()));

        /* a removed key that is no peer: ignored by both */
        d = make_delta();
        delta_remove(d, 4000);
        assert_int_equal(1, both_paths(make_base(5, false), d));
}

static void test_refused(void **state) {
        cJSON *d;

        /* a changed peer on a kept one's name, key-less clash on address */
        d = make_delta();
        delta_change(d, 2, 300, 900);
        assert_int_equal(0, both_paths(make_base(10, false), d));
        d = make_delta();
        delta_change(d, 300, 300, 12);
        assert_int_equal(0, both_paths(make_base(10, false), d));
        /* on a device's address, on the hub's, on self's */
        d = make_delta();
        delta_change(d, 300, 300, 8001);
        assert_int_equal(0, both_paths(make_base(10, true), d));
        d = make_delta();
        delta_change(d, 300, 300, 1);
        assert_int_equal(0, both_paths(make_base(10, false), d));
        d = make_delta();
        delta_change(d, 300, 300, 9000);
        assert_int_equal(0, both_paths(make_base(10, false), d));
        /* self moved onto a kept peer */
        d = make_delta();
        cJSON_ReplaceItemInObject(d, "self", make_node(9000, 9000, 11));
        assert_int_equal(0, both_paths(make_base(10, false), d));
        /* the hub moved onto a kept peer */
        d = make_delta();
        cJSON *hub = make_node(0, 9001, 13);
        cJSON_DeleteItemFromObject(hub, "name");
        cJSON_ReplaceItemInObject(d, "hub", hub);
        assert_int_equal(0, both_paths(make_base(10, false), d));
        /* a changed peer outside the range */
        d = make_delta();
        delta_change(d, 300, 300, 30);
        cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "peers_changed"), 0), "ipv4",
                                  cJSON_CreateString("10.0.0.1"));
        assert_int_equal(0, both_paths(make_base(10, false), d));
}

static int fast_only(cJSON *base, cJSON *delta) {
        _cleanup_free_ char *b = cJSON_PrintUnformatted(base), *d = cJSON_PrintUnformatted(delta);
        _cleanup_(netmap_freep) Netmap *bm = NULL, *fast = NULL;

        cJSON_Delete(base);
        cJSON_Delete(delta);
        assert_int_equal(netmap_parse(b, strlen(b), &bm, NULL), 0);
        return netmap_delta_apply(bm, d, strlen(d), &fast);
}

/* what the text path takes with rules of its own: left to it */
static void test_left_to_text_path(void **state) {
        cJSON *d;

        d = make_delta();
        cJSON_ReplaceItemInObject(d, "delta_from", cJSON_CreateNumber(11));
        assert_int_equal(fast_only(make_base(5, false), d), -EAGAIN);
        d = make_delta();
        cJSON_AddItemToObject(d, "devices", cJSON_CreateArray());
        assert_int_equal(fast_only(make_base(5, true), d), -EAGAIN);
        d = make_delta();
        cJSON_AddItemToObject(d, "filter", cJSON_CreateArray());
        assert_int_equal(fast_only(make_base(5, false), d), -EAGAIN);
        d = make_delta();
        cJSON_ReplaceItemInObject(d, "ipv4_range", cJSON_CreateString("100.64.0.0/11"));
        assert_int_equal(fast_only(make_base(5, false), d), -EAGAIN);
        d = make_delta();
        cJSON_ReplaceItemInObject(d, "domain", cJSON_CreateString("other.internal"));
        assert_int_equal(fast_only(make_base(5, false), d), -EAGAIN);
        /* a key that decodes, but not in the canonical text the text path compares */
        d = make_delta();
        _cleanup_free_ char *k = key_text(3);
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        /* the last character carries 4 bits of the key and 2 zero bits: one set */
        k[WG_KEY_B64_LEN - 2] = b64[(strchr(b64, k[WG_KEY_B64_LEN - 2]) - b64) | 1];
        cJSON_AddItemToArray(cJSON_GetObjectItem(d, "peers_removed"), cJSON_CreateString(k));
        assert_int_equal(fast_only(make_base(5, false), d), -EAGAIN);
        /* more changes than the fast path checks one by one */
        d = make_delta();
        for (unsigned i = 0; i < 65; i++)
                delta_change(d, 1000 + i, 1000 + i, 1000 + i);
        assert_int_equal(fast_only(make_base(5, false), d), -EAGAIN);
        assert_int_equal(fast_only(make_base(5, false), cJSON_CreateString("x")), -EAGAIN);
}

/* Random deltas, some of them clashing: the two paths never disagree. */
static void test_random(void **state) {
        unsigned seed = 17, agreed = 0, refused = 0;

        for (unsigned round = 0; round < 300; round++) {
                cJSON *d = make_delta();
                unsigned n = 1 + (unsigned) rand_r(&seed) % 40, changes = (unsigned) rand_r(&seed) % 5;

                for (unsigned c = 0; c < changes; c++) {
                        unsigned who = (unsigned) rand_r(&seed) % (n + 3);
                        /* mostly fresh addresses, sometimes one in use */
                        unsigned host = rand_r(&seed) % 4 == 0 ? 10 + (unsigned) rand_r(&seed) % n
                                                               : 2000 + round * 8 + c;
                        if (rand_r(&seed) % 3 == 0)
                                delta_remove(d, who);
                        else
                                delta_change(d, rand_r(&seed) % 5 == 0 ? (unsigned) rand_r(&seed) % n : who,
                                             who, host);
                }
                int r = both_paths(make_base(n, round % 2 == 0), d);
                assert_int_not_equal(r, -1);
                agreed += r == 1;
                refused += r == 0;
        }
        /* both kinds were tried */
        assert_true(agreed > 50);
        assert_true(refused > 10);
}

/* netmap_diff() against a plain pairing by key, on reorderings the in-order
 * walk does and does not follow. */
static void test_diff_orders(void **state) {
        unsigned seed = 5;

        for (unsigned round = 0; round < 100; round++) {
                _cleanup_(netmap_freep) Netmap *old = NULL, *new = NULL;
                _cleanup_free_ char *a = NULL, *b = NULL;
                _cleanup_(netmap_diff_done) NetmapDiff diff = {};
                cJSON *x = make_base(30, false), *y = make_base(0, false),
                      *py = cJSON_GetObjectItem(y, "peers");
                size_t added = 0, removed = 0, changed = 0;

                for (unsigned i = 0; i < 30; i++) {
                        unsigned r = (unsigned) rand_r(&seed) % 10;
                        if (r == 0)
                                continue; /* removed */
                        /* changed (a new address), or in the middle: a new one */
                        cJSON_AddItemToArray(py, make_node(i, i, r == 1 ? 3000 + i : i + 10));
                        if (r == 2)
                                cJSON_AddItemToArray(py, make_node(100 + i, 100 + i, 4000 + i));
                }
                if (round % 3 == 0) /* reversed: nothing in order */
                        for (int i = cJSON_GetArraySize(py) - 1; i > 0; i--)
                                cJSON_AddItemToArray(py, cJSON_DetachItemFromArray(py, 0));
                a = cJSON_PrintUnformatted(x);
                b = cJSON_PrintUnformatted(y);
                cJSON_Delete(x);
                cJSON_Delete(y);
                assert_int_equal(netmap_parse(a, strlen(a), &old, NULL), 0);
                assert_int_equal(netmap_parse(b, strlen(b), &new, NULL), 0);
                assert_int_equal(netmap_diff(old, new, &diff), 0);

                for (size_t k = 0; k < new->n_peers; k++) {
                        const NetmapNode *o = netmap_find_peer_by_key(old, &new->peers[k].public_key);
                        if (!o)
                                assert_ptr_equal(diff.added[added++], &new->peers[k]);
                        else if (!netmap_node_equal(o, &new->peers[k]))
                                assert_ptr_equal(diff.changed[changed++], &new->peers[k]);
                }
                for (size_t i = 0; i < old->n_peers; i++)
                        if (!netmap_find_peer_by_key(new, &old->peers[i].public_key))
                                assert_ptr_equal(diff.removed[removed++], &old->peers[i]);
                assert_int_equal(diff.n_added, added);
                assert_int_equal(diff.n_changed, changed);
                assert_int_equal(diff.n_removed, removed);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_common),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_left_to_text_path),
                cmocka_unit_test(test_random),
                cmocka_unit_test(test_diff_orders),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
