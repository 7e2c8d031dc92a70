/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Varlink server of the local API (docs/api.md): a listening unix socket
 * in sd-event, connections, framing, dispatch to a method table, SO_PEERCRED
 * checks, and replies that may come later (WaitOnline, Up, Ping). The
 * io.meshd method handlers themselves live with the Manager. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include <cjson/cJSON.h>

#include "macro.h"

typedef struct ApiServer ApiServer;
typedef struct ApiCall ApiCall;

/* Called for each call of the method. Reply now or keep the call (api_call_ref)
 * and reply later. A handler returning <0 without replying makes the server
 * reply org.varlink.service.InternalError (logged). parameters is never NULL. */
typedef int (*ApiMethodHandler)(ApiCall *call, const cJSON *parameters, void *userdata);

typedef struct ApiMethod {
        const char *name; /* fully qualified: "io.meshd.GetStatus" */
        ApiMethodHandler handler;
        bool root_only; /* else: anyone who can open the socket */
} ApiMethod;

/* Creates the socket at path (removing a stale one), mode 0660, group
 * "meshd" when it exists. description is the Varlink interface text
 * returned by GetInterfaceDescription. methods must outlive the server. */
int api_server_new(sd_event *event, const char *path, const ApiMethod *methods, size_t n_methods,
                   const char *interface_name, const char *description, void *userdata, ApiServer **ret);
ApiServer *api_server_free(ApiServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ApiServer *, api_server_free);
/* How long a connection's unsent output may stay over the soft limit
 * (default API_OUTPUT_DRAIN_USEC; tests shorten it). */
void api_server_set_drain_timeout(ApiServer *s, uint64_t usec);

ApiCall *api_call_ref(ApiCall *c);
ApiCall *api_call_unref(ApiCall *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ApiCall *, api_call_unref);

uid_t api_call_get_peer_uid(const ApiCall *c);
/* False once the client hung up; replying then is a harmless no-op. */
bool api_call_is_connected(const ApiCall *c);

/* Each takes ownership of parameters (NULL = {}); only the first reply counts. */
int api_call_reply(ApiCall *c, cJSON *parameters);
int api_call_reply_error(ApiCall *c, const char *error, cJSON *parameters);
/* Shorthand: error with {"message": ...}. */
int api_call_reply_errorf(ApiCall *c, const char *error, const char *format, ...) _printf_(3, 4);
