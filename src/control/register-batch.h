/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Group commit of POST /v1/register (register-batch.c): registrations whose
 * proof was checked wait, their connections suspended, until the batch
 * they joined is committed in one write transaction; then each connection
 * resumes and handle_register() answers from its job. */

#include <stdbool.h>
#include <stdint.h>

#include "http-internal.h"
#include "macro.h"
#include "store.h"

struct RegisterJob {
        Request *req; /* NULL once its connection went away */
        RegisterJob *next;
        char *authkey, *public_key, *label, *token, *challenge;
        char **endpoints;
        int64_t challenge_expires;
        bool expired_needs_admin;
        bool netmap_self; /* the reply's netmap without peers ("netmap_scope": "self") */
        char *netmap;     /* that netmap, rendered after the commit; NULL: none */
        bool done;        /* the batch ran: result and node are set */
        int result;       /* store_register_node()'s */
        StoreNode node;
};

RegisterJob *register_job_free(RegisterJob *job);
DEFINE_TRIVIAL_CLEANUP_FUNC(RegisterJob *, register_job_free);

/* Takes job, suspends req's connection until its batch is committed. */
int register_batch_queue(Server *s, Request *req, RegisterJob *job);
/* Whether a queued registration carries challenge: it is not used before
 * its commit, yet good only once. */
bool register_batch_has_challenge(Server *s, const char *challenge);
/* request_free(): a finished job goes with its request; a queued one is
 * committed all the same (the client may retry: it re-joins), unanswered. */
void register_job_detach(Request *req);
/* server_free(), before MHD stops: nothing queued is committed; every
 * suspended connection is resumed (and closed by MHD), its job failed with
 * -ESHUTDOWN. */
void register_batch_free(Server *s);
