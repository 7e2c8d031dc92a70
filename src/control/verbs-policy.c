/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd-control policy set|get|test|clear: the access policy
 * (docs/policy.md). A policy is stored only whole: it parses, its own tests
 * pass against the members there are now, and every node's filter fits in
 * a netmap; otherwise nothing changes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "policy-mesh.h"
#include "verbs.h"

#define POLICY_FILE_MAX (1024 * 1024)

static int read_policy_file(const char *path, char **ret, size_t *ret_len) {
        int r;

        r = read_full_file(streq(path, "-") ? "/dev/stdin" : path, POLICY_FILE_MAX, ret, ret_len);
        if (r == -EFBIG)
                return log_error_errno(r, "%s: larger than %d bytes.", path, POLICY_FILE_MAX);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", path);
        return 0;
}

/* Every node's filter must fit the netmap's bounds (netmap-filter.h). */
static int check_filters(const char *path, const Policy *p, const PolicyMembers *m) {
        for (size_t i = 0; i < m->n_nodes; i++) {
                NetmapFilter *f = NULL;
                int r = policy_compile_filter(p, m->v, m->n, i, &f);

                netmap_filter_free(f);
                if (r == -E2BIG)
                        return log_error_errno(r, "%s: the filter of node '%s' would exceed %d entries.", path,
                                               m->v[i].name, NETMAP_FILTER_ENTRIES_MAX);
                if (r < 0)
                        return log_oom();
        }
        return 0;
}

/* Parses and tests the file against the store's members: 0 or a logged error. */
static int policy_check(Store *store, const char *path, char **ret_text, Policy **ret_policy) {
        _cleanup_(netmap_mesh_done) NetmapMesh mesh = {};
        _cleanup_(policy_members_done) PolicyMembers m = {};
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ char *text = NULL, *error = NULL;
        size_t len;
        int r;

        r = read_policy_file(path, &text, &len);
        if (r < 0)
                return r;
        r = policy_parse(text, len, &p, &error);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "%s: %s", path, error);

        r = store_read_mesh(store, NULL, &mesh);
        if (r < 0)
                return log_error_errno(r, "Failed to read the mesh: %m");
        r = policy_members_from_mesh(&mesh, &m);
        if (r < 0)
                return r;
        r = policy_run_tests(p, m.v, m.n, &error);
        if (r == -EPERM)
                return log_error_errno(r, "%s: %s", path, error);
        if (r < 0)
                return log_oom();
        r = check_filters(path, p, &m);
        if (r < 0)
                return r;

        *ret_text = TAKE_PTR(text);
        if (ret_policy)
                *ret_policy = TAKE_PTR(p);
        return 0;
}

int verb_policy_test(const ControlArgs *a, const char *path) {
        _cleanup_(store_freep) Store *store = NULL;
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ char *text = NULL;
        int r;

        r = open_store(a, &store);
        if (r < 0)
                return r;
        r = policy_check(store, path, &text, &p);
        if (r < 0)
                return r;
        printf("%s: ok, %zu rule%s, %zu test%s passed.\n", path, p->n_rules, p->n_rules == 1 ? "" : "s",
               p->n_tests, p->n_tests == 1 ? "" : "s");
        return 0;
}

int verb_policy_set(const ControlArgs *a, const char *path) {
        _cleanup_(store_freep) Store *store = NULL;
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ char *text = NULL;
        int r;

        r = open_store(a, &store);
        if (r < 0)
                return r;
        r = policy_check(store, path, &text, &p);
        if (r < 0)
                return r;
        r = store_set_policy(store, text);
        if (r < 0)
                return log_error_errno(r, "Failed to store the policy: %m");
        log_info("Policy set: %zu rule%s, %zu test%s passed; every node gets it with its next netmap.",
                 p->n_rules, p->n_rules == 1 ? "" : "s", p->n_tests, p->n_tests == 1 ? "" : "s");
        return 0;
}

int verb_policy_get(const ControlArgs *a) {
        _cleanup_(store_freep) Store *store = NULL;
        _cleanup_free_ char *text = NULL;
        int r;

        r = open_store(a, &store);
        if (r < 0)
                return r;
        r = store_get_policy(store, &text);
        if (r == -ENOENT)
                return log_error_errno(r, "No policy is set: every member reaches every member.");
        if (r < 0)
                return log_error_errno(r, "Failed to read the policy: %m");
        /* exactly as it was set: no newline added */
        if (fputs(text, stdout) < 0 || fflush(stdout) != 0)
                return log_error_errno(-EIO, "Failed to write the policy.");
        return 0;
}

int verb_policy_clear(const ControlArgs *a) {
        _cleanup_(store_freep) Store *store = NULL;
        int r;

        r = open_store(a, &store);
        if (r < 0)
                return r;
        r = store_set_policy(store, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to clear the policy: %m");
        log_info("Policy cleared: every member reaches every member.");
        return 0;
}
