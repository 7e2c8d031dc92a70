/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GET /v1/netmap: the node's netmap, or a delta from the one it has, at
 * once or when the version passes ?since (a long-poll, http-poll.c). */
#include <errno.h>
#include <stdlib.h>

#include "http-internal.h"
#include "time-util.h"

#define LONG_POLL_MAX_SEC 60

/* Entered once per request, and again each time a waiter is resumed. */
enum MHD_Result handle_netmap(Request *req) {
        Server *s = req->server;
        NetmapSnapshot *snap;
        _cleanup_free_ char *netmap = NULL;
        size_t len;
        uint64_t now;
        int r;

        if (!req->authenticated) {
                const char *since, *timeout, *delta;
                uint64_t t = LONG_POLL_MAX_SEC;

                if (request_authenticate(req, &req->node_id) != MHD_YES || req->node_id < 0)
                        return req->status != 0 ? MHD_YES : MHD_NO;

                since = MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, "since");
                if (since && parse_uint64(since, &req->since) < 0)
                        return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "since: not a version number");
                timeout = MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, "timeout");
                if (timeout && parse_uint64(timeout, &t) < 0)
                        return request_reply_error(req, MHD_HTTP_BAD_REQUEST,
                                                   "timeout: not a number of seconds");
                delta = MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, "delta");
                if (delta && !streq(delta, "0") && !streq(delta, "1"))
                        return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "delta: not 0 or 1");
                req->delta = delta && streq(delta, "1");

                (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
                req->deadline = now + MIN(t, (uint64_t) LONG_POLL_MAX_SEC) * USEC_PER_SEC;
                req->authenticated = true;
        }

        if (s->stopping)
                return request_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "server shutting down");

        /* A delta needs the snapshot the node has. A server that only ever
         * parked polls since it started (a replica whose nodes came from
         * the other, a restarted one) would have none and answer the next
         * change with whole netmaps (~1.8 MB each at 10,000 nodes): load
         * it while the first poll parks. It may find a newer version,
         * which this poll then answers at once. */
        if (req->delta && req->since == s->version &&
            (!s->snapshot || netmap_snapshot_version(s->snapshot) < s->version))
                (void) server_get_snapshot(s, &snap);

        if (s->version <= req->since) {
                (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
                if (now >= req->deadline)
                        return request_reply(req, MHD_HTTP_NOT_MODIFIED, NULL, 0);
                return request_wait(req);
        }

        r = server_get_snapshot(s, &snap);
        if (r < 0)
                return request_reply_internal(req);
        if (!netmap_snapshot_has_node(snap, req->node_id)) {
                /* The database took the token above, so the node is a member
                 * now: another process committed (nodes renew) and the
                 * server's poll has not looked yet. Look now. */
                server_check_version(s);
                r = server_get_snapshot(s, &snap);
                if (r < 0)
                        return request_reply_internal(req);
        }
        r = -ESTALE;
        if (req->delta && s->previous && req->since == netmap_snapshot_version(s->previous))
                r = netmap_snapshot_render_delta(snap, s->previous, req->node_id, &netmap, &len);
        if (r == -ESTALE)
                r = netmap_snapshot_render(snap, req->node_id, &netmap, &len);
        if (r == -ENOENT)
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node removed or expired");
        if (r < 0)
                return request_reply_oom(req);
        return request_reply(req, MHD_HTTP_OK, TAKE_PTR(netmap), len);
}
