/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include "nss.h"
#include "nsswitch.h"
#include "test-util.h"

/* Debian 12's /etc/nsswitch.conf as installed. */
#define DEBIAN_HEAD                                                                     \
        "# /etc/nsswitch.conf\n"                                                        \
        "#\n"                                                                           \
        "# Example configuration of GNU Name Service Switch functionality.\n"           \
        "# If you have the `glibc-doc-reference' and `info' packages installed, try:\n" \
        "# `info libc \"Name Service Switch\"' for information about this file.\n"      \
        "\n"                                                                            \
        "passwd:         files systemd\n"                                               \
        "group:          files systemd\n"                                               \
        "shadow:         files systemd\n"                                               \
        "gshadow:        files systemd\n"                                               \
        "\n"
#define DEBIAN_TAIL                  \
        "networks:       files\n"    \
        "\n"                         \
        "protocols:      db files\n" \
        "services:       db files\n" \
        "ethers:         db files\n" \
        "rpc:            db files\n" \
        "\n"                         \
        "netgroup:       nis\n"
#define DEBIAN DEBIAN_HEAD "hosts:          files dns\n" DEBIAN_TAIL
#define DEBIAN_ENABLED DEBIAN_HEAD "hosts:          files mesh dns\n" DEBIAN_TAIL

/* enable on in gives out; disable on out gives back in (when round_trip). */
static void check_edit(bool enable, const char *in, const char *out, int changed) {
        _cleanup_free_ char *result = NULL;

        assert_int_equal(nsswitch_edit(in, enable, &result), changed);
        assert_non_null(result);
        assert_string_equal(result, out);
}

static void check_enable(const char *in, const char *out) {
        check_edit(true, in, out, !streq(in, out));
        /* Idempotent: a second enable changes nothing. */
        check_edit(true, out, out, 0);
}

static void check_round_trip(const char *in, const char *enabled) {
        check_enable(in, enabled);
        check_edit(false, enabled, in, 1);
        check_edit(false, in, in, 0);
}

static void test_debian_default(void **state) {
        check_round_trip(DEBIAN, DEBIAN_ENABLED);
}

static void test_already_enabled(void **state) {
        check_edit(true, DEBIAN_ENABLED, DEBIAN_ENABLED, 0);
        check_edit(true, "hosts: dns mesh files\n", "hosts: dns mesh files\n", 0);
        check_edit(true, "hosts: files mesh [NOTFOUND=return] dns\n",
                   "hosts: files mesh [NOTFOUND=return] dns\n", 0);
}

static void test_position(void **state) {
        check_round_trip("hosts: files dns\n", "hosts: files mesh dns\n");
        check_round_trip("hosts:\tfiles\tdns\n", "hosts:\tfiles mesh\tdns\n");
        check_round_trip("hosts: files\n", "hosts: files mesh\n");
        /* No "files": first. */
        check_round_trip("hosts: dns\n", "hosts: mesh dns\n");
        check_round_trip("hosts:   resolve [!UNAVAIL=return] dns\n",
                         "hosts:   mesh resolve [!UNAVAIL=return] dns\n");
        /* After files, not after myhostname or a service that contains "files". */
        check_round_trip("hosts: myfiles files myhostname dns\n", "hosts: myfiles files mesh myhostname dns\n");
        /* Leading blanks and a blank before the colon, as glibc reads them. */
        check_round_trip("  hosts : files dns\n", "  hosts : files mesh dns\n");
}

static void test_action_lists(void **state) {
        /* The action list after files belongs to files: mesh goes after it. */
        check_round_trip("hosts: files [NOTFOUND=return] dns\n", "hosts: files [NOTFOUND=return] mesh dns\n");
        check_round_trip("hosts: files [ NOTFOUND=return ] [UNAVAIL=continue] dns\n",
                         "hosts: files [ NOTFOUND=return ] [UNAVAIL=continue] mesh dns\n");
        check_round_trip("hosts: files mdns4_minimal [NOTFOUND=return] dns myhostname\n",
                         "hosts: files mesh mdns4_minimal [NOTFOUND=return] dns myhostname\n");
        check_round_trip("hosts: files[NOTFOUND=return] dns\n", "hosts: files[NOTFOUND=return] mesh dns\n");
        /* disable takes mesh's own action list with it. */
        check_edit(false, "hosts: files mesh [NOTFOUND=return] dns\n", "hosts: files dns\n", 1);
        check_edit(false, "hosts: mesh [UNAVAIL=return] dns\n", "hosts: dns\n", 1);
}

static void test_comments(void **state) {
        check_round_trip("# hosts: files dns\nhosts: files dns # local first\n",
                         "# hosts: files dns\nhosts: files mesh dns # local first\n");
        check_round_trip("hosts: dns# no files here\n", "hosts: mesh dns# no files here\n");
        /* "mesh" in a comment is not the service. */
        check_round_trip("hosts: files dns # not mesh yet\n", "hosts: files mesh dns # not mesh yet\n");
        /* A commented-out line is no hosts: line. */
        check_enable("#hosts: files dns\n", "#hosts: files dns\nhosts: files mesh dns\n");
}

static void test_no_hosts_line(void **state) {
        check_enable("passwd: files\n", "passwd: files\nhosts: files mesh dns\n");
        check_enable("passwd: files", "passwd: files\nhosts: files mesh dns\n");
        check_enable("", "hosts: files mesh dns\n");
        check_enable("hostsx: files\n", "hostsx: files\nhosts: files mesh dns\n");
        check_edit(false, "passwd: files\n", "passwd: files\n", 0);
        /* An empty service list is glibc's default: spelled out, with mesh. */
        check_enable("hosts:\n", "hosts: files mesh dns\n");
        check_enable("hosts:   # default\n", "hosts:   files mesh dns # default\n");
        /* Removing the only service must not fall back to glibc's default. */
        check_edit(false, "hosts: mesh\n", "hosts: files dns\n", 1);
}

static void test_other_lines_untouched(void **state) {
        /* No newline at the end, CRLF, odd spacing, every other database. */
        check_round_trip("passwd: files mesh\nhosts: files dns", "passwd: files mesh\nhosts: files mesh dns");
        check_round_trip("networks: files\r\nhosts: files dns\r\n",
                         "networks: files\r\nhosts: files mesh dns\r\n");
        check_round_trip("HOSTS: files dns\n", "HOSTS: files mesh dns\n");
        /* Every hosts: line (glibc would read the last one). */
        check_round_trip("hosts: files dns\nhosts: dns\n", "hosts: files mesh dns\nhosts: mesh dns\n");
        check_edit(false, "hosts: files mesh mesh dns\n", "hosts: files dns\n", 1);
}

/* ---- the file: atomic replacement keeping mode, owner and symlinks --------------------------- */

static char *dir;

static char *read_file(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = calloc(1, 65536);

        assert_non_null(f);
        assert_non_null(buf);
        (void) !fread(buf, 1, 65535, f);
        fclose(f);
        return buf;
}

static void write_file(const char *path, const char *text, mode_t mode) {
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(path, mode), 0);
}

static void test_update_file(void **state) {
        char path[128], link_path[128];
        _cleanup_free_ char *a = NULL, *b = NULL;
        struct stat st;

        snprintf(path, sizeof(path), "%s/nsswitch.conf", dir);
        snprintf(link_path, sizeof(link_path), "%s/link.conf", dir);
        write_file(path, DEBIAN, 0640);
        assert_int_equal(symlink("nsswitch.conf", link_path), 0);

        assert_int_equal(nsswitch_update_file(link_path, true), 1);
        a = read_file(path);
        assert_string_equal(a, DEBIAN_ENABLED);
        assert_int_equal(lstat(link_path, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);

        assert_int_equal(nsswitch_update_file(path, true), 0);
        assert_int_equal(nsswitch_update_file(path, false), 1);
        b = read_file(path);
        assert_string_equal(b, DEBIAN);

        /* Nothing left behind: only the file and the link. */
        {
                char cmd[256];
                snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 2", dir);
                assert_int_equal(system(cmd), 0);
        }

        snprintf(path, sizeof(path), "%s/missing.conf", dir);
        assert_int_equal(nsswitch_update_file(path, true), -ENOENT);
        assert_int_equal(nsswitch_update_file(dir, true), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_debian_default),
                cmocka_unit_test(test_already_enabled),
                cmocka_unit_test(test_position),
                cmocka_unit_test(test_action_lists),
                cmocka_unit_test(test_comments),
                cmocka_unit_test(test_no_hosts_line),
                cmocka_unit_test(test_other_lines_untouched),
                cmocka_unit_test(test_update_file),
        };
        int r;

        log_setup("test-nsswitch", LOG_TARGET_CONSOLE);
        dir = test_tmpdir_new("test-nsswitch");
        r = cmocka_run_group_tests(tests, NULL, NULL);
        test_tmpdir_free(dir);
        return r;
}
