/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "manager-private.h"

/* manager_set_state() touches nothing of the Manager but its state, so a
 * zeroed one stands in for the whole daemon. */

/* What manager_set_state() logs while fn runs, from stderr. */
static char *capture_log(void (*fn)(Manager *m), Manager *m) {
        FILE *f = tmpfile();
        char *text;
        long size;
        int saved;

        assert_non_null(f);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        assert_true(saved >= 0);
        assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
        fn(m);
        fflush(stderr);
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);

        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        size = ftell(f);
        assert_true(size >= 0);
        text = calloc((size_t) size + 1, 1);
        assert_non_null(text);
        rewind(f);
        assert_int_equal(fread(text, 1, (size_t) size, f), (size_t) size);
        fclose(f);
        return text;
}

static void test_strings(void **state) {
        const char *seen[5] = {};

        for (ManagerState s = MANAGER_NEEDS_LOGIN; s <= MANAGER_STOPPED; s++) {
                seen[s] = manager_state_to_string(s);
                assert_non_null(seen[s]);
                for (ManagerState t = MANAGER_NEEDS_LOGIN; t < s; t++)
                        assert_string_not_equal(seen[s], seen[t]);
        }
        /* the words meshctl status and the API show */
        assert_string_equal(manager_state_to_string(MANAGER_NEEDS_LOGIN), "needs-login");
        assert_string_equal(manager_state_to_string(MANAGER_DEGRADED), "degraded");
        assert_null(manager_state_to_string(MANAGER_STOPPED + 1));
        assert_null(manager_state_to_string((ManagerState) -1));
}

static void start_then_online(Manager *m) {
        assert_true(manager_set_state(m, MANAGER_STARTING));
        assert_int_equal(m->state, MANAGER_STARTING);
        assert_true(manager_set_state(m, MANAGER_ONLINE));
        assert_int_equal(m->state, MANAGER_ONLINE);
}

static void test_change_is_logged(void **state) {
        Manager m = {};
        _cleanup_free_ char *log = capture_log(start_then_online, &m);

        assert_non_null(strstr(log, "Mesh state: needs-login -> starting.\n"));
        assert_non_null(strstr(log, "Mesh state: starting -> online.\n"));
}

static void same_again(Manager *m) {
        assert_false(manager_set_state(m, MANAGER_DEGRADED));
        assert_false(manager_set_state(m, MANAGER_DEGRADED));
        assert_int_equal(m->state, MANAGER_DEGRADED);
}

static void test_no_change_is_silent(void **state) {
        Manager m = { .state = MANAGER_DEGRADED };
        _cleanup_free_ char *log = capture_log(same_again, &m);

        /* checked for every peer change: repeating the state must not flood the journal */
        assert_string_equal(log, "");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_strings),
                cmocka_unit_test(test_change_is_logged),
                cmocka_unit_test(test_no_change_is_silent),
        };

        log_setup("test-manager-state", LOG_TARGET_CONSOLE);
        log_set_max_level(LOG_INFO);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
