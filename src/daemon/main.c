/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "log.h"
#include "manager.h"

typedef struct Arguments {
        const char *config_path;
        const char *state_dir;
        const char *runtime_dir;
} Arguments;

static void help(void) {
        printf("meshd [OPTIONS...]\n\n"
               "Mesh VPN node daemon: joins a meshd-control mesh and keeps its WireGuard tunnels.\n\n"
               "  -h --help              Show this help\n"
               "     --version           Show package version\n"
               "     --config=PATH       Configuration file (default: " SYSCONFDIR "/meshd/meshd.conf)\n"
               "     --state-dir=DIR     Key, credentials, cached netmap\n"
               "                         (default: $STATE_DIRECTORY or /var/lib/meshd)\n"
               "     --runtime-dir=DIR   API socket and hosts table\n"
               "                         (default: $RUNTIME_DIRECTORY or /run/meshd)\n"
               "     --log-level=LEVEL   debug, info, notice, warning, err (default: info;\n"
               "                         also $MESHD_LOG_LEVEL)\n"
               "\nSee the meshd(8) and meshd.conf(5) man pages for details.\n");
}

/* systemd passes colon-separated lists when a unit names several directories. */
static const char *first_directory(const char *env, char *buf, size_t size) {
        const char *v = getenv(env);
        if (!v || !*v)
                return NULL;
        snprintf(buf, size, "%.*s", (int) strcspn(v, ":"), v);
        return buf;
}

static int parse_argv(int argc, char *argv[], Arguments *args) {
        enum {
                ARG_VERSION = 0x100,
                ARG_CONFIG,
                ARG_STATE_DIR,
                ARG_RUNTIME_DIR,
                ARG_LOG_LEVEL,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                {},
        };
        int c, level;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("meshd %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_CONFIG:
                        args->config_path = optarg;
                        break;
                case ARG_STATE_DIR:
                        args->state_dir = optarg;
                        break;
                case ARG_RUNTIME_DIR:
                        args->runtime_dir = optarg;
                        break;
                case ARG_LOG_LEVEL:
                        level = log_level_from_string(optarg);
                        if (level < 0)
                                return log_error_errno(level, "Invalid --log-level= value '%s'.", optarg);
                        log_set_max_level(level);
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }
        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'; meshd takes only options.",
                                       argv[optind]);
        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        char state_buf[4096], runtime_buf[4096];
        Arguments args = {};
        sigset_t mask;
        int r;

        log_setup("meshd", LOG_TARGET_AUTO);

        r = parse_argv(argc, argv, &args);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        ManagerOptions opts = {
                .config_path = args.config_path ? args.config_path : SYSCONFDIR "/meshd/meshd.conf",
                .state_dir = args.state_dir ? args.state_dir
                        : first_directory("STATE_DIRECTORY", state_buf, sizeof(state_buf)) ?: MESHD_STATE_DIR_DEFAULT,
                .runtime_dir = args.runtime_dir ? args.runtime_dir
                        : first_directory("RUNTIME_DIRECTORY", runtime_buf, sizeof(runtime_buf)) ?: MESHD_RUNTIME_DIR_DEFAULT,
        };

        /* sd-event takes these signals as events; they must be blocked first.
         * SIGCHLD too, for supervising wireguard-go. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m"), EXIT_FAILURE;
        /* A peer that hangs up on the API socket must not kill us. */
        signal(SIGPIPE, SIG_IGN);

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return log_error_errno(-EIO, "Failed to initialise libcurl."), EXIT_FAILURE;

        r = manager_new(&opts, &m);
        if (r < 0)
                return EXIT_FAILURE;

        r = manager_start(m);
        if (r < 0) {
                (void) sd_notifyf(false, "STATUS=Failed to start: %s", strerror(-r));
                manager_stop(m);
                return EXIT_FAILURE;
        }

        r = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1");
        manager_stop(m);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
