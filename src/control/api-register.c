/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* POST /v1/challenge and POST /v1/register: joining the mesh with an auth
 * key and the proof of key possession (docs/protocol.md, "Joining"). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns-label.h"
#include "http-internal.h"
#include "log.h"
#include "msg-register.h"
#include "register-batch.h"
#include "register-proof.h"
#include "request.h"
#include "strv.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

enum MHD_Result handle_challenge(Request *req) {
        Server *s = req->server;
        _cleanup_free_ char *challenge = NULL;
        WgKey key;
        int64_t expires;
        char *text;
        int r;

        r = challenge_new(&s->challenge_secret, time(NULL), &challenge, &key, &expires);
        if (r == -ENOMEM)
                return request_reply_oom(req);
        if (r < 0)
                return request_reply_internal(req);

        r = challenge_reply_render(challenge, &key, expires, &text);
        if (r < 0)
                return request_reply_oom(req);
        return request_reply(req, MHD_HTTP_OK, text, strlen(text));
}

/* Proof of key possession (docs/protocol.md, "Joining"): MHD_YES with
 * *ret_ok set when the request proves it holds the private key of its
 * public_key; otherwise the 401 is queued. Each challenge is good once. */
static enum MHD_Result request_check_proof(Request *req, const RegisterRequest *parsed, int64_t *ret_expires,
                                           bool *ret_ok) {
        Server *s = req->server;
        WgKey server_private, node_public;
        int64_t expires, now = time(NULL);
        int r;

        *ret_ok = false;
        if (!parsed->challenge)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED,
                                           "challenge: missing, get one with POST /v1/challenge");
        if (!parsed->proof)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "proof: missing");
        r = challenge_check(&s->challenge_secret, parsed->challenge, now, &server_private, &expires);
        if (r == -ETIME)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "challenge: expired");
        if (r < 0)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "challenge: not issued by this server");

        r = key_from_base64(parsed->public_key, &node_public);
        if (r >= 0)
                r = register_proof_verify(&server_private, &node_public,
                                          &(RegisterProofFields) {
                                                  .challenge = parsed->challenge,
                                                  .public_key = parsed->public_key,
                                                  .hostname = parsed->hostname,
                                                  .authkey = parsed->authkey,
                                          },
                                          parsed->proof);
        explicit_bzero(&server_private, sizeof(server_private));
        if (r == -EINVAL)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED,
                                           "public_key: of low order, proves nothing");
        if (r < 0) {
                log_notice("Refused a registration for key %s: invalid proof of key possession.",
                           parsed->public_key);
                return request_reply_error(
                        req, MHD_HTTP_UNAUTHORIZED,
                        "proof: invalid, the private key of public_key did not sign this request");
        }

        r = challenge_set_check(s->used_challenges, parsed->challenge, now);
        if (r >= 0 && register_batch_has_challenge(s, parsed->challenge))
                r = -EALREADY; /* in a batch that is not committed yet */
        if (r == -EALREADY)
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "challenge: already used");
        if (r == -ENOSPC)
                return request_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                           "too many registrations, try again later");
        if (r < 0)
                return request_reply_oom(req);
        *ret_expires = expires;
        *ret_ok = true;
        return MHD_YES;
}

/* The body, valid and with endpoints that may be announced: MHD_YES with
 * *ret_ok set; otherwise the 400 is queued. */
static enum MHD_Result register_parse(Request *req, cJSON **ret_body, RegisterRequest *ret, bool *ret_ok) {
        Server *s = req->server;
        char error[128];
        int r;

        *ret_ok = false;
        *ret_body = request_parse_body(req);
        if (!*ret_body)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "body: not a JSON object");

        r = register_request_parse(*ret_body, ret, error, sizeof(error));
        if (r == -ENOMEM)
                return request_reply_oom(req);
        if (r < 0)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", error);

        r = endpoints_check_announceable(ret->endpoints, s->mesh_ranges, ELEMENTSOF(s->mesh_ranges), error,
                                         sizeof(error));
        if (r < 0)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", error);
        *ret_ok = true;
        return MHD_YES;
}

/* What store_register_node() refused, as the node is told. */
static enum MHD_Result register_reply_refused(Request *req, int r, const char *label) {
        switch (r) {
        case -ENOKEY:
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "invalid auth key");
        case -EKEYEXPIRED:
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "auth key expired");
        case -EKEYREJECTED:
                return request_reply_error(req, MHD_HTTP_UNAUTHORIZED, "auth key already used");
        case -EEXIST:
                return request_reply_error(req, MHD_HTTP_CONFLICT, "public key is the hub's");
        case -ENOTUNIQ:
                return request_reply_error(req, MHD_HTTP_CONFLICT, "public key is a device's");
        case -ESTALE:
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node expired: an admin must renew it");
        case -ENOSPC:
                log_warning("Address range exhausted, refusing to register '%s'.", label);
                return request_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "address range exhausted");
        default:
                return request_reply_internal(req);
        }
}

/* Queues the registration for the group commit (register-batch.c) with a
 * new token and suspends the connection; otherwise the error is queued. */
static enum MHD_Result register_enqueue(Request *req, const RegisterRequest *parsed,
                                        int64_t challenge_expires) {
        Server *s = req->server;
        _cleanup_(register_job_freep) RegisterJob *job = NULL;
        int r;

        job = calloc(1, sizeof(*job));
        if (!job)
                return request_reply_oom(req);
        r = dns_label_from_hostname(parsed->hostname, &job->label);
        if (r == -ENOMEM)
                return request_reply_oom(req);
        if (r < 0) {
                job->label = strdup("node");
                if (!job->label)
                        return request_reply_oom(req);
        }
        r = store_secret_new(NULL, &job->token);
        if (r < 0)
                return request_reply_internal(req);

        job->authkey = strdup(parsed->authkey);
        job->public_key = strdup(parsed->public_key);
        job->challenge = strdup(parsed->challenge);
        if (!job->authkey || !job->public_key || !job->challenge ||
            strv_copy(parsed->endpoints, &job->endpoints) < 0)
                return request_reply_oom(req);
        job->challenge_expires = challenge_expires;
        job->expired_needs_admin = s->expired_needs_admin;
        job->netmap_self = parsed->netmap_self;

        r = register_batch_queue(s, req, job);
        if (r < 0)
                return request_reply_internal(req);
        TAKE_PTR(job);
        return MHD_YES;
}

/* 200 with the node's credentials and its first netmap: the whole of it,
 * or (asked for with "netmap_scope": "self") only the node's own part,
 * rendered by the group commit (register-batch.c), so that a registration
 * costs the same in a mesh of 10 or 10,000 nodes; the peers come with the
 * node's first long-poll. */
static enum MHD_Result register_reply(Request *req, const RegisterJob *job) {
        _cleanup_free_ char *whole = NULL;
        const char *netmap = job->netmap;
        NetmapSnapshot *snap;
        size_t len;
        char *text;
        int r;

        if (job->netmap_self && !netmap)
                return request_reply_internal(req);
        if (!job->netmap_self) {
                r = server_get_snapshot(req->server, &snap);
                if (r < 0)
                        return request_reply_internal(req);
                r = netmap_snapshot_render(snap, job->node.id, &whole, &len);
                if (r == -ENOENT) /* removed in the meantime */
                        return request_reply_error(req, MHD_HTTP_FORBIDDEN, "node removed");
                if (r < 0)
                        return request_reply_oom(req);
                netmap = whole;
        }

        r = register_reply_render(
                &(RegisterReplyFields) {
                        .node_id = job->node.id,
                        .name = job->node.name,
                        .token = job->token,
                        .netmap = netmap,
                        .netmap_self = job->netmap_self,
                },
                &text);
        if (r < 0)
                return request_reply_oom(req);
        return request_reply(req, MHD_HTTP_OK, text, strlen(text));
}

/* The connection resumed after the group commit: the answer. */
static enum MHD_Result register_finish(Request *req) {
        RegisterJob *job = req->register_job;

        if (job->result < 0)
                return register_reply_refused(req, job->result, job->label);
        log_info("Registered node %s (id %" PRId64 ", %s, %s).", job->node.name, job->node.id, job->node.ipv4,
                 job->node.ipv6);
        return register_reply(req, job);
}

enum MHD_Result handle_register(Request *req) {
        _cleanup_(cJSON_Deletep) cJSON *body = NULL;
        _cleanup_(register_request_done) RegisterRequest parsed = {};
        enum MHD_Result ret;
        int64_t challenge_expires = 0;
        bool ok;

        if (req->register_job)
                return register_finish(req);

        ret = register_parse(req, &body, &parsed, &ok);
        if (!ok)
                return ret;
        ret = request_check_proof(req, &parsed, &challenge_expires, &ok);
        if (!ok)
                return ret;
        return register_enqueue(req, &parsed, challenge_expires);
}
