/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One request of the HTTPS API: its lifetime, its replies (JSON with
 * "error" on failure) and the node token that authenticates it. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http-internal.h"
#include "log.h"
#include "register-batch.h"
#include "request.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

Request *request_free(Request *req) {
        if (!req)
                return NULL;
        request_unlink(req);
        register_job_detach(req);
        free(req->method);
        free(req->path);
        free(req->body);
        free(req->relay_name);
        free(req);
        return NULL;
}

enum MHD_Result request_reply(Request *req, unsigned status, char *body, size_t len) {
        struct MHD_Response *response;
        enum MHD_Result ret;

        if (body)
                response = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        else
                response = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!response) {
                free(body);
                return MHD_NO;
        }
        if (body)
                (void) MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        (void) MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                (void) MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW,
                                               streq(req->path, "/v1/netmap") || streq(req->path, "/v1/relay")
                                                       ? "GET"
                                                       : "POST");

        ret = MHD_queue_response(req->connection, status, response);
        MHD_destroy_response(response);
        if (ret == MHD_YES)
                req->status = status;
        return ret;
}

_printf_(3, 4) enum MHD_Result request_reply_error(Request *req, unsigned status, const char *format, ...) {
        _cleanup_(cJSON_Deletep) cJSON *o = NULL;
        char message[256];
        char *body;
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);

        o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "error", message))
                return MHD_NO;
        body = cJSON_PrintUnformatted(o);
        if (!body)
                return MHD_NO;
        return request_reply(req, status, body, strlen(body));
}

enum MHD_Result request_reply_oom(Request *req) {
        (void) log_oom();
        return request_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
}

enum MHD_Result request_reply_internal(Request *req) {
        /* a PostgreSQL server out of reach: the node tries again (or another replica) */
        if (!store_is_available(req->server->store))
                return request_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
        return request_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error, see the server log");
}

int parse_uint64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end != 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

static const char *request_bearer_token_of(Request *req) {
        return request_bearer_token(
                MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
}

/* Returns MHD_YES with *ret_id (and *ret_node, when not NULL) set when the
 * token belongs to a valid member; otherwise the error reply is queued and
 * *ret_id is -1. */
enum MHD_Result request_authenticate_node(Request *req, int64_t *ret_id, StoreNode *ret_node) {
        _cleanup_(store_node_done) StoreNode node = {};
        const char *token;
        int r;

        *ret_id = -1;
        token = request_bearer_token_of(req);
        if (!token)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "missing node token");
        r = store_node_by_token(req->server->store, token, &node);
        if (r == -ENOENT)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "unknown node token");
        if (r < 0)
                return request_reply_internal(req);
        if (node.removed)
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node removed");
        if (node.expired)
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node %s expired, join again", node.name);

        req->node_id = *ret_id = node.id;
        if (ret_node) {
                *ret_node = node;
                node = (StoreNode) {};
        }
        return MHD_YES;
}

enum MHD_Result request_authenticate(Request *req, int64_t *ret_id) {
        return request_authenticate_node(req, ret_id, NULL);
}

cJSON *request_parse_body(Request *req) {
        return request_body_parse(req->body, req->body_size);
}
