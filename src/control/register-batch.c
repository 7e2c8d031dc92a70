/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Group commit of POST /v1/register: the registrations that arrive within
 * REGISTER_BATCH_USEC of the first one (or while a batch is being written)
 * share one write transaction (store_register_batch()), so a burst costs
 * one commit (one WAL flush on PostgreSQL), one netmap snapshot and one
 * wake-up of the long-polls instead of one each.
 *
 * Durability is what one registration had: no node is answered before
 * the commit that holds its row has returned. SQLite (WAL, synchronous
 * NORMAL) keeps a committed row through a crash of the process, and may
 * lose the last commits on a power loss; PostgreSQL keeps it as its
 * synchronous_commit says (on by default: flushed to its WAL). A batch
 * that fails to commit answers every registration in it with that error. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "register-batch.h"
#include "strv.h"
#include "time-util.h"

/* The wait for company: short next to a TLS handshake, long enough for a
 * burst's requests to meet. */
#define REGISTER_BATCH_USEC (2 * USEC_PER_MSEC)
/* A full batch is committed at once. */
#define REGISTER_BATCH_MAX 256

RegisterJob *register_job_free(RegisterJob *job) {
        if (!job)
                return NULL;
        free(job->authkey);
        free(job->public_key);
        free(job->label);
        if (job->token)
                explicit_bzero(job->token, strlen(job->token));
        free(job->token);
        free(job->challenge);
        strv_free(job->endpoints);
        free(job->netmap);
        if (job->done && job->result >= 0)
                store_node_done(&job->node);
        free(job);
        return NULL;
}

/* Writes the batch; each job gets its result. */
/* The netmaps of "netmap_scope": "self" of the batch's new members, from
 * one read of the mesh's header: a reply that costs the same in a mesh of
 * any size. A job left without one is answered with a 500. */
static void register_batch_render_self(Server *s, RegisterJob *jobs) {
        _cleanup_(netmap_mesh_done) NetmapMesh header = {};
        bool any = false;
        int r;

        for (RegisterJob *j = jobs; j; j = j->next)
                any = any || (j->result >= 0 && j->netmap_self);
        if (!any)
                return;
        r = store_read_mesh_header(s->store, s->hub_enabled ? &s->netmap_hub : NULL, &header);
        if (r < 0) {
                log_warning_errno(r, "Failed to read the mesh for the register replies: %m");
                return;
        }
        for (RegisterJob *j = jobs; j; j = j->next) {
                size_t len;

                if (j->result < 0 || !j->netmap_self)
                        continue;
                r = netmap_mesh_render_self(&header,
                                            &(NetmapMeshNode) {
                                                    .id = j->node.id,
                                                    .name = j->node.name,
                                                    .public_key = j->node.public_key,
                                                    .ipv4 = j->node.ipv4,
                                                    .ipv6 = j->node.ipv6,
                                                    .endpoints = j->node.endpoints,
                                                    .tags = j->node.tags,
                                            },
                                            &j->netmap, &len);
                if (r < 0)
                        log_warning_errno(r, "Failed to render the netmap of node %s: %m", j->node.name);
        }
}

static void register_batch_commit(Server *s, RegisterJob *jobs, size_t n) {
        _cleanup_free_ StoreRegistration *regs = calloc(n, sizeof(*regs));
        _cleanup_free_ StoreNode *nodes = calloc(n, sizeof(*nodes));
        _cleanup_free_ int *results = calloc(n, sizeof(*results));
        int64_t now = time(NULL);
        RegisterJob *j;
        size_t i;
        int r;

        if (!regs || !nodes || !results) {
                (void) log_oom();
                for (j = jobs; j; j = j->next) {
                        j->result = -ENOMEM;
                        j->done = true;
                }
                return;
        }
        for (i = 0, j = jobs; j; j = j->next, i++)
                regs[i] = (StoreRegistration) {
                        .authkey = j->authkey,
                        .public_key = j->public_key,
                        .name = j->label,
                        .endpoints = j->endpoints,
                        .token = j->token,
                        .expired_needs_admin = j->expired_needs_admin,
                };
        (void) store_register_batch(s->store, regs, n, now, nodes, results);

        for (i = 0, j = jobs; j; j = j->next, i++) {
                j->result = results[i];
                j->node = nodes[i];
                j->done = true;
                if (j->result < 0)
                        continue;
                /* good once: used with the commit, before another request is read */
                r = challenge_set_use(s->used_challenges, j->challenge, j->challenge_expires, now);
                if (r < 0)
                        log_warning_errno(r, "Failed to mark the challenge of node %s used: %m", j->node.name);
        }
        register_batch_render_self(s, jobs);
        log_debug("Group commit of %zu registration(s).", n);
}

static int on_register_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        RegisterJob *jobs = s->register_queue;
        size_t n = s->n_register_queued;

        s->register_queue = NULL;
        s->register_tail = &s->register_queue;
        s->n_register_queued = 0;
        if (n == 0)
                return 0;

        register_batch_commit(s, jobs, n);
        while (jobs) {
                RegisterJob *j = jobs;

                jobs = j->next;
                j->next = NULL;
                if (!j->req) /* its connection went away: nobody to answer */
                        register_job_free(j);
                else
                        MHD_resume_connection(j->req->connection);
        }
        /* once for the whole batch: the long-polls, the hub, the DNS names */
        server_check_version(s);
        server_schedule_mhd(s);
        return 0;
}

static int register_timer_arm(Server *s, uint64_t when) {
        int r;

        if (!s->register_timer) {
                /* accuracy 1 µs: sd-event's default would be 250 ms */
                r = sd_event_add_time(s->event, &s->register_timer, CLOCK_MONOTONIC, when, 1, on_register_timer,
                                      s);
                if (r < 0)
                        return log_error_errno(r, "Failed to add the registration timer: %m");
        } else {
                r = sd_event_source_set_time(s->register_timer, when);
                if (r < 0)
                        return log_error_errno(r, "Failed to set the registration timer: %m");
        }
        r = sd_event_source_set_enabled(s->register_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                return log_error_errno(r, "Failed to enable the registration timer: %m");
        return 0;
}

int register_batch_queue(Server *s, Request *req, RegisterJob *job) {
        int r = 0;

        if (s->n_register_queued == 0)
                r = register_timer_arm(s, clock_usec(CLOCK_MONOTONIC) + REGISTER_BATCH_USEC);
        else if (s->n_register_queued + 1 >= REGISTER_BATCH_MAX)
                r = register_timer_arm(s, 1); /* elapsed: in the next iteration */
        if (r < 0)
                return r;

        if (!s->register_tail)
                s->register_tail = &s->register_queue;
        job->req = req;
        job->next = NULL;
        *s->register_tail = job;
        s->register_tail = &job->next;
        s->n_register_queued++;
        req->register_job = job;
        MHD_suspend_connection(req->connection);
        return 0;
}

bool register_batch_has_challenge(Server *s, const char *challenge) {
        for (RegisterJob *j = s->register_queue; j; j = j->next)
                if (streq(j->challenge, challenge))
                        return true;
        return false;
}

void register_job_detach(Request *req) {
        RegisterJob *job = req->register_job;

        if (!job)
                return;
        req->register_job = NULL;
        if (job->done)
                register_job_free(job);
        else
                job->req = NULL; /* queued: the batch frees it */
}

void register_batch_free(Server *s) {
        while (s->register_queue) {
                RegisterJob *j = s->register_queue;

                s->register_queue = j->next;
                j->next = NULL;
                if (!j->req) {
                        register_job_free(j);
                        continue;
                }
                /* its request owns it now: should MHD still call the
                 * handler, the answer is a 500, never a second queueing */
                j->result = -ESHUTDOWN;
                j->done = true;
                MHD_resume_connection(j->req->connection);
        }
        s->register_tail = &s->register_queue;
        s->n_register_queued = 0;
        s->register_timer = sd_event_source_disable_unref(s->register_timer);
}
