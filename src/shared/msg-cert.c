/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg-cert.h"
#include "strv.h"
#include "varlink.h"

static const char *json_string(const cJSON *o, const char *field) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* cJSON_PrintUnformatted() of o, which it frees. */
static int print_and_free(cJSON *o, char **ret_body) {
        _cleanup_json_ cJSON *owned = o;
        char *text = cJSON_PrintUnformatted(owned);

        if (!text)
                return -ENOMEM;
        *ret_body = text;
        return 0;
}

static int strdup_or_null(const char *s, char **ret) {
        *ret = s ? strdup(s) : NULL;
        return !s || *ret ? 0 : -ENOMEM;
}

/* ---- POST /v1/cert request ---------------------------------------------------------------- */

int cert_request_render(const char *csr_pem, char **ret_body) {
        cJSON *o = cJSON_CreateObject();

        if (!o || !cJSON_AddStringToObject(o, "csr", csr_pem)) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        return print_and_free(o, ret_body);
}

int cert_request_parse(const cJSON *body, const char **ret_csr, char *error, size_t error_size) {
        const char *csr = json_string(body, "csr");

        if (!csr || !*csr) {
                snprintf(error, error_size, "csr: missing or not a string");
                return -EINVAL;
        }
        if (strlen(csr) > CERT_REQUEST_CSR_MAX) {
                snprintf(error, error_size, "csr: longer than %i bytes", CERT_REQUEST_CSR_MAX);
                return -EINVAL;
        }
        if (!strstr(csr, "-----BEGIN CERTIFICATE REQUEST-----") &&
            !strstr(csr, "-----BEGIN NEW CERTIFICATE REQUEST-----")) {
                snprintf(error, error_size, "csr: not a PEM certificate request");
                return -EINVAL;
        }
        *ret_csr = csr;
        return 0;
}

/* ---- POST /v1/cert reply ------------------------------------------------------------------ */

void cert_reply_done(CertReply *r) {
        if (!r)
                return;
        free(r->certificate);
        free(r->ca);
        free(r->issuer);
        strv_free(r->names);
        free(r->detail);
        *r = (CertReply) {};
}

int cert_reply_render_issued(const char *certificate, const char *ca, int64_t not_before, int64_t not_after,
                             const char *issuer, char **ret_body) {
        cJSON *o = cJSON_CreateObject();

        if (!o || !cJSON_AddStringToObject(o, "certificate", certificate) ||
            !cJSON_AddStringToObject(o, "ca", ca) ||
            !cJSON_AddNumberToObject(o, "not_before", (double) not_before) ||
            !cJSON_AddNumberToObject(o, "not_after", (double) not_after) ||
            (issuer && !cJSON_AddStringToObject(o, "issuer", issuer))) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        return print_and_free(o, ret_body);
}

int cert_reply_render(const char *certificate, const char *ca, int64_t not_before, int64_t not_after,
                      char **ret_body) {
        return cert_reply_render_issued(certificate, ca, not_before, not_after, NULL, ret_body);
}

int cert_pending_render(uint64_t retry_after_sec, char *const *names, const char *detail, char **ret_body) {
        cJSON *o = cJSON_CreateObject(), *a;

        if (!o || !cJSON_AddStringToObject(o, "status", "pending") ||
            !cJSON_AddNumberToObject(o, "retry_after",
                                     (double) MIN(retry_after_sec, CERT_RETRY_AFTER_MAX_SEC)) ||
            (detail && !cJSON_AddStringToObject(o, "detail", detail)) ||
            !(a = cJSON_AddArrayToObject(o, "names"))) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        for (size_t i = 0; names && names[i] && i < CERT_PENDING_NAMES_MAX; i++) {
                cJSON *n = cJSON_CreateString(names[i]);
                if (!n || !cJSON_AddItemToArray(a, n)) {
                        cJSON_Delete(n);
                        cJSON_Delete(o);
                        return -ENOMEM;
                }
        }
        return print_and_free(o, ret_body);
}

/* Whole seconds, within ±10^15 (some 31 million years): anything else reads
 * as absent. Not up to INT64_MAX: cJSON prints numbers with 15 significant
 * digits when that reads back "close enough", so larger values would not
 * survive a render and parse (fuzz-msg-cert found 8888888888888888880). */
#define JSON_SECONDS_MAX 1e15

static int64_t json_seconds(const cJSON *o, const char *field) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);

        if (!cJSON_IsNumber(v) || !(v->valuedouble >= -JSON_SECONDS_MAX && v->valuedouble <= JSON_SECONDS_MAX))
                return 0;
        return (int64_t) v->valuedouble;
}

/* "names" of a pending reply: absent, or an array of at most
 * CERT_PENDING_NAMES_MAX strings of at most 253 bytes. */
static int json_names(const cJSON *o, char ***ret) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "names"), *n;
        _cleanup_strv_free_ char **names = NULL;
        int count = 0;

        *ret = NULL;
        if (!a)
                return 0;
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > CERT_PENDING_NAMES_MAX)
                return -EBADMSG;
        cJSON_ArrayForEach(n, a) {
                if (!cJSON_IsString(n) || !n->valuestring[0] || strlen(n->valuestring) > 253)
                        return -EBADMSG;
                if (strv_consume(&names, strdup(n->valuestring)) < 0)
                        return -ENOMEM;
                count++;
        }
        *ret = count > 0 ? TAKE_PTR(names) : NULL;
        return 0;
}

static int cert_pending_parse(const cJSON *o, CertReply *ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "retry_after");
        int r;

        ret->pending = true;
        if (cJSON_IsNumber(v) && v->valuedouble > 0)
                ret->retry_after_sec = v->valuedouble >= CERT_RETRY_AFTER_MAX_SEC ? CERT_RETRY_AFTER_MAX_SEC
                                                                                  : (uint64_t) v->valuedouble;
        r = json_names(o, &ret->names);
        if (r < 0)
                return r;
        return strdup_or_null(json_string(o, "detail"), &ret->detail);
}

int cert_reply_parse(const char *body, size_t len, CertReply *ret) {
        _cleanup_json_ cJSON *o = cJSON_ParseWithLength(body, len);
        _cleanup_(cert_reply_done) CertReply r = {};
        const char *certificate = json_string(o, "certificate"), *ca = json_string(o, "ca");
        const char *status = json_string(o, "status");
        int k;

        if (status && streq(status, "pending")) {
                k = cert_pending_parse(o, &r);
                if (k < 0)
                        return k;
                *ret = r;
                r = (CertReply) {};
                return 0;
        }
        if (!certificate || !ca)
                return -EBADMSG;
        if (strdup_or_null(certificate, &r.certificate) < 0 || strdup_or_null(ca, &r.ca) < 0 ||
            strdup_or_null(json_string(o, "issuer"), &r.issuer) < 0)
                return -ENOMEM;
        r.not_before = json_seconds(o, "not_before");
        r.not_after = json_seconds(o, "not_after");
        *ret = r;
        r = (CertReply) {};
        return 0;
}

/* ---- GET /v1/ca reply --------------------------------------------------------------------- */

void ca_reply_done(CaReply *r) {
        if (!r)
                return;
        free(r->ca);
        free(r->domain);
        *r = (CaReply) {};
}

int ca_reply_render(const char *ca, const char *domain, char **ret_body) {
        cJSON *o = cJSON_CreateObject();

        if (!o || !cJSON_AddStringToObject(o, "ca", ca) || !cJSON_AddStringToObject(o, "domain", domain)) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        return print_and_free(o, ret_body);
}

int ca_reply_parse(const char *body, size_t len, CaReply *ret) {
        _cleanup_json_ cJSON *o = cJSON_ParseWithLength(body, len);
        _cleanup_(ca_reply_done) CaReply r = {};
        const cJSON *domain = cJSON_GetObjectItemCaseSensitive(o, "domain");
        const char *ca = json_string(o, "ca");

        if (!ca || (domain && !cJSON_IsNull(domain) && !cJSON_IsString(domain)))
                return -EBADMSG;
        if (strdup_or_null(ca, &r.ca) < 0 || strdup_or_null(json_string(o, "domain"), &r.domain) < 0)
                return -ENOMEM;
        *ret = r;
        r = (CaReply) {};
        return 0;
}
