/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd.conf(5), read by conf_load() from a path: the input is the whole
 * file, handed over as /proc/self/fd/N of a memfd so that nothing lands on
 * disk. conf_load() either fills the config or leaves it as it was and
 * names the line at fault; the value parsers get the input as one string
 * too. */

#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"
#include "fuzz.h"

static void check_defaults(const MeshdConfig *c) {
        fuzz_check(!c->control_url && !c->control_pin && !c->auth_key_file && !c->hostname);
        fuzz_check(!c->interface && !c->required_peers);
        fuzz_check(c->listen_port == MESHD_DEFAULT_LISTEN_PORT && c->backend == WG_BACKEND_AUTO);
        fuzz_check(!c->keep_interface && c->online_policy == ONLINE_POLICY_ANY);
        fuzz_check(c->online_timeout_usec == MESHD_DEFAULT_ONLINE_TIMEOUT_USEC);
        fuzz_check(!c->cert_reload_command);
}

static void check_loaded(const MeshdConfig *c) {
        fuzz_check(c->interface && c->interface[0] != '\0');
        fuzz_check(c->online_policy >= 0 && c->online_policy < _ONLINE_POLICY_MAX);
        fuzz_check(c->online_policy != ONLINE_POLICY_REQUIRED || strv_length(c->required_peers) > 0);
        fuzz_check(!c->control_url || strncmp(c->control_url, "https://", 8) == 0);
        fuzz_check(!c->auth_key_file || c->auth_key_file[0] == '/');
}

static void check_values(const char *s) {
        uint64_t usec;
        OnlinePolicy p;
        int r;

        r = parse_timespan_usec(s, &usec);
        fuzz_check(r == 0 || r == -EINVAL || r == -ERANGE);
        r = parse_boolean(s);
        fuzz_check(r == 0 || r == 1 || r == -EINVAL);
        p = online_policy_from_string(s);
        fuzz_check(p == _ONLINE_POLICY_INVALID || streq(online_policy_to_string(p), s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(conf_done) MeshdConfig c = {};
        _cleanup_free_ char *error = NULL, *error2 = NULL, *s = NULL;
        _cleanup_close_ int fd = -EBADF;
        char path[64];
        int r;

        fuzz_quiet_logs();

        fd = memfd_create("meshd.conf", MFD_CLOEXEC);
        fuzz_check(fd >= 0);
        fuzz_check(size == 0 || write(fd, data, size) == (ssize_t) size);
        snprintf(path, sizeof(path), "/proc/self/fd/%i", fd);

        conf_init_defaults(&c);
        r = conf_load(path, &c, &error);
        if (r < 0) {
                fuzz_check(r == -EINVAL || r == -ENOMEM);
                /* "PATH:LINE: what" or "PATH: what", and nothing half-applied. */
                fuzz_check(r == -ENOMEM ||
                           (error && strncmp(error, path, strlen(path)) == 0 && error[strlen(path)] == ':'));
                check_defaults(&c);
        } else {
                fuzz_check(r == 0 && !error);
                check_loaded(&c);
                /* Loading over a loaded config replaces it the same way. */
                fuzz_check(conf_load(path, &c, &error2) == 0 && !error2);
                check_loaded(&c);
        }

        s = fuzz_string(data, size);
        check_values(s);
        return 0;
}
