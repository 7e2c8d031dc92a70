/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* POST /v1/paths: which of a node's peers it reaches directly. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include "http-internal.h"
#include "log.h"
#include "msg-paths.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

enum MHD_Result handle_paths(Request *req) {
        Server *s = req->server;
        _cleanup_(cJSON_Deletep) cJSON *body = NULL;
        _cleanup_free_ PathReport *reports = NULL;
        _cleanup_free_ StorePathReport *stored = NULL;
        char error[128];
        size_t n = 0;
        int64_t id;
        int r;

        if (request_authenticate(req, &id) != MHD_YES || id < 0)
                return req->status != 0 ? MHD_YES : MHD_NO;

        body = request_parse_body(req);
        if (!body)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "body: not a JSON object");
        r = paths_request_parse(body, &reports, &n, error, sizeof(error));
        if (r == -ENOMEM)
                return request_reply_oom(req);
        if (r < 0)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", error);

        /* the message's type is shared with meshd, the store's is not */
        stored = calloc(MAX(n, (size_t) 1), sizeof(StorePathReport));
        if (!stored)
                return request_reply_oom(req);
        for (size_t i = 0; i < n; i++)
                stored[i] =
                        (StorePathReport) { .public_key = reports[i].public_key, .direct = reports[i].direct };

        r = store_report_paths(s->store, id, stored, n, time(NULL));
        if (r == -ENOENT)
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node removed");
        if (r < 0)
                return request_reply_internal(req);
        if (r > 0) {
                log_debug("Node %" PRId64 ": %i pair(s) changed between direct and relay.", id, r);
                server_check_version(s);
        }

        return request_reply(req, MHD_HTTP_NO_CONTENT, NULL, 0);
}
