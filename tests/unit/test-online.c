/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "online.h"

static const OnlinePeerView three[] = {
        { "nas", false },
        { "backup", true },
        { "laptop", false },
};

static void test_any(void **state) {
        char *missing = NULL;
        OnlinePeerView none_reachable[] = { { "nas", false }, { "backup", false } };

        assert_int_equal(online_evaluate_policy(ONLINE_POLICY_ANY, NULL, three, 3, &missing), 1);
        assert_null(missing);

        assert_int_equal(online_evaluate_policy(ONLINE_POLICY_ANY, NULL, none_reachable, 2, &missing), 0);
        assert_string_equal(missing, "nas, backup");
        free(missing);

        /* No peers at all: nothing to wait for. */
        assert_int_equal(online_evaluate_policy(ONLINE_POLICY_ANY, NULL, NULL, 0, &missing), 1);
        assert_null(missing);
}

static void test_all(void **state) {
        char *missing = NULL;
        OnlinePeerView all_up[] = { { "nas", true }, { "backup", true } };

        assert_int_equal(online_evaluate_policy(ONLINE_POLICY_ALL, NULL, three, 3, &missing), 0);
        assert_string_equal(missing, "nas, laptop");
        free(missing);
        assert_int_equal(online_evaluate_policy(ONLINE_POLICY_ALL, NULL, all_up, 2, &missing), 1);
        assert_null(missing);
}

static void test_required(void **state) {
        char *missing = NULL;
        char *backup_only[] = { "backup", NULL };
        char *nas_and_ghost[] = { "NAS", "ghost", NULL };

        assert_int_equal(online_evaluate_policy(ONLINE_POLICY_REQUIRED, backup_only, three, 3, &missing), 1);
        assert_null(missing);

        /* Names compare case-insensitively, like DNS; unknown names are called out. */
        assert_int_equal(online_evaluate_policy(ONLINE_POLICY_REQUIRED, nas_and_ghost, three, 3, &missing), 0);
        assert_string_equal(missing, "NAS, ghost (unknown)");
        free(missing);
}

static void test_none(void **state) {
        char *missing = (char *) "x";
        assert_int_equal(online_evaluate_policy(ONLINE_POLICY_NONE, NULL, three, 3, &missing), 1);
        assert_null(missing);
        assert_int_equal(online_evaluate_policy(_ONLINE_POLICY_INVALID, NULL, three, 3, NULL), -EINVAL);
}

static void test_names_any(void **state) {
        char *list[] = { "nas", "laptop", NULL };
        char *list2[] = { "nas", "backup", NULL };
        char *missing = NULL;

        assert_int_equal(online_evaluate_names(list, true, three, 3, &missing), 0);
        assert_string_equal(missing, "nas, laptop");
        free(missing);
        assert_int_equal(online_evaluate_names(list2, true, three, 3, &missing), 1);
        assert_null(missing);
}

static void test_missing_is_capped(void **state) {
        OnlinePeerView many[8];
        char names[8][8];
        char *missing = NULL;

        for (int i = 0; i < 8; i++) {
                snprintf(names[i], sizeof(names[i]), "p%i", i);
                many[i] = (OnlinePeerView) { names[i], false };
        }
        assert_int_equal(online_evaluate_policy(ONLINE_POLICY_ALL, NULL, many, 8, &missing), 0);
        assert_string_equal(missing, "p0, p1, p2, p3, p4 and 3 more");
        free(missing);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_any),       cmocka_unit_test(test_all),
                cmocka_unit_test(test_required),  cmocka_unit_test(test_none),
                cmocka_unit_test(test_names_any), cmocka_unit_test(test_missing_is_capped),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
