/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd-control init: a new mesh's database, keys, certificate and CA. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "challenge.h"
#include "constants.h"
#include "dns-label.h"
#include "ipam.h"
#include "log.h"
#include "mesh-secrets.h"
#include "verbs.h"

#define PORT_DEFAULT CONTROL_PORT_DEFAULT

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

/* What init derives from the arguments before it writes anything. */
typedef struct InitPlan {
        const char *url, *ipv6_range;
        char *default_url, *host, *ula, *hub_endpoint;
} InitPlan;

static void init_plan_done(InitPlan *p) {
        free(p->default_url);
        free(p->host);
        free(p->ula);
        free(p->hub_endpoint);
}

static int init_plan(const ControlArgs *a, InitPlan *p) {
        struct in_addr a4;
        struct in6_addr a6;
        uint8_t len;
        int r;

        p->url = a->url;
        p->ipv6_range = a->ipv6_range;
        if (!p->url) {
                char hostname[256] = {};
                if (gethostname(hostname, sizeof(hostname) - 1) < 0)
                        return log_error_errno(negative_errno(), "Failed to get host name: %m");
                if (asprintf(&p->default_url, "https://%s:" PORT_DEFAULT, hostname) < 0)
                        return log_oom();
                p->url = p->default_url;
        }
        r = url_host(p->url, &p->host);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "Invalid --url '%s', expected https://HOST:PORT.", p->url);
        if (!domain_is_valid(a->domain))
                return log_error_errno(-EINVAL, "Invalid --domain '%s'.", a->domain);
        r = ipam_parse_ipv4_range(a->ipv4_range, &a4, &len);
        if (r < 0)
                return log_error_errno(r, "Invalid --ipv4-range '%s', expected a network prefix /8 … /30.",
                                       a->ipv4_range);
        if (!p->ipv6_range) {
                r = ipam_random_ula(&p->ula);
                if (r < 0)
                        return log_error_errno(r, "Failed to pick an IPv6 prefix: %m");
                p->ipv6_range = p->ula;
        }
        r = ipam_parse_ipv6_range(p->ipv6_range, &a6, &len);
        if (r < 0)
                return log_error_errno(
                        r, "Invalid --ipv6-range '%s', expected a network prefix like fdXX:XXXX:XXXX::/48.",
                        p->ipv6_range);
        if (a->hub)
                return hub_endpoint_from_args(a, p->url, &p->hub_endpoint);
        return 0;
}

/* Everything of the new mesh but the database file itself. */
static int init_write(const ControlArgs *a, const InitPlan *p, Store *store, char **ret_pin) {
        int r;

        r = store_init_settings(store, p->url, a->domain, a->ipv4_range, p->ipv6_range);
        if (r < 0)
                return r;
        if (p->hub_endpoint) {
                r = store_set_setting(store, "hub_endpoint", p->hub_endpoint);
                if (r < 0)
                        return r;
        }
        r = challenge_secret_load(store, &(ChallengeSecret) {});
        if (r < 0)
                return r;
        /* keys, certificate and CA into the database only, so that every
         * replica that serves it has them (docs/replicas.md) */
        return mesh_secrets_create(store, p->host, a->domain, a->ipv4_range, p->ipv6_range, ret_pin);
}

/* Until init succeeds a new PostgreSQL mesh is dropped again, so init
 * can be re-run (the file's counterpart is unlink_new_databasep()). */
static void drop_new_meshp(Store **store) {
        if (*store)
                (void) store_destroy(*store);
}

/* The new database; messages name it with the password masked. */
static int init_open_store(const char *database, Store **ret) {
        _cleanup_free_ char *masked = db_mask_url(database);
        int r;

        if (!masked)
                return log_oom();
        r = store_open(database, true, ret);
        if (r == -EEXIST)
                return log_error_errno(r, "Database %s already %s, refusing to overwrite an existing mesh.",
                                       masked, db_is_url(database) ? "holds a mesh" : "exists");
        if (r == -ECONNREFUSED)
                return r; /* logged, with libpq's reason */
        if (r < 0)
                return log_error_errno(r, "Failed to create database %s: %m", masked);
        return 0;
}

int verb_init(const ControlArgs *a) {
        _cleanup_(init_plan_done) InitPlan p = {};
        _cleanup_free_ char *pin = NULL, *database = NULL;
        _cleanup_(unlink_new_databasep) char *db_path = NULL;
        _cleanup_(store_freep) Store *store = NULL;
        _cleanup_(drop_new_meshp) Store *new_mesh = NULL; /* before store is freed */
        int r;

        r = init_plan(a, &p);
        if (r < 0)
                return r;

        if (mkdir(a->state_dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Failed to create %s: %m", a->state_dir);

        r = database_location(a, &database);
        if (r < 0)
                return r;
        r = init_open_store(database, &store);
        if (r == -EEXIST)
                return r; /* someone else's: never removed */
        if (!db_is_url(database))
                db_path = TAKE_PTR(database); /* removed on failure from here on */
        if (r < 0)
                return r;
        if (!db_path)
                new_mesh = store;

        r = init_write(a, &p, store, &pin);
        if (r < 0)
                return r;

        db_path = mfree(db_path); /* done: keep it */
        new_mesh = NULL;
        log_info("Created mesh in %s: URL %s, domain %s, %s, %s, hub %s.", a->state_dir, p.url, a->domain,
                 a->ipv4_range, p.ipv6_range, strna(p.hub_endpoint));
        puts(pin);
        return 0;
}
