/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fstab lines, as meshd-fstab-generator and mount.mesh read them. The input
 * is an fstab: each line's whitespace-separated fields go through the pure
 * source and option functions of mount-options.h and fstab-mesh.h, and the
 * whole file through fstab_mesh_generate(), with libmount's unescaping,
 * into scratch directories. Every unit file it writes must still be made
 * of the lines the generator means to write: nothing in an fstab entry may
 * start a line of its own. */

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fstab-mesh.h"
#include "fuzz.h"
#include "mount-options.h"
#include "unit-name.h"

/* A cached netmap as the generator finds it at boot: self client, peers nas
 * and backup-2. */
static const char netmap_json[] =
        "{\"version\": 3, \"domain\": \"mesh.internal\", \"ipv4_range\": \"100.64.0.0/10\","
        " \"ipv6_range\": \"fd7a:115c:a1e0::/48\","
        " \"self\": {\"name\": \"client\", \"public_key\": \"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\","
        "  \"ipv4\": \"100.64.0.2\", \"ipv6\": \"fd7a:115c:a1e0::2\"},"
        " \"peers\": ["
        "  {\"name\": \"nas\", \"public_key\": \"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\","
        "   \"ipv4\": \"100.64.0.3\", \"ipv6\": \"fd7a:115c:a1e0::3\"},"
        "  {\"name\": \"backup-2\", \"public_key\": \"AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\","
        "   \"ipv4\": \"100.64.0.4\"}]}";

static void write_file(const char *path, const void *data, size_t size) {
        _cleanup_fclose_ FILE *f = fopen(path, "we");

        fuzz_check(f);
        fuzz_check(size == 0 || fwrite(data, 1, size, f) == size);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -errno : 0;
}

static void remove_tree(const char *path) {
        fuzz_check(nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0);
}

/* Lines the generator writes, by their start. */
static bool unit_line_is_expected(const char *line) {
        static const char *const keys[] = {
                "Documentation=",     "SourcePath=", "Requires=", "Wants=", "After=", "Before=",
                "RequiresMountsFor=", "TimeoutSec=", "What=",     "Where=", "Type=",  "Options=",
        };

        if (line[0] == '\0' || line[0] == '#' || streq(line, "[Unit]") || streq(line, "[Mount]"))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (strncmp(line, keys[i], strlen(keys[i])) == 0)
                        return true;
        return false;
}

static int check_unit_file(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        size_t allocated = 0;
        unsigned what = 0, mount = 0;
        ssize_t n;

        if (flag != FTW_F)
                return 0;
        f = fopen(path, "re");
        fuzz_check(f);
        while ((n = getline(&line, &allocated, f)) > 0) {
                /* every line ends in '\n', none in a continuing backslash */
                fuzz_check(line[n - 1] == '\n');
                line[--n] = '\0';
                fuzz_check(n == 0 || line[n - 1] != '\\');
                if (!unit_line_is_expected(line)) {
                        fprintf(stderr, "%s: unexpected line \"%s\"\n", path, line);
                        fuzz_check(unit_line_is_expected(line));
                }
                what += strncmp(line, "What=", 5) == 0;
                mount += streq(line, "[Mount]");
        }
        fuzz_check(what == mount && mount <= 1);
        return 0;
}

static void check_options(const char *options) {
        _cleanup_free_ char *stripped = NULL, *again = NULL, *peer = NULL, *timeout = NULL;
        uint64_t usec;
        int r;

        r = mount_options_get(options, MESHD_OPTION_PREFIX "peer", &peer);
        fuzz_check(r >= 0 || r == -EINVAL);
        fuzz_check((r == 1) == mount_options_has(options, MESHD_OPTION_PREFIX "peer"));
        if (mount_options_get(options, MESHD_OPTION_PREFIX "timeout", &timeout) > 0) {
                r = mount_timeout_parse(timeout, &usec);
                fuzz_check(r == 0 || r == -EINVAL || r == -ERANGE);
                fuzz_check(r < 0 || usec == MOUNT_MESH_TIMEOUT_INFINITY || usec <= 24 * 3600 * USEC_PER_SEC);
        }

        r = mount_options_strip_meshd(options, true, &stripped);
        fuzz_check(r == 0 || r == -EINVAL);
        if (r < 0)
                return;
        fuzz_check(!mount_options_has(stripped, MESHD_OPTION_PREFIX "peer"));
        fuzz_check(!mount_options_has(stripped, MESHD_OPTION_PREFIX "timeout"));
        /* what is left has nothing more to strip (a bare "defaults" neither;
         * "defaults=x" is some other option and stays) */
        fuzz_check(mount_options_strip_meshd(stripped, true, &again) == 0);
        fuzz_check(streq(stripped, again));
}

static void check_source(const MeshContext *c, const char *source) {
        static const char *const hosts[] = { "nas", "fd7a:115c:a1e0::3" };
        _cleanup_free_ char *host = NULL, *peer = NULL;
        MeshHost kind;
        int r;

        r = mount_spec_get_host(source, &host);
        fuzz_check(r == 0 || r == 1 || r == -EINVAL);
        if (r <= 0)
                return;
        fuzz_check(mesh_context_classify_host(c, host, &kind, &peer) == 0);
        fuzz_check((kind == MESH_HOST_PEER) == !!peer);

        /* What mount.mesh does once meshd named the peer's address. */
        for (size_t i = 0; i < ELEMENTSOF(hosts); i++) {
                _cleanup_free_ char *replaced = NULL, *host2 = NULL;

                fuzz_check(mount_spec_replace_host(source, hosts[i], &replaced) == 0);
                fuzz_check(mount_spec_get_host(replaced, &host2) == 1);
                fuzz_check(streq(host2, hosts[i]));
        }
}

static void check_line(const MeshContext *c, char *line) {
        char *source, *target, *fstype, *options, *save = NULL;
        _cleanup_free_ char *real = NULL;
        _cleanup_(mesh_mount_done) MeshMount m = {};
        int r;

        source = strtok_r(line, " \t", &save);
        target = strtok_r(NULL, " \t", &save);
        fstype = strtok_r(NULL, " \t", &save);
        options = strtok_r(NULL, " \t", &save);
        if (!source || source[0] == '#')
                return;

        check_source(c, source);
        check_options(options);
        r = mount_real_type(target, fstype, &real);
        fuzz_check(r == 0 || r == -EINVAL);
        fuzz_check(r < 0 || (strncmp(real, "mesh.", 5) != 0 && !strchr(real, '/')));

        r = mesh_mount_from_fstab(c, source, target, fstype, options, &m);
        fuzz_check(r == 0 || r == 1 || r == -EINVAL || r == -ENAMETOOLONG || r == -ENOMEM);
        if (r == 1)
                fuzz_check(m.what && m.where && m.where[0] == '/' && m.fstype && m.trigger);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(mesh_context_freep) MeshContext *c = NULL;
        _cleanup_free_ char *text = NULL, *root = NULL, *state = NULL, *normal = NULL, *early = NULL,
                            *fstab = NULL;
        char *line, *save = NULL;

        fuzz_quiet_logs();

        /* Scratch directories, fresh for each input: the generator refuses
         * to overwrite a unit it wrote before. tools/fuzz points $TMPDIR
         * at a tmpfs. */
        fuzz_check(asprintf(&root, "%s/meshd-fuzz-fstab-XXXXXX", getenv("TMPDIR") ?: "/tmp") > 0);
        fuzz_check(mkdtemp(root));
        fuzz_check(asprintf(&state, "%s/state", root) > 0 && mkdir(state, 0755) == 0);
        fuzz_check(asprintf(&normal, "%s/normal", root) > 0 && mkdir(normal, 0755) == 0);
        fuzz_check(asprintf(&early, "%s/early", root) > 0 && mkdir(early, 0755) == 0);
        fuzz_check(asprintf(&fstab, "%s/fstab", root) > 0);
        write_file(fstab, data, size);
        {
                _cleanup_free_ char *cache = NULL;
                fuzz_check(asprintf(&cache, "%s/netmap.json", state) > 0);
                write_file(cache, netmap_json, strlen(netmap_json));
        }
        fuzz_check(mesh_context_load(state, &c) == 0 && c->netmap);

        text = fuzz_string(data, size);
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                check_line(c, line);

        fuzz_check(fstab_mesh_generate(fstab, state, normal, early) == 0);
        fuzz_check(nftw(normal, check_unit_file, 16, FTW_PHYS) == 0);
        fuzz_check(nftw(early, check_unit_file, 16, FTW_PHYS) == 0);
        remove_tree(root);
        return 0;
}
