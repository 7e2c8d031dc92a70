/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The long-poll of GET /v1/netmap: suspended requests wait on the
 * server's list until the netmap version moves, by our own commits or by
 * another process's (seen by polling the database and, on PostgreSQL, at
 * once by its notification), or their deadline. */
#include <inttypes.h>
#include <sys/epoll.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "http-internal.h"
#include "log.h"
#include "time-util.h"

/* how often we look whether another process (meshd-control nodes remove)
 * committed: store_changed() is one cheap read */
#define DB_POLL_USEC (250 * USEC_PER_MSEC)
#define DB_POLL_ACCURACY_USEC (10 * USEC_PER_MSEC)

void request_unlink(Request *req) {
        Server *s = req->server;

        if (!req->waiting)
                return;
        if (req->waiters_prev)
                req->waiters_prev->waiters_next = req->waiters_next;
        else
                s->waiters = req->waiters_next;
        if (req->waiters_next)
                req->waiters_next->waiters_prev = req->waiters_prev;
        req->waiters_prev = req->waiters_next = NULL;
        req->waiting = false;
        s->n_waiters--;
        req->timeout_source = sd_event_source_disable_unref(req->timeout_source);
}

/* Hands a waiter back to MHD, which calls the access handler again. */
void request_resume(Request *req) {
        request_unlink(req);
        MHD_resume_connection(req->connection);
        server_schedule_mhd(req->server);
}

/* ---- the netmap version and its snapshot ---- */

/* Called after our own commits and when another process committed. */
void server_check_version(Server *s) {
        uint64_t v;
        int r;

        r = store_get_version(s->store, &v);
        if (r < 0)
                return; /* logged; the next poll tries again */
        if (v == s->version)
                return;

        log_debug("Netmap version %" PRIu64 " → %" PRIu64 ", waking %zu long-poll(s).", s->version, v,
                  s->n_waiters);
        s->version = v;
        /* a node that just registered handshakes with the hub at once */
        if (s->hub)
                (void) hub_sync(s->hub);
        server_dns_update(s);
        server_wake_waiters(s);
}

void on_hub_changed(Hub *h, void *userdata) {
        server_check_version(userdata);
}

int server_get_snapshot(Server *s, NetmapSnapshot **ret) {
        NetmapSnapshot *snap;
        int r;

        if (!s->snapshot || netmap_snapshot_version(s->snapshot) < s->version) {
                _cleanup_(netmap_mesh_done) NetmapMesh m = {};

                /* one read per change: the DNS names come from the same mesh */
                r = store_read_mesh(s->store, s->hub_enabled ? &s->netmap_hub : NULL, &m);
                if (r >= 0)
                        r = netmap_snapshot_new(&m, &snap);
                if (r < 0)
                        return r;
                server_dns_set_names(s, &m);
                netmap_snapshot_free(s->previous);
                s->previous = s->snapshot;
                s->snapshot = snap;
                /* the snapshot may be newer than what the poll saw so far */
                if (netmap_snapshot_version(snap) > s->version) {
                        s->version = netmap_snapshot_version(snap);
                        server_wake_waiters(s);
                }
        }
        *ret = s->snapshot;
        return 0;
}

void server_wake_waiters(Server *s) {
        /* everyone sees every node, so every change concerns every waiter */
        while (s->waiters)
                request_resume(s->waiters);
}

static int waiter_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        request_resume(userdata);
        return 0;
}

enum MHD_Result request_wait(Request *req) {
        Server *s = req->server;
        int r;

        r = sd_event_add_time(s->event, &req->timeout_source, CLOCK_MONOTONIC, req->deadline,
                              50 * USEC_PER_MSEC, waiter_timeout, req);
        if (r < 0) {
                (void) log_error_errno(r, "Failed to add long-poll timer: %m");
                return request_reply_internal(req);
        }

        req->waiters_prev = NULL;
        req->waiters_next = s->waiters;
        if (s->waiters)
                s->waiters->waiters_prev = req;
        s->waiters = req;
        s->n_waiters++;
        req->waiting = true;

        MHD_suspend_connection(req->connection);
        /* what a test waits for before it changes the netmap */
        log_debug("Node %" PRId64 ": long-poll waits for a netmap version past %" PRIu64 " (%zu waiting).",
                  req->node_id, req->since, s->n_waiters);
        return MHD_YES;
}

/* Another process (or replica) committed: what follows a change. */
static void server_db_changed(Server *s) {
        if (store_changed(s->store, &s->store_watch) <= 0)
                return;
        server_check_version(s);
        /* the version may have been seen already by a snapshot load */
        if (s->hub)
                (void) hub_sync(s->hub);
        /* a removed or expired node's stream goes with its peer */
        if (s->relay)
                relay_server_check_members(s->relay);
}

static int on_db_notify(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Server *s = userdata;
        int r;

        r = store_notify_drain(s->store);
        if (r < 0) {
                /* the server went away: the poll makes a new listener once it is back */
                s->db_notify = sd_event_source_disable_unref(s->db_notify);
                return 0;
        }
        if (r > 0)
                server_db_changed(s);
        return 0;
}

/* PostgreSQL: listen for the store's notifications; SQLite has none (the
 * hub watches the file's directory, and everything polls). */
static void server_watch_notify(Server *s) {
        int fd, r;

        if (s->db_notify)
                return;
        fd = store_notify_fd(s->store);
        if (fd < 0)
                return;
        r = sd_event_add_io(s->event, &s->db_notify, fd, EPOLLIN, on_db_notify, s);
        if (r < 0) {
                (void) log_warning_errno(r, "Failed to watch the database's notifications: %m");
                return;
        }
        /* what was committed while nobody listened */
        server_db_changed(s);
}

static int on_db_poll(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        int r;

        /* devices added with --expires leave when their time comes; our own
         * commit does not move the watch, so look at the version here */
        if (store_expire_due_devices(s->store, (int64_t) time(NULL)) > 0)
                server_check_version(s);

        server_watch_notify(s);
        server_db_changed(s);

        r = sd_event_source_set_time_relative(source, DB_POLL_USEC);
        if (r < 0)
                return log_error_errno(r, "Failed to re-arm database poll: %m");
        return sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
}

int server_db_poll_init(Server *s) {
        return store_watch_init(s->store, &s->store_watch);
}

int server_start_db_poll(Server *s) {
        int r;

        r = sd_event_add_time_relative(s->event, &s->db_poll, CLOCK_MONOTONIC, DB_POLL_USEC,
                                       DB_POLL_ACCURACY_USEC, on_db_poll, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add database poll: %m");
        server_watch_notify(s);
        return 0;
}
