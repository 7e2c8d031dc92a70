/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* meshctl's side of the local API: one call, and the one line a person sees
 * when it fails. */

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "constants.h"
#include "meshctl.h"
#include "varlink.h"

/* Most calls are answered at once; Up waits for the control server. */
#define CALL_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define CALL_UP_TIMEOUT_USEC (90 * USEC_PER_SEC)
/* What a call that waits on the daemon's own timeout gets on top of it. */
#define CALL_TIMEOUT_SLACK_USEC (5 * USEC_PER_SEC)

/* Returns 0 with *ret_reply on success. On a Varlink error reply returns 1
 * with *ret_error and *ret_reply (the error's parameters) so the caller can
 * word it for its context, or hand it to call_log_error(). Transport trouble
 * is logged here and returned as <0. */
int call_method(const Arguments *a, const char *method, const cJSON *parameters, uint64_t timeout_usec,
                cJSON **ret_reply, char **ret_error);

/* The same, but every error is logged (via call_log_error) and returned <0. */
int call_method_logged(const Arguments *a, const char *method, const cJSON *parameters, uint64_t timeout_usec,
                       cJSON **ret_reply);

/* Logs one line for a Varlink error reply of method and returns a negative
 * errno. The line names the command the user typed where that helps. */
int call_log_error(const Arguments *a, const char *method, const char *error, const cJSON *parameters);

/* Validating accessors for reply fields: NULL/false/0 when absent or of
 * another type, so a daemon that sends less never crashes the CLI. */
const char *reply_string(const cJSON *o, const char *key);
bool reply_bool(const cJSON *o, const char *key);
uint64_t reply_uint(const cJSON *o, const char *key);
