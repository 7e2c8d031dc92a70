/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What one local client may take of meshd: connection slots (per user, with
 * slots kept for root) and unsent output per connection. The socket is open
 * to group meshd, so these are what keeps one unprivileged member of that
 * group from locking root out or growing meshd without bound (docs/api.md,
 * "Limits"). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"
#include "varlink.h"

/* All connections together; the last API_CONNECTIONS_ROOT_RESERVED of them
 * only for uid 0, so root's meshctl always gets in. */
#define API_CONNECTIONS_MAX 256U
#define API_CONNECTIONS_ROOT_RESERVED 16U
/* Per non-root uid: more than enough for meshd-wait-online@ units and mount
 * helpers of one user, far below the slots the other users need. */
#define API_CONNECTIONS_PER_USER_MAX 32U

/* Above this much unsent output a connection's input is neither read nor
 * processed until the client has read enough of its replies. A client that
 * makes one call at a time never meets it: a call is always run while the
 * output is below it, however large its reply (ListPeers of a big mesh). */
#define API_OUTPUT_SOFT_MAX (256U * 1024U)
/* A reply that would take the queue past this is never queued: our own
 * client could not read a message this large anyway (VARLINK_MESSAGE_MAX). */
#define API_OUTPUT_HARD_MAX ((size_t) VARLINK_MESSAGE_MAX)
/* How long output may stay above the soft limit before the connection is
 * dropped: a client that reads at all drains it in milliseconds. */
#define API_OUTPUT_DRAIN_USEC (10 * USEC_PER_SEC)
/* Input read ahead while a call is outstanding (a WaitOnline may wait for
 * minutes): enough to see a half-close, not a place to park megabytes. */
#define API_INPUT_PENDING_MAX (64U * 1024U)

/* Whether a new connection from uid may have a slot, given how many are open
 * in all (n_total) and for that uid (n_uid). 0 to admit it, else -EUSERS (the
 * uid has its share), -EBUSY (only root's reserved slots are left) or
 * -EMFILE (all slots taken). */
int api_admission_check(uid_t uid, unsigned n_total, unsigned n_uid);
/* The reason for a refusal as one short phrase, for the log and the reply. */
const char *api_admission_reason(int r);

/* At most burst events per interval; counts the ones suppressed, so the next
 * message can say how many there were. */
typedef struct ApiRateLimit {
        uint64_t interval_usec;
        unsigned burst;
        uint64_t begin_usec;
        unsigned n;
        unsigned suppressed;
} ApiRateLimit;

/* True when the event may be logged now; then *ret_suppressed (if given) is
 * how many were suppressed since the last one that was logged. */
bool api_rate_limit_test(ApiRateLimit *rl, uint64_t now_usec, unsigned *ret_suppressed);
