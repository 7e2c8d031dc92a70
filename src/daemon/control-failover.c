/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which of several control URLs (replicas of one mesh, docs/replicas.md)
 * the control client talks to: the move to the next one when a server is
 * dead or broken, its journal line, and the way back to the first. The
 * choice itself is control-urls.c's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control-client-internal.h"
#include "log.h"
#include "messages.h"

/* The requests made again on the next replica: NULL for the others (the
 * poll has its own loop; CA and certificate requests their keeper's
 * retries). */
static const char *transfer_path(TransferKind kind) {
        switch (kind) {
        case TRANSFER_CHALLENGE:
                return "/v1/challenge";
        case TRANSFER_REGISTER:
                return "/v1/register";
        case TRANSFER_ENDPOINTS:
                return "/v1/endpoints";
        case TRANSFER_ROUTES:
                return "/v1/routes";
        default:
                return NULL;
        }
}

/* What a dead replica, or one that lost its database, looks like; not a
 * refusal, which every replica would repeat (they share the database). */
static bool result_is_server_failure(const Transfer *t, int r) {
        switch (r) {
        case -EHOSTUNREACH:
        case -ETIMEDOUT:
        case -EKEYREJECTED:
                return true;
        case -EBADMSG:
                return t->status == 0 || t->status >= 500;
        default:
                return false;
        }
}

static int on_failback_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        ControlClient *c = userdata;

        if (!control_url_fail_back(&c->choice))
                return 0;
        log_full_errno_fields(LOG_NOTICE, 0,
                              &((LogFields) { .message_id = MESSAGE_CONTROL_URL, .control_url = c->urls[0] }),
                              "Trying the first control server %s again.", c->urls[0]);
        c->replica_changed = true;
        if (!c->polling)
                return 0;
        /* the running poll goes: the next one asks from the same version,
         * so nothing is lost */
        c->poll_generation++;
        c->poll_transfer = transfer_free(c->poll_transfer);
        c->backoff_usec = 0;
        poll_schedule(c, 0);
        return 0;
}

static void failback_arm(ControlClient *c) {
        uint64_t now;
        int r;

        if (c->choice.current == 0)
                return;
        r = sd_event_now(c->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return;
        if (c->failback_timer) {
                r = sd_event_source_set_time(c->failback_timer, now + FAILBACK_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->failback_timer, SD_EVENT_ONESHOT);
        } else {
                r = sd_event_add_time(c->event, &c->failback_timer, CLOCK_MONOTONIC, now + FAILBACK_USEC,
                                      USEC_PER_SEC, on_failback_timer, c);
                if (r >= 0)
                        (void) sd_event_source_set_description(c->failback_timer, "control-client-failback");
        }
        if (r < 0)
                log_debug_errno(r, "Failed to arm the fail-back timer, staying on %s: %m",
                                c->urls[c->choice.current]);
}

bool failover_note_result(ControlClient *c, const Transfer *t, int r, const char *message) {
        const char *old;
        bool now;

        if (!result_is_server_failure(t, r)) {
                if (t->url_index == c->choice.current &&
                    (r >= 0 || r == -EACCES || r == -EPERM || r == -EEXIST))
                        control_url_answered(&c->choice);
                return false;
        }
        if (c->choice.n < 2)
                return false;
        if (t->url_index != c->choice.current)
                return true; /* another request has moved on already */

        old = c->urls[c->choice.current];
        now = control_url_failed(&c->choice);
        c->replica_changed = true;
        log_full_errno_fields(LOG_WARNING, 0,
                              &((LogFields) { .message_id = MESSAGE_CONTROL_URL,
                                              .control_url = c->urls[c->choice.current] }),
                              "Control server %s failed (%s), switching to %s.", old, strna(message),
                              c->urls[c->choice.current]);
        failback_arm(c);
        return now;
}

int failover_resend(ControlClient *c, const Transfer *t, Transfer **slot) {
        const char *path = transfer_path(t->kind);
        /* a join has no token yet; endpoints and routes go with the poll's */
        bool needs_token = t->kind == TRANSFER_ENDPOINTS || t->kind == TRANSFER_ROUTES;
        Transfer *n;
        char *body;
        int r;

        if (!path || !t->request_body)
                return -EOPNOTSUPP;
        if (needs_token && !c->token)
                return -ENOTCONN;
        body = strdup(t->request_body);
        if (!body)
                return -ENOMEM;
        r = transfer_new(c, t->kind, path, needs_token ? c->token : NULL, body, REQUEST_TIMEOUT_MS, &n);
        if (r < 0)
                return r;
        n->callback = t->callback;
        n->userdata = t->userdata;
        *slot = n;
        return 0;
}
