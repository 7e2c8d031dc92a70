/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every accepted connection, tracked from MHD's notifications, so that one
 * that does not complete a request in time is cut (REQUEST_DEADLINE_USEC). */
#include <stdlib.h>
#include <sys/socket.h>

#include "http-internal.h"
#include "log.h"
#include "time-util.h"

/* A connection must deliver a complete request (headers and body) within
 * this long of being accepted or of its previous request's end, or it is
 * cut: the idle timeout alone would let a slow-loris client that sends a
 * byte every few seconds hold a connection forever. */
#define REQUEST_DEADLINE_USEC (10 * USEC_PER_SEC)

void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                   enum MHD_ConnectionNotificationCode code) {
        Server *s = cls;
        Connection *c = *socket_context;

        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *info =
                        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);

                c = calloc(1, sizeof(*c));
                if (!c) /* then this connection is simply never swept */
                        return;
                *c = (Connection) {
                        .server = s,
                        .fd = info ? info->connect_fd : -EBADF,
                        .since = clock_usec(CLOCK_MONOTONIC),
                        .next = s->connections,
                };
                if (s->connections)
                        s->connections->prev = c;
                s->connections = c;
                *socket_context = c;
                return;
        }

        if (code == MHD_CONNECTION_NOTIFY_CLOSED && c) {
                if (c->prev)
                        c->prev->next = c->next;
                else
                        s->connections = c->next;
                if (c->next)
                        c->next->prev = c->prev;
                free(c);
                *socket_context = NULL;
        }
}

/* Cuts connections that did not complete a request in time (slow-loris,
 * or idle keep-alive). shutdown() rather than close(): the fd stays MHD's,
 * which sees end-of-file and closes the connection itself. */
int on_sweep(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        uint64_t t = clock_usec(CLOCK_MONOTONIC);
        unsigned cut = 0;
        int r;

        for (Connection *c = s->connections; c; c = c->next) {
                if (c->in_request || c->cut || c->fd < 0 || t - c->since < REQUEST_DEADLINE_USEC)
                        continue;
                (void) shutdown(c->fd, SHUT_RDWR);
                c->cut = true;
                cut++;
        }
        if (cut > 0) {
                log_debug("Cut %u connection(s) without a complete request for %u s.", cut,
                          (unsigned) (REQUEST_DEADLINE_USEC / USEC_PER_SEC));
                server_schedule_mhd(s);
        }

        r = sd_event_source_set_time_relative(source, SWEEP_USEC);
        if (r < 0)
                return log_error_errno(r, "Failed to re-arm connection sweep: %m");
        return sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
}
