/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>

#include "call.h"
#include "conf.h"
#include "config.h"
#include "dns-label.h"
#include "log.h"
#include "meshctl.h"
#include "nss.h"

/* Options that only some commands take; the common ones (--socket, --json)
 * apply everywhere. */
typedef enum CommandOption {
        OPTION_SERVER = 1 << 0,
        OPTION_AUTHKEY = 1 << 1,
        OPTION_AUTHKEY_FILE = 1 << 2,
        OPTION_PIN = 1 << 3,
        OPTION_COUNT = 1 << 4,
        OPTION_TIMEOUT = 1 << 5,
        OPTION_ANY = 1 << 6,
        OPTION_FAMILY = 1 << 7,
        OPTION_NSSWITCH = 1 << 8,
        OPTION_OUT = 1 << 9,
        OPTION_RENEW = 1 << 10,
        OPTION_USER = 1 << 11,
        OPTION_ROUTES = 1 << 12, /* --advertise-routes, --advertise-exit-node, --accept-routes, --exit-node */
        _OPTION_LAST = OPTION_ROUTES,
} CommandOption;

typedef struct Verb {
        const char *name;
        unsigned min_args;
        unsigned max_args; /* UINT_MAX: any number */
        unsigned options;  /* CommandOption mask */
        int (*run)(const Arguments *a, char **argv);
} Verb;

static const Verb verbs[] = {
        { "up", 0, 0, OPTION_SERVER | OPTION_AUTHKEY | OPTION_AUTHKEY_FILE | OPTION_PIN | OPTION_ROUTES,
          verb_up },
        { "down", 0, 0, 0, verb_down },
        { "logout", 0, 0, 0, verb_logout },
        { "status", 0, 0, 0, verb_status },
        { "peers", 0, 0, 0, verb_peers },
        { "ping", 1, 1, OPTION_COUNT | OPTION_TIMEOUT, verb_ping },
        { "ip", 0, 1, OPTION_FAMILY, verb_ip },
        { "wait-online", 0, UINT_MAX, OPTION_ANY | OPTION_TIMEOUT, verb_wait_online },
        { "genkey", 0, 0, 0, verb_genkey },
        { "pubkey", 0, 0, 0, verb_pubkey },
        { "nss", 1, 1, OPTION_NSSWITCH, verb_nss },
        { "cert", 0, 0, OPTION_OUT | OPTION_RENEW, verb_cert },
        { "trust", 1, 1, OPTION_USER, verb_trust },
};

static int help(void) {
        printf("meshctl [OPTIONS...] COMMAND ...\n"
               "\n"
               "Query and control meshd, the mesh VPN daemon.\n"
               "\n"
               "Commands:\n"
               "  up --server=URL --authkey=KEY|--authkey-file=FILE --pin=PIN\n"
               "                         Join a mesh\n"
               "  up [--advertise-routes=P,...] [--advertise-exit-node[=no]]\n"
               "     [--accept-routes=P,...|all|none] [--exit-node=NAME]\n"
               "                         Set the route settings (kept across restarts, over\n"
               "                         meshd.conf's [Routes]); also when joining\n"
               "  down                   Take the tunnel down\n"
               "  logout                 Leave the mesh and forget the node's credentials\n"
               "  status                 Show this node and its peers\n"
               "  peers                  Show the peers table\n"
               "  ping NAME [-c COUNT] [--timeout=SEC]\n"
               "                         Probe a peer through the tunnel (a device: ICMP echo)\n"
               "  ip [NAME] [-4|-6]      Print this node's or a peer's mesh addresses\n"
               "  wait-online [PEER...] [--any] [--timeout=SEC]\n"
               "                         Wait until the mesh or the given peers are reachable\n"
               "  genkey                 Generate a private key\n"
               "  pubkey                 Print the public key of the private key on stdin\n"
               "  nss enable|disable [--nsswitch=PATH]\n"
               "                         Add or remove 'mesh' on the hosts: line of nsswitch.conf\n"
               "  cert [--out=DIR] [--renew]\n"
               "                         Show (or get) this node's TLS certificate; copy it to DIR\n"
               "  trust install|remove [--user]\n"
               "                         Add or remove the mesh CA in the system trust store\n"
               "                         and the browsers' (--user: this user's browsers)\n"
               "\n"
               "Options:\n"
               "  -h --help              Show this help\n"
               "     --version           Show package version\n"
               "     --socket=PATH       Talk to meshd at PATH (default: $MESHD_SOCKET or\n"
               "                         " MESHD_SOCKET_DEFAULT ")\n"
               "     --json              Print JSON with the API's field names\n"
               "     --server=URL..., --control-url=URL...\n"
               "                         Control server to join (up); replicas of one mesh\n"
               "                         as a list, space- or comma-separated, preferred first\n"
               "     --authkey=KEY       Auth key (up)\n"
               "     --authkey-file=FILE Read the auth key from FILE, '-' for stdin (up)\n"
               "     --pin=PIN           Control server's key pin, sha256//BASE64 (up)\n"
               "     --advertise-routes=P,...\n"
               "                         Subnets this node routes for, '' for none (up)\n"
               "     --advertise-exit-node[=no]\n"
               "                         Offer this node as an exit node (up)\n"
               "     --accept-routes=P,...|all|none\n"
               "                         Peers' routes to install, when inside these (up)\n"
               "     --exit-node=NAME    Send all other traffic through NAME, '' for none (up)\n"
               "  -c --count=COUNT       Number of probes (ping, default %u)\n"
               "     --timeout=SEC       Wait per probe (ping, default %u), or in all\n"
               "                         (wait-online, default %u, 0 = forever)\n"
               "     --any               Wait for any one of the peers (wait-online)\n"
               "  -4                     IPv4 address only (ip)\n"
               "  -6                     IPv6 address only (ip)\n"
               "     --nsswitch=PATH     File to edit (nss, default " NSSWITCH_CONF_DEFAULT ")\n"
               "     --out=DIR           Also write NAME.DOMAIN.crt, NAME.DOMAIN.key and\n"
               "                         mesh-ca.crt into DIR; copies are not renewed (cert)\n"
               "     --renew             Get a new certificate now (cert)\n"
               "     --user              This user's Chromium and Firefox only, no root (trust)\n"
               "\n"
               "See the meshctl(8) man page for details.\n",
               PING_COUNT_DEFAULT, (unsigned) (PING_TIMEOUT_DEFAULT_USEC / USEC_PER_SEC),
               (unsigned) (WAIT_ONLINE_TIMEOUT_DEFAULT_USEC / USEC_PER_SEC));
        return 0;
}

static const char *command_option_to_string(CommandOption o) {
        switch (o) {
        case OPTION_SERVER:
                return "--server";
        case OPTION_AUTHKEY:
                return "--authkey";
        case OPTION_AUTHKEY_FILE:
                return "--authkey-file";
        case OPTION_PIN:
                return "--pin";
        case OPTION_COUNT:
                return "--count";
        case OPTION_TIMEOUT:
                return "--timeout";
        case OPTION_ANY:
                return "--any";
        case OPTION_FAMILY:
                return "-4/-6";
        case OPTION_NSSWITCH:
                return "--nsswitch";
        case OPTION_OUT:
                return "--out";
        case OPTION_RENEW:
                return "--renew";
        case OPTION_USER:
                return "--user";
        case OPTION_ROUTES:
                return "--advertise-routes/--advertise-exit-node/--accept-routes/--exit-node";
        }
        return "?";
}

static int parse_count(const char *s, unsigned *ret) {
        char *end = NULL;
        unsigned long v;

        if (!s || !(*s >= '0' && *s <= '9'))
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != 0 || v < 1 || v > 1000000)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static const Verb *verb_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

#define log_usage(...) log_error_errno(-EINVAL, __VA_ARGS__)

/* The daemon checks them again; this is the early, clear error. */
static int check_route_list(const char *option, const char *value, bool advertise) {
        _cleanup_free_ InAddrPrefix *l = NULL;
        const char *entry = NULL, *why = NULL;
        size_t n = 0, len = 0;
        int r;

        r = route_list_parse(value, ",", advertise, &l, &n, &entry, &len, &why);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_usage("invalid %s: '%.*s': %s", option, (int) MIN(len, (size_t) 64),
                                 entry ? entry : "", why);
        return 0;
}

/* Returns 1 when a command should run (*ret_verb, *ret_argv set), 0 when
 * --help or --version did all there was to do, <0 on bad usage (logged). */
/* NOLINTNEXTLINE(readability-function-size): argument parser, one case per option */
static int parse_argv(int argc, char *argv[], Arguments *a, const Verb **ret_verb, char ***ret_argv) {
        enum {
                ARG_VERSION = 0x100,
                ARG_SOCKET,
                ARG_JSON,
                ARG_SERVER,
                ARG_AUTHKEY,
                ARG_AUTHKEY_FILE,
                ARG_PIN,
                ARG_TIMEOUT,
                ARG_ANY,
                ARG_NSSWITCH,
                ARG_OUT,
                ARG_RENEW,
                ARG_USER,
                ARG_ADVERTISE_ROUTES,
                ARG_ADVERTISE_EXIT_NODE,
                ARG_ACCEPT_ROUTES,
                ARG_EXIT_NODE,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "json", no_argument, NULL, ARG_JSON },
                { "server", required_argument, NULL, ARG_SERVER },
                { "control-url", required_argument, NULL, ARG_SERVER },
                { "authkey", required_argument, NULL, ARG_AUTHKEY },
                { "authkey-file", required_argument, NULL, ARG_AUTHKEY_FILE },
                { "pin", required_argument, NULL, ARG_PIN },
                { "count", required_argument, NULL, 'c' },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "any", no_argument, NULL, ARG_ANY },
                { "nsswitch", required_argument, NULL, ARG_NSSWITCH },
                { "out", required_argument, NULL, ARG_OUT },
                { "renew", no_argument, NULL, ARG_RENEW },
                { "user", no_argument, NULL, ARG_USER },
                { "advertise-routes", required_argument, NULL, ARG_ADVERTISE_ROUTES },
                { "advertise-exit-node", optional_argument, NULL, ARG_ADVERTISE_EXIT_NODE },
                { "accept-routes", required_argument, NULL, ARG_ACCEPT_ROUTES },
                { "exit-node", required_argument, NULL, ARG_EXIT_NODE },
                {},
        };
        unsigned seen = 0;
        const Verb *verb;
        unsigned nargs;
        int c;

        *a = (Arguments) {
                .advertise_exit_node = -1,
                .socket_path = getenv("MESHD_SOCKET") ?: MESHD_SOCKET_DEFAULT,
                .count = PING_COUNT_DEFAULT,
                .family = AF_UNSPEC,
        };
        if (!*a->socket_path)
                a->socket_path = MESHD_SOCKET_DEFAULT;

        /* ':' first: a missing argument is reported as ':', not '?', and
         * getopt stays quiet so each failure is our own single line. */
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hc:46", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        return help();
                case ARG_VERSION:
                        printf("meshctl " PACKAGE_VERSION "\n");
                        return 0;
                case ARG_SOCKET:
                        if (!*optarg)
                                return log_usage("--socket needs a path");
                        a->socket_path = optarg;
                        break;
                case ARG_JSON:
                        a->json = true;
                        break;
                case ARG_SERVER:
                        a->server = optarg;
                        seen |= OPTION_SERVER;
                        break;
                case ARG_AUTHKEY:
                        a->authkey = optarg;
                        seen |= OPTION_AUTHKEY;
                        break;
                case ARG_AUTHKEY_FILE:
                        a->authkey_file = optarg;
                        seen |= OPTION_AUTHKEY_FILE;
                        break;
                case ARG_PIN:
                        a->pin = optarg;
                        seen |= OPTION_PIN;
                        break;
                case 'c':
                        if (parse_count(optarg, &a->count) < 0)
                                return log_usage("invalid count '%s' (a number from 1 to 1000000)", optarg);
                        seen |= OPTION_COUNT;
                        break;
                case ARG_TIMEOUT:
                        if (parse_timespan_usec(optarg, &a->timeout_usec) < 0)
                                return log_usage("invalid timeout '%s' (seconds, e.g. 30 or 2.5)", optarg);
                        a->timeout_set = true;
                        seen |= OPTION_TIMEOUT;
                        break;
                case ARG_ANY:
                        a->any = true;
                        seen |= OPTION_ANY;
                        break;
                case ARG_NSSWITCH:
                        if (!*optarg)
                                return log_usage("--nsswitch needs a path");
                        a->nsswitch_path = optarg;
                        seen |= OPTION_NSSWITCH;
                        break;
                case ARG_OUT:
                        if (!*optarg)
                                return log_usage("--out needs a directory");
                        a->out_dir = optarg;
                        seen |= OPTION_OUT;
                        break;
                case ARG_RENEW:
                        a->renew = true;
                        seen |= OPTION_RENEW;
                        break;
                case ARG_USER:
                        a->user = true;
                        seen |= OPTION_USER;
                        break;
                case ARG_ADVERTISE_ROUTES:
                case ARG_ACCEPT_ROUTES:
                        if (check_route_list(c == ARG_ADVERTISE_ROUTES ? "--advertise-routes"
                                                                       : "--accept-routes",
                                             optarg, c == ARG_ADVERTISE_ROUTES) < 0)
                                return -EINVAL;
                        *(c == ARG_ADVERTISE_ROUTES ? &a->advertise_routes : &a->accept_routes) = optarg;
                        seen |= OPTION_ROUTES;
                        break;
                case ARG_ADVERTISE_EXIT_NODE:
                        a->advertise_exit_node = optarg ? parse_boolean(optarg) : 1;
                        if (a->advertise_exit_node < 0)
                                return log_usage("invalid --advertise-exit-node='%s' (yes or no)", optarg);
                        seen |= OPTION_ROUTES;
                        break;
                case ARG_EXIT_NODE:
                        if (*optarg && !dns_label_is_valid(optarg))
                                return log_usage("invalid --exit-node='%s': not a node name", optarg);
                        a->exit_node = optarg;
                        seen |= OPTION_ROUTES;
                        break;
                case '4':
                        a->family = AF_INET;
                        seen |= OPTION_FAMILY;
                        break;
                case '6':
                        a->family = AF_INET6;
                        seen |= OPTION_FAMILY;
                        break;
                case ':':
                        return log_usage("option '%s' needs an argument (see 'meshctl --help')",
                                         argv[optind - 1]);
                case '?':
                        if (optopt > 0 && optopt < 0x100)
                                return log_usage("unknown option '-%c' (see 'meshctl --help')", optopt);
                        return log_usage("unknown option '%s' (see 'meshctl --help')", argv[optind - 1]);
                default:
                        return log_usage("unhandled option %i", c);
                }

        if (optind >= argc)
                return log_usage("no command given (see 'meshctl --help')");

        verb = verb_find(argv[optind]);
        if (!verb)
                return log_usage("unknown command '%s' (see 'meshctl --help')", argv[optind]);

        nargs = (unsigned) (argc - optind - 1);
        if (nargs < verb->min_args)
                return log_usage("'%s' needs %s argument (see 'meshctl --help')", verb->name,
                                 verb->min_args == 1 ? "an" : "more");
        if (nargs > verb->max_args)
                return log_usage("too many arguments for '%s' (see 'meshctl --help')", verb->name);

        for (unsigned bit = 1; bit <= _OPTION_LAST; bit <<= 1)
                if ((seen & bit) && !(verb->options & bit))
                        return log_usage("%s does not apply to '%s' (see 'meshctl --help')",
                                         command_option_to_string((CommandOption) bit), verb->name);

        if (verb->run == verb_up &&
            !(seen & (OPTION_SERVER | OPTION_AUTHKEY | OPTION_AUTHKEY_FILE | OPTION_PIN)) &&
            (seen & OPTION_ROUTES))
                ; /* only route settings, for a node that is in a mesh (or joins later) */
        else if (verb->run == verb_up) {
                if (!a->server)
                        return log_usage("'up' needs --server=URL");
                if (!a->authkey == !a->authkey_file)
                        return log_usage("'up' needs exactly one of --authkey=KEY and --authkey-file=FILE");
                if (!a->pin)
                        return log_usage("'up' needs --pin=PIN (printed by 'meshd-control init')");
        }

        if (verb->run == verb_nss && !streq(argv[optind + 1], "enable") && !streq(argv[optind + 1], "disable"))
                return log_usage("unknown nss command '%s' (enable or disable)", argv[optind + 1]);
        if (verb->run == verb_trust && !streq(argv[optind + 1], "install") &&
            !streq(argv[optind + 1], "remove"))
                return log_usage("unknown trust command '%s' (install or remove)", argv[optind + 1]);

        if (!a->timeout_set && verb->run == verb_ping)
                a->timeout_usec = PING_TIMEOUT_DEFAULT_USEC;
        if (!a->timeout_set && verb->run == verb_wait_online)
                a->timeout_usec = WAIT_ONLINE_TIMEOUT_DEFAULT_USEC;
        if (a->timeout_usec == 0 && verb->run == verb_ping)
                return log_usage("ping needs a timeout above 0");

        a->verb = verb->name;
        *ret_verb = verb;
        *ret_argv = argv + optind + 1;
        return 1;
}

int main(int argc, char *argv[]) {
        const Verb *verb = NULL;
        char **verb_argv = NULL;
        Arguments a;
        int r;

        log_setup("meshctl", LOG_TARGET_CONSOLE);

        r = parse_argv(argc, argv, &a, &verb, &verb_argv);
        if (r < 0)
                return EXIT_USAGE;
        if (r == 0)
                return EXIT_SUCCESS;
        assert(verb);

        r = verb->run(&a, verb_argv);
        if (fflush(stdout) != 0 && r >= 0)
                r = log_error_errno(errno > 0 ? -errno : -EIO, "failed to write output: %m");
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
