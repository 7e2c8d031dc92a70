/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GET /v1/ca and POST /v1/cert: the mesh CA, and certificates it signs
 * for a node's own names. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
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

/* 202: the order runs, or the CSR must be made again for `name`. */
static enum MHD_Result reply_pending(Request *req, const char *name, uint64_t retry_after, const char *detail) {
        char *names[] = { (char *) name, NULL }, *text;

        if (cert_pending_render(retry_after, names, detail, &text) < 0)
                return request_reply_oom(req);
        return request_reply(req, MHD_HTTP_ACCEPTED, text, strlen(text));
}

/* Every name of the CSR is name (what the ACME certificate carries), or at
 * least one of the node's own (then the node makes a new CSR for name):
 * anything else is refused as by the mesh CA. 1 when the CSR is exactly for
 * name. */
static int acme_check_names(const CertIdentity *id, const char *name, const CertName *names, size_t n,
                            char *error, size_t error_size) {
        bool exact = n > 0;

        for (size_t i = 0; i < n; i++) {
                if (names[i].type == CERT_NAME_DNS && strcasecmp(names[i].text, name) == 0)
                        continue;
                if (ca_check_names(id, &names[i], 1, error, error_size) < 0)
                        return -EPERM;
                exact = false;
        }
        return exact;
}

static enum MHD_Result handle_cert_acme(Request *req, const StoreNode *node, const char *csr) {
        Server *s = req->server;
        CertIdentity id = { .name = node->name, .domain = s->domain, .ipv4 = node->ipv4, .ipv6 = node->ipv6 };
        _cleanup_free_ char *name = NULL, *detail = NULL;
        CertName names[CA_CSR_NAMES_MAX];
        char key_id[65], error[256];
        AcmeResult result;
        size_t n = 0;
        char *text;
        int r;

        r = ca_read_request(csr, names, &n, key_id, error, sizeof(error));
        if (r >= 0)
                r = acme_issuer_name(s->acme, node->name, s->domain, &name);
        if (r >= 0)
                r = acme_check_names(&id, name, names, n, error, sizeof(error));
        if (r == -EBADMSG)
                return request_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", error);
        if (r == -EPERM) {
                log_peer_notice(node->name, "Refused a certificate request of node %s: %s", node->name, error);
                return request_reply_error(req, MHD_HTTP_FORBIDDEN, "%s", error);
        }
        if (r < 0)
                return r == -ENOMEM ? request_reply_oom(req) : request_reply_internal(req);
        if (r == 0)
                return reply_pending(req, name, 0, "the ACME CA certifies only this name: ask for it alone");

        r = acme_issuer_request(s->acme, node->id, node->name, name, csr, key_id, (uint64_t) time(NULL),
                                &result);
        if (r == -EBUSY)
                return request_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "too many ACME orders");
        if (r < 0)
                return r == -ENOMEM ? request_reply_oom(req) : request_reply_internal(req);
        switch (result.state) {
        case ACME_PENDING:
                if (asprintf(&detail, "the ACME order for %s is in progress", name) < 0)
                        return request_reply_oom(req);
                return reply_pending(req, name, result.retry_after_sec, detail);
        case ACME_FAILED:
                return request_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                           "ACME order for %s failed: %s (next try in %" PRIu64 " s)", name,
                                           result.error, result.retry_after_sec);
        case ACME_ISSUED:
                break;
        }
        /* before the certificate leaves: the name is held back until it expires */
        r = store_note_certificate(s->store, node->id, result.not_after);
        if (r < 0)
                return request_reply_internal(req);
        log_peer_info(node->name, "Handed node %s its ACME certificate for %s.", node->name, name);
        if (cert_reply_render_issued(result.leaf_pem, result.chain_pem, result.not_before, result.not_after,
                                     "acme", &text) < 0)
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

        if (s->acme)
                return handle_cert_acme(req, &node, csr);

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
