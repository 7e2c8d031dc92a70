/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "macro.h"
#include "test-util.h"

#define PIN        \
        "sha256//" \
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

typedef struct Fixture {
        char *dir;
        char path[128];
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        assert_non_null(f);
        f->dir = test_tmpdir_new("test-conf");
        snprintf(f->path, sizeof(f->path), "%s/meshd.conf", f->dir);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        test_tmpdir_free(f->dir);
        free(f);
        return 0;
}

static void write_file(const Fixture *f, const char *text) {
        FILE *fp = fopen(f->path, "we");
        assert_non_null(fp);
        assert_int_equal(fputs(text, fp) >= 0, 1);
        assert_int_equal(fclose(fp), 0);
}

/* Loads text and expects an error message equal to "PATH" + suffix. */
static void check_error(const Fixture *f, const char *text, const char *suffix) {
        _cleanup_free_ char *error = NULL, *expected = NULL;
        MeshdConfig c;

        write_file(f, text);
        conf_init_defaults(&c);
        assert_int_equal(conf_load(f->path, &c, &error), -EINVAL);
        assert_non_null(error);
        assert_int_equal(asprintf(&expected, "%s%s", f->path, suffix) > 0, 1);
        assert_string_equal(error, expected);
        /* Nothing of the bad file leaked into the (still default) config. */
        assert_null(c.interface);
        assert_null(c.control_url);
        assert_int_equal(c.listen_port, MESHD_DEFAULT_LISTEN_PORT);
        conf_done(&c);
}

static void test_all_keys(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *error = NULL;
        MeshdConfig c;

        write_file(f, "# comment\n"
                      "; also a comment\n"
                      "[Mesh]\n"
                      "ControlURL=https://control.example.net:8443\n"
                      "ControlPin=" PIN "\n"
                      "AuthKeyFile=/etc/meshd/authkey\n"
                      "Hostname=My Laptop\n"
                      "Interface = wg-mesh\n"
                      "ListenPort=0\n"
                      "Backend=userspace\n"
                      "KeepInterface=yes\n"
                      "\n"
                      "[Online]\n"
                      "Policy=required\n"
                      "RequiredPeers=nas  Backup\n"
                      "TimeoutSec=1min 30s\n");

        conf_init_defaults(&c);
        assert_int_equal(conf_load(f->path, &c, &error), 0);
        assert_null(error);
        assert_string_equal(c.control_url, "https://control.example.net:8443");
        assert_string_equal(c.control_pin, PIN);
        assert_string_equal(c.auth_key_file, "/etc/meshd/authkey");
        assert_string_equal(c.hostname, "My Laptop");
        assert_string_equal(c.interface, "wg-mesh");
        assert_int_equal(c.listen_port, 0);
        assert_int_equal(c.backend, WG_BACKEND_USERSPACE);
        assert_true(c.keep_interface);
        assert_int_equal(c.online_policy, ONLINE_POLICY_REQUIRED);
        assert_int_equal(strv_length(c.required_peers), 2);
        assert_string_equal(c.required_peers[0], "nas");
        assert_string_equal(c.required_peers[1], "backup");
        assert_int_equal(c.online_timeout_usec, 90 * USEC_PER_SEC);
        conf_done(&c);
}

static void test_defaults(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *error = NULL;
        MeshdConfig c;

        write_file(f, "[Mesh]\n[Online]\n");
        conf_init_defaults(&c);
        assert_int_equal(conf_load(f->path, &c, &error), 0);
        assert_string_equal(c.interface, MESHD_DEFAULT_INTERFACE);
        assert_int_equal(c.listen_port, MESHD_DEFAULT_LISTEN_PORT);
        assert_int_equal(c.backend, WG_BACKEND_AUTO);
        assert_false(c.keep_interface);
        assert_int_equal(c.online_policy, ONLINE_POLICY_ANY);
        assert_null(c.required_peers);
        assert_null(c.control_url);
        assert_null(c.hostname);
        assert_int_equal(c.online_timeout_usec, MESHD_DEFAULT_ONLINE_TIMEOUT_USEC);
        conf_done(&c);
}

static void test_missing_file(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *error = NULL;
        MeshdConfig c;

        conf_init_defaults(&c);
        assert_int_equal(conf_load(f->path, &c, &error), 0);
        assert_null(error);
        assert_string_equal(c.interface, MESHD_DEFAULT_INTERFACE);
        assert_int_equal(c.listen_port, MESHD_DEFAULT_LISTEN_PORT);
        conf_done(&c);
}

static void test_last_wins_and_empty_resets(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *error = NULL;
        MeshdConfig c;

        write_file(f, "[Mesh]\n"
                      "ListenPort=1000\n"
                      "ListenPort=2000\n"
                      "Interface=foo\n"
                      "Interface=\n"
                      "ControlURL=https://a\n"
                      "ControlURL=\n"
                      "Backend=kernel\n"
                      "[Online]\n"
                      "RequiredPeers=a b\n"
                      "RequiredPeers=c\n"
                      "TimeoutSec=5\n"
                      "TimeoutSec=\n"
                      "[Mesh]\n"
                      "KeepInterface=on\n"
                      "KeepInterface=\n");
        conf_init_defaults(&c);
        assert_int_equal(conf_load(f->path, &c, &error), 0);
        assert_int_equal(c.listen_port, 2000);
        assert_string_equal(c.interface, MESHD_DEFAULT_INTERFACE);
        assert_null(c.control_url);
        assert_int_equal(c.backend, WG_BACKEND_KERNEL);
        assert_int_equal(strv_length(c.required_peers), 1);
        assert_string_equal(c.required_peers[0], "c");
        assert_int_equal(c.online_timeout_usec, MESHD_DEFAULT_ONLINE_TIMEOUT_USEC);
        assert_false(c.keep_interface);
        conf_done(&c);
}

static void test_errors(void **state) {
        Fixture *f = *state;

        check_error(f, "[Mesh]\nFoo=1\n", ":2: unknown key 'Foo' in section [Mesh]");
        check_error(f, "[Online]\n\nInterface=x\n", ":3: unknown key 'Interface' in section [Online]");
        check_error(f, "[Mesh]\nListenPort=abc\n",
                    ":2: invalid ListenPort= value 'abc': not a port number (0-65535)");
        check_error(f, "[Mesh]\nListenPort=65536\n",
                    ":2: invalid ListenPort= value '65536': not a port number (0-65535)");
        check_error(f, "[Mesh]\nListenPort=-1\n",
                    ":2: invalid ListenPort= value '-1': not a port number (0-65535)");
        check_error(f, "[Foo]\nBar=1\n", ":1: unknown section [Foo]");
        check_error(f, "[Mesh]\n[Empty]\n", ":2: unknown section [Empty]");
        check_error(f, "Interface=x\n", ":1: key 'Interface' outside of any section");
        check_error(f, "[Mesh]\nthis is not ini\n", ":2: syntax error");
        check_error(f, "[Mesh]\nInterface=abcdefghijklmnop\n",
                    ":2: invalid Interface= value 'abcdefghijklmnop': not a valid interface name");
        check_error(f, "[Mesh]\nInterface=a/b\n",
                    ":2: invalid Interface= value 'a/b': not a valid interface name");
        check_error(f, "[Mesh]\nInterface=a b\n",
                    ":2: invalid Interface= value 'a b': not a valid interface name");
        check_error(f, "[Mesh]\nControlURL=http://x\n",
                    ":2: invalid ControlURL= value 'http://x': must be https:// URLs, separated by spaces or "
                    "commas");
        check_error(f, "[Mesh]\nControlURL=https://a, https://a\n",
                    ":2: invalid ControlURL= value 'https://a, https://a': names one URL twice");
        check_error(f, "[Mesh]\nControlPin=sha256//abc\n",
                    ":2: invalid ControlPin= value 'sha256//abc': must be sha256// and the base64 of 32 bytes");
        check_error(
                f, "[Mesh]\nControlPin=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
                ":2: invalid ControlPin= value 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=': must be sha256// and the base64 of 32 bytes");
        check_error(f, "[Mesh]\nAuthKeyFile=authkey\n",
                    ":2: invalid AuthKeyFile= value 'authkey': must be an absolute path");
        check_error(f, "[Mesh]\nBackend=magic\n",
                    ":2: invalid Backend= value 'magic': must be auto, kernel or userspace");
        check_error(f, "[Mesh]\nKeepInterface=maybe\n",
                    ":2: invalid KeepInterface= value 'maybe': not a boolean");
        check_error(f, "[Mesh]\nHostname=---\n",
                    ":2: invalid Hostname= value '---': no usable DNS label in it");
        check_error(f, "[Online]\nPolicy=some\n",
                    ":2: invalid Policy= value 'some': must be any, all, required or none");
        check_error(f, "[Online]\nRequiredPeers=nas bad_name\n",
                    ":2: invalid RequiredPeers= value 'nas bad_name': not a valid peer name");
        check_error(f, "[Online]\nTimeoutSec=soon\n", ":2: invalid TimeoutSec= value 'soon': not a time span");
        check_error(f, "[Online]\nPolicy=required\n", ": Policy=required needs RequiredPeers=");
        /* The first error is the one reported. */
        check_error(f, "[Mesh]\nListenPort=x\nFoo=1\n",
                    ":2: invalid ListenPort= value 'x': not a port number (0-65535)");
        check_error(f, "[Mesh]\nbroken\nFoo=1\n", ":2: syntax error");
        check_error(f, "[Mesh]\nFoo=1\nbroken\n", ":2: unknown key 'Foo' in section [Mesh]");
}

/* [DNS] (conf-dns.c): a port, "no"/0 for none, "yes"/empty for 53. */
static void test_dns_section(void **state) {
        static const struct {
                const char *text;
                uint16_t port;
                const char *resolv_conf;
        } cases[] = {
                { "[Mesh]\n", MESHD_DEFAULT_DNS_PORT, NULL },
                { "[DNS]\nPort=5353\nResolvConf=/run/test/resolv.conf\n", 5353, "/run/test/resolv.conf" },
                { "[DNS]\nPort=no\n", 0, NULL },
                { "[DNS]\nPort=0\n", 0, NULL },
                { "[DNS]\nPort=1\n", 1, NULL },
                { "[DNS]\nPort=no\nPort=\nResolvConf=/x\nResolvConf=\n", MESHD_DEFAULT_DNS_PORT, NULL },
        };
        Fixture *f = *state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *error = NULL;
                MeshdConfig c;

                write_file(f, cases[i].text);
                conf_init_defaults(&c);
                assert_int_equal(conf_load(f->path, &c, &error), 0);
                assert_int_equal(c.dns_port, cases[i].port);
                if (cases[i].resolv_conf)
                        assert_string_equal(c.dns_resolv_conf, cases[i].resolv_conf);
                else
                        assert_null(c.dns_resolv_conf);
                conf_done(&c);
        }

        check_error(f, "[DNS]\nPort=65536\n", ":2: invalid Port= value '65536': a port number 1-65535, or no");
        check_error(f, "[DNS]\nPort=maybe\n", ":2: invalid Port= value 'maybe': a port number 1-65535, or no");
        check_error(f, "[DNS]\nResolvConf=resolv.conf\n",
                    ":2: invalid ResolvConf= value 'resolv.conf': an absolute path");
        check_error(f, "[DNS]\nListen=53\n", ":2: unknown key 'Listen' in section [DNS]");
}

/* [DNS] Resolved= (conf-dns.c): a boolean, default yes. */
static void test_dns_resolved(void **state) {
        static const struct {
                const char *text;
                bool resolved;
        } cases[] = {
                { "[Mesh]\n", true },
                { "[DNS]\nResolved=no\n", false },
                { "[DNS]\nResolved=false\nResolved=yes\n", true },
                { "[DNS]\nPort=no\nResolved=0\n", false },
                { "[DNS]\nResolved=no\nResolved=\n", true },
        };
        Fixture *f = *state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *error = NULL;
                MeshdConfig c;

                write_file(f, cases[i].text);
                conf_init_defaults(&c);
                assert_int_equal(conf_load(f->path, &c, &error), 0);
                assert_int_equal(c.dns_resolved, cases[i].resolved);
                conf_done(&c);
        }

        check_error(f, "[DNS]\nResolved=maybe\n", ":2: invalid Resolved= value 'maybe': yes or no");
}

static void test_long_line(void **state) {
        Fixture *f = *state;
        char text[1024];

        snprintf(text, sizeof(text), "[Online]\nRequiredPeers=%0500d\nFoo=1\n", 0);
        check_error(f, text, ":2: line too long (at most 197 characters)");
}

static void test_unchanged_on_error(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *error = NULL;
        MeshdConfig c;

        write_file(f, "[Mesh]\nListenPort=1234\nInterface=good0\n");
        conf_init_defaults(&c);
        assert_int_equal(conf_load(f->path, &c, &error), 0);

        /* Like a reload with SIGHUP: a broken file keeps the running config. */
        write_file(f, "[Mesh]\nListenPort=4321\nInterface=other0\nBackend=nope\n");
        assert_int_equal(conf_load(f->path, &c, &error), -EINVAL);
        assert_non_null(error);
        assert_int_equal(c.listen_port, 1234);
        assert_string_equal(c.interface, "good0");
        conf_done(&c);
}

static void test_timespan(void **state) {
        static const struct {
                const char *s;
                uint64_t usec;
        } good[] = {
                { "60", 60 * USEC_PER_SEC },      { "0", 0 },
                { "60s", 60 * USEC_PER_SEC },     { "60 sec", 60 * USEC_PER_SEC },
                { "2min", 120 * USEC_PER_SEC },   { "2m", 120 * USEC_PER_SEC },
                { "500ms", 500 * USEC_PER_MSEC }, { "7us", 7 },
                { "1h", 3600 * USEC_PER_SEC },    { "1hr", 3600 * USEC_PER_SEC },
                { "1d", 86400 * USEC_PER_SEC },   { "1min 30s", 90 * USEC_PER_SEC },
                { "1min30s", 90 * USEC_PER_SEC }, { " 1h 1m 1s 1ms 1us ", 3661 * USEC_PER_SEC + 1001 },
                { "1.5s", 1500 * USEC_PER_MSEC }, { ".5s", 500 * USEC_PER_MSEC },
                { "0.25min", 15 * USEC_PER_SEC }, { "18446744073709551615us", UINT64_MAX },
        };
        static const char *const bad[] = {
                "",       "   ",   "-1", "-1s",   "1x",  "s",    "abc",
                "1s -1s", "1 2 x", ".",  "1..5s", "1e3", "5s.3", "1.s.5",
        };
        uint64_t u;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                u = 1;
                assert_int_equal(parse_timespan_usec(good[i].s, &u), 0);
                assert_true(u == good[i].usec);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(parse_timespan_usec(bad[i], &u), -EINVAL);

        assert_int_equal(parse_timespan_usec("18446744073709551616us", &u), -ERANGE);
        assert_int_equal(parse_timespan_usec("99999999999999999999", &u), -ERANGE);
        assert_int_equal(parse_timespan_usec("300000000d", &u), -ERANGE);
        assert_int_equal(parse_timespan_usec("18446744073709551615us 1us", &u), -ERANGE);
}

static void test_boolean(void **state) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on", "YES", "True", "ON" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off", "NO", "False", "Off" };
        static const char *const bad[] = { "", "2", "yess", "enable", " yes", NULL };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                assert_int_equal(parse_boolean(yes[i]), 1);
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                assert_int_equal(parse_boolean(no[i]), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(parse_boolean(bad[i]), -EINVAL);
}

static void test_online_policy_strings(void **state) {
        for (OnlinePolicy p = 0; p < _ONLINE_POLICY_MAX; p++)
                assert_int_equal(online_policy_from_string(online_policy_to_string(p)), p);
        assert_int_equal(online_policy_from_string("ANY"), _ONLINE_POLICY_INVALID);
        assert_null(online_policy_to_string(_ONLINE_POLICY_MAX));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_all_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_last_wins_and_empty_resets, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dns_section, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dns_resolved, setup, teardown),
                cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unchanged_on_error, setup, teardown),
                cmocka_unit_test(test_timespan),
                cmocka_unit_test(test_boolean),
                cmocka_unit_test(test_online_policy_strings),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
