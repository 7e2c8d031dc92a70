/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the verbs of meshd-control share: the files of the state directory,
 * the database in it, and the hub's endpoint (init and serve). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "log.h"
#include "verbs.h"

int state_path(const ControlArgs *a, const char *name, char **ret) {
        return asprintf(ret, "%s/%s", a->state_dir, name) < 0 ? log_oom() : 0;
}

int database_location(const ControlArgs *a, char **ret) {
        if (!a->database)
                return state_path(a, STORE_DB_FILE, ret);
        *ret = strdup(a->database);
        return *ret ? 0 : log_oom();
}

int open_store(const ControlArgs *a, Store **ret) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = database_location(a, &path);
        if (r < 0)
                return r;
        r = store_open(path, false, ret); /* PostgreSQL: logged, the password masked */
        if (r == -ENOENT)
                return log_error_errno(
                        r, "No database at %s; run 'meshd-control init' first (or pass --state-dir).", path);
        if (r == -EACCES)
                return log_error_errno(r, "Cannot open %s: %m", path);
        return r;
}

/* "https://HOST[:PORT][/]" → HOST (brackets of an IPv6 literal removed). */
int url_host(const char *url, char **ret) {
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
int hub_endpoint_from_args(const ControlArgs *a, const char *url, char **ret) {
        _cleanup_free_ char *host = NULL, *text = NULL;
        union in_addr_union address;
        int family, r;

        if (a->hub_endpoint) {
                r = hub_endpoint_parse(a->hub_endpoint, ret);
                if (r == -ENOMEM)
                        return log_oom();
                if (r < 0)
                        return log_error_errno(r,
                                               "Invalid --hub-endpoint '%s', expected IP:PORT or [IP6]:PORT "
                                               "(nodes need an address, not a name).",
                                               a->hub_endpoint);
                return 0;
        }
        r = url_host(url, &host);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0 || in_addr_parse(host, &family, &address) < 0)
                return log_error_errno(-EINVAL,
                                       "The host of the URL '%s' is not an IP address; nodes need one "
                                       "to reach the hub: pass --hub-endpoint=IP:PORT (or --no-hub).",
                                       url);
        if (asprintf(&text, family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, HUB_PORT_DEFAULT) < 0)
                return log_oom();
        r = hub_endpoint_parse(text, ret);
        if (r < 0)
                return r == -ENOMEM ? log_oom() : log_error_errno(r, "Invalid hub endpoint '%s'.", text);
        return 0;
}
