/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the verbs of meshd-control share: the files of the state directory,
 * the database in it, and the hub's key and endpoint (init and serve). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "log.h"
#include "verbs.h"

#define HUB_KEY_FILE "hub.key"

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

/* Creates hub.key when missing: by init, and on the first serve of a mesh
 * made before the hub existed. Records its public half in the database, so
 * that no node can register with it. */
int hub_key_load(const ControlArgs *a, Store *store, bool create_only, WgKey *ret_private,
                 char ret_public[static WG_KEY_B64_LEN + 1]) {
        _cleanup_free_ char *path = NULL, *stored = NULL;
        WgKey key, pub;
        int r;

        r = state_path(a, HUB_KEY_FILE, &path);
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
