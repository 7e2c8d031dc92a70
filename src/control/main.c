/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ca.h"
#include "config.h"
#include "http.h"
#include "hub.h"
#include "log.h"
#include "relay-listener.h"
#include "relay-server.h"
#include "verbs.h"

#define STATE_DIR_DEFAULT "/var/lib/meshd-control"
#define DOMAIN_DEFAULT "mesh.internal"
#define IPV4_RANGE_DEFAULT "100.64.0.0/10"

static ControlArgs arg = {
        .domain = DOMAIN_DEFAULT,
        .ipv4_range = IPV4_RANGE_DEFAULT,
        .listen = SERVER_LISTEN_DEFAULT,
        .hub = true,
        .hub_interface = HUB_INTERFACE_DEFAULT,
        .hub_backend = WG_BACKEND_AUTO,
        .hub_firewall = true,
        .cert_lifetime_sec = CERT_LIFETIME_DEFAULT_SEC,
        .relay = true,
        .relay_max_streams = RELAY_MAX_STREAMS_DEFAULT,
        .relay_port = RELAY_PORT_DEFAULT,
        .udp_echo = true,
        .dns_port = 53,
};

static void help_commands(void) {
        fputs("Commands:\n"
              "  init                   Create the database, TLS key, certificate and CA; print the pin\n"
              "  serve                  Run the HTTPS API\n"
              "  authkey create         Create an auth key for joining nodes\n"
              "  nodes list             List the nodes of the mesh\n"
              "  nodes remove NAME      Remove a node from the mesh\n"
              "  nodes expire NAME      Expire a node's key: out of the mesh until it joins again\n"
              "  nodes renew NAME       Make an expired node valid again (for --expired-nodes=admin)\n"
              "  routes list            List the subnet routes nodes advertise, and their state\n"
              "  routes approve NODE PREFIX\n"
              "                         Approve a route: it reaches the other nodes' netmaps\n"
              "  routes reject NODE PREFIX\n"
              "                         Reject a route (or withdraw an approval)\n"
              "  devices add NAME       Add a plain WireGuard device (phone, camera); print its config\n"
              "  devices list           List the devices of the mesh\n"
              "  devices remove NAME    Remove a device from the mesh\n"
              "  policy set FILE        Check the access policy (its tests too) and make it the mesh's\n"
              "  policy test FILE       Only check it\n"
              "  policy get             Print the policy as it was set\n"
              "  policy clear           No policy: every member reaches every member\n"
              "  migrate                Copy the SQLite mesh into the PostgreSQL database of --database\n\n",
              stdout);
}

static void help(void) {
        printf("%s [OPTIONS...] COMMAND ...\n\n"
               "Coordination server of a meshd mesh.\n\n",
               program_invocation_short_name);
        help_commands();
        printf("Options:\n"
               "  -h --help              Show this help\n"
               "     --version           Show package version\n"
               "     --state-dir=DIR     State directory (default: $STATE_DIRECTORY or %s)\n"
               "     --database=DB       The mesh's database: an SQLite file, or a PostgreSQL\n"
               "                         postgresql://... URL (default: STATE_DIR/" STORE_DB_FILE ")\n"
               "     --url=URL           init: URL nodes use, https://HOST:PORT\n"
               "     --domain=DOMAIN     init: DNS domain of the mesh (default: %s)\n"
               "     --ipv4-range=PREFIX init: IPv4 range (default: %s)\n"
               "     --ipv6-range=PREFIX init: IPv6 /48 (default: a random ULA prefix)\n"
               "     --hub-endpoint=IP:PORT\n"
               "                         init, serve: where nodes reach the hub (default: the\n"
               "                         host of --url, when it is an IP address, port %u);\n"
               "                         serve: this replica's, the recorded one the default\n"
               "     --listen=ADDR:PORT  serve: address to listen on (default: %s)\n"
               "     --no-hub            init, serve: no hub (no relay, no observed endpoints)\n"
               "     --hub-interface=NAME\n"
               "                         serve: hub WireGuard interface (default: %s)\n"
               "     --hub-backend=auto|kernel|userspace\n"
               "                         serve: WireGuard implementation of the hub (default: auto)\n"
               "     --hub-port=PORT     serve: UDP port of the hub (default: the port of the hub endpoint)\n"
               "     --keep-hub          serve: leave the hub interface in place on exit\n"
               "     --hub-ipv6-forwarding\n"
               "                         serve: set net.ipv6.conf.all.forwarding=1 (host-wide) to relay IPv6\n"
               "     --hub-allow=PROTO/PORT\n"
               "                         serve: let members reach this service on the hub address,\n"
               "                         e.g. tcp/443 (repeatable; default: only the probe responder)\n"
               "     --no-hub-firewall   serve: no nftables table for the hub: any node can then reach\n"
               "                         this host's services and networks through it (unsafe)\n"
               "     --no-relay          serve: no TLS relay (GET /v1/relay answers 503)\n"
               "     --relay-max-streams=N\n"
               "                         serve: at most N TLS relay streams at once (default: %u)\n"
               "     --relay-port=PORT   serve: the TLS relay's own TCP port on the address of --listen\n"
               "                         (default: 443; 0: none, nodes relay through the API port)\n"
               "     --no-udp-echo       serve: no UDP echo on the port of --listen (nodes on the TLS\n"
               "                         relay then cannot tell that UDP works again)\n"
               "     --dns-port=PORT     serve: mesh DNS on the hub's mesh addresses (default: 53)\n"
               "     --no-dns            serve: no mesh DNS server on the hub\n"
               "     --resolv-conf=PATH  serve: the resolvers mesh DNS forwards other names to\n"
               "                         (default: /etc/resolv.conf)\n"
               "     --cert-lifetime=DURATION\n"
               "                         serve: validity of node certificates (default: 30d)\n"
               "     --cert-issuer=mesh-ca|acme\n"
               "                         serve: who signs node certificates (default: mesh-ca)\n"
               "     --acme-directory=URL, --acme-email=EMAIL, --acme-ca-bundle=FILE\n"
               "                         serve: the ACME CA, the account's contact, roots for its HTTPS\n"
               "     --acme-wildcard     serve: every node gets *.DOMAIN (host names stay out of CT logs)\n"
               "     --acme-retry=DURATION  serve: first wait after a failed order (default: 60s)\n"
               "     --dns-update-server=ADDR[:PORT], --dns-update-tsig=FILE\n"
               "                         serve: RFC 2136 server for DNS-01, its TSIG key (mode 0600)\n"
               "     --expired-nodes=renew|admin\n"
               "                         serve: an expired node joining again with its key is renewed,\n"
               "                         or stays expired until 'nodes renew' (default: renew)\n"
               "     --reusable          authkey create: the key may join any number of nodes\n"
               "     --expires=DURATION  authkey create, devices add: validity, e.g. 30min, 24h, 7d\n"
               "     --json              nodes list, devices list, routes list: print JSON\n"
               "     --tag=TAG[,TAG]     authkey create, devices add: tags for the access policy\n"
               "     --public-key=KEY    devices add: the device's own key (the config then has no\n"
               "                         private key; default: a new pair, printed once, never stored)\n"
               "     --qr                devices add: print the config as a QR code\n"
               "     --out=FILE          devices add: also write the config to FILE (FILE.png: a QR code)\n"
               "     --from=FILE         migrate: the SQLite file (default: STATE_DIR/" STORE_DB_FILE ")\n\n"
               "See the meshd-control(8) man page for details.\n",
               STATE_DIR_DEFAULT, DOMAIN_DEFAULT, IPV4_RANGE_DEFAULT, (unsigned) HUB_PORT_DEFAULT,
               SERVER_LISTEN_DEFAULT, HUB_INTERFACE_DEFAULT, (unsigned) RELAY_MAX_STREAMS_DEFAULT);
}

/* "30s", "10min", "24h", "7d", "2w"; a bare number is seconds. */
static int parse_duration(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t seconds;
        } units[] = {
                { "", 1 },        { "s", 1 },        { "sec", 1 },     { "m", 60 },
                { "min", 60 },    { "h", 3600 },     { "hour", 3600 }, { "d", 86400 },
                { "day", 86400 }, { "days", 86400 }, { "w", 604800 },  { "week", 604800 },
        };
        unsigned long long v;
        char *end;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || v == 0)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(end, units[i].suffix)) {
                        if (v > UINT64_MAX / units[i].seconds / 2)
                                return -ERANGE;
                        *ret = v * units[i].seconds;
                        return 0;
                }
        return -EINVAL;
}

/* NOLINTNEXTLINE(readability-function-size): argument parser, one case per option */
static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_STATE_DIR,
                ARG_DATABASE,
                ARG_URL,
                ARG_DOMAIN,
                ARG_IPV4_RANGE,
                ARG_IPV6_RANGE,
                ARG_LISTEN,
                ARG_REUSABLE,
                ARG_EXPIRES,
                ARG_JSON,
                ARG_HUB_ENDPOINT,
                ARG_NO_HUB,
                ARG_HUB_INTERFACE,
                ARG_HUB_BACKEND,
                ARG_HUB_PORT,
                ARG_KEEP_HUB,
                ARG_HUB_IPV6_FORWARDING,
                ARG_HUB_ALLOW,
                ARG_NO_HUB_FIREWALL,
                ARG_CERT_LIFETIME,
                ARG_EXPIRED_NODES,
                ARG_NO_RELAY,
                ARG_RELAY_MAX_STREAMS,
                ARG_RELAY_PORT,
                ARG_NO_UDP_ECHO,
                ARG_PUBLIC_KEY,
                ARG_QR,
                ARG_OUT,
                ARG_DNS_PORT,
                ARG_NO_DNS,
                ARG_RESOLV_CONF,
                ARG_CERT_ISSUER,
                ARG_ACME_DIRECTORY,
                ARG_ACME_EMAIL,
                ARG_ACME_CA_BUNDLE,
                ARG_ACME_WILDCARD,
                ARG_ACME_RETRY,
                ARG_ACME_PROGRAM,
                ARG_DNS_UPDATE_SERVER,
                ARG_DNS_UPDATE_TSIG,
                ARG_TAG,
                ARG_FROM,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "database", required_argument, NULL, ARG_DATABASE },
                { "url", required_argument, NULL, ARG_URL },
                { "domain", required_argument, NULL, ARG_DOMAIN },
                { "ipv4-range", required_argument, NULL, ARG_IPV4_RANGE },
                { "ipv6-range", required_argument, NULL, ARG_IPV6_RANGE },
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "reusable", no_argument, NULL, ARG_REUSABLE },
                { "expires", required_argument, NULL, ARG_EXPIRES },
                { "json", no_argument, NULL, ARG_JSON },
                { "hub-endpoint", required_argument, NULL, ARG_HUB_ENDPOINT },
                { "no-hub", no_argument, NULL, ARG_NO_HUB },
                { "hub-interface", required_argument, NULL, ARG_HUB_INTERFACE },
                { "hub-backend", required_argument, NULL, ARG_HUB_BACKEND },
                { "hub-port", required_argument, NULL, ARG_HUB_PORT },
                { "keep-hub", no_argument, NULL, ARG_KEEP_HUB },
                { "hub-ipv6-forwarding", no_argument, NULL, ARG_HUB_IPV6_FORWARDING },
                { "hub-allow", required_argument, NULL, ARG_HUB_ALLOW },
                { "no-hub-firewall", no_argument, NULL, ARG_NO_HUB_FIREWALL },
                { "cert-lifetime", required_argument, NULL, ARG_CERT_LIFETIME },
                { "expired-nodes", required_argument, NULL, ARG_EXPIRED_NODES },
                { "no-relay", no_argument, NULL, ARG_NO_RELAY },
                { "relay-max-streams", required_argument, NULL, ARG_RELAY_MAX_STREAMS },
                { "relay-port", required_argument, NULL, ARG_RELAY_PORT },
                { "no-udp-echo", no_argument, NULL, ARG_NO_UDP_ECHO },
                { "public-key", required_argument, NULL, ARG_PUBLIC_KEY },
                { "qr", no_argument, NULL, ARG_QR },
                { "out", required_argument, NULL, ARG_OUT },
                { "dns-port", required_argument, NULL, ARG_DNS_PORT },
                { "no-dns", no_argument, NULL, ARG_NO_DNS },
                { "resolv-conf", required_argument, NULL, ARG_RESOLV_CONF },
                { "cert-issuer", required_argument, NULL, ARG_CERT_ISSUER },
                { "acme-directory", required_argument, NULL, ARG_ACME_DIRECTORY },
                { "acme-email", required_argument, NULL, ARG_ACME_EMAIL },
                { "acme-ca-bundle", required_argument, NULL, ARG_ACME_CA_BUNDLE },
                { "acme-wildcard", no_argument, NULL, ARG_ACME_WILDCARD },
                { "acme-retry", required_argument, NULL, ARG_ACME_RETRY },
                { "acme-program", required_argument, NULL, ARG_ACME_PROGRAM },
                { "dns-update-server", required_argument, NULL, ARG_DNS_UPDATE_SERVER },
                { "dns-update-tsig", required_argument, NULL, ARG_DNS_UPDATE_TSIG },
                { "tag", required_argument, NULL, ARG_TAG },
                { "from", required_argument, NULL, ARG_FROM },
                {},
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        puts(PACKAGE_VERSION);
                        return 0;
                case ARG_STATE_DIR:
                        arg.state_dir = optarg;
                        break;
                case ARG_DATABASE:
                        if (!*optarg)
                                return log_error_errno(-EINVAL, "Empty --database, expected a file or a "
                                                                "postgresql:// URL.");
                        arg.database = optarg;
                        break;
                case ARG_URL:
                        arg.url = optarg;
                        break;
                case ARG_DOMAIN:
                        arg.domain = optarg;
                        break;
                case ARG_IPV4_RANGE:
                        arg.ipv4_range = optarg;
                        break;
                case ARG_IPV6_RANGE:
                        arg.ipv6_range = optarg;
                        break;
                case ARG_LISTEN:
                        arg.listen = optarg;
                        break;
                case ARG_REUSABLE:
                        arg.reusable = true;
                        break;
                case ARG_EXPIRES:
                        r = parse_duration(optarg, &arg.expires_sec);
                        if (r < 0)
                                return log_error_errno(
                                        r, "Invalid duration '%s', expected e.g. 30s, 10min, 24h, 7d.", optarg);
                        break;
                case ARG_JSON:
                        arg.json = true;
                        break;
                case ARG_HUB_ENDPOINT:
                        arg.hub_endpoint = optarg;
                        break;
                case ARG_NO_HUB:
                        arg.hub = false;
                        break;
                case ARG_HUB_INTERFACE:
                        /* IFNAMSIZ, and no character the kernel refuses */
                        if (!*optarg || strlen(optarg) > 15 || strpbrk(optarg, "/: \t\n") ||
                            streq(optarg, ".") || streq(optarg, ".."))
                                return log_error_errno(-EINVAL,
                                                       "Invalid --hub-interface '%s': 1 to 15 characters, "
                                                       "no '/', ':' or space.",
                                                       optarg);
                        arg.hub_interface = optarg;
                        break;
                case ARG_HUB_BACKEND:
                        arg.hub_backend = wg_backend_type_from_string(optarg);
                        if (arg.hub_backend < 0)
                                return log_error_errno(
                                        -EINVAL,
                                        "Invalid --hub-backend '%s', expected auto, kernel or userspace.",
                                        optarg);
                        break;
                case ARG_HUB_PORT: {
                        char *end;
                        unsigned long p;

                        errno = 0;
                        p = strtoul(optarg, &end, 10);
                        if (errno != 0 || *optarg < '1' || *optarg > '9' || *end != 0 || p > 65535)
                                return log_error_errno(-EINVAL, "Invalid --hub-port '%s', expected 1 … 65535.",
                                                       optarg);
                        arg.hub_port = (uint16_t) p;
                        break;
                }
                case ARG_KEEP_HUB:
                        arg.keep_hub = true;
                        break;
                case ARG_HUB_IPV6_FORWARDING:
                        arg.hub_ipv6_forwarding = true;
                        break;
                case ARG_HUB_ALLOW: {
                        HubAllow a;
                        bool seen = false;

                        if (hub_allow_parse(optarg, &a) < 0)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --hub-allow '%s', expected tcp/PORT or "
                                                       "udp/PORT (port 1 … 65535).",
                                                       optarg);
                        for (size_t i = 0; i < arg.n_hub_allow; i++)
                                seen = seen || (arg.hub_allow[i].protocol == a.protocol &&
                                                arg.hub_allow[i].port == a.port);
                        if (seen)
                                break;
                        if (arg.n_hub_allow >= HUB_ALLOW_MAX)
                                return log_error_errno(-E2BIG, "Too many --hub-allow options (at most %u).",
                                                       (unsigned) HUB_ALLOW_MAX);
                        arg.hub_allow[arg.n_hub_allow++] = a;
                        break;
                }
                case ARG_NO_HUB_FIREWALL:
                        arg.hub_firewall = false;
                        break;
                case ARG_CERT_LIFETIME:
                        r = parse_duration(optarg, &arg.cert_lifetime_sec);
                        /* below 10 s renewal cannot keep up; above 398 days browsers refuse */
                        if (r < 0 || arg.cert_lifetime_sec < 10 || arg.cert_lifetime_sec > 398 * 86400ULL)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --cert-lifetime '%s', expected 10s … 398d.",
                                                       optarg);
                        break;
                case ARG_EXPIRED_NODES:
                        if (streq(optarg, "renew"))
                                arg.expired_needs_admin = false;
                        else if (streq(optarg, "admin"))
                                arg.expired_needs_admin = true;
                        else
                                return log_error_errno(-EINVAL,
                                                       "Invalid --expired-nodes '%s', expected renew or admin.",
                                                       optarg);
                        break;
                case ARG_NO_RELAY:
                        arg.relay = false;
                        break;
                case ARG_RELAY_MAX_STREAMS: {
                        char *end;
                        unsigned long n;

                        errno = 0;
                        n = strtoul(optarg, &end, 10);
                        if (errno != 0 || *optarg < '1' || *optarg > '9' || *end != 0 || n > 1000000)
                                return log_error_errno(
                                        -EINVAL, "Invalid --relay-max-streams '%s', expected 1 … 1000000.",
                                        optarg);
                        arg.relay_max_streams = (unsigned) n;
                        break;
                }
                case ARG_RELAY_PORT: {
                        char *end;
                        unsigned long n;

                        errno = 0;
                        n = strtoul(optarg, &end, 10);
                        if (errno != 0 || *optarg < '0' || *optarg > '9' || *end != 0 || n > 65535)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --relay-port '%s', expected 0 … 65535.",
                                                       optarg);
                        arg.relay_port = (uint16_t) n;
                        break;
                }
                case ARG_NO_UDP_ECHO:
                        arg.udp_echo = false;
                        break;
                case ARG_PUBLIC_KEY:
                        arg.public_key = optarg;
                        break;
                case ARG_QR:
                        arg.qr = true;
                        break;
                case ARG_OUT:
                        if (!*optarg)
                                return log_error_errno(-EINVAL, "Invalid --out: empty file name.");
                        arg.out = optarg;
                        break;
                case ARG_DNS_PORT: {
                        char *end;
                        unsigned long n;

                        errno = 0;
                        n = strtoul(optarg, &end, 10);
                        if (errno != 0 || *optarg < '1' || *optarg > '9' || *end != 0 || n > 65535)
                                return log_error_errno(-EINVAL, "Invalid --dns-port '%s', expected 1 … 65535.",
                                                       optarg);
                        arg.dns_port = (uint16_t) n;
                        break;
                }
                case ARG_NO_DNS:
                        arg.dns_port = 0;
                        break;
                case ARG_CERT_ISSUER:
                        if (streq(optarg, "mesh-ca"))
                                arg.cert_issuer_acme = false;
                        else if (streq(optarg, "acme"))
                                arg.cert_issuer_acme = true;
                        else
                                return log_error_errno(-EINVAL,
                                                       "Invalid --cert-issuer '%s', expected mesh-ca or acme.",
                                                       optarg);
                        break;
                case ARG_ACME_DIRECTORY:
                        if (strncmp(optarg, "https://", 8) != 0)
                                return log_error_errno(
                                        -EINVAL, "Invalid --acme-directory '%s', expected an https:// URL.",
                                        optarg);
                        arg.acme.directory_url = optarg;
                        break;
                case ARG_ACME_EMAIL:
                        arg.acme.email = optarg;
                        break;
                case ARG_ACME_CA_BUNDLE:
                        arg.acme.ca_bundle = optarg;
                        break;
                case ARG_ACME_WILDCARD:
                        arg.acme.wildcard = true;
                        break;
                case ARG_ACME_RETRY:
                        r = parse_duration(optarg, &arg.acme.retry_min_sec);
                        if (r < 0 || arg.acme.retry_min_sec > ACME_RETRY_MAX_SEC)
                                return log_error_errno(-EINVAL, "Invalid --acme-retry '%s', expected 1s … 6h.",
                                                       optarg);
                        break;
                case ARG_ACME_PROGRAM:
                        arg.acme.program = optarg;
                        break;
                case ARG_DNS_UPDATE_SERVER:
                        arg.acme.dns_server = optarg;
                        break;
                case ARG_DNS_UPDATE_TSIG:
                        arg.acme.tsig_file = optarg;
                        break;
                case ARG_RESOLV_CONF:
                        arg.resolv_conf = optarg;
                        break;
                case ARG_FROM:
                        if (!*optarg)
                                return log_error_errno(-EINVAL, "Invalid --from: empty file name.");
                        arg.migrate_from = optarg;
                        break;
                case ARG_TAG: {
                        _cleanup_free_ char *have = store_tags_format(arg.tags), *all = NULL;

                        /* several --tag= add up */
                        if (!have || asprintf(&all, "%s,%s", have, optarg) < 0)
                                return log_oom();
                        arg.tags = strv_free(arg.tags);
                        r = store_tags_parse(all, &arg.tags);
                        if (r == -EINVAL)
                                return log_error_errno(
                                        r, "Invalid --tag '%s': each tag a DNS label (a-z, 0-9, -).", optarg);
                        if (r < 0)
                                return log_oom();
                        break;
                }
                case '?':
                        return -EINVAL;
                default:
                        return log_error_errno(-EINVAL, "Unhandled option %i.", c);
                }

        if (arg.cert_issuer_acme && (!arg.acme.directory_url || !arg.acme.dns_server || !arg.acme.tsig_file))
                return log_error_errno(-EINVAL,
                                       "--cert-issuer=acme needs --acme-directory, --dns-update-server "
                                       "and --dns-update-tsig.");
        if (!arg.cert_issuer_acme && (arg.acme.directory_url || arg.acme.dns_server || arg.acme.tsig_file ||
                                      arg.acme.email || arg.acme.ca_bundle || arg.acme.wildcard))
                return log_error_errno(-EINVAL, "--acme-* and --dns-update-* options need --cert-issuer=acme.");

        /* mesh DNS is a service on the hub address that members must reach */
        for (int proto = 0; proto < 2 && arg.dns_port != 0; proto++) {
                HubAllow dns = { proto == 0 ? IPPROTO_UDP : IPPROTO_TCP, arg.dns_port };
                bool have = false;

                for (size_t i = 0; i < arg.n_hub_allow && !have; i++)
                        have = arg.hub_allow[i].protocol == dns.protocol && arg.hub_allow[i].port == dns.port;
                if (!have && arg.n_hub_allow < HUB_ALLOW_MAX)
                        arg.hub_allow[arg.n_hub_allow++] = dns;
        }

        if (!arg.state_dir) {
                /* systemd's StateDirectory=; with several, the first is ours */
                const char *e = getenv("STATE_DIRECTORY");
                static char dir[4096];

                if (e && *e) {
                        size_t n = strcspn(e, ":");
                        if (n >= sizeof(dir))
                                return log_error_errno(-ENAMETOOLONG, "$STATE_DIRECTORY too long.");
                        memcpy(dir, e, n);
                        dir[n] = 0;
                        arg.state_dir = dir;
                } else
                        arg.state_dir = STATE_DIR_DEFAULT;
        }
        return 1;
}

static int run(int argc, char *argv[]) {
        char **args;
        size_t n;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;

        args = argv + optind;
        n = (size_t) (argc - optind);
        if (n == 0)
                return log_error_errno(-EINVAL, "Missing command, see --help.");

        if (streq(args[0], "init") && n == 1)
                return verb_init(&arg);
        if (streq(args[0], "serve") && n == 1)
                return verb_serve(&arg);
        if (streq(args[0], "authkey") && n == 2 && streq(args[1], "create"))
                return verb_authkey_create(&arg);
        if (streq(args[0], "nodes") && n == 2 && streq(args[1], "list"))
                return verb_nodes_list(&arg);
        if (streq(args[0], "nodes") && n == 3 && streq(args[1], "remove"))
                return verb_nodes_remove(&arg, args[2]);
        if (streq(args[0], "nodes") && n == 3 && streq(args[1], "expire"))
                return verb_nodes_expire(&arg, args[2]);
        if (streq(args[0], "nodes") && n == 3 && streq(args[1], "renew"))
                return verb_nodes_renew(&arg, args[2]);
        if (streq(args[0], "devices") && n == 3 && streq(args[1], "add"))
                return verb_devices_add(&arg, args[2]);
        if (streq(args[0], "devices") && n == 2 && streq(args[1], "list"))
                return verb_devices_list(&arg);
        if (streq(args[0], "devices") && n == 3 && streq(args[1], "remove"))
                return verb_devices_remove(&arg, args[2]);
        if (streq(args[0], "routes") && n == 2 && streq(args[1], "list"))
                return verb_routes_list(&arg);
        if (streq(args[0], "routes") && n == 4 && (streq(args[1], "approve") || streq(args[1], "reject")))
                return verb_routes_set(&arg, args[2], args[3], streq(args[1], "approve"));
        if (streq(args[0], "policy") && n == 3 && streq(args[1], "set"))
                return verb_policy_set(&arg, args[2]);
        if (streq(args[0], "policy") && n == 3 && streq(args[1], "test"))
                return verb_policy_test(&arg, args[2]);
        if (streq(args[0], "policy") && n == 2 && streq(args[1], "get"))
                return verb_policy_get(&arg);
        if (streq(args[0], "policy") && n == 2 && streq(args[1], "clear"))
                return verb_policy_clear(&arg);
        if (streq(args[0], "migrate") && n == 1)
                return verb_migrate(&arg);

        return log_error_errno(-EINVAL, "Unknown command or wrong arguments: '%s', see --help.", args[0]);
}

int main(int argc, char *argv[]) {
        int r;

        log_setup("meshd-control", LOG_TARGET_AUTO);
        /* everything we write (database, TLS key) is private */
        umask(0077);

        r = run(argc, argv);
        strv_free(arg.tags);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
