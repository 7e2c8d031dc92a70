/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>

#include "dns-resolv-watch.h"
#include "log.h"

/* what replacing, writing or removing a file in a directory looks like */
#define RESOLV_WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)

typedef struct ResolvDir {
        sd_event_source *source;
        char *dir, *name; /* the watched directory and the file name in it */
} ResolvDir;

struct DnsResolvWatch {
        sd_event *event;
        DnsServer *server;
        char *path;
        union sockaddr_union exclude[DNS_SERVER_LISTEN_MAX];
        size_t n_exclude;
        ResolvDir link, target; /* the path itself; what it points to, when a symlink */
};

static void resolv_dir_done(ResolvDir *d) {
        d->source = sd_event_source_disable_unref(d->source);
        d->dir = mfree(d->dir);
        d->name = mfree(d->name);
}

static void resolv_watch_read(DnsResolvWatch *w) {
        _cleanup_free_ union sockaddr_union *upstreams = NULL;
        size_t n = 0;
        int r;

        r = dns_upstreams_from_resolv_conf(w->path, w->exclude, w->n_exclude, &upstreams, &n);
        if (r < 0)
                log_warning_errno(r, "Failed to read the upstream resolvers from %s: %m", w->path);
        (void) dns_server_set_upstreams(w->server, upstreams, n);
        log_debug("Mesh DNS: %zu upstream resolver(s) from %s.", n, w->path);
}

static int resolv_watch_target(DnsResolvWatch *w);

static int on_dir_event(sd_event_source *source, const struct inotify_event *ev, void *userdata) {
        DnsResolvWatch *w = userdata;
        bool ours = ev->mask & IN_Q_OVERFLOW;

        ours = ours || (ev->len > 0 && w->link.name && streq(ev->name, w->link.name));
        ours = ours || (ev->len > 0 && w->target.name && streq(ev->name, w->target.name));
        if (!ours)
                return 0;
        /* a replaced symlink may point somewhere else now */
        (void) resolv_watch_target(w);
        resolv_watch_read(w);
        return 0;
}

/* path as dir + name, watched; *d unchanged when it already watches that. */
static int resolv_dir_watch(DnsResolvWatch *w, ResolvDir *d, const char *path) {
        _cleanup_free_ char *a = strdup(path), *b = strdup(path), *dir = NULL, *name = NULL;
        int r;

        if (!a || !b)
                return -ENOMEM;
        dir = strdup(dirname(a));
        name = strdup(basename(b));
        if (!dir || !name)
                return -ENOMEM;
        if (d->dir && streq(d->dir, dir) && streq(d->name, name))
                return 0;
        resolv_dir_done(d);
        r = sd_event_add_inotify(w->event, &d->source, dir, RESOLV_WATCH_MASK, on_dir_event, w);
        if (r < 0)
                return r;
        d->dir = TAKE_PTR(dir);
        d->name = TAKE_PTR(name);
        return 0;
}

/* The file a symlink leads to, in its own directory; none when the path
 * is no symlink (or leads nowhere yet). */
static int resolv_watch_target(DnsResolvWatch *w) {
        _cleanup_free_ char *real = realpath(w->path, NULL);
        int r;

        if (!real || streq(real, w->path)) {
                resolv_dir_done(&w->target);
                return 0;
        }
        r = resolv_dir_watch(w, &w->target, real);
        if (r < 0)
                return log_warning_errno(r, "Failed to watch %s (the target of %s): %m", real, w->path);
        return 0;
}

int dns_resolv_watch_new(sd_event *event, DnsServer *server, const char *path,
                         const union sockaddr_union *exclude, size_t n_exclude, DnsResolvWatch **ret) {
        _cleanup_(dns_resolv_watch_freep) DnsResolvWatch *w = NULL;
        int r;

        if (!event || !server || !path || n_exclude > DNS_SERVER_LISTEN_MAX || (!exclude && n_exclude > 0) ||
            !ret)
                return -EINVAL;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->event = sd_event_ref(event);
        w->server = server;
        w->path = strdup(path);
        if (!w->path)
                return -ENOMEM;
        if (n_exclude > 0)
                memcpy(w->exclude, exclude, n_exclude * sizeof(exclude[0]));
        w->n_exclude = n_exclude;

        r = resolv_dir_watch(w, &w->link, path);
        if (r < 0)
                log_warning_errno(r, "Failed to watch %s, its resolvers are read only now: %m", path);
        (void) resolv_watch_target(w);
        resolv_watch_read(w);
        *ret = TAKE_PTR(w);
        return 0;
}

DnsResolvWatch *dns_resolv_watch_free(DnsResolvWatch *w) {
        if (!w)
                return NULL;
        resolv_dir_done(&w->link);
        resolv_dir_done(&w->target);
        free(w->path);
        sd_event_unref(w->event);
        return mfree(w);
}
