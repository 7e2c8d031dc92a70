/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The certificate messages (docs/protocol.md, POST /v1/cert and GET /v1/ca):
 * the request body meshd-control reads from any node with a token, and the
 * two replies meshd reads from the control server. The input goes through
 * all three parsers; what one accepts, rendered again, must parse to the
 * same message, and its failures are the ones its header names. */

#include <cjson/cJSON.h>

#include "fuzz.h"
#include "msg-cert.h"
#include "strv.h"
#include "varlink.h" /* _cleanup_json_ */

static void check_request(const uint8_t *data, size_t size) {
        _cleanup_json_ cJSON *body = cJSON_ParseWithLength((const char *) data, size), *again = NULL;
        _cleanup_free_ char *text = NULL;
        const char *csr = NULL, *csr2 = NULL;
        char error[256] = "";
        int r;

        if (!cJSON_IsObject(body))
                return;
        r = cert_request_parse(body, &csr, error, sizeof(error));
        fuzz_check(r == 0 || r == -EINVAL);
        if (r < 0) {
                fuzz_check(strncmp(error, "csr: ", 5) == 0);
                return;
        }
        fuzz_check(csr && csr[0] != '\0' && strlen(csr) <= CERT_REQUEST_CSR_MAX);
        fuzz_check(strstr(csr, "-----BEGIN CERTIFICATE REQUEST-----") ||
                   strstr(csr, "-----BEGIN NEW CERTIFICATE REQUEST-----"));

        if (cert_request_render(csr, &text) < 0)
                return; /* out of memory */
        again = cJSON_Parse(text);
        fuzz_check(cJSON_IsObject(again));
        fuzz_check(cert_request_parse(again, &csr2, error, sizeof(error)) == 0);
        fuzz_check(streq(csr, csr2));
}

static void check_cert_reply(const uint8_t *data, size_t size) {
        _cleanup_(cert_reply_done) CertReply r = {}, back = {};
        _cleanup_free_ char *text = NULL;
        int k;

        k = cert_reply_parse((const char *) data, size, &r);
        fuzz_check(k == 0 || k == -EBADMSG || k == -ENOMEM);
        if (k < 0)
                return;
        if (r.pending) {
                /* 202 of an ACME order: bounded wait and names, a round trip keeps them */
                size_t n = 0;
                fuzz_check(r.retry_after_sec <= CERT_RETRY_AFTER_MAX_SEC);
                while (r.names && r.names[n])
                        n++;
                fuzz_check(n <= CERT_PENDING_NAMES_MAX);
                if (cert_pending_render(r.retry_after_sec, r.names, r.detail, &text) < 0)
                        return;
                fuzz_check(cert_reply_parse(text, strlen(text), &back) == 0);
                fuzz_check(back.pending && back.retry_after_sec == r.retry_after_sec);
                fuzz_check(strv_equal(r.names, back.names));
                return;
        }
        fuzz_check(r.certificate && r.ca);

        if (cert_reply_render_issued(r.certificate, r.ca, r.not_before, r.not_after, r.issuer, &text) < 0)
                return;
        fuzz_check(cert_reply_parse(text, strlen(text), &back) == 0);
        fuzz_check(streq_ptr(r.issuer, back.issuer));
        fuzz_check(streq(r.certificate, back.certificate) && streq(r.ca, back.ca));
        fuzz_check(r.not_before == back.not_before && r.not_after == back.not_after);
}

static void check_ca_reply(const uint8_t *data, size_t size) {
        _cleanup_(ca_reply_done) CaReply r = {}, back = {};
        _cleanup_free_ char *text = NULL;
        int k;

        k = ca_reply_parse((const char *) data, size, &r);
        fuzz_check(k == 0 || k == -EBADMSG || k == -ENOMEM);
        if (k < 0)
                return;
        fuzz_check(r.ca);
        /* meshd-control always sends the domain; a reply without one has no rendering */
        if (!r.domain || ca_reply_render(r.ca, r.domain, &text) < 0)
                return;
        fuzz_check(ca_reply_parse(text, strlen(text), &back) == 0);
        fuzz_check(streq(r.ca, back.ca) && back.domain && streq(r.domain, back.domain));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_quiet_logs();
        check_request(data, size);
        check_cert_reply(data, size);
        check_ca_reply(data, size);
        return 0;
}
