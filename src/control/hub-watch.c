/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>

#include "hub-watch.h"
#include "hub.h"
#include "log.h"

/* The writer updates SQLite's shared-memory index right after its write
 * to the log: reading at once could still see the old state, so we read
 * a little later, and once more in case the writer was held up (a loaded
 * machine). A commit missed by both is caught by the server's database
 * poll (250 ms). */
#define HUB_WATCH_DELAY_USEC (5 * USEC_PER_MSEC)
#define HUB_WATCH_AGAIN_USEC (50 * USEC_PER_MSEC)

struct HubWatch {
        Hub *hub;
        char *name; /* the database file's name: its -wal, -journal, -shm begin with it */
        sd_event_source *inotify, *soon;
        bool armed, again; /* a sync is due; the one due is the second */
};

static int on_soon(sd_event_source *source, uint64_t usec, void *userdata) {
        HubWatch *w = userdata;

        /* one cheap read of the members counter unless membership changed */
        (void) hub_sync(w->hub);
        if (!w->again) {
                w->again = true;
                if (sd_event_source_set_time_relative(source, HUB_WATCH_AGAIN_USEC) >= 0 &&
                    sd_event_source_set_enabled(source, SD_EVENT_ONESHOT) >= 0)
                        return 0;
        }
        w->armed = w->again = false;
        return 0;
}

static int on_written(sd_event_source *source, const struct inotify_event *ev, void *userdata) {
        HubWatch *w = userdata;
        int r;

        if (!(ev->mask & IN_Q_OVERFLOW) && (ev->len == 0 || strncmp(ev->name, w->name, strlen(w->name)) != 0))
                return 0;
        if (w->armed)
                return 0;
        r = sd_event_source_set_time_relative(w->soon, HUB_WATCH_DELAY_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->soon, SD_EVENT_ONESHOT);
        if (r < 0)
                return log_warning_errno(r, "Failed to schedule a hub sync: %m");
        w->armed = true;
        return 0;
}

int hub_watch_new(sd_event *event, const char *db_path, Hub *hub, HubWatch **ret) {
        _cleanup_(hub_watch_freep) HubWatch *w = NULL;
        _cleanup_free_ char *copy = strdup(db_path), *copy2 = strdup(db_path);
        int r;

        if (!copy || !copy2)
                return log_oom();
        w = calloc(1, sizeof(*w));
        if (!w)
                return log_oom();
        w->hub = hub;
        w->name = strdup(basename(copy));
        if (!w->name)
                return log_oom();
        r = sd_event_add_time_relative(event, &w->soon, CLOCK_MONOTONIC, HUB_WATCH_DELAY_USEC, 1, on_soon, w);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->soon, SD_EVENT_OFF);
        if (r < 0)
                return log_error_errno(r, "Failed to add the hub's sync timer: %m");
        r = sd_event_add_inotify(event, &w->inotify, dirname(copy2), IN_MODIFY | IN_CREATE | IN_MOVED_TO,
                                 on_written, w);
        if (r < 0)
                return log_error_errno(r, "Failed to watch %s for commits: %m", db_path);
        *ret = TAKE_PTR(w);
        return 0;
}

HubWatch *hub_watch_free(HubWatch *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->inotify);
        sd_event_source_disable_unref(w->soon);
        free(w->name);
        free(w);
        return NULL;
}
