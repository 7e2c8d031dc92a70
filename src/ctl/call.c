/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <math.h>

#include "call.h"
#include "log.h"

static const char *strempty(const char *s) {
        return s ? s : "";
}

int call_method(const Arguments *a, const char *method, const cJSON *parameters, uint64_t timeout_usec,
                cJSON **ret_reply, char **ret_error) {
        _cleanup_json_ cJSON *reply = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        r = varlink_call(a->socket_path, method, parameters, timeout_usec, &reply, &error);
        switch (r) {
        case 0:
        case 1:
                break;
        case -ENOENT:
        case -ECONNREFUSED:
                return log_error_errno(r, "cannot reach meshd at %s: %m — is meshd running?", a->socket_path);
        case -EACCES:
        case -EPERM:
                return log_error_errno(
                        r, "cannot reach meshd at %s: %m (run as root or as a member of group meshd)",
                        a->socket_path);
        case -ETIMEDOUT:
                return log_error_errno(r, "meshd at %s did not answer %s in time", a->socket_path, method);
        default:
                if (r < 0)
                        return log_error_errno(r, "failed to call %s on meshd at %s: %m", method,
                                               a->socket_path);
                return log_error_errno(-EPROTO, "unexpected result %i from the Varlink client", r);
        }

        if (r == 1 && !error)
                return log_error_errno(-EPROTO, "meshd returned an unnamed error for %s", method);

        if (!reply) {
                /* A reply without parameters means {} (Varlink spec). */
                reply = cJSON_CreateObject();
                if (!reply)
                        return log_oom();
        }

        *ret_reply = TAKE_PTR(reply);
        if (ret_error)
                *ret_error = TAKE_PTR(error);
        return r;
}

int call_method_logged(const Arguments *a, const char *method, const cJSON *parameters, uint64_t timeout_usec,
                       cJSON **ret_reply) {
        _cleanup_json_ cJSON *reply = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        r = call_method(a, method, parameters, timeout_usec, &reply, &error);
        if (r < 0)
                return r;
        if (r > 0)
                return call_log_error(a, method, error, reply);

        *ret_reply = TAKE_PTR(reply);
        return 0;
}

static const char *method_short_name(const char *method) {
        const char *dot = strrchr(method, '.');
        return dot ? dot + 1 : method;
}

int call_log_error(const Arguments *a, const char *method, const char *error, const cJSON *parameters) {
        /* What a person should understand from each error; the daemon's own
         * "message" is the detail after the colon. */
        static const struct {
                const char *error;
                const char *text;
                int errnum;
        } table[] = {
                { "io.meshd.NotJoined", "this node has not joined a mesh (use 'meshctl up')", ENOLINK },
                { "io.meshd.AlreadyJoined", "already joined a mesh (use 'meshctl logout' first)", EALREADY },
                { "io.meshd.AuthFailed", "control server refused the auth key", EACCES },
                { "io.meshd.PinMismatch", "control server's key does not match the pin", EBADE },
                { "io.meshd.ControlUnreachable", "cannot reach the control server", EHOSTUNREACH },
                { "io.meshd.ProtocolError", "bad reply from the control server", EPROTO },
                { "io.meshd.Timeout", "timed out", ETIMEDOUT },
                { "io.meshd.CertificateRefused", "control server refused a certificate", EPERM },
                { "io.meshd.TooManyConnections", "meshd refused the connection", EUSERS },
        };
        const char *message = reply_string(parameters, "message");

        if (!error)
                return log_error_errno(-EPROTO, "%s failed with an unnamed error", method_short_name(method));
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(error, table[i].error)) {
                        if (message)
                                return log_error_errno(-table[i].errnum, "%s: %s", table[i].text, message);
                        return log_error_errno(-table[i].errnum, "%s", table[i].text);
                }

        if (streq(error, "io.meshd.PermissionDenied"))
                return log_error_errno(-EPERM, "%s: permission denied (run as root)", a->verb);
        if (streq(error, "io.meshd.PeerNotFound")) {
                const char *peer = reply_string(parameters, "peer");
                if (peer)
                        return log_error_errno(-ENXIO, "unknown peer '%s'", peer);
                return log_error_errno(-ENXIO, "unknown peer%s%s", message ? ": " : "", strempty(message));
        }
        if (streq(error, "io.meshd.InvalidParameter"))
                return log_error_errno(-EINVAL, "meshd refused parameter '%s' of %s%s%s",
                                       strna(reply_string(parameters, "parameter")), method_short_name(method),
                                       message ? ": " : "", strempty(message));
        if (streq(error, "org.varlink.service.MethodNotFound"))
                return log_error_errno(-EOPNOTSUPP,
                                       "this meshd does not support %s (meshctl newer than meshd?)", method);

        return log_error_errno(-EIO, "%s failed: %s%s%s", method_short_name(method), error, message ? ": " : "",
                               strempty(message));
}

const char *reply_string(const cJSON *o, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool reply_bool(const cJSON *o, const char *key) {
        return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

uint64_t reply_uint(const cJSON *o, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

        /* cJSON keeps numbers as doubles: exact up to 2^53, which covers
         * microseconds since the epoch for a few centuries. */
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
            v->valuedouble >= 18446744073709551616.0)
                return 0;
        return (uint64_t) v->valuedouble;
}
