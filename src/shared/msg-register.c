/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error-message.h"
#include "msg-endpoints.h"
#include "msg-register.h"
#include "strv.h"
#include "varlink.h" /* _cleanup_json_ */

/* like netmap.c's: the largest integer a double holds exactly */
#define JSON_INTEGER_MAX 9007199254740992.0

#define fail(ret_error, ...) error_setf(ret_error, -EBADMSG, __VA_ARGS__)

static const char *json_string(const cJSON *o, const char *field) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

int challenge_reply_render(const char *challenge, const WgKey *server_key, int64_t expires, char **ret) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        char key[WG_KEY_B64_LEN + 1];

        key_to_base64(server_key, key);
        if (!o || !cJSON_AddStringToObject(o, "challenge", challenge) ||
            !cJSON_AddStringToObject(o, "server_key", key) ||
            !cJSON_AddNumberToObject(o, "expires", (double) expires))
                return -ENOMEM;
        *ret = cJSON_PrintUnformatted(o);
        return *ret ? 0 : -ENOMEM;
}

int challenge_reply_parse(const char *body, size_t len, char **ret_challenge, WgKey *ret_server_key) {
        _cleanup_json_ cJSON *o = cJSON_ParseWithLength(body, len);
        const char *challenge = json_string(o, "challenge"), *server_key = json_string(o, "server_key");
        WgKey key;
        char *c;

        if (!challenge || !server_key || key_from_base64(server_key, &key) < 0)
                return -EBADMSG;
        c = strdup(challenge);
        if (!c)
                return -ENOMEM;
        *ret_challenge = c;
        *ret_server_key = key;
        return 0;
}

static void json_wipe_authkey(cJSON *o) {
        cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "authkey");

        if (cJSON_IsString(a))
                explicit_bzero(a->valuestring, strlen(a->valuestring));
}

int register_request_render(const RegisterRequest *req, char **ret) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        int r;

        if (!o || !cJSON_AddStringToObject(o, "authkey", req->authkey) ||
            !cJSON_AddStringToObject(o, "public_key", req->public_key) ||
            !cJSON_AddStringToObject(o, "hostname", req->hostname) ||
            !cJSON_AddStringToObject(o, "challenge", req->challenge) ||
            !cJSON_AddStringToObject(o, "proof", req->proof) ||
            (req->netmap_self && !cJSON_AddStringToObject(o, "netmap_scope", "self")))
                r = -ENOMEM;
        else
                r = endpoints_json_add(o, req->endpoints);
        if (r >= 0) {
                *ret = cJSON_PrintUnformatted(o);
                r = *ret ? 0 : -ENOMEM;
        }
        /* the tree holds the auth key */
        json_wipe_authkey(o);
        return r;
}

void register_request_done(RegisterRequest *r) {
        r->endpoints = strv_free(r->endpoints);
}
/* "netmap_scope": absent, null or "full": the whole netmap; "self": the
 * node's own entry only. -EINVAL for anything else. */
static int netmap_scope_parse(const cJSON *o, const char *key, bool *ret_self) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

        *ret_self = false;
        if (!v || cJSON_IsNull(v))
                return 0;
        if (!cJSON_IsString(v) || !v->valuestring)
                return -EINVAL;
        if (streq(v->valuestring, "self"))
                *ret_self = true;
        else if (!streq(v->valuestring, "full"))
                return -EINVAL;
        return 0;
}

int register_request_parse(const cJSON *body, RegisterRequest *ret, char *error, size_t error_size) {
        RegisterRequest req = {};
        WgKey key;
        int r;

        req.authkey = json_string(body, "authkey");
        if (!req.authkey || !*req.authkey || strlen(req.authkey) > REGISTER_AUTHKEY_MAX) {
                snprintf(error, error_size, "authkey: missing or not a string");
                return -EINVAL;
        }
        req.public_key = json_string(body, "public_key");
        if (!req.public_key || key_from_base64(req.public_key, &key) < 0 || key_is_zero(&key)) {
                snprintf(error, error_size, "public_key: not a WireGuard public key");
                return -EINVAL;
        }
        req.hostname = json_string(body, "hostname");
        if (!req.hostname || strlen(req.hostname) > REGISTER_HOSTNAME_MAX) {
                snprintf(error, error_size, "hostname: missing, not a string or too long");
                return -EINVAL;
        }
        r = netmap_scope_parse(body, "netmap_scope", &req.netmap_self);
        if (r < 0) {
                snprintf(error, error_size, "netmap_scope: must be \"self\" or \"full\"");
                return r;
        }
        /* last: the only field that owns memory */
        r = endpoints_request_parse(body, false, &req.endpoints, error, error_size);
        if (r < 0)
                return r;
        /* absent ones are refused with 401 by the handler, not 400 here */
        req.challenge = json_string(body, "challenge");
        req.proof = json_string(body, "proof");
        *ret = req;
        return 0;
}

int register_reply_render(const RegisterReplyFields *f, char **ret) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();

        if (!o || !cJSON_AddNumberToObject(o, "node_id", (double) f->node_id) ||
            !cJSON_AddStringToObject(o, "name", f->name) || !cJSON_AddStringToObject(o, "token", f->token) ||
            !cJSON_AddRawToObject(o, "netmap", f->netmap) ||
            (f->netmap_self && !cJSON_AddStringToObject(o, "netmap_scope", "self")))
                return -ENOMEM;
        *ret = cJSON_PrintUnformatted(o);
        return *ret ? 0 : -ENOMEM;
}

void register_reply_done(RegisterReply *r) {
        if (!r)
                return;
        if (r->token)
                erase_and_free(r->token, strlen(r->token));
        netmap_free(r->netmap);
        free(r->netmap_json);
        *r = (RegisterReply) {};
}

/* The token is a credential: wipe cJSON's copy before the tree is freed. */
static void json_erase_token(cJSON **j) {
        if (!*j)
                return;

        cJSON *t = cJSON_GetObjectItemCaseSensitive(*j, "token");
        if (cJSON_IsString(t) && t->valuestring)
                explicit_bzero(t->valuestring, strlen(t->valuestring));
        cJSON_Delete(*j);
}

/* JSON null counts as absent, as in netmaps. */
static int reply_get_string(const cJSON *o, const char *key, const char **ret, char **ret_error) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(o, key);

        if (!item || cJSON_IsNull(item))
                return fail(ret_error, "%s: missing", key);
        if (!cJSON_IsString(item) || !item->valuestring)
                return fail(ret_error, "%s: not a string", key);
        *ret = item->valuestring;
        return 0;
}

static int reply_get_id(const cJSON *o, const char *key, uint64_t *ret, char **ret_error) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(o, key);
        double d;

        if (!item || cJSON_IsNull(item))
                return fail(ret_error, "%s: missing", key);
        if (!cJSON_IsNumber(item))
                return fail(ret_error, "%s: not a number", key);
        d = item->valuedouble;
        if (!isfinite(d) || d != floor(d) || d < 0 || d > JSON_INTEGER_MAX)
                return fail(ret_error, "%s: not a non-negative integer", key);
        if ((uint64_t) d < 1)
                return fail(ret_error, "%s: must be at least %" PRIu64, key, (uint64_t) 1);
        *ret = (uint64_t) d;
        return 0;
}

int register_reply_parse(const char *json, size_t len, RegisterReply *ret, char **ret_error) {
        _cleanup_(json_erase_token) cJSON *j = NULL;
        _cleanup_(netmap_freep) Netmap *m = NULL;
        uint64_t node_id = 0;
        const char *name = NULL, *token = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        if (ret_error)
                *ret_error = NULL;

        r = netmap_json_parse(json, len, &j, ret_error);
        if (r < 0)
                return r;
        if (!cJSON_IsObject(j))
                return fail(ret_error, "reply: not a JSON object");

        r = reply_get_id(j, "node_id", &node_id, ret_error);
        if (r < 0)
                return r;

        r = reply_get_string(j, "name", &name, ret_error);
        if (r < 0)
                return r;

        r = reply_get_string(j, "token", &token, ret_error);
        if (r < 0)
                return r;
        if (token[0] == '\0')
                return fail(ret_error, "token: empty");

        const cJSON *netmap = cJSON_GetObjectItemCaseSensitive(j, "netmap");
        if (!netmap)
                return fail(ret_error, "netmap: missing");
        r = netmap_from_json_at(netmap, "netmap.", &m, ret_error);
        if (r < 0)
                return r;

        if (!streq(name, m->self.name))
                return fail(ret_error, "name: '%s' differs from netmap.self.name '%s'", name, m->self.name);

        bool netmap_self;
        if (netmap_scope_parse(j, "netmap_scope", &netmap_self) < 0)
                return fail(ret_error, "netmap_scope: must be \"self\" or \"full\"");

        char *t = strdup(token);
        if (!t)
                return -ENOMEM;

        *ret = (RegisterReply) {
                .node_id = node_id,
                .token = t,
                .netmap = TAKE_PTR(m),
                .netmap_json = cJSON_PrintUnformatted(netmap),
                .netmap_self = netmap_self,
        };
        return 0;
}
