/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GET /v1/ca and POST /v1/cert: the mesh CA, and certificates it signs
 * for a node's own names. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "http-internal.h"
#include "log.h"
#include "msg-cert.h"
#include "request.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

enum MHD_Result handle_ca(Request *req) {
        Server *s = req->server;
        char *text;

        if (!s->ca)
                return request_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no certificate authority");
        if (ca_reply_render(ca_certificate_pem(s->ca), s->domain, &text) < 0)
                return request_reply_oom(req);
        return request_reply(req, MHD_HTTP_OK, text, strlen(text));
}

enum MHD_Result handle_cert(Request *req) {
        Server *s = req->server;
        _cleanup_(cJSON_Deletep) cJSON *body = NULL;
        _cleanup_(store_node_done) StoreNode node = {};
        _cleanup_(issued_cert_done) IssuedCert cert = {};
        const char *csr;
        char error[256];
        int64_t id;
        char *text;
        int r;

        if (request_authenticate_node(req, &id, &node) != MHD_YES || id < 0)
                return req->status != 0 ? MHD_YES : MHD_NO;
        if (!s->ca)
                return request_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no certificate authority");

        body = request_parse_body(req);
        if (!body)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "body: not a JSON object");
        r = cert_request_parse(body, &csr, error, sizeof(error));
        if (r < 0)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", error);

        r = ca_sign_request(s->ca, csr,
                            &(CertIdentity) {
                                    .name = node.name,
                                    .domain = s->domain,
                                    .ipv4 = node.ipv4,
                                    .ipv6 = node.ipv6,
                            },
                            time(NULL), s->cert_lifetime_sec, &cert, error, sizeof(error));
        if (r == -EBADMSG)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", error);
        if (r == -EPERM) {
                log_peer_notice(node.name, "Refused a certificate request of node %s: %s", node.name, error);
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "%s", error);
        }
        if (r == -ENOMEM)
                return request_reply_oom(req);
        if (r < 0)
                return request_reply_internal(req);
        /* before the certificate leaves: the name is held back until it expires */
        r = store_note_certificate(s->store, node.id, cert.not_after);
        if (r < 0)
                return request_reply_internal(req);

        log_peer_info(node.name, "Issued a certificate for %s.%s, valid for %" PRIu64 " s.", node.name,
                      s->domain, s->cert_lifetime_sec);
        if (cert_reply_render(cert.pem, ca_certificate_pem(s->ca), cert.not_before, cert.not_after, &text) < 0)
                return request_reply_oom(req);
        return request_reply(req, MHD_HTTP_OK, text, strlen(text));
}
