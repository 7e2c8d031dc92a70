/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mount.mesh: mount(8) helper for TYPE=mesh.<fstype>, see mount.mesh(8).
 *   mount.mesh.nfs4 SPEC DIR [-sfnvrw] [-o OPTIONS]      (mount.mesh.<fstype>)
 *   mount.mesh SPEC DIR [-sfnvrw] [-o OPTIONS] -t mesh.<fstype>
 * Waits for the peer through meshd's API, puts its mesh address into SPEC
 * and execs mount(8) for the real type. */
#include <arpa/inet.h>
#include <getopt.h>
#include <libmount.h>
#include <time.h>

#include "config.h"
#include "constants.h"
#include "log.h"
#include "macro.h"
#include "mesh-peer.h"
#include "mount-options.h"
#include "time-util.h"
#include "varlink.h"

/* mount(8)'s exit codes (mount(8), "RETURN CODES") */
#define EXIT_MOUNT_USAGE 1
#define EXIT_MOUNT_FAILURE 32

#define API_TIMEOUT_USEC (10 * USEC_PER_SEC)

typedef struct Args {
        const char *spec, *dir, *type, *options;
        bool sloppy, fake, nomtab, verbose, read_only, read_write;
} Args;

static void help(void) {
        printf("%s SPEC DIR [-sfnvrw] [-o OPTIONS] [-t mesh.TYPE]\n\n"
               "mount(8) helper for file systems of type mesh.TYPE: waits until the mesh\n"
               "peer in SPEC answers, replaces its name by its mesh address and runs\n"
               "mount -t TYPE. Options from the fstab entry for DIR:\n"
               "  x-meshd.peer=NAME      the peer (default: the host in SPEC)\n"
               "  x-meshd.timeout=SEC    how long to wait for it (default 30)\n"
               "SPEC and DIR come first, as mount(8) passes them, and must not start with '-'.\n"
               "Environment: MESHD_SOCKET (default " MESHD_SOCKET_DEFAULT ").\n"
               "See mount.mesh(8).\n",
               program_invocation_short_name);
}

/* mount(8) calls helpers as "helper SPEC DIR [options]" and puts no "--"
 * before them, so SPEC and DIR are taken from where it puts them, never
 * looked at as options ("-oexec,suid@nas:/e" stays a SPEC, and is then
 * refused below). Called by hand, "mount.mesh -- SPEC DIR ..." works too. */
static int take_spec_and_dir(int *argc, char **argv[], Args *args) {
        int skip = *argc > 1 && streq((*argv)[1], "--") ? 1 : 0;

        if (*argc - skip < 3 || (skip == 0 && (streq((*argv)[1], "-h") || streq((*argv)[1], "--help") ||
                                               streq((*argv)[1], "--version"))))
                return 0;
        args->spec = (*argv)[1 + skip];
        args->dir = (*argv)[2 + skip];
        /* The options after them: argv[0] stays first for getopt's messages. */
        (*argv)[2 + skip] = (*argv)[0];
        *argv += 2 + skip;
        *argc -= 2 + skip;
        return 1;
}

static int check_spec_and_dir(const Args *args) {
        /* mount(8) would read them as options however they reach it. */
        if (args->spec[0] == '-') {
                log_error("%s: SPEC must not start with '-'", args->spec);
                return -EINVAL;
        }
        if (args->dir[0] == '-') {
                log_error("%s: DIR must not start with '-'", args->dir);
                return -EINVAL;
        }
        return 0;
}

static int parse_argv(int argc, char *argv[], Args *args) {
        enum {
                ARG_VERSION = 0x100
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c, positional;

        positional = take_spec_and_dir(&argc, &argv, args);
        while ((c = getopt_long(argc, argv, "sfnvrwo:t:N:h", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        args->sloppy = true;
                        break;
                case 'f':
                        args->fake = true;
                        break;
                case 'n':
                        args->nomtab = true;
                        break;
                case 'v':
                        args->verbose = true;
                        break;
                case 'r':
                        args->read_only = true;
                        args->read_write = false;
                        break;
                case 'w':
                        args->read_write = true;
                        args->read_only = false;
                        break;
                case 'o':
                        args->options = optarg;
                        break;
                case 't':
                        args->type = optarg;
                        break;
                case 'N':
                        log_error("--namespace is not supported.");
                        return -EINVAL;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        puts(PACKAGE_VERSION);
                        return 0;
                default:
                        return -EINVAL;
                }

        if (argc - optind != (positional ? 0 : 2)) {
                log_error("Expected SPEC and DIR, then options; see %s --help.", program_invocation_short_name);
                return -EINVAL;
        }
        if (!positional) {
                args->spec = argv[optind];
                args->dir = argv[optind + 1];
        }
        return check_spec_and_dir(args) < 0 ? -EINVAL : 1;
}

/* mount(8) does not hand x-* options to helpers (verified with util-linux
 * 2.38: "x-meshd.peer=nas,vers=4.2" arrives as "vers=4.2"), so read them
 * from the fstab entry for DIR. LIBMOUNT_FSTAB moves the fstab (tests). */
static int fstab_options_for(const char *dir, char **ret) {
        struct libmnt_table *tb;
        struct libmnt_fs *fs;
        int r = 0;

        *ret = NULL;
        tb = mnt_new_table();
        if (!tb)
                return -ENOMEM;
        if (mnt_table_parse_fstab(tb, NULL) >= 0) {
                fs = mnt_table_find_target(tb, dir, MNT_ITER_BACKWARD);
                if (fs && mnt_fs_get_options(fs)) {
                        *ret = strdup(mnt_fs_get_options(fs));
                        if (!*ret)
                                r = -ENOMEM;
                }
        }
        mnt_unref_table(tb);
        return r;
}

/* -o wins over the fstab, for callers that pass x-meshd.* themselves. */
static int get_meshd_option(const char *cmdline, const char *fstab, const char *name, char **ret) {
        int r = mount_options_get(cmdline, name, ret);
        if (r != 0)
                return r;
        return mount_options_get(fstab, name, ret);
}

static const char *api_message(const cJSON *params, const char *fallback) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(params, "message");
        return cJSON_IsString(m) && *m->valuestring ? m->valuestring : fallback;
}

/* One API call; every failure is logged as the one line mount.mesh prints.
 * Returns 0 and the reply parameters, or -EHOSTUNREACH after logging. */
static int call(const char *socket, const char *peer, const char *method, cJSON *params, uint64_t timeout,
                cJSON **ret, char **ret_error) {
        _cleanup_free_ char *error = NULL;
        _cleanup_json_ cJSON *reply = NULL;
        int r;

        r = varlink_call(socket, method, params, timeout, &reply, &error);
        if (r == -ENOENT || r == -ECONNREFUSED) {
                log_error("meshd is not running");
                return -EHOSTUNREACH;
        }
        if (r < 0) {
                log_error_errno(r, "%s: cannot talk to meshd: %m", peer);
                return -EHOSTUNREACH;
        }
        if (r > 0) {
                if (ret_error) {
                        *ret_error = TAKE_PTR(error);
                        *ret = TAKE_PTR(reply);
                        return 1;
                }
                if (streq(error, "io.meshd.NotJoined"))
                        log_error("%s: this node has not joined a mesh", peer);
                else
                        log_error("%s: %s", peer, api_message(reply, error));
                return -EHOSTUNREACH;
        }
        *ret = TAKE_PTR(reply);
        if (ret_error)
                *ret_error = NULL;
        return 0;
}

static int resolve_and_wait(const char *socket, const char *peer, bool want_ipv6, uint64_t timeout,
                            char **ret_address) {
        _cleanup_json_ cJSON *peers = NULL, *status = NULL, *params = NULL, *reply = NULL, *after = NULL;
        _cleanup_free_ char *error = NULL;
        const cJSON *p;
        const char *address, *name;
        char t[32];
        int r;

        r = call(socket, peer, "io.meshd.ListPeers", NULL, API_TIMEOUT_USEC, &peers, NULL);
        if (r < 0)
                return r;
        p = mesh_peer_find(peers, peer);
        if (!p) {
                /* Mounting from this node itself through its mesh name. */
                r = call(socket, peer, "io.meshd.GetStatus", NULL, API_TIMEOUT_USEC, &status, NULL);
                if (r < 0)
                        return r;
                if (!mesh_node_matches(status, peer) || !(address = mesh_node_address(status, want_ipv6))) {
                        log_error("%s: unknown peer", peer);
                        return -EHOSTUNREACH;
                }
                *ret_address = strdup(address);
                return *ret_address ? 0 : log_oom();
        }
        name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "name")) ?: peer;

        if (timeout > 0) {
                cJSON *list;

                params = cJSON_CreateObject();
                if (!params || !(list = cJSON_AddArrayToObject(params, "peers")))
                        return log_oom();
                cJSON_AddItemToArray(list, cJSON_CreateString(name));
                if (timeout != MOUNT_MESH_TIMEOUT_INFINITY &&
                    !cJSON_AddNumberToObject(params, "timeout_usec", (double) timeout))
                        return log_oom();
                r = call(socket, name, "io.meshd.WaitOnline", params,
                         timeout == MOUNT_MESH_TIMEOUT_INFINITY ? VARLINK_TIMEOUT_INFINITY
                                                                : timeout + API_TIMEOUT_USEC,
                         &reply, &error);
                if (r < 0)
                        return r;
                if (r > 0) {
                        format_timeout(timeout, t, sizeof(t));
                        if (streq(error, "io.meshd.Timeout")) {
                                const char *why = "no probe reply";
                                if (call(socket, name, "io.meshd.ListPeers", NULL, API_TIMEOUT_USEC, &after,
                                         NULL) >= 0 &&
                                    mesh_peer_find(after, name))
                                        why = mesh_peer_unreachable_reason(mesh_peer_find(after, name),
                                                                           clock_usec(CLOCK_REALTIME));
                                log_error("%s: not reachable within %s (%s)", name, t, why);
                        } else if (streq(error, "io.meshd.PeerNotFound"))
                                log_error("%s: unknown peer", name);
                        else
                                log_error("%s: %s", name, api_message(reply, error));
                        return -EHOSTUNREACH;
                }
        }

        address = mesh_node_address(p, want_ipv6);
        if (!address) {
                log_error("%s: meshd reports no address for it", name);
                return -EHOSTUNREACH;
        }
        *ret_address = strdup(address);
        return *ret_address ? 0 : log_oom();
}

static const char *mount_binary(void) {
        return access("/usr/bin/mount", X_OK) == 0 ? "/usr/bin/mount" : "/bin/mount";
}

/* The mount(8) command line for the real type: the flags we were given,
 * the options without x-meshd.*, SPEC with the peer's address. */
#define MOUNT_ARGV_MAX 16
static void mount_argv(const Args *args, const char *type, const char *options, const char *spec,
                       const char *ret[static MOUNT_ARGV_MAX]) {
        size_t n = 0;

        ret[n++] = "mount";
        ret[n++] = "-t";
        ret[n++] = type;
        if (args->sloppy)
                ret[n++] = "-s";
        if (args->fake)
                ret[n++] = "-f";
        if (args->nomtab)
                ret[n++] = "-n";
        if (args->verbose)
                ret[n++] = "-v";
        if (args->read_only)
                ret[n++] = "-r";
        if (args->read_write)
                ret[n++] = "-w";
        if (*options) {
                ret[n++] = "-o";
                ret[n++] = options;
        }
        /* Whatever the peer's address or DIR look like, they are operands. */
        ret[n++] = "--";
        ret[n++] = spec;
        ret[n++] = args->dir;
        ret[n] = NULL;
}

static int run(int argc, char *argv[]) {
        _cleanup_free_ char *type = NULL, *fstab_options = NULL, *peer = NULL, *timeout_s = NULL, *host = NULL,
                            *address = NULL, *spec = NULL, *options = NULL;
        const char *socket, *exec_argv[MOUNT_ARGV_MAX];
        uint64_t timeout = MOUNT_MESH_TIMEOUT_DEFAULT_USEC;
        struct in6_addr a6;
        Args args = {};
        int r;

        r = parse_argv(argc, argv, &args);
        if (r <= 0)
                return r < 0 ? EXIT_MOUNT_USAGE : EXIT_SUCCESS;

        r = mount_real_type(argv[0], args.type, &type);
        if (r == -ENOMEM)
                return log_oom(), EXIT_MOUNT_FAILURE;
        if (r < 0) {
                log_error("%s: not a file system type mount.mesh takes: call as mount.mesh.TYPE or with "
                          "-t mesh.TYPE, TYPE one name of [a-z0-9_.]",
                          args.type ?: program_invocation_short_name);
                return EXIT_MOUNT_USAGE;
        }

        if (fstab_options_for(args.dir, &fstab_options) < 0)
                return log_oom(), EXIT_MOUNT_FAILURE;

        r = mount_spec_get_host(args.spec, &host);
        if (r == -ENOMEM)
                return log_oom(), EXIT_MOUNT_FAILURE;
        if (r <= 0) {
                log_error("%s: no host in it (expected host:/path or //host/share)", args.spec);
                return EXIT_MOUNT_FAILURE;
        }

        r = get_meshd_option(args.options, fstab_options, MESHD_OPTION_PREFIX "peer", &peer);
        if (r < 0)
                return log_oom(), EXIT_MOUNT_FAILURE;
        if (r == 0 || !*peer) {
                free(peer);
                peer = strdup(host);
                if (!peer)
                        return log_oom(), EXIT_MOUNT_FAILURE;
        }

        r = get_meshd_option(args.options, fstab_options, MESHD_OPTION_PREFIX "timeout", &timeout_s);
        if (r < 0)
                return log_oom(), EXIT_MOUNT_FAILURE;
        if (r > 0 && mount_timeout_parse(timeout_s, &timeout) < 0) {
                log_error("%s: x-meshd.timeout=%s is not a time span (seconds, or infinity)", peer, timeout_s);
                return EXIT_MOUNT_FAILURE;
        }

        socket = getenv("MESHD_SOCKET") ?: MESHD_SOCKET_DEFAULT;
        if (resolve_and_wait(socket, peer, inet_pton(AF_INET6, host, &a6) == 1, timeout, &address) < 0)
                return EXIT_MOUNT_FAILURE;

        if (mount_spec_replace_host(args.spec, address, &spec) < 0 ||
            mount_options_strip_meshd(args.options, false, &options) < 0)
                return log_oom(), EXIT_MOUNT_FAILURE;

        mount_argv(&args, type, options, spec, exec_argv);
        if (args.verbose)
                log_info("mount.mesh: %s is %s, running mount -t %s%s%s %s %s", peer, address, type,
                         *options ? " -o " : "", options, spec, args.dir);
        fflush(stdout);
        execv(mount_binary(), (char **) exec_argv);
        log_error_errno(-errno, "%s: cannot run %s: %m", peer, mount_binary());
        return EXIT_MOUNT_FAILURE;
}

int main(int argc, char *argv[]) {
        /* Always stderr: mount(8) and the mount unit show the helper's stderr. */
        log_setup("mount.mesh", LOG_TARGET_CONSOLE);
        return run(argc, argv);
}
