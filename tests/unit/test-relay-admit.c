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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "relay-admit.h"
#include "relay-server.h"
#include "request.h"
#include "store.h"
#include "test-util.h"

#define KEY_A "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="
#define KEY_B "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI="

typedef struct Fixture {
        char *dir, path[128];
        Store *store;
        sd_event *event;
        RelayServer *rs;
        int hub_fd;
        char *token_a, *token_b;
        unsigned closed;
} Fixture;

static void on_closed(void *connection, void *userdata) {
        Fixture *f = userdata;
        f->closed++;
}

static char *reg(Store *s, const char *key, const char *name) {
        char *token = NULL;
        StoreNode n = {};

        assert_int_equal(store_secret_new(NULL, &token), 0);
        assert_int_equal(store_register_node(s,
                                             &(StoreRegistration) { .authkey = "k",
                                                                    .public_key = key,
                                                                    .name = name,
                                                                    .token = token },
                                             time(NULL), &n),
                         0);
        store_node_done(&n);
        return token;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        union sockaddr_union sa = { .in = { .sin_family = AF_INET,
                                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK) } };
        socklen_t len = sizeof(sa.in);
        RelayServerHooks hooks = { .closed = on_closed, .userdata = f };

        f->dir = test_tmpdir_new("test-relay-admit");
        snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, STORE_DB_FILE);
        assert_int_equal(store_open(f->path, true, &f->store), 0);
        assert_int_equal(store_init_settings(f->store, "https://127.0.0.1:8443", "mesh.internal",
                                             "100.64.0.0/10", "fd7a:115c:a1e0::/48"),
                         0);
        assert_int_equal(store_authkey_add(f->store, "k", true, 0), 0);
        f->token_a = reg(f->store, KEY_A, "a");
        f->token_b = reg(f->store, KEY_B, "b");

        assert_int_equal(sd_event_new(&f->event), 0);
        f->hub_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        assert_int_equal(bind(f->hub_fd, &sa.sa, sizeof(sa.in)), 0);
        assert_int_equal(getsockname(f->hub_fd, &sa.sa, &len), 0);
        assert_int_equal(relay_server_new(f->event, ntohs(sa.in.sin_port), 1, &hooks, &f->rs), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        relay_server_free(f->rs);
        close(f->hub_fd);
        sd_event_unref(f->event);
        store_free(f->store);
        test_tmpdir_free(f->dir);
        free(f->token_a);
        free(f->token_b);
        free(f);
        return 0;
}

static void expect(Fixture *f, const RelayServer *rs, bool disabled, const char *auth, const char *upgrade,
                   unsigned status, const char *error) {
        _cleanup_(relay_admission_done) RelayAdmission a = {};

        assert_int_equal(relay_admit(f->store, rs, disabled, auth, upgrade, &a), 0);
        assert_int_equal(a.status, status);
        assert_string_equal(a.error, error);
        assert_null(a.name);
}

static void test_admit(void **state) {
        Fixture *f = *state;
        _cleanup_(relay_admission_done) RelayAdmission a = {};
        _cleanup_free_ char *auth = NULL;
        WgKey k;

        assert_true(asprintf(&auth, "bearer   %s", f->token_a) > 0);
        assert_int_equal(relay_admit(f->store, f->rs, false, auth, "meshd-relay/1", &a), 0);
        assert_int_equal(a.status, 0);
        assert_string_equal(a.name, "a");
        assert_true(a.id > 0);
        assert_int_equal(key_from_base64(KEY_A, &k), 0);
        assert_true(key_equal(&a.key, &k));
}

static void test_attack_admit_refusals(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *a = NULL, *b = NULL;
        char long_token[REQUEST_TOKEN_MAX + 16];
        int sv[2];
        WgKey k;

        assert_true(asprintf(&a, "Bearer %s", f->token_a) > 0);
        assert_true(asprintf(&b, "Bearer %s", f->token_b) > 0);
        memset(long_token, 'x', sizeof(long_token) - 1);
        long_token[sizeof(long_token) - 1] = 0;
        memcpy(long_token, "Bearer ", 7);

        expect(f, f->rs, false, NULL, "meshd-relay/1", 401, "missing node token");
        expect(f, f->rs, false, "Basic abc", "meshd-relay/1", 401, "missing node token");
        expect(f, f->rs, false, "Bearer ", "meshd-relay/1", 401, "missing node token");
        expect(f, f->rs, false, long_token, "meshd-relay/1", 401, "missing node token");
        expect(f, f->rs, false, "Bearer mshn_nope", "meshd-relay/1", 401, "unknown node token");
        expect(f, f->rs, false, a, NULL, 400, "Upgrade: expected meshd-relay/1");
        expect(f, f->rs, false, a, "websocket", 400, "Upgrade: expected meshd-relay/1");
        expect(f, f->rs, true, a, "meshd-relay/1", 503, "relay disabled");
        expect(f, NULL, false, a, "meshd-relay/1", 503, "no hub, no relay");

        /* the server is full (1 stream): b is refused, a may replace its own */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        assert_int_equal(key_from_base64(KEY_A, &k), 0);
        assert_int_equal(relay_server_add(f->rs, sv[0], -1, NULL, 1, "a", &k, NULL, 0), 0);
        expect(f, f->rs, false, b, "meshd-relay/1", 503, "too many relay streams");
        {
                _cleanup_(relay_admission_done) RelayAdmission ok = {};
                assert_int_equal(relay_admit(f->store, f->rs, false, a, "meshd-relay/1", &ok), 0);
                assert_int_equal(ok.status, 0);
        }

        assert_int_equal(store_expire_node(f->store, "b"), 0);
        expect(f, f->rs, false, b, "meshd-relay/1", 403, "node b expired, join again");
        assert_int_equal(store_remove_node(f->store, "b"), 0);
        expect(f, f->rs, false, b, "meshd-relay/1", 403, "node removed");
        relay_server_free(f->rs);
        f->rs = NULL;
        assert_int_equal(f->closed, 1);
        close(sv[0]);
        close(sv[1]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_admit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_attack_admit_refusals, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
