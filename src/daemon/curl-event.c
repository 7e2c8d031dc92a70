/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "curl-event.h"
#include "log.h"

/* curl wants timers to the millisecond; sd-event's default slack (250 ms)
 * would delay every connect/handshake step. */
#define CURL_TIMER_ACCURACY_USEC USEC_PER_MSEC

struct CurlEvent {
        sd_event *event;
        char *name;
        CURLM *multi;
        sd_event_source *timer;
        CurlEventDone done;
        void *userdata;
        /* the done callback may free us: the free waits for it to return */
        unsigned dispatching;
        bool free_requested;
};

static void curl_event_free_now(CurlEvent *ce) {
        /* curl_multi_cleanup() tells the socket callback to drop each watch */
        if (ce->multi)
                curl_multi_cleanup(ce->multi);
        sd_event_source_disable_unref(ce->timer);
        sd_event_unref(ce->event);
        free(ce->name);
        free(ce);
}

CurlEvent *curl_event_free(CurlEvent *ce) {
        if (!ce)
                return NULL;
        if (ce->dispatching > 0)
                ce->free_requested = true;
        else
                curl_event_free_now(ce);
        return NULL;
}

/* Never from inside curl's callbacks (curl forbids the recursion): only
 * from the event handlers below. */
static void curl_event_action(CurlEvent *ce, curl_socket_t fd, int action) {
        CURLMsg *m;
        int running, left;

        ce->dispatching++;
        if (curl_multi_socket_action(ce->multi, fd, action, &running) != CURLM_OK)
                log_debug("%s: curl_multi_socket_action() failed", ce->name);
        while (!ce->free_requested && (m = curl_multi_info_read(ce->multi, &left)))
                if (m->msg == CURLMSG_DONE)
                        ce->done(ce, m->easy_handle, m->data.result, ce->userdata);
        if (--ce->dispatching == 0 && ce->free_requested)
                curl_event_free_now(ce);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        int action = 0;

        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;
        curl_event_action(userdata, fd, action);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        curl_event_action(userdata, CURL_SOCKET_TIMEOUT, 0);
        return 0;
}

static int watch(CurlEvent *ce, curl_socket_t fd, uint32_t events, sd_event_source *io) {
        int r;

        if (io) {
                r = sd_event_source_set_io_events(io, events);
                return r < 0 ? r : sd_event_source_set_enabled(io, SD_EVENT_ON);
        }
        r = sd_event_add_io(ce->event, &io, fd, events, on_io, ce);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(io, ce->name);
        if (curl_multi_assign(ce->multi, fd, io) != CURLM_OK) {
                sd_event_source_disable_unref(io);
                return -ENOMEM;
        }
        return 0;
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        CurlEvent *ce = userp;
        sd_event_source *io = socketp;
        int r;

        if (what == CURL_POLL_REMOVE) {
                if (io) {
                        sd_event_source_disable_unref(io);
                        (void) curl_multi_assign(ce->multi, fd, NULL);
                }
                return 0;
        }
        r = watch(ce, fd, ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0), io);
        if (r < 0) {
                log_debug_errno(r, "%s: failed to watch fd %d: %m", ce->name, fd);
                return -1;
        }
        return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
        CurlEvent *ce = userp;
        uint64_t now;
        int r;

        if (timeout_ms < 0) {
                (void) sd_event_source_set_enabled(ce->timer, SD_EVENT_OFF);
                return 0;
        }
        r = sd_event_now(ce->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return -1;
        now += (uint64_t) timeout_ms * USEC_PER_MSEC;
        if (ce->timer) {
                r = sd_event_source_set_time(ce->timer, now);
                if (r >= 0)
                        r = sd_event_source_set_enabled(ce->timer, SD_EVENT_ONESHOT);
        } else {
                r = sd_event_add_time(ce->event, &ce->timer, CLOCK_MONOTONIC, now, CURL_TIMER_ACCURACY_USEC,
                                      on_timer, ce);
                if (r >= 0)
                        (void) sd_event_source_set_description(ce->timer, ce->name);
        }
        return r < 0 ? -1 : 0;
}

int curl_event_new(sd_event *event, const char *name, CurlEventDone done, void *userdata, CurlEvent **ret) {
        _cleanup_(curl_event_freep) CurlEvent *ce = NULL;

        if (!event || !name || !done || !ret)
                return -EINVAL;
        ce = calloc(1, sizeof(*ce));
        if (!ce)
                return -ENOMEM;
        ce->event = sd_event_ref(event);
        ce->done = done;
        ce->userdata = userdata;
        ce->name = strdup(name);
        ce->multi = curl_multi_init();
        if (!ce->name || !ce->multi)
                return -ENOMEM;
        if (curl_multi_setopt(ce->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
            curl_multi_setopt(ce->multi, CURLMOPT_SOCKETDATA, ce) != CURLM_OK ||
            curl_multi_setopt(ce->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
            curl_multi_setopt(ce->multi, CURLMOPT_TIMERDATA, ce) != CURLM_OK)
                return -EINVAL;
        *ret = TAKE_PTR(ce);
        return 0;
}

int curl_event_add(CurlEvent *ce, CURL *easy) {
        return curl_multi_add_handle(ce->multi, easy) == CURLM_OK ? 0 : -ENOMEM;
}

void curl_event_remove(CurlEvent *ce, CURL *easy) {
        (void) curl_multi_remove_handle(ce->multi, easy);
}
