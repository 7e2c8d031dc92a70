/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The netmap and delta JSON, byte for byte, as rendered from one fixed store:
 * a guard for the restructuring of issue 13 (the files under golden/ were
 * made by the code before the netmap rendering moved to src/shared/).
 * MESHD_GOLDEN_UPDATE=1 rewrites them instead of comparing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include "netmap.h"
#include "store.h"
#include "test-util.h"

/* GOLDEN_DIR: the committed files' directory, -D by tests/unit/meson.build */

#define NOW 1700000000

/* Valid WireGuard keys (32 bytes in base64); the store does not decode them,
 * the node's parser does. */
static const char *const keys[] = {
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAM=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAU=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAY=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAc=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAg=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAk=",
};
#define HUB_KEY keys[7]

enum {
        ALPHA,
        BETA,
        GAMMA,
        ALPHA2,
        LOCALHOST2,
        EPSILON,
        ZETA,
        ETA,
        N_NODES
};

typedef struct Fixture {
        char *dir;
        Store *store;
        int64_t ids[N_NODES];
} Fixture;

static int64_t reg(Store *s, const char *key, const char *name, char *const *endpoints) {
        _cleanup_free_ char *token = NULL;
        StoreNode n = {};
        int64_t id;

        assert_int_equal(store_secret_new(NULL, &token), 0);
        assert_int_equal(store_register_node(s,
                                             &(StoreRegistration) {
                                                     .authkey = "k",
                                                     .public_key = key,
                                                     .name = name,
                                                     .endpoints = endpoints,
                                                     .token = token,
                                             },
                                             NOW, &n),
                         0);
        id = n.id;
        store_node_done(&n);
        return id;
}

static void report(Store *s, int64_t reporter, const char *peer_key, bool direct) {
        assert_true(store_report_paths(s, reporter,
                                       &(StorePathReport) { .public_key = peer_key, .direct = direct }, 1,
                                       NOW) >= 0);
}

/* The mesh at its first version: members with and without endpoints,
 * observed endpoints, a suffixed and a reserved name, a relayed pair, a
 * removed node held back by its certificate and an expired node. */
static int setup(void **state) {
        char *eps_alpha[] = { (char *) "192.0.2.10:41641", (char *) "10.0.0.5:41641", NULL };
        char *eps_beta[] = { (char *) "[2001:db8::5]:51820", NULL };
        char *eps_alpha2[] = { (char *) "198.51.100.20:41641", NULL };
        Fixture *f = calloc(1, sizeof(*f));
        char path[128];

        assert_non_null(f);
        f->dir = test_tmpdir_new("test-netmap-golden");
        snprintf(path, sizeof(path), "%s/%s", f->dir, STORE_DB_FILE);
        assert_int_equal(store_open(path, true, &f->store), 0);
        assert_int_equal(store_init_settings(f->store, "https://127.0.0.1:8443", "mesh.internal",
                                             "100.64.0.0/10", "fd7a:115c:a1e0::/48"),
                         0);
        assert_int_equal(store_set_setting(f->store, "hub_public_key", HUB_KEY), 0);
        assert_int_equal(store_set_setting(f->store, "hub_endpoint", "192.0.2.1:41640"), 0);
        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);

        f->ids[ALPHA] = reg(f->store, keys[0], "alpha", eps_alpha);
        f->ids[BETA] = reg(f->store, keys[1], "beta", eps_beta);
        f->ids[GAMMA] = reg(f->store, keys[2], "gamma", NULL);
        f->ids[ALPHA2] = reg(f->store, keys[3], "alpha", eps_alpha2);
        f->ids[LOCALHOST2] = reg(f->store, keys[4], "localhost", NULL);
        f->ids[EPSILON] = reg(f->store, keys[5], "epsilon", NULL);
        f->ids[ZETA] = reg(f->store, keys[6], "zeta", NULL);

        assert_int_equal(store_set_observed_endpoints(f->store,
                                                      (StoreObservation[]) {
                                                              { f->ids[ALPHA], "203.0.113.5:6000" },
                                                              { f->ids[BETA], "[2001:db8::5]:51820" },
                                                              { f->ids[GAMMA], "198.51.100.9:7000" },
                                                      },
                                                      3),
                         3);
        report(f->store, f->ids[ALPHA], keys[1], false);
        report(f->store, f->ids[GAMMA], keys[0], true);
        report(f->store, f->ids[BETA], keys[2], true);
        report(f->store, f->ids[ALPHA2], keys[4], false);

        assert_int_equal(store_note_certificate(f->store, f->ids[EPSILON], NOW + 86400), 0);
        assert_int_equal(store_remove_node(f->store, "epsilon"), 0);
        assert_int_equal(store_expire_node(f->store, "zeta"), 0);

        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        store_free(f->store);
        test_tmpdir_free(f->dir);
        free(f);
        return 0;
}

/* The changes between the two versions of the deltas. */
static void change(Fixture *f) {
        char *eps_alpha2[] = { (char *) "198.51.100.21:41641", (char *) "10.1.0.7:41641", NULL };

        assert_int_equal(store_set_endpoints(f->store, f->ids[ALPHA2], eps_alpha2), 1);
        assert_int_equal(store_set_observed_endpoints(
                                 f->store, (StoreObservation[]) { { f->ids[BETA], "192.0.2.77:4000" } }, 1),
                         1);
        report(f->store, f->ids[ALPHA], keys[1], true);  /* alpha-beta direct again */
        report(f->store, f->ids[GAMMA], keys[3], false); /* gamma-alpha-2 now relayed */
        assert_int_equal(store_remove_node(f->store, "localhost-2"), 0);
        assert_int_equal(store_renew_node(f->store, "zeta"), 0);
        f->ids[ETA] = reg(f->store, keys[8], "eta", NULL);
}

static void golden_compare(const char *name, const char *got, size_t got_len) {
        _cleanup_free_ char *path = NULL, *want = NULL;
        _cleanup_fclose_ FILE *fp = NULL;
        size_t want_len = 0, i;
        long size;

        assert_true(asprintf(&path, "%s/%s", GOLDEN_DIR, name) > 0);
        assert_int_equal(strlen(got), got_len);

        if (getenv("MESHD_GOLDEN_UPDATE")) {
                fp = fopen(path, "we");
                assert_non_null(fp);
                assert_int_equal(fwrite(got, 1, got_len, fp), got_len);
                return;
        }

        fp = fopen(path, "re");
        if (!fp)
                fail_msg("%s: %m (MESHD_GOLDEN_UPDATE=1 writes it)", path);
        assert_int_equal(fseek(fp, 0, SEEK_END), 0);
        size = ftell(fp);
        assert_true(size >= 0);
        rewind(fp);
        want_len = (size_t) size;
        want = malloc(want_len + 1);
        assert_non_null(want);
        assert_int_equal(fread(want, 1, want_len, fp), want_len);
        want[want_len] = 0;

        if (want_len == got_len && memcmp(want, got, got_len) == 0)
                return;
        for (i = 0; i < MIN(want_len, got_len) && want[i] == got[i]; i++)
                ;
        print_error("%s differs at byte %zu (want %zu bytes, got %zu)\n"
                    "  want: …%.80s\n"
                    "  got:  …%.80s\n",
                    path, i, want_len, got_len, want + (i > 20 ? i - 20 : 0), got + (i > 20 ? i - 20 : 0));
        fail();
}

static void check_full(const NetmapSnapshot *snap, int64_t self_id, const char *name) {
        _cleanup_(netmap_freep) Netmap *m = NULL;
        _cleanup_free_ char *json = NULL, *error = NULL;
        size_t len;

        assert_int_equal(netmap_snapshot_render(snap, self_id, &json, &len), 0);
        golden_compare(name, json, len);
        /* and the node's parser takes it */
        if (netmap_parse(json, len, &m, &error) < 0)
                fail_msg("%s: %s", name, error);
}

static NetmapSnapshot *load(Fixture *f, bool with_hub) {
        NetmapSnapshot *snap = NULL;

        assert_int_equal(netmap_snapshot_load(f->store,
                                              with_hub ? &(NetmapHub) { .public_key = HUB_KEY,
                                                                        .endpoint = "192.0.2.1:41640",
                                                                        .relay_port = 8443 }
                                                       : NULL,
                                              &snap),
                         0);
        return snap;
}

static void test_full(void **state) {
        Fixture *f = *state;
        _cleanup_(netmap_snapshot_freep) NetmapSnapshot *hub = load(f, true), *plain = load(f, false);
        _cleanup_free_ char *json = NULL;
        size_t len;

        check_full(hub, f->ids[ALPHA], "v1-alpha.json");
        check_full(hub, f->ids[BETA], "v1-beta.json");
        check_full(hub, f->ids[GAMMA], "v1-gamma.json");
        check_full(hub, f->ids[ALPHA2], "v1-alpha-2.json");
        check_full(hub, f->ids[LOCALHOST2], "v1-localhost-2.json");
        check_full(plain, f->ids[ALPHA], "v1-alpha-nohub.json");
        check_full(plain, f->ids[ALPHA2], "v1-alpha-2-nohub.json");

        /* removed and expired nodes get none */
        assert_int_equal(netmap_snapshot_render(hub, f->ids[EPSILON], &json, &len), -ENOENT);
        assert_int_equal(netmap_snapshot_render(hub, f->ids[ZETA], &json, &len), -ENOENT);
}

static void check_delta(NetmapSnapshot *snap, const NetmapSnapshot *prev, int64_t self_id, const char *name) {
        _cleanup_free_ char *json = NULL, *base = NULL, *merged = NULL, *error = NULL;
        _cleanup_(netmap_freep) Netmap *m = NULL;
        size_t len, base_len, merged_len;

        assert_int_equal(netmap_snapshot_render_delta(snap, prev, self_id, &json, &len), 0);
        golden_compare(name, json, len);
        /* the node merges it into its netmap, and the result parses */
        assert_int_equal(netmap_snapshot_render(prev, self_id, &base, &base_len), 0);
        if (netmap_delta_merge(base, base_len, json, len, &merged, &merged_len, &error) < 0)
                fail_msg("%s: %s", name, error);
        if (netmap_parse(merged, merged_len, &m, &error) < 0)
                fail_msg("%s: %s", name, error);
}

static void test_delta(void **state) {
        Fixture *f = *state;
        _cleanup_(netmap_snapshot_freep) NetmapSnapshot *v1 = load(f, true), *v2 = NULL, *v2_plain = NULL,
                                                        *v1_plain = load(f, false);
        _cleanup_free_ char *json = NULL;
        size_t len;

        change(f);
        v2 = load(f, true);
        v2_plain = load(f, false);

        check_full(v2, f->ids[ALPHA], "v2-alpha.json");
        check_full(v2, f->ids[ZETA], "v2-zeta.json");
        check_full(v2, f->ids[ETA], "v2-eta.json");

        /* the first delta works out the changes, the others reuse them */
        check_delta(v2, v1, f->ids[ALPHA], "delta-alpha.json");
        check_delta(v2, v1, f->ids[BETA], "delta-beta.json");
        check_delta(v2, v1, f->ids[GAMMA], "delta-gamma.json");
        check_delta(v2, v1, f->ids[ALPHA2], "delta-alpha-2.json");
        check_delta(v2_plain, v1_plain, f->ids[ALPHA], "delta-alpha-nohub.json");

        /* gone since v1, or new since v1 */
        assert_int_equal(netmap_snapshot_render_delta(v2, v1, f->ids[LOCALHOST2], &json, &len), -ENOENT);
        assert_int_equal(netmap_snapshot_render_delta(v2, v1, f->ids[ETA], &json, &len), -ESTALE);
        assert_int_equal(netmap_snapshot_render_delta(v2, v1, f->ids[ZETA], &json, &len), -ESTALE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_full, setup, teardown),
                cmocka_unit_test_setup_teardown(test_delta, setup, teardown),
        };

        log_setup("test-netmap-golden", LOG_TARGET_CONSOLE);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
