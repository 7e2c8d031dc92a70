/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ACME orders for node CSRs: a table of jobs, one per node, and one lego
 * child at a time (they share the account in state_dir/acme, and in
 * wildcard mode the same certificate file name). Nothing here blocks: the
 * child is watched by sd-event (exit, output, timeout). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "acme-internal.h"
#include "fileio.h"
#include "log.h"

/* a node asking while its order runs is told to come back after this */
#define ACME_POLL_SEC 3

static void job_clear_result(AcmeJob *j) {
        free(j->leaf_pem);
        free(j->chain_pem);
        j->leaf_pem = j->chain_pem = NULL;
        j->error[0] = 0;
}

static void job_free(AcmeJob *j) {
        if (!j)
                return;
        job_clear_result(j);
        free(j->node);
        free(j->name);
        free(j->key_id);
        free(j->csr_pem);
        free(j);
}

static int job_set_request(AcmeJob *j, const char *node, const char *name, const char *csr_pem,
                           const char *key_id) {
        char *n = strdup(node), *m = strdup(name), *c = strdup(csr_pem), *k = strdup(key_id);

        if (!n || !m || !c || !k) {
                free(n);
                free(m);
                free(c);
                free(k);
                return -ENOMEM;
        }
        free(j->node);
        free(j->name);
        free(j->csr_pem);
        free(j->key_id);
        j->node = n;
        j->name = m;
        j->csr_pem = c;
        j->key_id = k;
        job_clear_result(j);
        j->state = JOB_QUEUED;
        return 0;
}

static AcmeJob *job_find(AcmeIssuer *a, int64_t node_id) {
        for (size_t i = 0; i < a->n_jobs; i++)
                if (a->jobs[i]->node_id == node_id)
                        return a->jobs[i];
        return NULL;
}

/* A new job; at the cap, a finished one makes room. */
static int job_add(AcmeIssuer *a, int64_t node_id, AcmeJob **ret) {
        AcmeJob *j;

        if (a->n_jobs >= ACME_JOBS_MAX) {
                size_t i = 0;
                while (i < a->n_jobs && a->jobs[i]->state != JOB_DONE)
                        i++;
                if (i == a->n_jobs)
                        return -EBUSY;
                job_free(a->jobs[i]);
                a->jobs[i] = a->jobs[--a->n_jobs];
        } else {
                AcmeJob **t = realloc(a->jobs, (a->n_jobs + 1) * sizeof(AcmeJob *));
                if (!t)
                        return -ENOMEM;
                a->jobs = t;
        }
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->node_id = node_id;
        j->seq = ++a->seq;
        a->jobs[a->n_jobs++] = j;
        *ret = j;
        return 0;
}

uint64_t acme_retry_delay(uint64_t min_sec, unsigned failures) {
        uint64_t d = MAX(min_sec, 1);

        for (unsigned i = 1; i < failures && d < ACME_RETRY_MAX_SEC; i++)
                d *= 2;
        return MIN(d, ACME_RETRY_MAX_SEC);
}

/* ---- results ------------------------------------------------------------------------------ */

/* ca_wait_sec: how long the CA's rate limit asked us to wait; a retry
 * sooner would only be refused again (and counts against the account). */
static void job_failed_after(AcmeIssuer *a, AcmeJob *j, const char *cause, uint64_t ca_wait_sec) {
        uint64_t delay;

        j->state = JOB_FAILED;
        j->failures++;
        delay = MAX(acme_retry_delay(a->retry_min_sec, j->failures), ca_wait_sec);
        j->retry_at_sec = (uint64_t) time(NULL) + delay;
        snprintf(j->error, sizeof(j->error), "%s", cause);
        log_peer_error(j->node,
                       "ACME order for %s (node %s) failed: %s. The node keeps its certificate; next try "
                       "in %" PRIu64 " s at the earliest%s (failure %u).",
                       j->name, j->node, j->error, delay, delay == ca_wait_sec ? ", as the CA asked" : "",
                       j->failures);
}

static void job_failed(AcmeIssuer *a, AcmeJob *j, const char *cause) {
        job_failed_after(a, j, cause, 0);
}

/* lego names the file after the certificate's first name, '*' as '_'. */
static int result_path(const AcmeIssuer *a, const char *name, const char *suffix, char **ret) {
        _cleanup_free_ char *file = strdup(name);

        if (!file)
                return -ENOMEM;
        for (char *p = file; *p; p++)
                if (*p == '*')
                        *p = '_';
        return asprintf(ret, "%s/certificates/%s%s", a->dir, file, suffix) < 0 ? -ENOMEM : 0;
}

static void result_remove(const AcmeIssuer *a, const char *name) {
        static const char *const suffixes[] = { ".crt", ".issuer.crt", ".json", ".key", ".pem" };

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                _cleanup_free_ char *p = NULL;
                if (result_path(a, name, suffixes[i], &p) >= 0)
                        (void) unlink(p);
        }
}

static void job_collect(AcmeIssuer *a, AcmeJob *j) {
        _cleanup_free_ char *path = NULL, *bundle = NULL, *leaf = NULL, *chain = NULL;
        char error[256];
        int r;

        r = result_path(a, j->name, ".crt", &path);
        if (r >= 0)
                r = read_full_file(path, 256 * 1024, &bundle, NULL);
        result_remove(a, j->name);
        if (r < 0) {
                snprintf(error, sizeof(error), "the ACME client succeeded but left no certificate in %s: %s",
                         strna(path), strerror(-r));
                job_failed(a, j, error);
                return;
        }
        r = acme_split_bundle(bundle, &leaf, &chain, &j->not_before, &j->not_after, error, sizeof(error));
        if (r < 0) {
                job_failed(a, j, error);
                return;
        }
        j->leaf_pem = TAKE_PTR(leaf);
        j->chain_pem = TAKE_PTR(chain);
        j->state = JOB_DONE;
        j->failures = 0;
        log_peer_notice(j->node, "ACME CA issued a certificate for %s (node %s), valid until %" PRIi64 ".",
                        j->name, j->node, j->not_after);
}

/* ---- the child ---------------------------------------------------------------------------- */

static void start_next(AcmeIssuer *a);

void acme_child_done(AcmeIssuer *a, int code, int status) {
        AcmeJob *j = a->running;
        char cause[512];

        acme_output_drain(a, true);
        a->running = NULL;
        a->child_source = sd_event_source_disable_unref(a->child_source);
        a->output_source = sd_event_source_disable_unref(a->output_source);
        a->timeout_source = sd_event_source_disable_unref(a->timeout_source);
        a->output_fd = safe_close(a->output_fd);
        a->pid = 0;
        (void) unlink(a->csr_path);

        if (j) {
                if (a->timed_out) {
                        snprintf(cause, sizeof(cause), "the order timed out after %u s and was stopped",
                                 (unsigned) ACME_TIMEOUT_SEC);
                        job_failed(a, j, cause);
                } else if (code == CLD_EXITED && status == 0)
                        job_collect(a, j);
                else {
                        acme_error_summary(a->output ?: "", cause, sizeof(cause));
                        if (code != CLD_EXITED && strlen(cause) < 300)
                                snprintf(cause + strlen(cause), sizeof(cause) - strlen(cause),
                                         " (killed by signal %i)", status);
                        job_failed_after(a, j, cause,
                                         acme_error_retry_after(a->output ?: "", (uint64_t) time(NULL)));
                }
        }
        free(a->output);
        a->output = NULL;
        a->output_len = a->output_logged = 0;
        a->timed_out = false;
        start_next(a);
}

static void start_next(AcmeIssuer *a) {
        AcmeJob *next = NULL;
        int r;

        if (a->running)
                return;
        for (size_t i = 0; i < a->n_jobs; i++)
                if (a->jobs[i]->state == JOB_QUEUED && (!next || a->jobs[i]->seq < next->seq))
                        next = a->jobs[i];
        if (!next)
                return;

        result_remove(a, next->name);
        r = write_file_atomic(a->csr_path, next->csr_pem, strlen(next->csr_pem), 0600);
        if (r >= 0)
                r = acme_spawn(a, next);
        if (r < 0) {
                char cause[256];
                snprintf(cause, sizeof(cause), "cannot start the ACME client %s: %s", a->program, strerror(-r));
                job_failed(a, next, cause);
                start_next(a); /* the failed one is no longer queued */
                return;
        }
        next->state = JOB_RUNNING;
        a->running = next;
        log_peer_info(next->node, "Started an ACME order for %s (node %s) at %s.", next->name, next->node,
                      a->directory_url);
}

/* ---- requests ----------------------------------------------------------------------------- */

int acme_issuer_name(const AcmeIssuer *a, const char *node, const char *domain, char **ret) {
        int r = a->wildcard ? asprintf(ret, "*.%s", domain) : asprintf(ret, "%s.%s", node, domain);
        return r < 0 ? -ENOMEM : 0;
}

static void result_of(const AcmeJob *j, uint64_t now, AcmeResult *ret) {
        *ret = (AcmeResult) {};
        switch (j->state) {
        case JOB_QUEUED:
        case JOB_RUNNING:
                ret->state = ACME_PENDING;
                ret->retry_after_sec = ACME_POLL_SEC;
                break;
        case JOB_DONE:
                ret->state = ACME_ISSUED;
                ret->leaf_pem = j->leaf_pem;
                ret->chain_pem = j->chain_pem;
                ret->not_before = j->not_before;
                ret->not_after = j->not_after;
                break;
        case JOB_FAILED:
                ret->state = ACME_FAILED;
                ret->retry_after_sec = j->retry_at_sec > now ? j->retry_at_sec - now : 0;
                ret->error = j->error;
                break;
        }
}

int acme_issuer_request(AcmeIssuer *a, int64_t node_id, const char *node, const char *name, const char *csr_pem,
                        const char *key_id, uint64_t now_sec, AcmeResult *ret) {
        AcmeJob *j = job_find(a, node_id);
        bool same = j && streq(j->key_id, key_id) && strcasecmp(j->name, name) == 0;
        int r;

        /* A running order is never replaced: the node comes back for the
         * new key once it is over. A failure holds back the node, not just
         * the key, so that new keys cannot hurry the CA's rate limits. */
        if (j && (j->state == JOB_RUNNING || (j->state == JOB_QUEUED && same) ||
                  (j->state == JOB_FAILED && j->retry_at_sec > now_sec) || (j->state == JOB_DONE && same))) {
                result_of(j, now_sec, ret);
                return 0;
        }
        if (!j) {
                r = job_add(a, node_id, &j);
                if (r < 0)
                        return r;
        }
        r = job_set_request(j, node, name, csr_pem, key_id);
        if (r < 0)
                return r;
        j->seq = ++a->seq;
        log_peer_info(node, "Queued an ACME order for %s (node %s).", name, node);
        start_next(a);
        result_of(j, now_sec, ret);
        return 0;
}

/* ---- life cycle --------------------------------------------------------------------------- */

static int copy_config(AcmeIssuer *a, const AcmeConfig *c) {
        a->directory_url = strdup(c->directory_url);
        a->email = c->email ? strdup(c->email) : NULL;
        a->ca_bundle = c->ca_bundle ? strdup(c->ca_bundle) : NULL;
        a->dns_server = strdup(c->dns_server);
        a->program = strdup(c->program ?: ACME_PROGRAM_DEFAULT);
        a->wildcard = c->wildcard;
        a->retry_min_sec = c->retry_min_sec ?: ACME_RETRY_MIN_DEFAULT_SEC;
        if (!a->directory_url || (c->email && !a->email) || (c->ca_bundle && !a->ca_bundle) || !a->dns_server ||
            !a->program)
                return -ENOMEM;
        return 0;
}

int acme_issuer_new(sd_event *event, const char *state_dir, const AcmeConfig *c, AcmeIssuer **ret) {
        _cleanup_(acme_issuer_freep) AcmeIssuer *a = NULL;
        char error[256];
        sigset_t mask;
        int r;

        if (!c->directory_url || !c->dns_server || !c->tsig_file)
                return log_error_errno(-EINVAL, "ACME needs --acme-directory, --dns-update-server and "
                                                "--dns-update-tsig.");
        a = calloc(1, sizeof(*a));
        if (!a)
                return log_oom();
        a->event = sd_event_ref(event);
        a->output_fd = -EBADF;
        r = copy_config(a, c);
        if (r < 0)
                return log_oom();
        r = acme_tsig_load(c->tsig_file, &a->tsig, error, sizeof(error));
        if (r < 0)
                return log_error_errno(r, "TSIG key file %s: %s.", c->tsig_file, error);
        if (c->ca_bundle && access(c->ca_bundle, R_OK) < 0)
                return log_error_errno(-errno, "ACME CA bundle %s: %m", c->ca_bundle);
        if (asprintf(&a->dir, "%s/acme", state_dir) < 0 || asprintf(&a->csr_path, "%s/order.csr", a->dir) < 0)
                return log_oom();
        if (mkdir(a->dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Failed to create %s: %m", a->dir);

        /* sd-event reaps the child through SIGCHLD, which must be blocked */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(-errno, "Failed to block SIGCHLD: %m");

        log_info("Node certificates come from the ACME CA at %s (DNS-01 through %s, TSIG key %s%s).",
                 a->directory_url, a->dns_server, a->tsig.name, a->wildcard ? ", wildcard mode" : "");
        *ret = TAKE_PTR(a);
        return 0;
}

AcmeIssuer *acme_issuer_free(AcmeIssuer *a) {
        if (!a)
                return NULL;
        if (a->pid > 0) {
                /* at shutdown: the order is lost, the node asks again */
                (void) kill(a->pid, SIGKILL);
                (void) waitpid(a->pid, NULL, 0);
        }
        sd_event_source_disable_unref(a->child_source);
        sd_event_source_disable_unref(a->output_source);
        sd_event_source_disable_unref(a->timeout_source);
        safe_close(a->output_fd);
        for (size_t i = 0; i < a->n_jobs; i++)
                job_free(a->jobs[i]);
        free(a->jobs);
        free(a->output);
        explicit_bzero(&a->tsig, sizeof(a->tsig));
        free(a->directory_url);
        free(a->email);
        free(a->ca_bundle);
        free(a->dns_server);
        free(a->program);
        free(a->dir);
        free(a->csr_path);
        sd_event_unref(a->event);
        free(a);
        return NULL;
}
