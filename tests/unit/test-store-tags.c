/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* store-tags.c: the tags of auth keys, nodes and devices as stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>

#include "store.h"
#include "strv.h"

static void assert_tags(const char *text, const char *canonical) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *s = NULL;

        assert_int_equal(store_tags_parse(text, &l), 0);
        assert_non_null(l);
        s = store_tags_format(l);
        assert_non_null(s);
        assert_string_equal(s, canonical);
}

static void test_tags(void **state) {
        char **l = NULL;

        (void) state;
        assert_tags(NULL, "");
        assert_tags("", "");
        assert_tags(",", "");
        assert_tags("server", "server");
        assert_tags("tag:server", "server");
        assert_tags("router,server,router,tag:cam", "cam,router,server");
        assert_tags("b,a,,c", "a,b,c");
        assert_int_equal(store_tags_parse("Bad_tag", &l), -EINVAL);
        assert_int_equal(store_tags_parse("ok,with space", &l), -EINVAL);
        assert_int_equal(store_tags_parse("tag:", &l), -EINVAL);
        assert_null(l);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tags),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
