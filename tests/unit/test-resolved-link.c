/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "resolved-link.h"

/* Without a system bus the object only remembers: nothing fails, nothing
 * is sent, and set/clear/revert may come in any order. The calls resolved
 * gets are checked against a private bus in
 * tests/integration/test_resolved.py. */

static union sockaddr_union server(const char *ipv4) {
        union sockaddr_union s = { .in.sin_family = AF_INET, .in.sin_port = htons(53) };

        assert_int_equal(inet_pton(AF_INET, ipv4, &s.in.sin_addr), 1);
        return s;
}

static void test_no_system_bus(void **state) {
        union sockaddr_union s[2] = { server("100.64.0.2"), server("100.64.0.3") };
        sd_event *e = NULL;
        ResolvedLink *l = NULL;

        (void) state;
        assert_int_equal(setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/test-resolved-link", 1), 0);
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(resolved_link_new(e, &l), 0);
        assert_non_null(l);

        assert_int_equal(resolved_link_set(l, 3, "mesh.internal", s, 1), 0);
        assert_int_equal(resolved_link_set(l, 3, "mesh.internal", s, 1), 0);
        assert_int_equal(resolved_link_set(l, 4, "mesh.internal", s, 2), 0);
        resolved_link_clear(l);
        resolved_link_clear(l);
        assert_int_equal(resolved_link_set(l, 4, "other.internal", s, 2), 0);
        resolved_link_revert_now(l);

        /* nothing to register: refused, the wanted registration kept */
        assert_int_equal(resolved_link_set(l, 0, "mesh.internal", s, 1), -EINVAL);
        assert_int_equal(resolved_link_set(l, 4, NULL, s, 1), -EINVAL);
        assert_int_equal(resolved_link_set(l, 4, "mesh.internal", s, 0), -EINVAL);

        /* the exit source does nothing harmful either */
        assert_int_equal(sd_event_exit(e, 0), 0);
        assert_int_equal(sd_event_loop(e), 0);
        assert_null(resolved_link_free(l));
        assert_null(resolved_link_free(NULL));
        resolved_link_clear(NULL);
        resolved_link_revert_now(NULL);
        sd_event_unref(e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_system_bus),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
