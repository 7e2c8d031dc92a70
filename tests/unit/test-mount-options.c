/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mount.mesh: sources, options, timeouts and reading meshd's replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "mesh-peer.h"
#include "mount-options.h"
#include "varlink.h"

static void check_host(const char *spec, int expected, const char *host) {
        _cleanup_free_ char *h = NULL;

        assert_int_equal(mount_spec_get_host(spec, &h), expected);
        if (host)
                assert_string_equal(h, host);
        else
                assert_null(h);
}

static void test_spec_host(void **state) {
        check_host("nas:/export", 1, "nas");
        check_host("nas.mesh.internal:/export/a:b", 1, "nas.mesh.internal");
        check_host("100.64.0.3:/", 1, "100.64.0.3");
        check_host("[fd7a:115c:a1e0::3]:/export", 1, "fd7a:115c:a1e0::3");
        check_host("nas:relative", 1, "nas");
        check_host("//nas/share", 1, "nas");
        check_host("//nas", 1, "nas");
        check_host("//[fd7a::3]/share", 1, "fd7a::3");
        check_host("user@nas:/home/user", 1, "nas");
        check_host("user@[fd7a::3]:/home", 1, "fd7a::3");
        check_host("/dev/sda1", 0, NULL);
        check_host("UUID=abcd", 0, NULL);
        check_host("tmpfs", 0, NULL);
        check_host("dir/with:colon", 0, NULL);
        check_host("[fd7a::3:/export", -EINVAL, NULL);
        check_host("[fd7a::3]/export", -EINVAL, NULL);
        check_host(":/export", -EINVAL, NULL);
        check_host("//", -EINVAL, NULL);
        check_host("///share", -EINVAL, NULL);
}

static void check_replace(const char *spec, const char *host, const char *expected) {
        _cleanup_free_ char *s = NULL;

        assert_int_equal(mount_spec_replace_host(spec, host, &s), 0);
        assert_string_equal(s, expected);
}

static void test_spec_replace(void **state) {
        char *s = NULL;

        check_replace("nas:/export", "100.64.0.3", "100.64.0.3:/export");
        check_replace("nas.mesh.internal:/a/b:c", "100.64.0.3", "100.64.0.3:/a/b:c");
        check_replace("nas:/export", "fd7a:115c:a1e0::3", "[fd7a:115c:a1e0::3]:/export");
        check_replace("[fd7a::3]:/export", "100.64.0.3", "100.64.0.3:/export");
        check_replace("[fd7a::3]:/export", "fd7a::4", "[fd7a::4]:/export");
        check_replace("//nas/share/sub dir", "100.64.0.3", "//100.64.0.3/share/sub dir");
        check_replace("//nas/share", "fd7a::3", "//[fd7a::3]/share");
        check_replace("//[fd7a::3]/share", "100.64.0.3", "//100.64.0.3/share");
        check_replace("user@nas:/home", "100.64.0.3", "user@100.64.0.3:/home");
        assert_int_equal(mount_spec_replace_host("/dev/sda1", "100.64.0.3", &s), -EINVAL);
        assert_int_equal(mount_spec_replace_host("nas:/x", "", &s), -EINVAL);
        assert_null(s);
}

static void check_get(const char *options, const char *name, int expected, const char *value) {
        _cleanup_free_ char *v = NULL;

        assert_int_equal(mount_options_get(options, name, &v), expected);
        if (value)
                assert_string_equal(v, value);
        else
                assert_null(v);
}

static void test_options_get(void **state) {
        check_get("rw,x-meshd.peer=nas,x-meshd.timeout=60", "x-meshd.peer", 1, "nas");
        check_get("rw,x-meshd.peer=nas,x-meshd.timeout=60", "x-meshd.timeout", 1, "60");
        check_get("x-meshd.peer", "x-meshd.peer", 1, "");
        check_get("rw,vers=4.2", "x-meshd.peer", 0, NULL);
        check_get("x-meshd.peerx=a", "x-meshd.peer", 0, NULL);
        check_get(NULL, "x-meshd.peer", 0, NULL);
        check_get("context=\"system_u:object_r:nfs_t:s0,c1\",x-meshd.peer=nas", "x-meshd.peer", 1, "nas");
        assert_true(mount_options_has("_netdev,nofail", "nofail"));
        assert_false(mount_options_has("_netdev,nofailx", "nofail"));
}

static void check_strip(const char *options, bool drop_defaults, const char *expected) {
        _cleanup_free_ char *s = NULL;

        assert_int_equal(mount_options_strip_meshd(options, drop_defaults, &s), 0);
        assert_string_equal(s, expected);
}

static void test_options_strip(void **state) {
        check_strip("rw,x-meshd.peer=nas,vers=4.2,x-meshd.timeout=5", false, "rw,vers=4.2");
        check_strip("x-meshd.peer=nas", false, "");
        check_strip("x-meshd.timeout=5,x-meshd.future", false, "");
        check_strip(NULL, false, "");
        check_strip("", false, "");
        check_strip("defaults,x-meshd.peer=nas", true, "");
        check_strip("defaults,x-meshd.peer=nas", false, "defaults");
        check_strip("x-systemd.automount,x-meshd.peer=nas,nofail", true, "x-systemd.automount,nofail");
        check_strip("sec=krb5,x-meshd-not-ours=1", false, "sec=krb5,x-meshd-not-ours=1");
        check_strip("context=\"a,b\",x-meshd.peer=n,opt=", false, "context=\"a,b\",opt=");
}

static void check_timeout(const char *s, int expected, uint64_t usec) {
        uint64_t v = 0;

        assert_int_equal(mount_timeout_parse(s, &v), expected);
        if (expected == 0)
                assert_int_equal(v, usec);
}

static void test_timeout(void **state) {
        check_timeout("30", 0, 30 * USEC_PER_SEC);
        check_timeout("0", 0, 0);
        check_timeout("5s", 0, 5 * USEC_PER_SEC);
        check_timeout("2min", 0, 120 * USEC_PER_SEC);
        check_timeout("1h", 0, 3600 * USEC_PER_SEC);
        check_timeout("500ms", 0, 500 * USEC_PER_MSEC);
        check_timeout("infinity", 0, MOUNT_MESH_TIMEOUT_INFINITY);
        check_timeout("86400", 0, 86400 * USEC_PER_SEC);
        check_timeout("86401", -ERANGE, 0);
        check_timeout("99999999999999999999999", -ERANGE, 0);
        check_timeout("", -EINVAL, 0);
        check_timeout("-5", -EINVAL, 0);
        check_timeout("5 s", -EINVAL, 0);
        check_timeout("abc", -EINVAL, 0);
        check_timeout("5days", -EINVAL, 0);
        check_timeout(NULL, -EINVAL, 0);
}

static void check_type(const char *argv0, const char *type, int expected, const char *real) {
        _cleanup_free_ char *t = NULL;

        assert_int_equal(mount_real_type(argv0, type, &t), expected);
        if (real)
                assert_string_equal(t, real);
}

static void test_real_type(void **state) {
        check_type("/sbin/mount.mesh.nfs4", NULL, 0, "nfs4");
        check_type("mount.mesh.cifs", NULL, 0, "cifs");
        check_type("/sbin/mount.mesh", "mesh.nfs", 0, "nfs");
        check_type("/sbin/mount.mesh", "mesh.glusterfs", 0, "glusterfs");
        check_type("/sbin/mount.mesh.nfs4", "mesh.cifs", 0, "cifs"); /* -t wins */
        check_type("/sbin/mount.mesh", NULL, -EINVAL, NULL);
        check_type("/sbin/mount.mesh", "mesh", -EINVAL, NULL);
        check_type("/sbin/mount.mesh", "mesh.mesh.nfs", -EINVAL, NULL);
        check_type("/sbin/mount.mesh.mesh.nfs", NULL, -EINVAL, NULL);
        check_type("/sbin/mount.mesh", "mesh.fuse.sshfs", 0, "fuse.sshfs");
        check_type("/sbin/mount.mesh", "mesh.9p", 0, "9p");

        /* Attacks: anything mount(8) could read as more than one type. */
        check_type("/sbin/mount.mesh", "mesh.nfs4,bind", -EINVAL, NULL);
        check_type("/sbin/mount.mesh", "mesh.nfs4 -o exec", -EINVAL, NULL);
        check_type("/sbin/mount.mesh", "mesh.-obind", -EINVAL, NULL);
        check_type("/sbin/mount.mesh", "mesh.nonfs4", 0, "nonfs4");
        check_type("/sbin/mount.mesh", "mesh.NFS4", -EINVAL, NULL);
        check_type("/sbin/mount.mesh", "mesh.nfs/../x", -EINVAL, NULL);
        check_type("/sbin/mount.mesh", "mesh.", -EINVAL, NULL);
        check_type("/sbin/mount.mesh", "mesh..nfs", -EINVAL, NULL);
        check_type("/sbin/mount.mesh", "mesh._nfs", -EINVAL, NULL);
        check_type("/sbin/mount.mesh", "nfs4", -EINVAL, NULL); /* -t is always mesh.TYPE */
        check_type("/sbin/mount.mesh", "mesh.nfs4\n", -EINVAL, NULL);
        check_type("/sbin/mount.mesh.nfs4,bind", NULL, -EINVAL, NULL);
        check_type("/sbin/mount.mesh.nfs4", "mesh.cifs,nfs", -EINVAL, NULL); /* no fallback to argv[0] */
}

static void test_type_is_valid(void **state) {
        char longest[MOUNT_TYPE_MAX + 2];

        assert_true(mount_type_is_valid("nfs4"));
        assert_true(mount_type_is_valid("fuse.sshfs"));
        assert_true(mount_type_is_valid("ext4"));
        assert_true(mount_type_is_valid("9p"));
        assert_true(mount_type_is_valid("nfs_v4"));
        assert_false(mount_type_is_valid(NULL));
        assert_false(mount_type_is_valid(""));
        assert_false(mount_type_is_valid("nfs,bind"));
        assert_false(mount_type_is_valid("nfs4 "));
        assert_false(mount_type_is_valid("-t"));
        assert_false(mount_type_is_valid(".nfs"));
        assert_false(mount_type_is_valid("nfs=4"));
        assert_false(mount_type_is_valid("n\xc3\xa9"));

        memset(longest, 'a', MOUNT_TYPE_MAX);
        longest[MOUNT_TYPE_MAX] = 0;
        assert_true(mount_type_is_valid(longest));
        longest[MOUNT_TYPE_MAX] = 'a';
        longest[MOUNT_TYPE_MAX + 1] = 0;
        assert_false(mount_type_is_valid(longest));
}

#define PEERS_REPLY                                                                            \
        "{\"peers\": ["                                                                        \
        "{\"name\": \"nas\", \"fqdn\": \"nas.mesh.internal\", \"ipv4\": \"100.64.0.3\","       \
        " \"ipv6\": \"fd7a:115c:a1e0::3\", \"reachable\": false, \"last_handshake_usec\": 0,"  \
        " \"last_probe_reply_usec\": 0},"                                                      \
        "{\"name\": \"backup\", \"fqdn\": \"backup.mesh.internal\", \"ipv4\": \"100.64.0.4\"," \
        " \"ipv6\": null, \"reachable\": true, \"last_handshake_usec\": 1700000000000000,"     \
        " \"last_probe_reply_usec\": 1700000000000000}]}"

static void test_peer_find(void **state) {
        _cleanup_json_ cJSON *reply = cJSON_Parse(PEERS_REPLY);
        const cJSON *p;

        assert_non_null(reply);
        p = mesh_peer_find(reply, "nas");
        assert_non_null(p);
        assert_string_equal(mesh_node_address(p, false), "100.64.0.3");
        assert_string_equal(mesh_node_address(p, true), "fd7a:115c:a1e0::3");
        assert_ptr_equal(mesh_peer_find(reply, "NAS.mesh.internal."), p);
        assert_ptr_equal(mesh_peer_find(reply, "100.64.0.3"), p);
        assert_ptr_equal(mesh_peer_find(reply, "FD7A:115C:A1E0::3"), p);
        p = mesh_peer_find(reply, "backup");
        assert_non_null(p);
        assert_string_equal(mesh_node_address(p, true), "100.64.0.4"); /* no IPv6: IPv4 */
        assert_null(mesh_peer_find(reply, "nas2"));
        assert_null(mesh_peer_find(reply, "na"));
        assert_null(mesh_peer_find(reply, ""));
        assert_null(mesh_peer_find(NULL, "nas"));
}

static void test_unreachable_reason(void **state) {
        _cleanup_json_ cJSON *reply = cJSON_Parse(PEERS_REPLY);
        const cJSON *nas = mesh_peer_find(reply, "nas"), *backup = mesh_peer_find(reply, "backup");
        uint64_t t = 1700000000000000ULL;
        char buf[32];

        assert_string_equal(mesh_peer_unreachable_reason(nas, t), "no handshake");
        assert_string_equal(mesh_peer_unreachable_reason(backup, t + 10 * USEC_PER_SEC), "no probe reply");
        assert_string_equal(mesh_peer_unreachable_reason(backup, t + 600 * USEC_PER_SEC), "no handshake");

        format_timeout(30 * USEC_PER_SEC, buf, sizeof(buf));
        assert_string_equal(buf, "30s");
        format_timeout(500 * USEC_PER_MSEC, buf, sizeof(buf));
        assert_string_equal(buf, "500ms");
        format_timeout(120 * USEC_PER_SEC, buf, sizeof(buf));
        assert_string_equal(buf, "120s");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_spec_host),
                cmocka_unit_test(test_spec_replace),
                cmocka_unit_test(test_options_get),
                cmocka_unit_test(test_options_strip),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_real_type),
                cmocka_unit_test(test_type_is_valid),
                cmocka_unit_test(test_peer_find),
                cmocka_unit_test(test_unreachable_reason),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
