/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd-wait-online: block until meshd's online policy holds, or until the
 * given peers are reachable, then exit 0. Units order themselves after it
 * (meshd-wait-online.service, meshd-wait-online@PEER.service); the waiting
 * itself is meshd's io.meshd.WaitOnline, so this is parse_argv() + one call. */

#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <time.h>

#include "conf.h"
#include "config.h"
#include "constants.h"
#include "log.h"
#include "macro.h"
#include "time-util.h"
#include "varlink.h"

#define TIMEOUT_DEFAULT_USEC (120 * USEC_PER_SEC)
/* How often to look for the API socket while meshd is still starting. */
#define SOCKET_POLL_USEC (100 * USEC_PER_MSEC)
/* meshd answers io.meshd.Timeout itself; our own limit on the call only
 * catches a daemon that never answers at all. */
#define CALL_TIMEOUT_MARGIN_USEC (5 * USEC_PER_SEC)

static char **arg_peers = NULL;
static bool arg_any = false;
static uint64_t arg_timeout_usec = TIMEOUT_DEFAULT_USEC; /* 0 = forever */
static const char *arg_socket = NULL;

static int help(void) {
        printf("meshd-wait-online [OPTIONS...]\n"
               "\n"
               "Block until the mesh is online: meshd's [Online] policy holds, or the\n"
               "given peers answer meshd's probes.\n"
               "\n"
               "  -h --help              Show this help\n"
               "     --version           Show package version\n"
               "     --peer=NAME         Wait for this peer (repeatable; default: the\n"
               "                         configured online policy)\n"
               "     --any               Wait for any one of the peers, not all\n"
               "     --timeout=SEC       Give up after SEC seconds (default %" PRIu64 ",\n"
               "                         0 = forever)\n"
               "     --socket=PATH       meshd's API socket (default: $MESHD_SOCKET or\n"
               "                         " MESHD_SOCKET_DEFAULT ")\n"
               "\n"
               "See the meshd-wait-online(8) man page for details.\n",
               TIMEOUT_DEFAULT_USEC / USEC_PER_SEC);
        return 0;
}

/* A time span as in meshd.conf ("30", "1.5s", "2min"), or "infinity"
 * (= 0, forever, like systemd's time spans). */
static int parse_timeout(const char *s, uint64_t *ret) {
        if (streq(s, "infinity")) {
                *ret = 0;
                return 0;
        }
        return parse_timespan_usec(s, ret);
}

static int strv_push(char ***l, const char *s) {
        size_t n = strv_length(*l);
        char **k;

        k = realloc(*l, (n + 2) * sizeof(char *));
        if (!k)
                return -ENOMEM;
        *l = k;
        k[n] = strdup(s);
        if (!k[n])
                return -ENOMEM;
        k[n + 1] = NULL;
        return 0;
}

/* Returns 1 to go on, 0 when --help/--version did all there was to do. */
static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_PEER,
                ARG_ANY,
                ARG_TIMEOUT,
                ARG_SOCKET,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "peer", required_argument, NULL, ARG_PEER },
                { "any", no_argument, NULL, ARG_ANY },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "socket", required_argument, NULL, ARG_SOCKET },
                {},
        };
        const char *e;
        int c, r;

        e = getenv("MESHD_SOCKET");
        arg_socket = e && *e ? e : MESHD_SOCKET_DEFAULT;

        /* ':' first: getopt stays quiet and each failure is our own single line. */
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        return help();
                case ARG_VERSION:
                        printf("meshd-wait-online " PACKAGE_VERSION "\n");
                        return 0;
                case ARG_PEER:
                        if (!*optarg)
                                return log_error_errno(-EINVAL, "--peer= needs a peer name.");
                        /* Never in a peer name (a DNS label), but what %I makes of
                         * an unescaped '-' in meshd-wait-online@nas-2.service. */
                        if (strchr(optarg, '/'))
                                return log_error_errno(
                                        -EINVAL,
                                        "Invalid peer name '%s' (in a unit name, escape it: "
                                        "systemd-escape --template=meshd-wait-online@.service NAME).",
                                        optarg);
                        r = strv_push(&arg_peers, optarg);
                        if (r < 0)
                                return log_oom();
                        break;
                case ARG_ANY:
                        arg_any = true;
                        break;
                case ARG_TIMEOUT:
                        r = parse_timeout(optarg, &arg_timeout_usec);
                        if (r < 0)
                                return log_error_errno(r,
                                                       "Invalid --timeout=%s: expected seconds, 0 for forever.",
                                                       optarg);
                        break;
                case ARG_SOCKET:
                        if (!*optarg)
                                return log_error_errno(-EINVAL, "--socket= needs a path.");
                        arg_socket = optarg;
                        break;
                case ':':
                        return log_error_errno(-EINVAL, "Option %s needs an argument.", argv[optind - 1]);
                case '?':
                        if (optopt)
                                return log_error_errno(-EINVAL, "Unknown option -%c.", optopt);
                        return log_error_errno(-EINVAL, "Unknown option %s.", argv[optind - 1]);
                default:
                        return log_error_errno(-EINVAL, "Unexpected option.");
                }

        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s' (peers are given with --peer=).",
                                       argv[optind]);
        if (arg_any && !arg_peers)
                return log_error_errno(-EINVAL, "--any needs --peer=.");
        return 1;
}

static cJSON *wait_online_parameters(void) {
        _cleanup_json_ cJSON *params = NULL;
        cJSON *peers;

        params = cJSON_CreateObject();
        if (!params)
                return NULL;
        if (arg_peers) {
                peers = cJSON_AddArrayToObject(params, "peers");
                if (!peers)
                        return NULL;
                for (char **p = arg_peers; *p; p++) {
                        cJSON *s = cJSON_CreateString(*p);
                        if (!s || !cJSON_AddItemToArray(peers, s)) {
                                cJSON_Delete(s);
                                return NULL;
                        }
                }
        }
        if (arg_any && !cJSON_AddBoolToObject(params, "any", true))
                return NULL;
        if (!cJSON_AddNumberToObject(params, "timeout_usec", 0))
                return NULL;
        return TAKE_PTR(params);
}

static void format_seconds(char *buf, size_t size, uint64_t usec) {
        if (usec % USEC_PER_SEC == 0)
                snprintf(buf, size, "%" PRIu64 "s", usec / USEC_PER_SEC);
        else
                snprintf(buf, size, "%.3gs", (double) usec / (double) USEC_PER_SEC);
}

static const char *reply_string(const cJSON *o, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "nas, backup": the "unreachable" list of io.meshd.Timeout, else the
 * peers we asked for. NULL when neither names anyone (policy wait). */
static char *unreachable_names(const cJSON *reply) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(reply, "unreachable"), *n;
        char *s = NULL;
        size_t len = 0;
        FILE *f;

        f = open_memstream(&s, &len);
        if (!f)
                return NULL;
        cJSON_ArrayForEach(n, list)
                if (cJSON_IsString(n))
                        fprintf(f, "%s%s", ftell(f) > 0 ? ", " : "", n->valuestring);
        if (ftell(f) == 0)
                for (char **p = arg_peers; p && *p; p++)
                        fprintf(f, "%s%s", p == arg_peers ? "" : ", ", *p);
        if (fclose(f) != 0 || len == 0) {
                free(s);
                return NULL;
        }
        return s;
}

static int log_wait_online_error(const char *error, const cJSON *reply) {
        const char *message = reply_string(reply, "message");
        _cleanup_free_ char *names = NULL;
        char timeout[32];

        if (streq(error, "io.meshd.Timeout")) {
                format_seconds(timeout, sizeof(timeout), arg_timeout_usec);
                names = unreachable_names(reply);
                return log_error_errno(-ETIMEDOUT, "%s: not %s within %s%s%s%s", names ?: "mesh",
                                       names ? "reachable" : "online", timeout, message ? " (" : "",
                                       message ?: "", message ? ")" : "");
        }
        if (streq(error, "io.meshd.NotJoined"))
                return log_error_errno(-ENOLINK, "not joined to a mesh (use 'meshctl up')");
        if (streq(error, "io.meshd.PeerNotFound")) {
                const char *peer = reply_string(reply, "peer");
                if (peer)
                        return log_error_errno(-ENXIO, "%s: unknown peer", peer);
                return log_error_errno(-ENXIO, "unknown peer%s%s", message ? ": " : "", message ?: "");
        }
        if (streq(error, "io.meshd.PermissionDenied"))
                return log_error_errno(-EPERM, "meshd refused WaitOnline (permission denied)");
        return log_error_errno(-EIO, "WaitOnline failed: %s%s%s", error, message ? ": " : "", message ?: "");
}

/* meshd not (yet) listening: the socket is missing (first start), left
 * behind (crash, restart), or the daemon went away mid-call (restart). */
static bool error_is_daemon_absent(int r) {
        return r == -ENOENT || r == -ECONNREFUSED || r == -ECONNRESET || r == -EPIPE;
}

static int run(int argc, char *argv[]) {
        _cleanup_json_ cJSON *params = NULL, *reply = NULL;
        _cleanup_free_ char *error = NULL;
        uint64_t deadline, n, remaining = 0;
        bool absent = false;
        cJSON *timeout_item;
        char timeout[32];
        int r;

        log_setup("meshd-wait-online", LOG_TARGET_AUTO);

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;

        params = wait_online_parameters();
        if (!params)
                return log_oom();
        timeout_item = cJSON_GetObjectItemCaseSensitive(params, "timeout_usec");
        format_seconds(timeout, sizeof(timeout), arg_timeout_usec);

        deadline = arg_timeout_usec == 0 ? UINT64_MAX : clock_usec(CLOCK_MONOTONIC) + arg_timeout_usec;

        r = -ETIMEDOUT;
        for (;;) {
                n = clock_usec(CLOCK_MONOTONIC);
                if (deadline != UINT64_MAX) {
                        /* Only the time left goes to meshd; and it reads
                         * timeout_usec 0 as "forever", so never send that. */
                        if (n >= deadline)
                                break;
                        remaining = deadline - n;
                }
                cJSON_SetNumberValue(timeout_item, (double) remaining);

                cJSON_Delete(TAKE_PTR(reply));
                free(TAKE_PTR(error));
                r = varlink_call(arg_socket, "io.meshd.WaitOnline", params,
                                 deadline == UINT64_MAX ? VARLINK_TIMEOUT_INFINITY
                                                        : remaining + CALL_TIMEOUT_MARGIN_USEC,
                                 &reply, &error);
                if (!error_is_daemon_absent(r)) {
                        absent = false;
                        break;
                }

                if (!absent)
                        log_debug_errno(r, "meshd is not listening on %s yet (%m), waiting.", arg_socket);
                absent = true;

                n = clock_usec(CLOCK_MONOTONIC);
                if (deadline != UINT64_MAX && n >= deadline)
                        break;
                (void) poll(NULL, 0, (int) (MIN(SOCKET_POLL_USEC, deadline - n) / USEC_PER_MSEC));
        }

        if (absent)
                return log_error_errno(-ENOTCONN, "meshd is not running: nothing answers on %s (waited %s)",
                                       arg_socket, timeout);
        if (r == -ETIMEDOUT)
                return log_error_errno(r, "meshd at %s did not answer WaitOnline within %s", arg_socket,
                                       timeout);
        if (r == -EACCES || r == -EPERM)
                return log_error_errno(
                        r, "cannot connect to meshd at %s: %m (run as root or as a member of group meshd)",
                        arg_socket);
        if (r < 0)
                return log_error_errno(r, "cannot talk to meshd at %s: %m", arg_socket);
        if (r > 0) {
                if (!error)
                        return log_error_errno(-EPROTO, "meshd returned an unnamed error for WaitOnline");
                return log_wait_online_error(error, reply);
        }

        log_debug("Online.");
        return 0;
}

int main(int argc, char *argv[]) {
        int r;

        r = run(argc, argv);
        arg_peers = strv_free(arg_peers);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
