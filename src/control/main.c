/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "challenge.h"
#include "config.h"
#include "dns-label.h"
#include "endpoint.h"
#include "http.h"
#include "hub.h"
#include "relay-listener.h"
#include "relay-server.h"
#include "ipam.h"
#include "key.h"
#include "log.h"
#include "store.h"
#include "tls.h"

#define STATE_DIR_DEFAULT "/var/lib/meshd-control"
#define DOMAIN_DEFAULT "mesh.internal"
#define IPV4_RANGE_DEFAULT "100.64.0.0/10"
#define PORT_DEFAULT CONTROL_PORT_DEFAULT
#define AUTHKEY_PREFIX "mskey-"
#define HUB_KEY_FILE "hub.key"

static const char *arg_state_dir = NULL;
static const char *arg_url = NULL;
static const char *arg_domain = DOMAIN_DEFAULT;
static const char *arg_ipv4_range = IPV4_RANGE_DEFAULT;
static const char *arg_ipv6_range = NULL;
static const char *arg_listen = SERVER_LISTEN_DEFAULT;
static bool arg_reusable = false;
static uint64_t arg_expires_sec = 0;
static bool arg_json = false;
static const char *arg_hub_endpoint = NULL;
static bool arg_hub = true;
static const char *arg_hub_interface = HUB_INTERFACE_DEFAULT;
static WgBackendType arg_hub_backend = WG_BACKEND_AUTO;
static uint16_t arg_hub_port = 0;
static bool arg_keep_hub = false;
static bool arg_hub_ipv6_forwarding = false;
static bool arg_hub_firewall = true;
static HubAllow arg_hub_allow[HUB_ALLOW_MAX];
static size_t arg_n_hub_allow = 0;
static uint64_t arg_cert_lifetime_sec = CERT_LIFETIME_DEFAULT_SEC;
static bool arg_expired_needs_admin = false;
static bool arg_relay = true;
static unsigned arg_relay_max_streams = RELAY_MAX_STREAMS_DEFAULT;
static uint16_t arg_relay_port = RELAY_PORT_DEFAULT;
static bool arg_udp_echo = true;

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

static void help(void) {
        printf("%s [OPTIONS...] COMMAND ...\n\n"
               "Coordination server of a meshd mesh.\n\n"
               "Commands:\n"
               "  init                   Create the database, TLS key, certificate and CA; print the pin\n"
               "  serve                  Run the HTTPS API\n"
               "  authkey create         Create an auth key for joining nodes\n"
               "  nodes list             List the nodes of the mesh\n"
               "  nodes remove NAME      Remove a node from the mesh\n"
               "  nodes expire NAME      Expire a node's key: out of the mesh until it joins again\n"
               "  nodes renew NAME       Make an expired node valid again (for --expired-nodes=admin)\n\n"
               "Options:\n"
               "  -h --help              Show this help\n"
               "     --version           Show package version\n"
               "     --state-dir=DIR     State directory (default: $STATE_DIRECTORY or %s)\n"
               "     --url=URL           init: URL nodes use, https://HOST:PORT\n"
               "     --domain=DOMAIN     init: DNS domain of the mesh (default: %s)\n"
               "     --ipv4-range=PREFIX init: IPv4 range (default: %s)\n"
               "     --ipv6-range=PREFIX init: IPv6 /48 (default: a random ULA prefix)\n"
               "     --hub-endpoint=IP:PORT\n"
               "                         init, serve: where nodes reach the hub (default: the\n"
               "                         host of --url, when it is an IP address, port %u)\n"
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
               "     --cert-lifetime=DURATION\n"
               "                         serve: validity of node certificates (default: 30d)\n"
               "     --expired-nodes=renew|admin\n"
               "                         serve: an expired node joining again with its key is renewed,\n"
               "                         or stays expired until 'nodes renew' (default: renew)\n"
               "     --reusable          authkey create: the key may join any number of nodes\n"
               "     --expires=DURATION  authkey create: validity, e.g. 30min, 24h, 7d\n"
               "     --json              nodes list: print JSON\n\n"
               "See the meshd-control(8) man page for details.\n",
               program_invocation_short_name, STATE_DIR_DEFAULT, DOMAIN_DEFAULT, IPV4_RANGE_DEFAULT,
               HUB_PORT_DEFAULT, SERVER_LISTEN_DEFAULT, HUB_INTERFACE_DEFAULT, RELAY_MAX_STREAMS_DEFAULT);
}

/* "30s", "10min", "24h", "7d", "2w"; a bare number is seconds. */
static int parse_duration(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t seconds;
        } units[] = {
                { "", 1 },          { "s", 1 },         { "sec", 1 },     { "m", 60 },
                { "min", 60 },      { "h", 3600 },      { "hour", 3600 }, { "d", 86400 },
                { "day", 86400 },   { "days", 86400 },  { "w", 604800 },  { "week", 604800 },
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

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_STATE_DIR,
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
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
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
                {}
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
                        arg_state_dir = optarg;
                        break;
                case ARG_URL:
                        arg_url = optarg;
                        break;
                case ARG_DOMAIN:
                        arg_domain = optarg;
                        break;
                case ARG_IPV4_RANGE:
                        arg_ipv4_range = optarg;
                        break;
                case ARG_IPV6_RANGE:
                        arg_ipv6_range = optarg;
                        break;
                case ARG_LISTEN:
                        arg_listen = optarg;
                        break;
                case ARG_REUSABLE:
                        arg_reusable = true;
                        break;
                case ARG_EXPIRES:
                        r = parse_duration(optarg, &arg_expires_sec);
                        if (r < 0)
                                return log_error_errno(r, "Invalid duration '%s', expected e.g. 30s, 10min, 24h, 7d.",
                                                       optarg);
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_HUB_ENDPOINT:
                        arg_hub_endpoint = optarg;
                        break;
                case ARG_NO_HUB:
                        arg_hub = false;
                        break;
                case ARG_HUB_INTERFACE:
                        /* IFNAMSIZ, and no character the kernel refuses */
                        if (!*optarg || strlen(optarg) > 15 || strpbrk(optarg, "/: \t\n") ||
                            streq(optarg, ".") || streq(optarg, ".."))
                                return log_error_errno(-EINVAL, "Invalid --hub-interface '%s': 1 to 15 characters, "
                                                       "no '/', ':' or space.", optarg);
                        arg_hub_interface = optarg;
                        break;
                case ARG_HUB_BACKEND:
                        arg_hub_backend = wg_backend_type_from_string(optarg);
                        if (arg_hub_backend < 0)
                                return log_error_errno(-EINVAL, "Invalid --hub-backend '%s', expected auto, kernel or userspace.",
                                                       optarg);
                        break;
                case ARG_HUB_PORT: {
                        char *end;
                        unsigned long p;

                        errno = 0;
                        p = strtoul(optarg, &end, 10);
                        if (errno != 0 || *optarg < '1' || *optarg > '9' || *end != 0 || p > 65535)
                                return log_error_errno(-EINVAL, "Invalid --hub-port '%s', expected 1 … 65535.", optarg);
                        arg_hub_port = (uint16_t) p;
                        break;
                }
                case ARG_KEEP_HUB:
                        arg_keep_hub = true;
                        break;
                case ARG_HUB_IPV6_FORWARDING:
                        arg_hub_ipv6_forwarding = true;
                        break;
                case ARG_HUB_ALLOW: {
                        HubAllow a;
                        bool seen = false;

                        if (hub_allow_parse(optarg, &a) < 0)
                                return log_error_errno(-EINVAL, "Invalid --hub-allow '%s', expected tcp/PORT or "
                                                       "udp/PORT (port 1 … 65535).", optarg);
                        for (size_t i = 0; i < arg_n_hub_allow; i++)
                                seen = seen || (arg_hub_allow[i].protocol == a.protocol &&
                                                arg_hub_allow[i].port == a.port);
                        if (seen)
                                break;
                        if (arg_n_hub_allow >= HUB_ALLOW_MAX)
                                return log_error_errno(-E2BIG, "Too many --hub-allow options (at most %u).",
                                                       (unsigned) HUB_ALLOW_MAX);
                        arg_hub_allow[arg_n_hub_allow++] = a;
                        break;
                }
                case ARG_NO_HUB_FIREWALL:
                        arg_hub_firewall = false;
                        break;
                case ARG_CERT_LIFETIME:
                        r = parse_duration(optarg, &arg_cert_lifetime_sec);
                        /* below 10 s renewal cannot keep up; above 398 days browsers refuse */
                        if (r < 0 || arg_cert_lifetime_sec < 10 || arg_cert_lifetime_sec > 398 * 86400ULL)
                                return log_error_errno(-EINVAL, "Invalid --cert-lifetime '%s', expected 10s … 398d.",
                                                       optarg);
                        break;
                case ARG_EXPIRED_NODES:
                        if (streq(optarg, "renew"))
                                arg_expired_needs_admin = false;
                        else if (streq(optarg, "admin"))
                                arg_expired_needs_admin = true;
                        else
                                return log_error_errno(-EINVAL, "Invalid --expired-nodes '%s', expected renew or admin.",
                                                       optarg);
                        break;
                case ARG_NO_RELAY:
                        arg_relay = false;
                        break;
                case ARG_RELAY_MAX_STREAMS: {
                        char *end;
                        unsigned long n;

                        errno = 0;
                        n = strtoul(optarg, &end, 10);
                        if (errno != 0 || *optarg < '1' || *optarg > '9' || *end != 0 || n > 1000000)
                                return log_error_errno(-EINVAL, "Invalid --relay-max-streams '%s', expected 1 … 1000000.",
                                                       optarg);
                        arg_relay_max_streams = (unsigned) n;
                        break;
                }
                case ARG_RELAY_PORT: {
                        char *end;
                        unsigned long n;

                        errno = 0;
                        n = strtoul(optarg, &end, 10);
                        if (errno != 0 || *optarg < '0' || *optarg > '9' || *end != 0 || n > 65535)
                                return log_error_errno(-EINVAL, "Invalid --relay-port '%s', expected 0 … 65535.",
                                                       optarg);
                        arg_relay_port = (uint16_t) n;
                        break;
                }
                case ARG_NO_UDP_ECHO:
                        arg_udp_echo = false;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return log_error_errno(-EINVAL, "Unhandled option %i.", c);
                }

        if (!arg_state_dir) {
                /* systemd's StateDirectory=; with several, the first is ours */
                const char *e = getenv("STATE_DIRECTORY");
                static char dir[4096];

                if (e && *e) {
                        size_t n = strcspn(e, ":");
                        if (n >= sizeof(dir))
                                return log_error_errno(-ENAMETOOLONG, "$STATE_DIRECTORY too long.");
                        memcpy(dir, e, n);
                        dir[n] = 0;
                        arg_state_dir = dir;
                } else
                        arg_state_dir = STATE_DIR_DEFAULT;
        }
        return 1;
}

static int state_path(const char *name, char **ret) {
        return asprintf(ret, "%s/%s", arg_state_dir, name) < 0 ? log_oom() : 0;
}

static int open_store(Store **ret) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = state_path(STORE_DB_FILE, &path);
        if (r < 0)
                return r;
        r = store_open(path, false, ret);
        if (r == -ENOENT)
                return log_error_errno(r, "No database at %s; run 'meshd-control init' first (or pass --state-dir).",
                                       path);
        if (r == -EACCES)
                return log_error_errno(r, "Cannot open %s: %m", path);
        return r;
}

/* "https://HOST[:PORT][/]" → HOST (brackets of an IPv6 literal removed). */
static int url_host(const char *url, char **ret) {
        const char *p, *end;

        if (strncmp(url, "https://", 8) != 0)
                return -EINVAL;
        p = url + 8;
        if (*p == '[') {
                end = strchr(p, ']');
                if (!end || (end[1] != 0 && end[1] != ':' && end[1] != '/'))
                        return -EINVAL;
                p++;
        } else
                end = p + strcspn(p, ":/");
        if (end == p)
                return -EINVAL;
        for (const char *c = p; c < end; c++)
                if (*c <= ' ' || *c == '@' || *c == '?' || *c == '#' || *c >= 0x7f)
                        return -EINVAL;
        *ret = strndup(p, end - p);
        return *ret ? 0 : -ENOMEM;
}

static bool domain_is_valid(const char *d) {
        _cleanup_free_ char *copy = NULL;
        char *save = NULL;

        if (!d || !*d || strlen(d) > 253 || d[strlen(d) - 1] == '.')
                return false;
        copy = strdup(d);
        if (!copy)
                return false;
        for (char *l = strtok_r(copy, ".", &save); l; l = strtok_r(NULL, ".", &save))
                if (!dns_label_is_valid(l))
                        return false;
        return strstr(d, "..") == NULL && d[0] != '.';
}

/* The hub endpoint goes into every netmap, whose endpoints are "ip:port":
 * a host name cannot be used. Canonical form into ret. */
static int hub_endpoint_parse(const char *s, char **ret) {
        union sockaddr_union sa;
        char buf[ENDPOINT_STRLEN];

        if (endpoint_parse(s, &sa) < 0 || (sa.sa.sa_family == AF_INET6 && sa.in6.sin6_scope_id != 0) ||
            !endpoint_format(&sa, buf, sizeof(buf)))
                return -EINVAL;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

/* --hub-endpoint, else the host of the URL when it is an IP address. */
static int hub_endpoint_from_args(const char *url, char **ret) {
        _cleanup_free_ char *host = NULL, *text = NULL;
        union in_addr_union a;
        int family, r;

        if (arg_hub_endpoint) {
                r = hub_endpoint_parse(arg_hub_endpoint, ret);
                if (r == -ENOMEM)
                        return log_oom();
                if (r < 0)
                        return log_error_errno(r, "Invalid --hub-endpoint '%s', expected IP:PORT or [IP6]:PORT "
                                               "(nodes need an address, not a name).", arg_hub_endpoint);
                return 0;
        }
        r = url_host(url, &host);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0 || in_addr_parse(host, &family, &a) < 0)
                return log_error_errno(-EINVAL, "The host of the URL '%s' is not an IP address; nodes need one "
                                       "to reach the hub: pass --hub-endpoint=IP:PORT (or --no-hub).",
                                       url);
        if (asprintf(&text, family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, HUB_PORT_DEFAULT) < 0)
                return log_oom();
        r = hub_endpoint_parse(text, ret);
        if (r < 0)
                return r == -ENOMEM ? log_oom() : log_error_errno(r, "Invalid hub endpoint '%s'.", text);
        return 0;
}

/* Creates hub.key when missing: by init, and on the first serve of a mesh
 * made before the hub existed. Records its public half in the database, so
 * that no node can register with it. */
static int hub_key_load(Store *store, bool create_only, WgKey *ret_private, char ret_public[static WG_KEY_B64_LEN + 1]) {
        _cleanup_free_ char *path = NULL, *stored = NULL;
        WgKey key, pub;
        int r;

        r = state_path(HUB_KEY_FILE, &path);
        if (r < 0)
                return r;
        r = create_only ? -ENOENT : key_read_file(path, true, &key);
        if (r == -ENOENT) {
                r = key_generate_private(&key);
                if (r < 0)
                        return log_error_errno(r, "Failed to generate the hub key: %m");
                r = key_write_file(path, &key);
                if (r < 0) {
                        explicit_bzero(&key, sizeof(key));
                        return log_error_errno(r, "Failed to write %s: %m", path);
                }
                if (!create_only)
                        log_info("Created the hub key %s.", path);
        } else if (r < 0)
                return log_error_errno(r, "Failed to read the hub key %s: %m", path);

        r = key_public_from_private(&key, &pub);
        if (r < 0) {
                explicit_bzero(&key, sizeof(key));
                return log_error_errno(r, "Failed to derive the hub's public key: %m");
        }
        key_to_base64(&pub, ret_public);
        if (store_get_setting(store, "hub_public_key", &stored) < 0 || !streq(stored, ret_public)) {
                r = store_set_setting(store, "hub_public_key", ret_public);
                if (r < 0) {
                        explicit_bzero(&key, sizeof(key));
                        return r;
                }
        }
        if (ret_private)
                *ret_private = key;
        explicit_bzero(&key, sizeof(key));
        return 0;
}

/* Until init succeeds the new database is removed again, so it can be re-run. */
static void unlink_new_databasep(char **path) {
        static const char *const suffixes[] = { "", "-wal", "-shm" };

        if (!*path)
                return;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s%s", *path, suffixes[i]) >= 0)
                        (void) unlink(p);
        }
        free(*path);
}

static int verb_init(void) {
        _cleanup_free_ char *default_url = NULL, *host = NULL, *ula = NULL, *pin = NULL, *hub_endpoint = NULL;
        char hub_public[WG_KEY_B64_LEN + 1];
        _cleanup_(unlink_new_databasep) char *db_path = NULL;
        _cleanup_(store_freep) Store *store = NULL;
        const char *url = arg_url, *ipv6_range = arg_ipv6_range;
        struct in_addr a4;
        struct in6_addr a6;
        uint8_t len;
        int r;

        if (!url) {
                char hostname[256] = {};
                if (gethostname(hostname, sizeof(hostname) - 1) < 0)
                        return log_error_errno(negative_errno(), "Failed to get host name: %m");
                if (asprintf(&default_url, "https://%s:" PORT_DEFAULT, hostname) < 0)
                        return log_oom();
                url = default_url;
        }
        r = url_host(url, &host);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "Invalid --url '%s', expected https://HOST:PORT.", url);
        if (!domain_is_valid(arg_domain))
                return log_error_errno(-EINVAL, "Invalid --domain '%s'.", arg_domain);
        r = ipam_parse_ipv4_range(arg_ipv4_range, &a4, &len);
        if (r < 0)
                return log_error_errno(r, "Invalid --ipv4-range '%s', expected a network prefix /8 … /30.",
                                       arg_ipv4_range);
        if (!ipv6_range) {
                r = ipam_random_ula(&ula);
                if (r < 0)
                        return log_error_errno(r, "Failed to pick an IPv6 prefix: %m");
                ipv6_range = ula;
        }
        r = ipam_parse_ipv6_range(ipv6_range, &a6, &len);
        if (r < 0)
                return log_error_errno(r, "Invalid --ipv6-range '%s', expected a network prefix like fdXX:XXXX:XXXX::/48.",
                                       ipv6_range);
        if (arg_hub) {
                r = hub_endpoint_from_args(url, &hub_endpoint);
                if (r < 0)
                        return r;
        }

        if (mkdir(arg_state_dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Failed to create %s: %m", arg_state_dir);

        r = state_path(STORE_DB_FILE, &db_path);
        if (r < 0)
                return r;
        r = store_open(db_path, true, &store);
        if (r == -EEXIST) {
                log_error("Database %s already exists, refusing to overwrite an existing mesh.", db_path);
                db_path = mfree(db_path);
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to create database %s: %m", db_path);

        r = store_init_settings(store, url, arg_domain, arg_ipv4_range, ipv6_range);
        if (r < 0)
                return r;
        if (hub_endpoint) {
                r = store_set_setting(store, "hub_endpoint", hub_endpoint);
                if (r < 0)
                        return r;
        }
        r = hub_key_load(store, true, NULL, hub_public);
        if (r < 0)
                return r;
        r = challenge_secret_load(store, &(ChallengeSecret) {});
        if (r < 0)
                return r;
        r = tls_generate(arg_state_dir, host, &pin);
        if (r < 0)
                return r;
        r = ca_generate(arg_state_dir, arg_domain, arg_ipv4_range, ipv6_range);
        if (r < 0)
                return r;

        db_path = mfree(db_path); /* done: keep it */
        log_info("Created mesh in %s: URL %s, domain %s, %s, %s, hub %s.", arg_state_dir, url, arg_domain,
                 arg_ipv4_range, ipv6_range, strna(hub_endpoint));
        puts(pin);
        return 0;
}

static void hub_options_erase(HubOptions *o) {
        explicit_bzero(&o->private_key, sizeof(o->private_key));
}

/* The hub endpoint of this run: --hub-endpoint (recorded), else the one
 * recorded by init, else (a mesh older than the hub) derived from the URL. */
static int serve_hub_endpoint(Store *store, char **ret) {
        _cleanup_free_ char *stored = NULL, *url = NULL, *endpoint = NULL;
        int r;

        r = store_get_setting(store, "hub_endpoint", &stored);
        if (r < 0 && r != -ENOENT)
                return r;
        if (stored && !arg_hub_endpoint) {
                *ret = TAKE_PTR(stored);
                return 0;
        }
        r = store_get_setting(store, "url", &url);
        if (r < 0)
                return log_error_errno(r, "Database has no server URL: %m");
        r = hub_endpoint_from_args(url, &endpoint);
        if (r < 0)
                return r;
        if (!streq_ptr(stored, endpoint)) {
                r = store_set_setting(store, "hub_endpoint", endpoint);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(endpoint);
        return 0;
}

/* The CA, made on the first serve of a mesh created before it existed. */
static int serve_load_ca(Store *store, CertAuthority **ret, char **ret_domain) {
        _cleanup_free_ char *domain = NULL, *v4 = NULL, *v6 = NULL;
        int r;

        r = store_get_setting(store, "domain", &domain);
        if (r >= 0)
                r = store_get_setting(store, "ipv4_range", &v4);
        if (r >= 0)
                r = store_get_setting(store, "ipv6_range", &v6);
        if (r < 0)
                return log_error_errno(r, "Database lacks the mesh's domain or ranges: %m");

        r = ca_load(arg_state_dir, ret);
        if (r == -ENOENT) {
                r = ca_generate(arg_state_dir, domain, v4, v6);
                if (r < 0)
                        return r;
                log_info("Created the mesh certificate authority in %s/%s.", arg_state_dir, CA_CERT_FILE);
                r = ca_load(arg_state_dir, ret);
        }
        if (r < 0)
                return r;
        *ret_domain = TAKE_PTR(domain);
        return 0;
}

static int verb_serve(void) {
        _cleanup_(server_freep) Server *server = NULL;
        _cleanup_(ca_freep) CertAuthority *ca = NULL;
        _cleanup_free_ char *hub_endpoint = NULL, *domain = NULL;
        char hub_public[WG_KEY_B64_LEN + 1];
        _cleanup_(hub_options_erase) HubOptions hub = {
                .ifname = arg_hub_interface,
                .backend = arg_hub_backend,
                .keep_interface = arg_keep_hub,
                .ipv6_forwarding = arg_hub_ipv6_forwarding,
                .no_firewall = !arg_hub_firewall,
                .allow = arg_hub_allow,
                .n_allow = arg_n_hub_allow,
        };
        Store *store = NULL;
        int r;

        r = open_store(&store);
        if (r < 0)
                return r;
        /* a damaged file fails the start, not every request after READY */
        r = store_check_integrity(store);
        if (r >= 0)
                r = serve_load_ca(store, &ca, &domain);
        if (r < 0) {
                store_free(store);
                return r;
        }
        if (arg_hub) {
                union sockaddr_union sa;

                r = serve_hub_endpoint(store, &hub_endpoint);
                if (r >= 0)
                        r = hub_key_load(store, false, &hub.private_key, hub_public);
                if (r < 0) {
                        store_free(store);
                        return r;
                }
                if (endpoint_parse(hub_endpoint, &sa) < 0) {
                        store_free(store);
                        return log_error_errno(-EINVAL, "Invalid hub endpoint '%s' in the database.", hub_endpoint);
                }
                hub.listen_port = arg_hub_port ?: ntohs(sa.sa.sa_family == AF_INET ? sa.in.sin_port : sa.in6.sin6_port);
        }
        r = server_new(store, arg_state_dir, arg_listen, &server);
        if (r < 0)
                return r;
        r = server_set_ca(server, TAKE_PTR(ca), domain, arg_cert_lifetime_sec);
        if (r < 0)
                return r;
        server_set_expired_needs_admin(server, arg_expired_needs_admin);
        server_set_relay(server, arg_relay, arg_relay_max_streams, arg_udp_echo);
        server_set_relay_port(server, arg_relay_port);
        if (arg_hub) {
                r = server_set_hub(server, &hub, hub_public, hub_endpoint);
                if (r < 0)
                        return r;
        } else
                log_info("Running without a hub (--no-hub): no relay, no observed endpoints.");
        return server_run(server);
}

static int verb_authkey_create(void) {
        _cleanup_(store_freep) Store *store = NULL;
        _cleanup_free_ char *key = NULL, *url = NULL, *pin = NULL;
        int64_t expires = 0;
        int r;

        r = open_store(&store);
        if (r < 0)
                return r;
        r = store_get_setting(store, "url", &url);
        if (r < 0)
                return log_error_errno(r, "Database has no server URL: %m");
        r = tls_read_pin(arg_state_dir, &pin);
        if (r < 0)
                return r;
        r = store_secret_new(AUTHKEY_PREFIX, &key);
        if (r < 0)
                return r;
        if (arg_expires_sec > 0)
                expires = (int64_t) time(NULL) + (int64_t) arg_expires_sec;
        r = store_authkey_add(store, key, arg_reusable, expires);
        if (r < 0)
                return log_error_errno(r, "Failed to store auth key: %m");

        printf("%s\n", key);
        printf("meshctl up --server %s --authkey %s --pin %s\n", url, key, pin);
        return 0;
}

static void format_time(int64_t t, char buf[static 32]) {
        time_t tt = (time_t) t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, 32, "%" PRIi64, t);
}

static char *strv_join_comma(char *const *l) {
        size_t size = 1;
        char *s, *p;

        for (size_t i = 0; l && l[i]; i++)
                size += strlen(l[i]) + 1;
        s = p = malloc(size);
        if (!s)
                return NULL;
        *p = 0;
        for (size_t i = 0; l && l[i]; i++)
                p += sprintf(p, "%s%s", i > 0 ? "," : "", l[i]);
        return s;
}

static int print_nodes_json(const StoreNode *nodes, size_t n) {
        _cleanup_(cJSON_Deletep) cJSON *a = cJSON_CreateArray();
        _cleanup_free_ char *text = NULL;

        if (!a)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                cJSON *o = cJSON_CreateObject(), *e;
                char created[32];

                if (!o)
                        return log_oom();
                if (!cJSON_AddItemToArray(a, o)) {
                        cJSON_Delete(o);
                        return log_oom();
                }
                format_time(nodes[i].created, created);
                if (!cJSON_AddNumberToObject(o, "id", (double) nodes[i].id) ||
                    !cJSON_AddStringToObject(o, "name", nodes[i].name) ||
                    !cJSON_AddStringToObject(o, "ipv4", nodes[i].ipv4) ||
                    !cJSON_AddStringToObject(o, "ipv6", nodes[i].ipv6) ||
                    !cJSON_AddStringToObject(o, "public_key", nodes[i].public_key) ||
                    !(e = cJSON_AddArrayToObject(o, "endpoints")) ||
                    !cJSON_AddStringToObject(o, "created", created) ||
                    !cJSON_AddBoolToObject(o, "expired", nodes[i].expired))
                        return log_oom();
                for (size_t j = 0; nodes[i].endpoints[j]; j++)
                        if (!cJSON_AddItemToArray(e, cJSON_CreateString(nodes[i].endpoints[j])))
                                return log_oom();
        }
        text = cJSON_Print(a);
        if (!text)
                return log_oom();
        puts(text);
        return 0;
}

static int print_nodes_table(const StoreNode *nodes, size_t n) {
        _cleanup_strv_free_ char **endpoints = calloc(n + 1, sizeof(char *));
        int w_name = 4, w_ipv4 = 4, w_ipv6 = 4, w_key = 10, w_ep = 9;

        if (!endpoints)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                endpoints[i] = strv_join_comma(nodes[i].endpoints);
                if (!endpoints[i])
                        return log_oom();
                w_name = MAX(w_name, (int) strlen(nodes[i].name));
                w_ipv4 = MAX(w_ipv4, (int) strlen(nodes[i].ipv4));
                w_ipv6 = MAX(w_ipv6, (int) strlen(nodes[i].ipv6));
                w_key = MAX(w_key, (int) strlen(nodes[i].public_key));
                w_ep = MAX(w_ep, (int) strlen(endpoints[i]) ?: 1);
        }

        printf("%-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w_name, "NAME", w_ipv4, "IPV4", w_ipv6, "IPV6", w_key,
               "PUBLIC KEY", w_ep, "ENDPOINTS", "CREATED");
        for (size_t i = 0; i < n; i++) {
                char created[32];
                format_time(nodes[i].created, created);
                printf("%-*s  %-*s  %-*s  %-*s  %-*s  %s%s\n", w_name, nodes[i].name, w_ipv4, nodes[i].ipv4,
                       w_ipv6, nodes[i].ipv6, w_key, nodes[i].public_key, w_ep,
                       endpoints[i][0] ? endpoints[i] : "-", created, nodes[i].expired ? "  expired" : "");
        }
        if (isatty(STDOUT_FILENO))
                printf("\n%zu node%s.\n", n, n == 1 ? "" : "s");
        return 0;
}

/* Removed nodes whose certificates are still valid: their names and
 * addresses are nobody's until then (docs/protocol.md, "Certificates"). */
static int print_held(Store *store) {
        StoreHeld *held = NULL;
        size_t n = 0;
        int r;

        r = store_list_held(store, time(NULL), &held, &n);
        if (r < 0)
                return r;
        if (n > 0)
                printf("\nRemoved, name and addresses held back while their certificates are valid:\n");
        for (size_t i = 0; i < n; i++) {
                char until[32];

                format_time(held[i].until, until);
                printf("  %s  %s  %s  held until %s\n", held[i].name, held[i].ipv4, held[i].ipv6, until);
        }
        store_held_free(held, n);
        return 0;
}

static int verb_nodes_list(void) {
        _cleanup_(store_freep) Store *store = NULL;
        StoreNode *nodes = NULL;
        size_t n = 0;
        int r;

        r = open_store(&store);
        if (r < 0)
                return r;
        r = store_list_nodes(store, true, &nodes, &n);
        if (r < 0)
                return r;
        r = arg_json ? print_nodes_json(nodes, n) : print_nodes_table(nodes, n);
        store_nodes_free(nodes, n);
        if (r >= 0 && !arg_json)
                r = print_held(store);
        return r;
}

static int verb_nodes_remove(const char *name) {
        _cleanup_(store_freep) Store *store = NULL;
        int r;

        r = open_store(&store);
        if (r < 0)
                return r;
        r = store_remove_node(store, name);
        if (r == -ENOENT)
                return log_error_errno(r, "No node named '%s' in the mesh.", name);
        if (r < 0)
                return log_error_errno(r, "Failed to remove node '%s': %m", name);
        log_info("Removed node %s.", name);
        return 0;
}

static int verb_nodes_expire(const char *name) {
        _cleanup_(store_freep) Store *store = NULL;
        int r;

        r = open_store(&store);
        if (r < 0)
                return r;
        r = store_expire_node(store, name);
        if (r == -ENOENT)
                return log_error_errno(r, "No node named '%s' in the mesh.", name);
        if (r == -EALREADY)
                return log_error_errno(r, "Node '%s' has expired already.", name);
        if (r < 0)
                return log_error_errno(r, "Failed to expire node '%s': %m", name);
        log_info("Expired node %s: it is out of the mesh until it joins again with its key.", name);
        return 0;
}

static int verb_nodes_renew(const char *name) {
        _cleanup_(store_freep) Store *store = NULL;
        int r;

        r = open_store(&store);
        if (r < 0)
                return r;
        r = store_renew_node(store, name);
        if (r == -ENOENT)
                return log_error_errno(r, "No node named '%s' in the mesh.", name);
        if (r == -EALREADY)
                return log_error_errno(r, "Node '%s' has not expired.", name);
        if (r < 0)
                return log_error_errno(r, "Failed to renew node '%s': %m", name);
        log_info("Renewed node %s: it is back in the mesh with its key and token.", name);
        return 0;
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
                return verb_init();
        if (streq(args[0], "serve") && n == 1)
                return verb_serve();
        if (streq(args[0], "authkey") && n == 2 && streq(args[1], "create"))
                return verb_authkey_create();
        if (streq(args[0], "nodes") && n == 2 && streq(args[1], "list"))
                return verb_nodes_list();
        if (streq(args[0], "nodes") && n == 3 && streq(args[1], "remove"))
                return verb_nodes_remove(args[2]);
        if (streq(args[0], "nodes") && n == 3 && streq(args[1], "expire"))
                return verb_nodes_expire(args[2]);
        if (streq(args[0], "nodes") && n == 3 && streq(args[1], "renew"))
                return verb_nodes_renew(args[2]);

        return log_error_errno(-EINVAL, "Unknown command or wrong arguments: '%s', see --help.", args[0]);
}

int main(int argc, char *argv[]) {
        int r;

        log_setup("meshd-control", LOG_TARGET_AUTO);
        /* everything we write (database, TLS key) is private */
        umask(0077);

        r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
