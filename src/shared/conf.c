/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "conf.h"
#include "control-urls.h"
#include "dns-label.h"
#include "key.h"

static const char *const online_policy_table[_ONLINE_POLICY_MAX] = {
        [ONLINE_POLICY_ANY] = "any",
        [ONLINE_POLICY_ALL] = "all",
        [ONLINE_POLICY_REQUIRED] = "required",
        [ONLINE_POLICY_NONE] = "none",
};

const char *online_policy_to_string(OnlinePolicy p) {
        if (p < 0 || p >= _ONLINE_POLICY_MAX)
                return NULL;
        return online_policy_table[p];
}

OnlinePolicy online_policy_from_string(const char *s) {
        if (!s)
                return _ONLINE_POLICY_INVALID;
        for (OnlinePolicy p = 0; p < _ONLINE_POLICY_MAX; p++)
                if (streq(online_policy_table[p], s))
                        return p;
        return _ONLINE_POLICY_INVALID;
}

int parse_boolean(const char *s) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

static const struct {
        const char *suffix;
        uint64_t usec;
} timespan_units[] = {
        { "us", 1 },
        { "usec", 1 },
        { "ms", USEC_PER_MSEC },
        { "msec", USEC_PER_MSEC },
        { "s", USEC_PER_SEC },
        { "sec", USEC_PER_SEC },
        { "second", USEC_PER_SEC },
        { "seconds", USEC_PER_SEC },
        { "m", 60 * USEC_PER_SEC },
        { "min", 60 * USEC_PER_SEC },
        { "minute", 60 * USEC_PER_SEC },
        { "minutes", 60 * USEC_PER_SEC },
        { "h", 3600 * USEC_PER_SEC },
        { "hr", 3600 * USEC_PER_SEC },
        { "hour", 3600 * USEC_PER_SEC },
        { "hours", 3600 * USEC_PER_SEC },
        { "d", 86400 * USEC_PER_SEC },
        { "day", 86400 * USEC_PER_SEC },
        { "days", 86400 * USEC_PER_SEC },
};

/* "1min 30s", "1min30s", "1.5s", "90": a sum of number+unit terms, where a
 * lone number means seconds (like systemd's parse_sec()). */
int parse_timespan_usec(const char *s, uint64_t *ret) {
        uint64_t total = 0;
        bool any = false;

        if (!s || !ret)
                return -EINVAL;

        for (const char *p = s;;) {
                uint64_t whole = 0, frac = 0, frac_div = 1, unit = USEC_PER_SEC;
                bool digits = false;

                p += strspn(p, " \t");
                if (*p == '\0')
                        break;

                /* Explicit, so that "-1" is refused, not wrapped by strtoull(). */
                if (!isdigit((unsigned char) *p) && *p != '.')
                        return -EINVAL;

                for (; isdigit((unsigned char) *p); p++) {
                        uint64_t digit = (uint64_t) (*p - '0');
                        if (whole > (UINT64_MAX - digit) / 10)
                                return -ERANGE;
                        whole = whole * 10 + digit;
                        digits = true;
                }
                if (*p == '.') {
                        p++;
                        for (; isdigit((unsigned char) *p); p++) {
                                /* Nine digits are more than µs precision needs
                                 * for any unit, and keep the products below in range. */
                                if (frac_div < UINT64_C(1000000000)) {
                                        frac = frac * 10 + (uint64_t) (*p - '0');
                                        frac_div *= 10;
                                }
                                digits = true;
                        }
                }
                if (!digits)
                        return -EINVAL;

                p += strspn(p, " \t");
                size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz");
                if (n > 0) {
                        bool found = false;
                        for (size_t i = 0; i < ELEMENTSOF(timespan_units); i++)
                                if (strlen(timespan_units[i].suffix) == n &&
                                    strncmp(p, timespan_units[i].suffix, n) == 0) {
                                        unit = timespan_units[i].usec;
                                        found = true;
                                        break;
                                }
                        if (!found)
                                return -EINVAL;
                        p += n;
                }

                /* "1min30s" is fine, "1..5s" or "5s.3" are not. */
                if (*p != '\0' && !strchr(" \t", *p) && (n == 0 || !isdigit((unsigned char) *p)))
                        return -EINVAL;

                if (whole > UINT64_MAX / unit)
                        return -ERANGE;
                uint64_t term = whole * unit;
                /* frac * unit might overflow; frac < frac_div ≤ 1e9 keeps both parts below 1e18. */
                uint64_t frac_usec = frac * (unit / frac_div) + frac * (unit % frac_div) / frac_div;
                if (term > UINT64_MAX - frac_usec || total > UINT64_MAX - term - frac_usec)
                        return -ERANGE;
                total += term + frac_usec;
                any = true;
        }

        if (!any)
                return -EINVAL;

        *ret = total;
        return 0;
}

void conf_init_defaults(MeshdConfig *c) {
        /* interface stays NULL here (no allocation, so this cannot fail);
         * conf_load() fills in MESHD_DEFAULT_INTERFACE. */
        *c = (MeshdConfig) {
                .listen_port = MESHD_DEFAULT_LISTEN_PORT,
                .backend = WG_BACKEND_AUTO,
                .keep_interface = false,
                .online_policy = ONLINE_POLICY_ANY,
                .online_timeout_usec = MESHD_DEFAULT_ONLINE_TIMEOUT_USEC,
                .dns_port = MESHD_DEFAULT_DNS_PORT,
                .dns_resolved = true,
                .subnet_snat = true,
                .exit_snat = true,
                .exit_fwmark = MESHD_DEFAULT_EXIT_FWMARK,
        };
}

void conf_done(MeshdConfig *c) {
        if (!c)
                return;
        free(c->control_url);
        free(c->control_pin);
        free(c->auth_key_file);
        free(c->hostname);
        free(c->interface);
        strv_free(c->required_peers);
        free(c->cert_reload_command);
        free(c->dns_resolv_conf);
        free(c->advertise_routes);
        free(c->accept_routes);
        free(c->exit_node);
        conf_init_defaults(c);
}

typedef struct ConfParser {
        const char *path;
        FILE *f;
        MeshdConfig *config;
        unsigned line;       /* lines handed to inih so far = inih's lineno */
        unsigned error_line; /* line of the first error we found, 0 if none */
        char *error;         /* its message, without "PATH:LINE: " */
        int error_errno;
} ConfParser;

_printf_(3, 4) static int parser_fail(ConfParser *p, int error, const char *format, ...) {
        va_list ap;

        /* inih goes on after an error; only the first one is reported. */
        if (p->error_line != 0)
                return 0;

        va_start(ap, format);
        if (vasprintf(&p->error, format, ap) < 0)
                p->error = NULL;
        va_end(ap);

        p->error_line = p->line;
        p->error_errno = p->error ? error : -ENOMEM;
        return 0;
}

/* Our own reader, so the handler knows the current line (Debian's inih is
 * built without INI_HANDLER_LINENO) and so that section headers are seen
 * even when no key follows them. */
static char *conf_reader(char *str, int num, void *stream) {
        ConfParser *p = stream;

        if (!fgets(str, num, p->f))
                return NULL;
        p->line++;

        size_t n = strlen(str);
        if (n > 0 && str[n - 1] != '\n' && !feof(p->f)) {
                int c;

                /* inih would treat the rest as a new line; refuse, do not guess. */
                (void) parser_fail(p, -EINVAL, "line too long (at most %d characters)", num - 3);
                while ((c = fgetc(p->f)) != EOF && c != '\n')
                        ;
                str[0] = '\0';
                return str;
        }

        const char *s = str + strspn(str, " \t");
        if (*s == '[') {
                size_t l = strcspn(s + 1, "]");
                if (s[1 + l] == ']' && !(l == 4 && strncmp(s + 1, "Mesh", 4) == 0) &&
                    !(l == 6 && strncmp(s + 1, "Online", 6) == 0) &&
                    !(l == 11 && strncmp(s + 1, "Certificate", 11) == 0) &&
                    !(l == 3 && strncmp(s + 1, "DNS", 3) == 0) && !(l == 6 && strncmp(s + 1, "Routes", 6) == 0))
                        (void) parser_fail(p, -EINVAL, "unknown section [%.*s]", (int) l, s + 1);
        }

        return str;
}

static int set_string(char **field, const char *value) {
        char *s = NULL;

        if (value[0] != '\0') {
                s = strdup(value);
                if (!s)
                        return -ENOMEM;
        }
        free(*field);
        *field = s;
        return 0;
}

static bool interface_name_is_valid(const char *s) {
        size_t n = strlen(s);

        /* What the kernel's dev_valid_name() accepts. */
        if (n == 0 || n >= IFNAMSIZ || streq(s, ".") || streq(s, ".."))
                return false;
        for (const char *c = s; *c; c++)
                if (*c == '/' || *c == ':' || isspace((unsigned char) *c))
                        return false;
        return true;
}

static int parse_required_peers(const char *value, char ***ret, const char **ret_reason) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;

        for (const char *p = value;;) {
                p += strspn(p, " \t");
                if (*p == '\0')
                        break;

                size_t len = strcspn(p, " \t");
                char *name = strndup(p, len);
                if (!name)
                        return -ENOMEM;
                p += len;

                /* Peer names are lower case; let people write "NAS". */
                for (char *c = name; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
                if (!dns_label_is_valid(name)) {
                        free(name);
                        *ret_reason = "not a valid peer name";
                        return -EINVAL;
                }

                char **t = realloc(l, (n + 2) * sizeof(char *));
                if (!t) {
                        free(name);
                        return -ENOMEM;
                }
                l = t;
                l[n++] = name;
                l[n] = NULL;
        }

        *ret = TAKE_PTR(l);
        return 0;
}

/* [Mesh]: one function per key, each as strict as the key's doc in meshd.conf(5) */
typedef int (*MeshKeyParser)(MeshdConfig *c, const char *value, const char **ret_reason);

static int mesh_control_url(MeshdConfig *c, const char *value, const char **ret_reason) {
        /* replicas of one mesh: several, the first preferred (docs/replicas.md) */
        int r = value[0] ? control_urls_parse(value, NULL, ret_reason, NULL) : 0;

        if (r < 0)
                return r;
        return set_string(&c->control_url, value);
}

static int mesh_control_pin(MeshdConfig *c, const char *value, const char **ret_reason) {
        WgKey digest;

        /* base64 of 32 bytes (a SHA-256) has the shape of a WireGuard key. */
        if (value[0] && (strncmp(value, "sha256//", 8) != 0 || key_from_base64(value + 8, &digest) < 0)) {
                *ret_reason = "must be sha256// and the base64 of 32 bytes";
                return -EINVAL;
        }
        return set_string(&c->control_pin, value);
}

static int mesh_auth_key_file(MeshdConfig *c, const char *value, const char **ret_reason) {
        if (value[0] && value[0] != '/') {
                *ret_reason = "must be an absolute path";
                return -EINVAL;
        }
        return set_string(&c->auth_key_file, value);
}

static int mesh_hostname(MeshdConfig *c, const char *value, const char **ret_reason) {
        _cleanup_free_ char *label = NULL;

        if (value[0] && dns_label_from_hostname(value, &label) < 0) {
                *ret_reason = "no usable DNS label in it";
                return -EINVAL;
        }
        return set_string(&c->hostname, value);
}

static int mesh_interface(MeshdConfig *c, const char *value, const char **ret_reason) {
        if (!value[0])
                value = MESHD_DEFAULT_INTERFACE;
        if (!interface_name_is_valid(value)) {
                *ret_reason = "not a valid interface name";
                return -EINVAL;
        }
        return set_string(&c->interface, value);
}

static int mesh_listen_port(MeshdConfig *c, const char *value, const char **ret_reason) {
        char *end;
        unsigned long port;

        if (!value[0]) {
                c->listen_port = MESHD_DEFAULT_LISTEN_PORT;
                return 0;
        }
        errno = 0;
        port = isdigit((unsigned char) value[0]) ? strtoul(value, &end, 10) : ULONG_MAX;
        if (port == ULONG_MAX || errno != 0 || *end != '\0' || port > UINT16_MAX) {
                *ret_reason = "not a port number (0-65535)";
                return -EINVAL;
        }
        c->listen_port = (uint16_t) port;
        return 0;
}

static int mesh_backend(MeshdConfig *c, const char *value, const char **ret_reason) {
        WgBackendType t = value[0] ? wg_backend_type_from_string(value) : WG_BACKEND_AUTO;

        if (t < 0) {
                *ret_reason = "must be auto, kernel or userspace";
                return -EINVAL;
        }
        c->backend = t;
        return 0;
}

static int mesh_keep_interface(MeshdConfig *c, const char *value, const char **ret_reason) {
        int r = value[0] ? parse_boolean(value) : 0;

        if (r < 0) {
                *ret_reason = "not a boolean";
                return -EINVAL;
        }
        c->keep_interface = r;
        return 0;
}

/* Returns -ENOENT for a key this section does not have. */
static int parse_mesh_key(MeshdConfig *c, const char *name, const char *value, const char **ret_reason) {
        /* clang-format off */
        static const struct {
                const char *name;
                MeshKeyParser parse;
        } keys[] = {
                { "ControlURL", mesh_control_url },
                { "ControlPin", mesh_control_pin },
                { "AuthKeyFile", mesh_auth_key_file },
                { "Hostname", mesh_hostname },
                { "Interface", mesh_interface },
                { "ListenPort", mesh_listen_port },
                { "Backend", mesh_backend },
                { "KeepInterface", mesh_keep_interface },
        };
        /* clang-format on */

        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (streq(name, keys[i].name))
                        return keys[i].parse(c, value, ret_reason);
        return -ENOENT;
}

static int parse_online_key(MeshdConfig *c, const char *name, const char *value, const char **ret_reason) {
        int r;

        if (streq(name, "Policy")) {
                OnlinePolicy o = value[0] ? online_policy_from_string(value) : ONLINE_POLICY_ANY;
                if (o < 0) {
                        *ret_reason = "must be any, all, required or none";
                        return -EINVAL;
                }
                c->online_policy = o;
                return 0;
        }

        if (streq(name, "RequiredPeers")) {
                char **l = NULL;

                r = parse_required_peers(value, &l, ret_reason);
                if (r < 0)
                        return r;
                strv_free(c->required_peers);
                c->required_peers = l;
                return 0;
        }

        if (streq(name, "TimeoutSec")) {
                uint64_t t = MESHD_DEFAULT_ONLINE_TIMEOUT_USEC;

                if (value[0] && parse_timespan_usec(value, &t) < 0) {
                        *ret_reason = "not a time span";
                        return -EINVAL;
                }
                c->online_timeout_usec = t;
                return 0;
        }

        return -ENOENT;
}

static int parse_certificate_key(MeshdConfig *c, const char *name, const char *value, const char **ret_reason) {
        if (streq(name, "ReloadCommand"))
                /* Run with /bin/sh -c: any shell line; empty means none. */
                return set_string(&c->cert_reload_command, value);

        return -ENOENT;
}

static int conf_handler(void *userdata, const char *section, const char *name, const char *value) {
        ConfParser *p = userdata;
        const char *reason = NULL;
        int r;

        if (p->error_line != 0)
                return 0;

        if (streq(section, "Mesh"))
                r = parse_mesh_key(p->config, name, value, &reason);
        else if (streq(section, "Online"))
                r = parse_online_key(p->config, name, value, &reason);
        else if (streq(section, "Certificate"))
                r = parse_certificate_key(p->config, name, value, &reason);
        else if (streq(section, "DNS"))
                r = conf_parse_dns_key(p->config, name, value, &reason);
        else if (streq(section, "Routes"))
                r = conf_parse_routes_key(p->config, name, value, &reason);
        else if (section[0] == '\0')
                return parser_fail(p, -EINVAL, "key '%s' outside of any section", name);
        else
                return parser_fail(p, -EINVAL, "unknown section [%s]", section);

        if (r == -ENOENT)
                return parser_fail(p, -EINVAL, "unknown key '%s' in section [%s]", name, section);
        if (r == -ENOMEM)
                return parser_fail(p, -ENOMEM, "out of memory");
        if (r < 0)
                return parser_fail(p, r, "invalid %s= value '%s'%s%s", name, value, reason ? ": " : "",
                                   reason ? reason : "");
        return 1;
}

static int conf_set_error(char **ret_error, const char *format, ...) _printf_(2, 3);
static int conf_set_error(char **ret_error, const char *format, ...) {
        va_list ap;
        char *s = NULL;

        if (!ret_error)
                return 0;

        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                s = NULL;
        va_end(ap);

        *ret_error = s;
        return 0;
}

int conf_load(const char *path, MeshdConfig *c, char **ret_error) {
        _cleanup_(conf_done) MeshdConfig new = {};
        _cleanup_fclose_ FILE *f = NULL;
        int r;

        if (!path || !c)
                return -EINVAL;
        if (ret_error)
                *ret_error = NULL;

        conf_init_defaults(&new);

        f = fopen(path, "re");
        if (!f && errno != ENOENT) {
                r = negative_errno();
                conf_set_error(ret_error, "%s: %s", path, strerror(-r));
                return r;
        }

        if (f) {
                _cleanup_free_ char *error = NULL;
                ConfParser p = {
                        .path = path,
                        .f = f,
                        .config = &new,
                };

                r = ini_parse_stream(conf_reader, &p, conf_handler, &p);
                error = p.error;

                /* fgets() returning NULL looks like EOF to inih; e.g. EISDIR is not. */
                if (ferror(f)) {
                        conf_set_error(ret_error, "%s: read error", path);
                        return -EIO;
                }

                /* inih returns the first line it found wrong; a syntax error
                 * (no '=', no ']') never reaches our handler. */
                if (r > 0 && (p.error_line == 0 || (unsigned) r < p.error_line)) {
                        conf_set_error(ret_error, "%s:%d: syntax error", path, r);
                        return -EINVAL;
                }
                if (p.error_line != 0) {
                        conf_set_error(ret_error, "%s:%u: %s", path, p.error_line, strna(error));
                        return p.error_errno;
                }
                if (r < 0) {
                        conf_set_error(ret_error, "%s: %s", path, strerror(ENOMEM));
                        return -ENOMEM;
                }
        }

        if (new.online_policy == ONLINE_POLICY_REQUIRED && strv_length(new.required_peers) == 0) {
                conf_set_error(ret_error, "%s: Policy=required needs RequiredPeers=", path);
                return -EINVAL;
        }

        if (!new.interface) {
                new.interface = strdup(MESHD_DEFAULT_INTERFACE);
                if (!new.interface)
                        return -ENOMEM;
        }

        conf_done(c);
        *c = new;
        conf_init_defaults(&new);
        return 0;
}
