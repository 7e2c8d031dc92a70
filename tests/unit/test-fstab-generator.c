/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd-fstab-generator: unit names (against the real systemd-escape),
 * which fstab entries are ours, and the files written for fixtures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fstab-mesh.h"
#include "macro.h"
#include "test-util.h"
#include "unit-name.h"

#define NETMAP_FIXTURE                                                                                          \
        "{\"version\": 3, \"domain\": \"mesh.internal\", \"ipv4_range\": \"100.64.0.0/10\",\n"                  \
        " \"ipv6_range\": \"fd7a:115c:a1e0::/48\",\n"                                                           \
        " \"self\": {\"name\": \"client\", \"public_key\": \"ej2jZFBkX5LSjGJDyogaAoG6ylcjKsqMQQXHXp80YQY=\",\n" \
        "   \"ipv4\": \"100.64.0.2\", \"ipv6\": \"fd7a:115c:a1e0::2\", \"endpoints\": []},\n"                   \
        " \"peers\": [\n"                                                                                       \
        "  {\"name\": \"nas\", \"public_key\": \"AOiqpD50zt1928r3DODAnUfu/Rn28Q9Q+Rj4PISKeBI=\",\n"             \
        "   \"ipv4\": \"100.64.0.3\", \"ipv6\": \"fd7a:115c:a1e0::3\", \"endpoints\": [], \"relay\": false},\n" \
        "  {\"name\": \"backup-2\", \"public_key\": \"0zAE2XblZ99t1Ft0dqPl0/s7px7PLc58Z3Md9HyirDg=\",\n"        \
        "   \"ipv4\": \"100.64.0.4\", \"ipv6\": \"fd7a:115c:a1e0::4\", \"endpoints\": [], \"relay\": false}]}\n"

/* ---- unit names ------------------------------------------------------------------------------ */

/* Output of the installed systemd-escape, or NULL when there is none. */
static char *systemd_escape(const char *mode, const char *arg) {
        int fds[2];
        pid_t pid;
        char buf[4096];
        size_t n = 0;
        ssize_t k;
        int status;

        if (access("/usr/bin/systemd-escape", X_OK) < 0 && access("/bin/systemd-escape", X_OK) < 0)
                return NULL;
        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                dup2(fds[1], STDOUT_FILENO);
                close(fds[0]);
                if (mode)
                        execlp("systemd-escape", "systemd-escape", mode, "--suffix=mount", "--", arg, NULL);
                else
                        execlp("systemd-escape", "systemd-escape", "--", arg, NULL);
                _exit(127);
        }
        close(fds[1]);
        while ((k = read(fds[0], buf + n, sizeof(buf) - 1 - n)) > 0)
                n += (size_t) k;
        close(fds[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return strdup("(failed)");
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return strdup(buf);
}

static void check_mount_name(const char *path, const char *expected) {
        _cleanup_free_ char *name = NULL, *real = NULL;

        assert_int_equal(unit_name_from_path(path, ".mount", &name), 0);
        assert_string_equal(name, expected);

        real = systemd_escape("--path", path);
        if (real)
                assert_string_equal(name, real);
}

static void test_mount_unit_names(void **state) {
        /* expected: systemd-escape --path --suffix=mount of systemd 252 */
        check_mount_name("/", "-.mount");
        check_mount_name("/mnt/a", "mnt-a.mount");
        check_mount_name("/mnt/a/", "mnt-a.mount");
        check_mount_name("/mnt//a///", "mnt-a.mount");
        check_mount_name("/mnt/./a", "mnt-a.mount");
        check_mount_name("/mnt/my dir", "mnt-my\\x20dir.mount");
        check_mount_name("/mnt/my-dir", "mnt-my\\x2ddir.mount");
        check_mount_name("/srv/nfs-share/data.v2", "srv-nfs\\x2dshare-data.v2.mount");
        check_mount_name("/.snapshots", "\\x2esnapshots.mount");
        check_mount_name("/mnt/.hidden", "mnt-.hidden.mount");
        check_mount_name("/mnt/a..b", "mnt-a..b.mount");
        check_mount_name("/mnt/Müll", "mnt-M\\xc3\\xbcll.mount");
        check_mount_name("/mnt/日本", "mnt-\\xe6\\x97\\xa5\\xe6\\x9c\\xac.mount");
        check_mount_name("/mnt/a\\b", "mnt-a\\x5cb.mount");
        check_mount_name("/mnt/100%:x_y", "mnt-100\\x25:x_y.mount");
        check_mount_name("/mnt/tab\there", "mnt-tab\\x09here.mount");
        check_mount_name("/mnt/with spaces - and dashes/",
                         "mnt-with\\x20spaces\\x20\\x2d\\x20and\\x20dashes.mount");
}

static void test_mount_unit_names_invalid(void **state) {
        char *name = NULL, long_path[400];

        assert_int_equal(unit_name_from_path("/mnt/../x", ".mount", &name), -EINVAL);
        assert_int_equal(unit_name_from_path("/..", ".mount", &name), -EINVAL);
        memset(long_path, 'a', sizeof(long_path) - 1);
        long_path[0] = '/';
        long_path[200] = '/';
        long_path[sizeof(long_path) - 1] = '\0';
        assert_int_equal(unit_name_from_path(long_path, ".mount", &name), -ENAMETOOLONG);
        assert_null(name);
}

static void check_instance(const char *peer, const char *expected) {
        _cleanup_free_ char *name = NULL, *escaped = NULL, *real = NULL;

        assert_int_equal(unit_name_build_instance("meshd-wait-online@", peer, ".service", &name), 0);
        assert_string_equal(name, expected);
        assert_int_equal(unit_name_escape(peer, &escaped), 0);
        real = systemd_escape(NULL, peer);
        if (real)
                assert_string_equal(escaped, real);
}

static void test_instance_names(void **state) {
        check_instance("nas", "meshd-wait-online@nas.service");
        check_instance("backup-2", "meshd-wait-online@backup\\x2d2.service");
        check_instance("a.b", "meshd-wait-online@a.b.service");
}

static void test_path_simplify(void **state) {
        char a[] = "//mnt///a/./b/", b[] = "/", c[] = "./", d[] = "/a/../b";

        assert_string_equal(path_simplify(a), "/mnt/a/b");
        assert_string_equal(path_simplify(b), "/");
        assert_string_equal(path_simplify(c), ".");
        assert_string_equal(path_simplify(d), "/a/../b");
}

/* ---- which entries are ours ------------------------------------------------------------------ */

typedef struct Fixture {
        char *dir;
        char state[PATH_MAX], normal[PATH_MAX], early[PATH_MAX], fstab[PATH_MAX + 16];
        MeshContext *context;
} Fixture;

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_true(fputs(text, f) >= 0);
        assert_int_equal(fclose(f), 0);
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        char path[PATH_MAX + 32];

        assert_non_null(f);
        f->dir = test_tmpdir_new("test-fstab-generator");
        assert_true(snprintf(f->state, sizeof(f->state), "%s/state", f->dir) < (int) sizeof(f->state));
        assert_true(snprintf(f->normal, sizeof(f->normal), "%s/normal", f->dir) < (int) sizeof(f->normal));
        assert_true(snprintf(f->early, sizeof(f->early), "%s/early", f->dir) < (int) sizeof(f->early));
        assert_true(snprintf(f->fstab, sizeof(f->fstab), "%s/fstab", f->dir) < (int) sizeof(f->fstab));
        assert_int_equal(mkdir(f->state, 0700), 0);
        assert_int_equal(mkdir(f->normal, 0755), 0);
        assert_int_equal(mkdir(f->early, 0755), 0);
        assert_true(snprintf(path, sizeof(path), "%s/netmap.json", f->state) < (int) sizeof(path));
        write_text(path, NETMAP_FIXTURE);
        assert_int_equal(mesh_context_load(f->state, &f->context), 0);
        assert_non_null(f->context->netmap);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        mesh_context_free(f->context);
        test_tmpdir_free(f->dir);
        free(f);
        return 0;
}

static void check_host(const MeshContext *c, const char *host, MeshHost kind, const char *peer) {
        _cleanup_free_ char *p = NULL;
        MeshHost k;

        assert_int_equal(mesh_context_classify_host(c, host, &k, &p), 0);
        assert_int_equal(k, kind);
        if (peer)
                assert_string_equal(p, peer);
        else
                assert_null(p);
}

static void test_classify_host(void **state) {
        Fixture *f = *state;
        _cleanup_(mesh_context_freep) MeshContext *defaults = NULL;

        check_host(f->context, "nas", MESH_HOST_PEER, "nas");
        check_host(f->context, "NAS", MESH_HOST_PEER, "nas");
        check_host(f->context, "nas.mesh.internal", MESH_HOST_PEER, "nas");
        check_host(f->context, "Nas.Mesh.Internal.", MESH_HOST_PEER, "nas");
        check_host(f->context, "new-peer.mesh.internal", MESH_HOST_PEER, "new-peer"); /* cache may be old */
        check_host(f->context, "100.64.0.3", MESH_HOST_PEER, "nas");
        check_host(f->context, "fd7a:115c:a1e0::4", MESH_HOST_PEER, "backup-2");
        check_host(f->context, "100.64.9.9", MESH_HOST_UNNAMED, NULL);
        check_host(f->context, "100.127.255.255", MESH_HOST_UNNAMED, NULL);
        check_host(f->context, "client", MESH_HOST_UNNAMED, NULL); /* this node itself */
        check_host(f->context, "a.b.mesh.internal", MESH_HOST_UNNAMED, NULL);
        check_host(f->context, "100.128.0.1", MESH_HOST_NONE, NULL);
        check_host(f->context, "192.168.1.10", MESH_HOST_NONE, NULL);
        check_host(f->context, "fd00::1", MESH_HOST_NONE, NULL);
        check_host(f->context, "fileserver", MESH_HOST_NONE, NULL);
        check_host(f->context, "nas.example.com", MESH_HOST_NONE, NULL);
        check_host(f->context, "mesh.internal", MESH_HOST_NONE, NULL);

        /* No cache (e.g. /var not mounted yet): the documented defaults. */
        assert_int_equal(mesh_context_load(NULL, &defaults), 0);
        check_host(defaults, "nas.mesh.internal", MESH_HOST_PEER, "nas");
        check_host(defaults, "100.64.0.3", MESH_HOST_UNNAMED, NULL);
        check_host(defaults, "nas", MESH_HOST_NONE, NULL);
        check_host(defaults, "fd7a:115c:a1e0::3", MESH_HOST_NONE, NULL);
}

static void test_broken_cache_means_defaults(void **state) {
        Fixture *f = *state;
        _cleanup_(mesh_context_freep) MeshContext *c = NULL;
        char path[PATH_MAX + 32];

        assert_true(snprintf(path, sizeof(path), "%s/netmap.json", f->state) < (int) sizeof(path));
        write_text(path, "{\"version\": 0, \"truncated");
        assert_int_equal(mesh_context_load(f->state, &c), 0);
        assert_null(c->netmap);
        assert_string_equal(c->domain, "mesh.internal");
}

static void check_entry(const MeshContext *c, const char *source, const char *target, const char *type,
                        const char *options, int expected, const char *peer, bool network) {
        _cleanup_(mesh_mount_done) MeshMount m = {};

        assert_int_equal(mesh_mount_from_fstab(c, source, target, type, options, &m), expected);
        if (expected <= 0)
                return;
        if (peer)
                assert_string_equal(m.peer, peer);
        else
                assert_null(m.peer);
        assert_int_equal(m.network, network);
}

static void test_triggers(void **state) {
        Fixture *f = *state;
        const MeshContext *c = f->context;

        /* x-meshd.peer= wins over everything */
        check_entry(c, "192.168.1.5:/x", "/mnt/x", "nfs4", "x-meshd.peer=nas", 1, "nas", true);
        check_entry(c, "100.64.0.4:/x", "/mnt/x", "nfs", "rw,x-meshd.peer=NAS", 1, "nas", true);
        /* type mesh.*: the host is the peer, cached or not */
        check_entry(c, "nas:/x", "/mnt/x", "mesh.nfs4", NULL, 1, "nas", false);
        check_entry(c, "other:/x", "/mnt/x", "mesh.nfs4", "defaults", 1, "other", false);
        check_entry(c, "//nas/share", "/mnt/x", "mesh.cifs", NULL, 1, "nas", false);
        check_entry(c, "nas:/x", "/mnt/x", "mesh.nfs4", "_netdev", 1, "nas", true);
        check_entry(c, "files.example.com:/x", "/mnt/x", "mesh.nfs4", NULL, 1, NULL, false);
        /* the source host */
        check_entry(c, "nas.mesh.internal:/export", "/mnt/a", "nfs4", "_netdev", 1, "nas", true);
        check_entry(c, "nas:/export", "/mnt/x", "nfs", NULL, 1, "nas", true);
        check_entry(c, "100.64.0.3:/export", "/mnt/x", "nfs4", NULL, 1, "nas", true);
        check_entry(c, "[fd7a:115c:a1e0::3]:/export", "/mnt/x", "nfs4", NULL, 1, "nas", true);
        check_entry(c, "//backup-2.mesh.internal/data", "/mnt/x", "cifs", NULL, 1, "backup-2", true);
        check_entry(c, "user@nas:/home", "/mnt/x", "fuse.sshfs", NULL, 1, "nas", true);
        check_entry(c, "100.64.7.7:/export", "/mnt/x", "nfs4", NULL, 1, NULL, true);
        /* not ours */
        check_entry(c, "/dev/sda1", "/", "ext4", "defaults", 0, NULL, false);
        check_entry(c, "UUID=1234-abcd", "/boot", "vfat", NULL, 0, NULL, false);
        check_entry(c, "tmpfs", "/tmp", "tmpfs", NULL, 0, NULL, false);
        check_entry(c, "fileserver:/export", "/mnt/x", "nfs4", NULL, 0, NULL, false);
        check_entry(c, "/dev/sdb2", "none", "swap", "sw", 0, NULL, false);
        /* ours, but not understood: skipped */
        check_entry(c, "nas:/x", "/mnt/x", "nfs4", "x-meshd.peer=", -EINVAL, NULL, false);
        check_entry(c, "nas:/x", "/mnt/x", "nfs4", "x-meshd.peer=bad/name", -EINVAL, NULL, false);
        check_entry(c, "nas:/x", "relative/dir", "mesh.nfs4", NULL, -EINVAL, NULL, false);
        check_entry(c, "[fd7a::3:/x", "/mnt/x", "mesh.nfs4", NULL, -EINVAL, NULL, false);
}

static void test_automount_and_flags(void **state) {
        Fixture *f = *state;
        _cleanup_(mesh_mount_done) MeshMount m = {};

        assert_int_equal(mesh_mount_from_fstab(f->context, "100.64.0.9:/export", "/mnt/c/", "nfs4",
                                               "x-meshd.peer=nas,x-systemd.automount,nofail,noauto", &m),
                         1);
        assert_true(m.automount);
        assert_true(m.nofail);
        assert_true(m.noauto);
        assert_string_equal(m.where, "/mnt/c");
        assert_true(fstype_is_network("fuse.sshfs"));
        assert_true(fstype_is_network("nfs4"));
        assert_false(fstype_is_network("mesh.nfs4"));
        assert_false(fstype_is_network(NULL));
}

/* ---- files written --------------------------------------------------------------------------- */

static char *read_text(const char *dir, const char *name) {
        char path[PATH_MAX * 2], *buf;
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "re");
        if (!f)
                return NULL;
        buf = calloc(1, 65536);
        assert_non_null(buf);
        n = fread(buf, 1, 65535, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static void assert_file(const char *dir, const char *name, const char *expected) {
        _cleanup_free_ char *text = read_text(dir, name);

        if (!text)
                fail_msg("%s/%s missing", dir, name);
        assert_string_equal(text, expected);
}

static void assert_no_file(const char *dir, const char *name) {
        char path[PATH_MAX * 2];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (lstat(path, &st) == 0)
                fail_msg("%s exists", path);
}

static void assert_link(const char *dir, const char *name, const char *target) {
        char path[PATH_MAX * 2], buf[PATH_MAX];
        ssize_t n;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        n = readlink(path, buf, sizeof(buf) - 1);
        if (n < 0)
                fail_msg("%s is not a symlink", path);
        buf[n] = '\0';
        assert_string_equal(buf, target);
}

#define DROPIN(trigger, peer)                                                \
        "# Automatically generated by meshd-fstab-generator (" trigger ")\n" \
        "\n"                                                                 \
        "[Unit]\n"                                                           \
        "Requires=meshd-wait-online@" peer ".service\n"                      \
        "After=meshd-wait-online@" peer ".service\n"                         \
        "Wants=mesh-online.target\n"                                         \
        "After=mesh-online.target\n"

static void generate(Fixture *f, const char *fstab) {
        write_text(f->fstab, fstab);
        assert_int_equal(fstab_mesh_generate(f->fstab, f->state, f->normal, f->early), 0);
}

static void test_issue_examples(void **state) {
        Fixture *f = *state;
        char expected[PATH_MAX + 4096];

        generate(f, "# the three lines of issue 4\n"
                    "nas.mesh.internal:/export /mnt/a nfs4 _netdev,x-systemd.requires=mesh-online.target 0 0\n"
                    "nas:/export /mnt/b mesh.nfs4 defaults 0 0\n"
                    "100.64.0.3:/export /mnt/c nfs4 x-meshd.peer=nas,x-systemd.automount 0 0\n"
                    "/dev/sda1 / ext4 defaults 0 1\n");

        assert_file(f->normal, "mnt-a.mount.d/50-meshd.conf", DROPIN("mesh host nas.mesh.internal", "nas"));
        assert_file(f->normal, "mnt-c.mount.d/50-meshd.conf", DROPIN("x-meshd.peer=nas", "nas"));
        assert_no_file(f->normal, "mnt-c.automount.d");
        assert_no_file(f->normal, "-.mount.d");

        snprintf(expected, sizeof(expected),
                 "# Automatically generated by meshd-fstab-generator (type mesh.nfs4)\n"
                 "\n"
                 "[Unit]\n"
                 "Documentation=man:fstab(5) man:meshd-fstab-generator(8)\n"
                 "SourcePath=%s\n"
                 "Requires=meshd-wait-online@nas.service\n"
                 "After=meshd-wait-online@nas.service\n"
                 "Wants=mesh-online.target\n"
                 "After=mesh-online.target\n"
                 "Wants=network-online.target\n"
                 "After=network-online.target remote-fs-pre.target\n"
                 "Before=remote-fs.target\n"
                 "\n"
                 "[Mount]\n"
                 "What=nas:/export\n"
                 "Where=/mnt/b\n"
                 "Type=mesh.nfs4\n"
                 "Options=_netdev\n",
                 f->fstab);
        assert_file(f->early, "mnt-b.mount", expected);
        assert_link(f->early, "remote-fs.target.requires/mnt-b.mount", "../mnt-b.mount");
        assert_link(f->early, "local-fs.target.requires/mnt-b.mount", "/dev/null");
        assert_no_file(f->normal, "mnt-b.mount.d");
}

static void test_odd_paths(void **state) {
        Fixture *f = *state;
        const char *paths[] = { "/srv/my share", "/srv/nfs-data/v1.2", "/srv/Müll/", "/srv/.dot" };
        const char *names[] = { "srv-my\\x20share.mount", "srv-nfs\\x2ddata-v1.2.mount",
                                "srv-M\\xc3\\xbcll.mount", "srv-.dot.mount" };

        /* fstab(5) writes a space as \040 */
        generate(f, "nas:/a /srv/my\\040share nfs4 defaults 0 0\n"
                    "nas:/b /srv/nfs-data/v1.2 nfs4 defaults 0 0\n"
                    "nas:/c /srv/Müll/ nfs4 defaults 0 0\n"
                    "nas:/d /srv/.dot nfs4 defaults 0 0\n");
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                _cleanup_free_ char *real = systemd_escape("--path", paths[i]);
                char dropin[PATH_MAX];

                if (real)
                        assert_string_equal(names[i], real);
                snprintf(dropin, sizeof(dropin), "%s.d/50-meshd.conf", names[i]);
                assert_file(f->normal, dropin, DROPIN("mesh host nas", "nas"));
        }
}

static void test_mesh_type_variants(void **state) {
        Fixture *f = *state;
        char expected[PATH_MAX + 4096];

        generate(f,
                 "//backup-2/data /srv/backup mesh.cifs nofail,x-meshd.timeout=60,credentials=/etc/c 0 0\n"
                 "nas:/x /srv/auto mesh.nfs4 x-systemd.automount,x-systemd.mount-timeout=90 0 0\n"
                 "nas:/y /srv/manual mesh.nfs4 noauto,x-systemd.requires=/srv,x-systemd.after=foo.service 0 0\n"
                 "nas:/z /srv/netdev mesh.nfs4 _netdev 0 0\n");

        snprintf(expected, sizeof(expected),
                 "# Automatically generated by meshd-fstab-generator (type mesh.cifs)\n"
                 "\n"
                 "[Unit]\n"
                 "Documentation=man:fstab(5) man:meshd-fstab-generator(8)\n"
                 "SourcePath=%s\n"
                 "Requires=meshd-wait-online@backup\\x2d2.service\n"
                 "After=meshd-wait-online@backup\\x2d2.service\n"
                 "Wants=mesh-online.target\n"
                 "After=mesh-online.target\n"
                 "Wants=network-online.target\n"
                 "After=network-online.target remote-fs-pre.target\n"
                 "\n"
                 "[Mount]\n"
                 "What=//backup-2/data\n"
                 "Where=/srv/backup\n"
                 "Type=mesh.cifs\n"
                 "Options=_netdev,nofail,credentials=/etc/c\n",
                 f->fstab);
        assert_file(f->early, "srv-backup.mount", expected);
        assert_link(f->early, "remote-fs.target.wants/srv-backup.mount", "../srv-backup.mount");
        assert_link(f->early, "local-fs.target.wants/srv-backup.mount", "/dev/null");

        /* automount: the mount unit only, systemd's .automount triggers it */
        {
                _cleanup_free_ char *text = read_text(f->early, "srv-auto.mount");
                assert_non_null(text);
                assert_non_null(strstr(text, "Before=remote-fs.target\nTimeoutSec=90\n"));
                assert_non_null(
                        strstr(text, "Options=_netdev,x-systemd.automount,x-systemd.mount-timeout=90\n"));
        }
        assert_no_file(f->early, "remote-fs.target.requires/srv-auto.mount");
        assert_no_file(f->early, "local-fs.target.requires/srv-auto.mount");

        {
                _cleanup_free_ char *text = read_text(f->early, "srv-manual.mount");
                assert_non_null(text);
                assert_non_null(strstr(text, "RequiresMountsFor=/srv\nAfter=foo.service\n"));
        }
        assert_no_file(f->early, "remote-fs.target.requires/srv-manual.mount");

        /* _netdev: systemd already makes it a remote mount, a drop-in does */
        assert_no_file(f->early, "srv-netdev.mount");
        assert_file(f->normal, "srv-netdev.mount.d/50-meshd.conf", DROPIN("type mesh.nfs4", "nas"));
}

static void test_bad_lines_skipped(void **state) {
        Fixture *f = *state;

        generate(f, "nas:/a /srv/one nfs4 defaults 0 0\n"
                    "this line is garbage\"\n"
                    "garbage\n"
                    "nas:/b /srv/two nfs4 x-meshd.peer=Not/A/Name 0 0\n"
                    "nas:/c relative nfs4 defaults 0 0\n"
                    "nas:/d /srv/../srv/three nfs4 defaults 0 0\n"
                    "100.64.1.1:/e /srv/four nfs4 defaults 0 0\n"
                    "nas:/f /srv/one nfs4 defaults 0 0\n"
                    "nas:/g /srv/five mesh.nfs4 defaults 0 0\n");

        assert_file(f->normal, "srv-one.mount.d/50-meshd.conf", DROPIN("mesh host nas", "nas"));
        assert_no_file(f->normal, "srv-two.mount.d");
        /* symlinks and ".." resolved like systemd-fstab-generator does */
        assert_file(f->normal, "srv-three.mount.d/50-meshd.conf", DROPIN("mesh host nas", "nas"));
        /* a mesh address of no cached peer: mesh-online.target only */
        assert_file(f->normal, "srv-four.mount.d/50-meshd.conf",
                    "# Automatically generated by meshd-fstab-generator (mesh host 100.64.1.1)\n"
                    "\n"
                    "[Unit]\n"
                    "Wants=mesh-online.target\n"
                    "After=mesh-online.target\n");
        {
                _cleanup_free_ char *text = read_text(f->early, "srv-five.mount");
                assert_non_null(text);
        }
}

/* Every line of every generated file is a whole line: none ends in a
 * backslash (which would continue it) and none was split by a newline. */
static int check_unit_lines(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        FILE *file;
        char line[8192];

        if (flag != FTW_F)
                return 0;
        file = fopen(path, "re");
        assert_non_null(file);
        while (fgets(line, sizeof(line), file)) {
                size_t n = strlen(line);

                assert_true(n > 0 && line[n - 1] == '\n');
                if (n >= 2 && line[n - 2] == '\\')
                        fail_msg("%s: line continues: %s", path, line);
                /* a key a newline smuggled in would start a line of its own */
                assert_null(strstr(line, "Wants=x"));
        }
        fclose(file);
        return 0;
}

/* Inputs the fuzzer found (fuzz/corpus/fuzz-fstab-options/regression-*). */
static void test_backslashes_and_newlines(void **state) {
        Fixture *f = *state;

        generate(
                f,
                "nas:/export  /mnt/a  nfs4\\134          defaults  0 0\n"
                "nas:/export  /mnt/b  mesh.nfs4\\012Wants=x  defaults  0 0\n"
                "nas:/export  /mnt/c  mesh.nfs4  x-systemd.requires-mounts-for=/var\\134,x-systemd.after=a\\134,"
                "x-systemd.mount-timeout=1\\134,nofail  0 0\n"
                "nas:/export  /mnt/x\\134/y/..  mesh.nfs4  defaults  0 0\n"
                "nas:/export  /mnt/d  mesh.nfs4  x-systemd.mount-timeout=1\\134,  0 0\n"
                "nas:/export  /mnt/ok  mesh.nfs4  defaults  0 0\n");

        assert_int_equal(nftw(f->early, check_unit_lines, 8, FTW_PHYS), 0);
        assert_int_equal(nftw(f->normal, check_unit_lines, 8, FTW_PHYS), 0);
        /* entries whose type or path cannot be written are skipped whole */
        assert_no_file(f->normal, "mnt-a.mount.d");
        assert_no_file(f->early, "mnt-b.mount");
        assert_no_file(f->early, "mnt-d.mount");
        /* one bad option value is dropped, the entry stays */
        {
                _cleanup_free_ char *text = read_text(f->early, "mnt-c.mount");
                assert_non_null(text);
                assert_null(strstr(text, "RequiresMountsFor="));
        }
        {
                _cleanup_free_ char *text = read_text(f->early, "mnt-ok.mount");
                assert_non_null(text);
        }
}

static void test_no_fstab(void **state) {
        Fixture *f = *state;
        char missing[PATH_MAX + 16];

        snprintf(missing, sizeof(missing), "%s/nonexistent", f->dir);
        assert_int_equal(fstab_mesh_generate(missing, f->state, f->normal, f->early), 0);
        /* no cache at all: still works with the defaults */
        write_text(f->fstab, "nas.mesh.internal:/x /srv/x nfs4 defaults 0 0\n");
        assert_int_equal(fstab_mesh_generate(f->fstab, NULL, f->normal, f->early), 0);
        assert_file(f->normal, "srv-x.mount.d/50-meshd.conf", DROPIN("mesh host nas.mesh.internal", "nas"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mount_unit_names),
                cmocka_unit_test(test_mount_unit_names_invalid),
                cmocka_unit_test(test_instance_names),
                cmocka_unit_test(test_path_simplify),
                cmocka_unit_test_setup_teardown(test_classify_host, setup, teardown),
                cmocka_unit_test_setup_teardown(test_broken_cache_means_defaults, setup, teardown),
                cmocka_unit_test_setup_teardown(test_triggers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_automount_and_flags, setup, teardown),
                cmocka_unit_test_setup_teardown(test_issue_examples, setup, teardown),
                cmocka_unit_test_setup_teardown(test_odd_paths, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mesh_type_variants, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_lines_skipped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_fstab, setup, teardown),
                cmocka_unit_test_setup_teardown(test_backslashes_and_newlines, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
