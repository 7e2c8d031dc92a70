/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "firewall.h"
#include "log.h"
#include "nft-run.h"

/* Applying "table inet meshd" through libnftables: the script of
 * firewall-script.c, whole, as one buffer (one netlink batch, one
 * transaction). Replacing the whole table every time, rather than the
 * differences, keeps what the kernel holds a function of the last spec
 * alone: nothing an earlier failed or partial step left behind can
 * survive, and 1,000 rules take tens of milliseconds (bench/nftables.py). */

struct Firewall {
        Nftables *nft;
        char *applied; /* the script the kernel holds; NULL: no table */
        bool known;    /* applied says what the kernel holds (false until the first success) */
        char *marker;  /* exists while a table of ours may exist (see firewall_new()) */
};

/* The marker in the state directory lets a meshd that starts find out
 * whether a table of an earlier run may be left (a crash, KeepInterface=yes)
 * without asking the kernel: most nodes never have a policy, and loading
 * libnftables and its caches only to find nothing costs about 2 MiB of
 * memory for good. */
int firewall_new(const char *state_dir, Firewall **ret) {
        Firewall *fw = calloc(1, sizeof(Firewall));

        if (!fw)
                return -ENOMEM;
        if (asprintf(&fw->marker, "%s/" FIREWALL_MARKER_NAME, state_dir) < 0) {
                free(fw);
                return -ENOMEM;
        }
        *ret = fw;
        return 0;
}

static void marker_set(Firewall *fw, bool on) {
        int r = on ? write_file_atomic(fw->marker, "", 0, 0644) : (unlink(fw->marker) < 0 ? -errno : 0);

        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Failed to %s %s: %m", on ? "write" : "remove", fw->marker);
}

Firewall *firewall_free(Firewall *fw) {
        if (!fw)
                return NULL;
        if (fw->nft)
                nftables_close(fw->nft);
        free(fw->applied);
        free(fw->marker);
        free(fw);
        return NULL;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int firewall_run(Firewall *fw, const char *script, char *error, size_t error_size) {
        int r;

        if (!fw->nft) {
                r = nftables_open(&fw->nft);
                if (r < 0) {
                        (void) snprintf(error, error_size, "%s",
                                        r == -ENOPKG ? NFTABLES_SONAME " is not installed"
                                                     : "no nf_tables in this kernel");
                        return r;
                }
        }
        return nftables_run(fw->nft, script, error, error_size);
}

/* Without a table of ours there is nothing more to do for a while (most
 * nodes never have a policy): the context and its caches go. */
static void firewall_release_context(Firewall *fw) {
        if (fw->nft)
                nftables_close(fw->nft);
        fw->nft = NULL;
}

static size_t count_filter_ports(const FirewallSpec *spec) {
        size_t n = 0;

        for (size_t i = 0; i < spec->n_filter; i++)
                n += spec->filter[i].n_ports;
        return n;
}

/* No table wanted: delete ours if we made one (or may have, before this
 * run of meshd: a crash leaves it), quietly when that finds nothing. */
static int firewall_apply_none(Firewall *fw) {
        _cleanup_free_ char *script = NULL;
        char error[256];
        int r;

        if (fw->known && !fw->applied)
                return 0;
        if (!fw->known && access(fw->marker, F_OK) < 0) {
                fw->known = true; /* no earlier run left one */
                return 0;
        }
        r = firewall_script_remove(&script);
        if (r < 0)
                return log_oom();
        r = firewall_run(fw, script, error, sizeof(error));
        firewall_release_context(fw);
        if (r < 0) {
                if (!fw->known) /* no nftables, or nothing to delete: nothing of ours there */
                        return log_debug_errno(r, "No nftables table inet " FIREWALL_TABLE " removed: %s",
                                               error);
                return log_error_errno(r, "Failed to delete nftables table inet " FIREWALL_TABLE ": %s", error);
        }
        marker_set(fw, false);
        if (fw->applied)
                log_info("Firewall: no mesh policy and no routes, nftables table inet " FIREWALL_TABLE
                         " deleted.");
        fw->applied = mfree(fw->applied);
        fw->known = true;
        return 0;
}

int firewall_apply(Firewall *fw, const FirewallSpec *spec) {
        _cleanup_free_ char *script = NULL;
        char error[256];
        uint64_t start;
        int r;

        r = firewall_script_install(spec, &script);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "Failed to build nftables table inet " FIREWALL_TABLE " for %s: %m",
                                       spec->ifname);
        if (!script)
                return firewall_apply_none(fw);
        if (fw->known && streq_ptr(fw->applied, script))
                return 0;

        if (!fw->applied) /* first, so that no table of ours is ever without it */
                marker_set(fw, true);
        start = now_usec();
        r = firewall_run(fw, script, error, sizeof(error));
        if (r < 0)
                /* one transaction: the kernel kept the old table (or none) whole */
                return log_error_errno(r,
                                       "Failed to replace nftables table inet " FIREWALL_TABLE
                                       ": %s; the previous table stays in place.",
                                       error);
        log_info("Firewall: nftables table inet " FIREWALL_TABLE " on %s %s: %s, %zu filter entries with %zu "
                 "port item(s), %zu route(s)%s, replaced in %.1f ms.",
                 spec->ifname, fw->applied ? "replaced" : "installed",
                 spec->policy ? "mesh policy" : "no mesh policy", spec->n_filter, count_filter_ports(spec),
                 spec->n_routes, spec->exit ? ", exit node" : "", (double) (now_usec() - start) / 1000.0);
        free(fw->applied);
        fw->applied = TAKE_PTR(script);
        fw->known = true;
        return 0;
}

int firewall_remove(Firewall *fw) {
        _cleanup_free_ char *script = NULL;
        char error[256];
        int r;

        if (!fw || !fw->applied)
                return 0;
        r = firewall_script_remove(&script);
        if (r < 0)
                return log_oom();
        r = firewall_run(fw, script, error, sizeof(error));
        firewall_release_context(fw);
        if (r < 0)
                return log_warning_errno(r, "Failed to delete nftables table inet " FIREWALL_TABLE ": %s",
                                         error);
        marker_set(fw, false);
        log_info("Firewall: nftables table inet " FIREWALL_TABLE " deleted.");
        fw->applied = mfree(fw->applied);
        return 0;
}
