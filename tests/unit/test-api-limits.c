/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api-limits.h"

static void test_admission(void **state) {
        /* root: anything below the global cap */
        assert_int_equal(api_admission_check(0, 0, 0), 0);
        assert_int_equal(api_admission_check(0, API_CONNECTIONS_MAX - 1, API_CONNECTIONS_MAX - 1), 0);
        assert_int_equal(api_admission_check(0, API_CONNECTIONS_MAX, 0), -EMFILE);

        /* others: their share, and never the slots kept for root */
        assert_int_equal(api_admission_check(1000, 0, 0), 0);
        assert_int_equal(api_admission_check(1000, 100, API_CONNECTIONS_PER_USER_MAX - 1), 0);
        assert_int_equal(api_admission_check(1000, 100, API_CONNECTIONS_PER_USER_MAX), -EUSERS);
        assert_int_equal(api_admission_check(1000, API_CONNECTIONS_MAX - API_CONNECTIONS_ROOT_RESERVED - 1, 0),
                         0);
        assert_int_equal(api_admission_check(1000, API_CONNECTIONS_MAX - API_CONNECTIONS_ROOT_RESERVED, 0),
                         -EBUSY);
        assert_int_equal(api_admission_check(1000, API_CONNECTIONS_MAX, 0), -EMFILE);

        assert_string_equal(api_admission_reason(-EUSERS), "too many connections from this user");
        assert_string_equal(api_admission_reason(-EIO), "refused");
}

static void test_rate_limit(void **state) {
        ApiRateLimit rl = { .interval_usec = 10 * USEC_PER_SEC, .burst = 2 };
        unsigned suppressed = 99;
        uint64_t t = 5 * USEC_PER_SEC;

        assert_true(api_rate_limit_test(&rl, t, &suppressed));
        assert_int_equal(suppressed, 0);
        assert_true(api_rate_limit_test(&rl, t + 1, NULL));
        for (int i = 0; i < 1000; i++)
                assert_false(api_rate_limit_test(&rl, t + 2 + (uint64_t) i, &suppressed));
        /* the next interval says how many were left out */
        assert_true(api_rate_limit_test(&rl, t + 10 * USEC_PER_SEC, &suppressed));
        assert_int_equal(suppressed, 1000);
        assert_true(api_rate_limit_test(&rl, t + 10 * USEC_PER_SEC, &suppressed));
        assert_int_equal(suppressed, 0);
        /* a clock that goes back starts a new interval rather than stalling */
        assert_true(api_rate_limit_test(&rl, 1, &suppressed));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_admission),
                cmocka_unit_test(test_rate_limit),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
