/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* POST /v1/routes: the complete set of subnet routes a node advertises.
 * Stored per node; only the admin's approval (or the policy's
 * auto_approve) puts one into the netmaps. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "http-internal.h"
#include "log.h"
#include "msg-routes.h"
#include "request.h"
#include "strv.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

_Static_assert(ROUTES_MSG_MAX == STORE_ROUTES_MAX, "routes limits differ");

/* canonical text, as the netmaps carry it */
static int routes_to_strv(const InAddrPrefix *l, size_t n, char ***ret) {
        _cleanup_strv_free_ char **s = calloc(n + 1, sizeof(char *));

        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char buf[ROUTE_PREFIX_STRLEN];

                if (!route_prefix_format(&l[i], buf, sizeof(buf)))
                        return -EINVAL;
                s[i] = strdup(buf);
                if (!s[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

enum MHD_Result handle_routes(Request *req) {
        Server *s = req->server;
        _cleanup_(cJSON_Deletep) cJSON *body = NULL;
        _cleanup_free_ InAddrPrefix *routes = NULL;
        _cleanup_strv_free_ char **prefixes = NULL;
        size_t n = 0;
        char error[160];
        int64_t id;
        int r;

        if (request_authenticate(req, &id) != MHD_YES || id < 0)
                return req->status != 0 ? MHD_YES : MHD_NO;

        body = request_parse_body(req);
        if (!body)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "body: not a JSON object");
        r = routes_request_parse(body, s->mesh_ranges, ELEMENTSOF(s->mesh_ranges), &routes, &n, error,
                                 sizeof(error));
        if (r == -ENOMEM)
                return request_reply_oom(req);
        if (r < 0) {
                log_debug("Node %" PRId64 ": refused routes: %s", id, error);
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", error);
        }
        r = routes_to_strv(routes, n, &prefixes);
        if (r < 0)
                return request_reply_oom(req);

        r = store_set_routes(s->store, id, prefixes);
        if (r == -ENOENT)
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node removed");
        if (r < 0)
                return request_reply_internal(req);
        if (r > 0) {
                log_info("Node %" PRId64 " advertises %zu route(s).", id, n);
                server_check_version(s);
        }
        return request_reply(req, MHD_HTTP_NO_CONTENT, NULL, 0);
}
