/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>

#include "call.h"
#include "log.h"
#include "meshctl.h"
#include "show.h"

#define AUTHKEY_MAX 4096

static void authkey_erase_and_free(char **p) {
        if (*p)
                erase_and_free(*p, strlen(*p));
}

/* The auth key as one line from FILE ('-': stdin), so it need not appear on
 * a command line that every user can read in /proc. */
static int read_authkey_file(const char *path, char **ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char buf[AUTHKEY_MAX + 1];
        size_t n;
        char *key;

        if (streq(path, "-"))
                f = fdopen(dup(STDIN_FILENO), "r");
        else
                f = fopen(path, "re");
        if (!f)
                return log_error_errno(negative_errno(), "cannot read auth key file %s: %m", path);

        n = fread(buf, 1, sizeof(buf), f);
        if (ferror(f)) {
                explicit_bzero(buf, sizeof(buf));
                return log_error_errno(-EIO, "cannot read auth key file %s: %m", path);
        }
        if (n > AUTHKEY_MAX) {
                explicit_bzero(buf, sizeof(buf));
                return log_error_errno(-EFBIG, "auth key file %s is too large for a key", path);
        }
        while (n > 0 && strchr(" \t\r\n", buf[n - 1]))
                n--;
        if (n == 0 || memchr(buf, '\n', n) || memchr(buf, 0, n)) {
                explicit_bzero(buf, sizeof(buf));
                return log_error_errno(-EINVAL, "auth key file %s does not hold one key on one line", path);
        }

        key = strndup(buf, n);
        explicit_bzero(buf, sizeof(buf));
        if (!key)
                return log_oom();
        *ret = key;
        return 0;
}

/* --advertise-routes=A,B goes as ["A,B"]: the daemon splits it, as it
 * checks it, once. */
static int up_route_params(const Arguments *a, cJSON *params) {
        const struct {
                const char *key, *value;
        } lists[] = {
                { "advertise_routes", a->advertise_routes },
                { "accept_routes", a->accept_routes },
        };

        for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                cJSON *l;

                if (!lists[i].value)
                        continue;
                l = cJSON_AddArrayToObject(params, lists[i].key);
                if (!l || (lists[i].value[0] && !cJSON_AddItemToArray(l, cJSON_CreateString(lists[i].value))))
                        return log_oom();
        }
        if (a->advertise_exit_node >= 0 &&
            !cJSON_AddBoolToObject(params, "advertise_exit_node", a->advertise_exit_node))
                return log_oom();
        if (a->exit_node && !cJSON_AddStringToObject(params, "exit_node", a->exit_node))
                return log_oom();
        return 0;
}

int verb_up(const Arguments *a, char **argv) {
        _cleanup_(authkey_erase_and_free) char *file_key = NULL;
        _cleanup_json_ cJSON *params = NULL, *reply = NULL;
        cJSON *item = NULL;
        int r;

        if (a->authkey_file) {
                r = read_authkey_file(a->authkey_file, &file_key);
                if (r < 0)
                        return r;
        }

        params = cJSON_CreateObject();
        if (!params)
                return log_oom();
        if (a->server && (!cJSON_AddStringToObject(params, "server", a->server) ||
                          !(item = cJSON_AddStringToObject(params, "authkey", file_key ?: a->authkey)) ||
                          !cJSON_AddStringToObject(params, "pin", a->pin)))
                return log_oom();
        r = up_route_params(a, params);
        if (r < 0)
                return r;

        r = call_method_logged(a, "io.meshd.Up", params, CALL_UP_TIMEOUT_USEC, &reply);
        /* Our copy of the secret goes as soon as it is sent. */
        if (item)
                explicit_bzero(item->valuestring, strlen(item->valuestring));
        if (r < 0)
                return r;

        if (a->json)
                return show_json(reply);
        if (!a->server) {
                printf("Route settings saved; this node is %s.\n", strna(reply_string(reply, "state")));
                return 0;
        }
        printf("Joined as %s (%s)\n", strna(reply_string(reply, "name")), strna(reply_string(reply, "ipv4")));
        return 0;
}

static int call_simple(const Arguments *a, const char *method) {
        _cleanup_json_ cJSON *reply = NULL;
        int r;

        r = call_method_logged(a, method, NULL, CALL_TIMEOUT_USEC, &reply);
        if (r < 0)
                return r;
        if (a->json)
                return show_json(reply);
        return 0;
}

int verb_down(const Arguments *a, char **argv) {
        return call_simple(a, "io.meshd.Down");
}

int verb_logout(const Arguments *a, char **argv) {
        return call_simple(a, "io.meshd.Logout");
}

static int get_status(const Arguments *a, cJSON **ret) {
        _cleanup_json_ cJSON *reply = NULL;
        int r;

        r = call_method_logged(a, "io.meshd.GetStatus", NULL, CALL_TIMEOUT_USEC, &reply);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(reply);
        return 0;
}

/* Returns the reply, and in *ret_peers the array inside it. A node that has
 * not joined yet has no peers rather than an error, so `status` still works. */
static int list_peers(const Arguments *a, cJSON **ret_reply, cJSON **ret_peers) {
        _cleanup_json_ cJSON *reply = NULL;
        _cleanup_free_ char *error = NULL;
        cJSON *peers = NULL;
        int r;

        r = call_method(a, "io.meshd.ListPeers", NULL, CALL_TIMEOUT_USEC, &reply, &error);
        if (r < 0)
                return r;
        if (r > 0 && streq(error, "io.meshd.NotJoined")) {
                cJSON_Delete(reply);
                reply = cJSON_CreateObject();
                if (!reply || !cJSON_AddArrayToObject(reply, "peers"))
                        return log_oom();
        } else if (r > 0)
                return call_log_error(a, "io.meshd.ListPeers", error, reply);

        peers = cJSON_GetObjectItemCaseSensitive(reply, "peers");
        if (!cJSON_IsArray(peers))
                return log_error_errno(-EBADMSG, "meshd sent ListPeers without a peers array");

        *ret_peers = peers;
        *ret_reply = TAKE_PTR(reply);
        return 0;
}

int verb_status(const Arguments *a, char **argv) {
        _cleanup_json_ cJSON *status = NULL, *reply = NULL;
        cJSON *peers = NULL;
        int r;

        r = get_status(a, &status);
        if (r < 0)
                return r;
        r = list_peers(a, &reply, &peers);
        if (r < 0)
                return r;

        if (a->json) {
                _cleanup_json_ cJSON *merged = cJSON_CreateObject();

                if (!merged)
                        return log_oom();
                /* The objects move into the merged one unchanged. */
                cJSON_AddItemToObject(merged, "self", TAKE_PTR(status));
                cJSON_AddItemToObject(merged, "peers", cJSON_DetachItemViaPointer(reply, peers));
                return show_json(merged);
        }

        bool color = stdout_wants_color();
        show_status(status, color);
        printf("\n");
        show_peers(peers, color);
        return 0;
}

int verb_peers(const Arguments *a, char **argv) {
        _cleanup_json_ cJSON *reply = NULL;
        cJSON *peers = NULL;
        int r;

        r = list_peers(a, &reply, &peers);
        if (r < 0)
                return r;
        if (a->json)
                return show_json(peers);
        show_peers(peers, stdout_wants_color());
        return 0;
}

static bool name_matches(const cJSON *o, const char *name) {
        return streq_ptr(reply_string(o, "name"), name) || streq_ptr(reply_string(o, "fqdn"), name);
}

int verb_ip(const Arguments *a, char **argv) {
        _cleanup_json_ cJSON *status = NULL, *reply = NULL, *out = NULL;
        const cJSON *node = NULL, *peer;
        const char *name = argv[0], *ipv4, *ipv6;
        int r;

        if (name) {
                cJSON *peers = NULL;

                r = list_peers(a, &reply, &peers);
                if (r < 0)
                        return r;
                cJSON_ArrayForEach(peer, peers)
                        if (name_matches(peer, name)) {
                                node = peer;
                                break;
                        }
        }
        if (!node) {
                r = get_status(a, &status);
                if (r < 0)
                        return r;
                if (name && !name_matches(status, name))
                        return log_error_errno(-ENXIO, "unknown peer '%s'", name);
                node = status;
        }

        ipv4 = a->family != AF_INET6 ? reply_string(node, "ipv4") : NULL;
        ipv6 = a->family != AF_INET ? reply_string(node, "ipv6") : NULL;
        if (!ipv4 && !ipv6)
                return log_error_errno(-EADDRNOTAVAIL, "%s has no mesh %saddress%s", name ?: "this node",
                                       a->family == AF_INET    ? "IPv4 "
                                       : a->family == AF_INET6 ? "IPv6 "
                                                               : "",
                                       status && !name ? " (not joined yet?)" : "");

        if (a->json) {
                out = cJSON_CreateObject();
                if (!out || (ipv4 && !cJSON_AddStringToObject(out, "ipv4", ipv4)) ||
                    (ipv6 && !cJSON_AddStringToObject(out, "ipv6", ipv6)))
                        return log_oom();
                return show_json(out);
        }
        if (ipv4)
                printf("%s\n", ipv4);
        if (ipv6)
                printf("%s\n", ipv6);
        return 0;
}

static void format_seconds(char *buf, size_t size, uint64_t usec) {
        if (usec % USEC_PER_SEC == 0)
                snprintf(buf, size, "%" PRIu64 "s", usec / USEC_PER_SEC);
        else
                snprintf(buf, size, "%.3gs", (double) usec / (double) USEC_PER_SEC);
}

/* "nas, backup" from the "unreachable" array of io.meshd.Timeout. */
static char *join_names(const cJSON *names) {
        size_t len = 0;
        const cJSON *n;
        char *s;

        cJSON_ArrayForEach(n, names)
                if (cJSON_IsString(n))
                        len += strlen(n->valuestring) + 2;
        if (len == 0)
                return NULL;
        s = calloc(len + 1, 1);
        if (!s)
                return NULL;
        cJSON_ArrayForEach(n, names)
                if (cJSON_IsString(n)) {
                        if (*s)
                                strcat(s, ", ");
                        strcat(s, n->valuestring);
                }
        return s;
}

int verb_wait_online(const Arguments *a, char **argv) {
        _cleanup_json_ cJSON *params = NULL, *reply = NULL;
        _cleanup_free_ char *error = NULL, *names = NULL;
        uint64_t call_timeout;
        char timeout[32];
        int r;

        params = cJSON_CreateObject();
        if (!params)
                return log_oom();
        if (argv[0]) {
                cJSON *peers = cJSON_AddArrayToObject(params, "peers");
                if (!peers)
                        return log_oom();
                for (char **p = argv; *p; p++) {
                        cJSON *s = cJSON_CreateString(*p);
                        if (!s || !cJSON_AddItemToArray(peers, s))
                                return log_oom();
                }
        }
        if (a->any && !cJSON_AddBoolToObject(params, "any", true))
                return log_oom();
        if (!cJSON_AddNumberToObject(params, "timeout_usec", (double) a->timeout_usec))
                return log_oom();

        /* The daemon answers io.meshd.Timeout itself; our own limit only
         * catches a daemon that never answers at all. */
        call_timeout =
                a->timeout_usec == 0 ? VARLINK_TIMEOUT_INFINITY : a->timeout_usec + CALL_TIMEOUT_SLACK_USEC;

        r = call_method(a, "io.meshd.WaitOnline", params, call_timeout, &reply, &error);
        if (r < 0)
                return r;
        if (r > 0 && streq(error, "io.meshd.Timeout")) {
                format_seconds(timeout, sizeof(timeout), a->timeout_usec);
                names = join_names(cJSON_GetObjectItemCaseSensitive(reply, "unreachable"));
                if (names)
                        return log_error_errno(-ETIMEDOUT, "timed out after %s waiting for %s", timeout, names);
                return log_error_errno(-ETIMEDOUT, "timed out after %s waiting for the mesh to come online",
                                       timeout);
        }
        if (r > 0)
                return call_log_error(a, "io.meshd.WaitOnline", error, reply);

        if (a->json)
                return show_json(reply);
        return 0;
}
