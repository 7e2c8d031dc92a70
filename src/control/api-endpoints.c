/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* POST /v1/endpoints: where a node can be reached, as it finds out. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>

#include "http-internal.h"
#include "log.h"
#include "request.h"
#include "strv.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

/* the message's limit (shared with meshd) is what the store keeps */
_Static_assert(ENDPOINTS_MSG_MAX == STORE_ENDPOINTS_MAX, "endpoints limits differ");

enum MHD_Result handle_endpoints(Request *req) {
        Server *s = req->server;
        _cleanup_(cJSON_Deletep) cJSON *body = NULL;
        _cleanup_strv_free_ char **endpoints = NULL;
        char error[128];
        int64_t id;
        int r;

        if (request_authenticate(req, &id) != MHD_YES || id < 0)
                return req->status != 0 ? MHD_YES : MHD_NO;

        body = request_parse_body(req);
        if (!body)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "body: not a JSON object");
        r = endpoints_request_parse(body, true, &endpoints, error, sizeof(error));
        if (r == -ENOMEM)
                return request_reply_oom(req);
        if (r >= 0)
                r = endpoints_check_announceable(endpoints, s->mesh_ranges, ELEMENTSOF(s->mesh_ranges), error,
                                                 sizeof(error));
        if (r < 0) {
                log_debug("Node %" PRId64 ": refused endpoints: %s", id, error);
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", error);
        }

        r = store_set_endpoints(s->store, id, endpoints);
        if (r == -ENOENT)
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node removed");
        if (r < 0)
                return request_reply_internal(req);
        if (r > 0)
                server_check_version(s);

        return request_reply(req, MHD_HTTP_NO_CONTENT, NULL, 0);
}
