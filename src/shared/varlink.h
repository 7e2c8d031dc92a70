/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Varlink wire format: each message is one JSON object followed by a NUL byte.
 *   call:  {"method":"io.meshd.Ping","parameters":{...}}   (optional "oneway":true)
 *   reply: {"parameters":{...}}  or  {"error":"io.meshd.PeerNotFound","parameters":{...}}
 * https://varlink.org/Method-Call, the subset meshd needs (no "more"/"upgrade"). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "macro.h"

#define VARLINK_MESSAGE_MAX (16U * 1024U * 1024U)

typedef struct VarlinkBuffer {
        char *data;
        size_t size; /* bytes held */
        size_t allocated;
} VarlinkBuffer;

void varlink_buffer_done(VarlinkBuffer *b);
int varlink_buffer_append(VarlinkBuffer *b, const void *data, size_t len);
/* Takes the next complete message off the front. Returns 1 and *ret when one
 * was there, 0 when more bytes are needed, -EBADMSG when the message is not a
 * JSON object, -EMSGSIZE when over VARLINK_MESSAGE_MAX without a NUL. A bad
 * message that has its NUL is dropped from the buffer. */
int varlink_buffer_pop(VarlinkBuffer *b, cJSON **ret);

/* Serialise a message including its terminating NUL (*ret_len counts it). */
int varlink_format_call(const char *method, const cJSON *parameters, char **ret, size_t *ret_len);
int varlink_format_reply(const cJSON *parameters, const char *error, char **ret, size_t *ret_len);

/* Checks a call: "method" is a string of the form iface.Method, parameters
 * (if present) an object. Returns pointers into msg (parameters never NULL:
 * a shared read-only {} when absent). -EBADMSG for a malformed call,
 * -EOPNOTSUPP for "more" or "upgrade" set to true. */
int varlink_parse_call(const cJSON *msg, const char **ret_method, const cJSON **ret_parameters);
/* Checks a reply: returns error name (NULL on success) and parameters (never NULL on success: {}). */
int varlink_parse_reply(const cJSON *msg, const char **ret_error, const cJSON **ret_parameters);

/* Blocking client for the CLI tools: connect, send one call, read one reply.
 * Returns 0 on a success reply, 1 on an error reply (ret_error set), <0 on
 * transport trouble (-ENOENT/-ECONNREFUSED: daemon not running, -ETIMEDOUT,
 * -ECONNRESET: closed before a full reply). timeout_usec 0 or
 * VARLINK_TIMEOUT_INFINITY waits for the reply forever.
 * parameters are borrowed; ret_parameters owned by the caller. */
#define VARLINK_TIMEOUT_INFINITY UINT64_MAX
int varlink_call(const char *socket_path, const char *method, const cJSON *parameters, uint64_t timeout_usec,
                 cJSON **ret_parameters, char **ret_error);

static inline void cJSON_Deletep(cJSON **j) {
        if (*j)
                cJSON_Delete(*j);
}
#define _cleanup_json_ _cleanup_(cJSON_Deletep)
