/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What acme.c (jobs) and acme-child.c (the lego process) share. */

#include <sys/types.h>

#include "acme.h"

typedef enum JobState {
        JOB_QUEUED,
        JOB_RUNNING,
        JOB_DONE,
        JOB_FAILED,
} JobState;

/* The order of one node: its last CSR and how it went. */
typedef struct AcmeJob {
        int64_t node_id;
        char *node;   /* its name, for the journal */
        char *name;   /* the certificate's name */
        char *key_id; /* SHA-256 of the CSR's key, hex */
        char *csr_pem;
        JobState state;
        uint64_t seq; /* queue order */
        char *leaf_pem, *chain_pem;
        int64_t not_before, not_after;
        char error[512];
        unsigned failures; /* in a row */
        uint64_t retry_at_sec;
} AcmeJob;

struct AcmeIssuer {
        sd_event *event;
        char *directory_url, *email, *ca_bundle, *dns_server, *program;
        bool wildcard;
        uint64_t retry_min_sec;
        AcmeTsig tsig;
        char *dir;      /* state_dir/acme: lego's --path */
        char *csr_path; /* the running order's CSR */

        AcmeJob **jobs;
        size_t n_jobs;
        uint64_t seq;

        /* the one child */
        AcmeJob *running;
        pid_t pid;
        bool timed_out;
        sd_event_source *child_source, *output_source, *timeout_source;
        int output_fd;
        char *output; /* what it said so far, bounded */
        size_t output_len, output_logged;
};

/* After `failures` failed orders in a row: min_sec, doubling, at most
 * ACME_RETRY_MAX_SEC. */
uint64_t acme_retry_delay(uint64_t min_sec, unsigned failures);

/* acme-child.c */
int acme_spawn(AcmeIssuer *a, AcmeJob *j);
/* Reads what the child wrote; complete lines go to the journal (all that
 * is left when final). */
void acme_output_drain(AcmeIssuer *a, bool final);
/* acme.c: the child exited (code: CLD_EXITED, CLD_KILLED …). */
void acme_child_done(AcmeIssuer *a, int code, int status);

/* lego's bundle: the leaf first, then the intermediates. The leaf's times
 * in seconds since the epoch. -EBADMSG with a one-line error. */
int acme_split_bundle(const char *bundle, char **ret_leaf, char **ret_chain, int64_t *ret_not_before,
                      int64_t *ret_not_after, char *error, size_t error_size);
