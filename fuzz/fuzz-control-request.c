/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Request bodies of meshd-control's HTTP API (docs/protocol.md): what any
 * client on the network can send, before a token or auth key is even
 * looked at. The input is one body; it goes through every body parser the
 * server has (src/shared/msg-*.c, request.c), and what they accept must be
 * what their headers promise; what they accept, rendered by meshd's side of
 * the same message, must parse again to the same. */

#include <cjson/cJSON.h>

#include "endpoint.h"
#include "fuzz.h"
#include "key.h"
#include "msg-cert.h"
#include "msg-endpoints.h"
#include "msg-paths.h"
#include "msg-register.h"
#include "request.h"
#include "strv.h"
#include "varlink.h" /* _cleanup_json_ */

/* What endpoints_request_parse() accepted is canonical and would be
 * accepted again as it is. */
static void check_endpoints(char **l) {
        fuzz_check(l && strv_length(l) <= ENDPOINTS_MSG_MAX);
        for (char **e = l; *e; e++) {
                union sockaddr_union sa;
                char buf[ENDPOINT_STRLEN];

                fuzz_check(endpoint_parse(*e, &sa) == 0);
                fuzz_check(sa.sa.sa_family != AF_INET6 || sa.in6.sin6_scope_id == 0);
                fuzz_check(endpoint_format(&sa, buf, sizeof(buf)));
                fuzz_check(streq(buf, *e));
        }
}

/* On -EINVAL the message names the field; nothing else fails but memory. */
static void check_error(int r, const char *error) {
        fuzz_check(r == 0 || r == -EINVAL || r == -ENOMEM);
        fuzz_check(r != -EINVAL || error[0] != '\0');
}

/* What meshd would send for req parses back to the same. */
static void check_register_round_trip(const RegisterRequest *req) {
        _cleanup_(register_request_done) RegisterRequest again = {};
        _cleanup_json_ cJSON *body = NULL;
        _cleanup_free_ char *text = NULL;
        char error[256] = "";

        if (!req->challenge || !req->proof)
                return; /* meshd always sends both */
        fuzz_check(register_request_render(req, &text) == 0);
        body = request_body_parse(text, strlen(text));
        fuzz_check(body);
        fuzz_check(register_request_parse(body, &again, error, sizeof(error)) == 0);
        fuzz_check(streq(again.authkey, req->authkey) && streq(again.public_key, req->public_key) &&
                   streq(again.hostname, req->hostname) && streq(again.challenge, req->challenge) &&
                   streq(again.proof, req->proof) && strv_equal(again.endpoints, req->endpoints));
}

static void check_register(const cJSON *body) {
        RegisterRequest req = {};
        char error[256] = "";
        WgKey key;
        int r;

        r = register_request_parse(body, &req, error, sizeof(error));
        check_error(r, error);
        if (r < 0)
                return;
        fuzz_check(req.authkey && req.authkey[0] != '\0' && strlen(req.authkey) <= REGISTER_AUTHKEY_MAX);
        fuzz_check(req.public_key && key_from_base64(req.public_key, &key) == 0 && !key_is_zero(&key));
        fuzz_check(req.hostname && strlen(req.hostname) <= REGISTER_HOSTNAME_MAX);
        check_endpoints(req.endpoints);
        check_register_round_trip(&req);
        register_request_done(&req);
}

static void check_endpoints_request(const cJSON *body) {
        for (int required = 0; required <= 1; required++) {
                _cleanup_strv_free_ char **l = NULL;
                char error[256] = "";
                int r;

                r = endpoints_request_parse(body, required, &l, error, sizeof(error));
                check_error(r, error);
                if (r == 0) {
                        _cleanup_strv_free_ char **again = NULL;
                        _cleanup_json_ cJSON *b = NULL;
                        _cleanup_free_ char *text = NULL;

                        check_endpoints(l);
                        fuzz_check(endpoints_request_render(l, &text) == 0);
                        b = request_body_parse(text, strlen(text));
                        fuzz_check(endpoints_request_parse(b, true, &again, error, sizeof(error)) == 0);
                        fuzz_check(strv_equal(again, l));
                }
                if (required && !cJSON_GetObjectItemCaseSensitive(body, "endpoints"))
                        fuzz_check(r == -EINVAL);
        }
}

static void check_cert(const cJSON *body) {
        const char *csr = NULL;
        char error[256] = "";
        int r;

        r = cert_request_parse(body, &csr, error, sizeof(error));
        check_error(r, error);
        if (r == 0)
                fuzz_check(csr && csr[0] != '\0' && strlen(csr) <= CERT_REQUEST_CSR_MAX &&
                           strstr(csr, "CERTIFICATE REQUEST-----"));
}

static void check_paths_round_trip(const PathReport *reports, size_t n) {
        _cleanup_free_ PathReport *again = NULL;
        _cleanup_json_ cJSON *body = NULL;
        _cleanup_free_ char *text = NULL;
        char error[256] = "";
        size_t m = 0;

        fuzz_check(paths_request_render(reports, n, &text) == 0);
        body = request_body_parse(text, strlen(text));
        fuzz_check(paths_request_parse(body, &again, &m, error, sizeof(error)) == 0 && m == n);
        for (size_t i = 0; i < n; i++)
                fuzz_check(streq(again[i].public_key, reports[i].public_key) &&
                           again[i].direct == reports[i].direct);
}

static void check_paths(const cJSON *body) {
        _cleanup_free_ PathReport *reports = NULL;
        char error[256] = "";
        size_t n = 0;
        int r;

        r = paths_request_parse(body, &reports, &n, error, sizeof(error));
        check_error(r, error);
        if (r < 0)
                return;
        fuzz_check(reports &&
                   n == (size_t) cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(body, "peers")));
        for (size_t i = 0; i < n; i++) {
                WgKey key;

                fuzz_check(key_from_base64(reports[i].public_key, &key) == 0 && !key_is_zero(&key));
                /* a key listed twice is refused; n is small in practice, and
                 * bounded by the fuzzer's input length here */
                for (size_t j = 0; j < i; j++)
                        fuzz_check(!streq(reports[i].public_key, reports[j].public_key));
        }
        check_paths_round_trip(reports, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_json_ cJSON *body = NULL;

        fuzz_quiet_logs();

        body = request_body_parse((const char *) data, size);
        if (!body)
                return 0;
        fuzz_check(cJSON_IsObject(body));

        check_register(body);
        check_endpoints_request(body);
        check_cert(body);
        check_paths(body);
        return 0;
}
