/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api-limits.h"
#include "api-service.h"
#include "api-socket.h"
#include "api.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "varlink.h"

/* Local calls are tiny (the largest is Up with a URL and a key, or a
 * WaitOnline naming thousands of peers); a message without its end by this
 * point closes the connection, and no more is read while this much waits. */
#define CONNECTION_INPUT_MAX (256U * 1024U)
#define READ_CHUNK 65536U

#define ERROR_METHOD_NOT_FOUND VARLINK_SERVICE ".MethodNotFound"
#define ERROR_METHOD_NOT_IMPLEMENTED VARLINK_SERVICE ".MethodNotImplemented"
#define ERROR_INTERNAL VARLINK_SERVICE ".InternalError"
#define ERROR_PERMISSION_DENIED "io.meshd.PermissionDenied"
#define ERROR_TOO_MANY_CONNECTIONS "io.meshd.TooManyConnections"

typedef struct ApiConnection ApiConnection;

struct ApiServer {
        sd_event *event;
        char *path;
        dev_t socket_dev; /* to remove only our own socket on free */
        ino_t socket_ino;
        int fd;
        sd_event_source *listen_source;
        bool accept_paused;

        const ApiMethod *methods;
        size_t n_methods;
        char *interface_name;
        char *description;
        void *userdata;

        ApiConnection *connections;
        unsigned n_connections;
        /* One line per interval about refused connections, not one each:
         * the refusals are what a flood looks like. */
        ApiRateLimit refuse_log;
        ApiRateLimit drop_log;
        uint64_t drain_timeout_usec;

        /* A handler may free the server; the free waits until the
         * connection code that called the handler has unwound. */
        unsigned dispatching;
        bool free_requested;
};

struct ApiConnection {
        ApiServer *server;
        ApiConnection *prev, *next;
        int fd;
        uid_t uid;
        pid_t pid; /* at connect time, for the log */
        sd_event_source *io;
        /* Runs the connection again after a reply that came from outside
         * its own handler (a timer, another connection's call). */
        sd_event_source *defer;

        VarlinkBuffer input;
        bool read_eof;

        char *output;
        size_t output_size; /* bytes queued, from output_offset on */
        size_t output_offset;
        size_t output_allocated;
        /* Input is held back because the output is over the soft limit;
         * the connection runs again once the client has read enough. */
        bool output_blocked;
        /* Armed while the output is over the soft limit; drops the
         * connection when it stays there (API_OUTPUT_DRAIN_USEC). */
        sd_event_source *drain_timer;
        /* Set where the connection cannot be freed at once (a reply queued
         * from another connection's handler); its own code then drops it. */
        const char *drop_reason;

        /* The call whose reply is outstanding; input waits behind it, so
         * replies go out in the order of the calls. Holds a reference. */
        ApiCall *current;
};

struct ApiCall {
        unsigned n_ref;
        ApiConnection *connection; /* set while the call is its connection's current one */
        uid_t uid;
        char *method;
        bool oneway;
        bool replied;
        bool disconnected;
};

/* ---- calls */

static int call_new(ApiConnection *conn, const char *method, bool oneway, ApiCall **ret) {
        ApiCall *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->method = strdup(method);
        if (!c->method) {
                free(c);
                return -ENOMEM;
        }
        c->n_ref = 1;
        c->uid = conn->uid;
        c->oneway = oneway;
        c->connection = oneway ? NULL : conn;
        *ret = c;
        return 0;
}

ApiCall *api_call_ref(ApiCall *c) {
        if (c)
                c->n_ref++;
        return c;
}

ApiCall *api_call_unref(ApiCall *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        free(c->method);
        free(c);
        return NULL;
}

uid_t api_call_get_peer_uid(const ApiCall *c) {
        return c ? c->uid : (uid_t) -1;
}

bool api_call_is_connected(const ApiCall *c) {
        /* A oneway call never had anyone to answer: nothing to keep it for. */
        return c && !c->oneway && !c->disconnected;
}

/* ---- connections */

static void connection_free(ApiConnection *conn) {
        ApiServer *s;

        if (!conn)
                return;
        s = conn->server;

        if (conn->current) {
                /* The handler may still hold the call: its replies become no-ops. */
                conn->current->connection = NULL;
                conn->current->disconnected = true;
                conn->current = api_call_unref(conn->current);
        }

        if (conn->prev)
                conn->prev->next = conn->next;
        else
                s->connections = conn->next;
        if (conn->next)
                conn->next->prev = conn->prev;
        s->n_connections--;

        sd_event_source_disable_unref(conn->io);
        sd_event_source_disable_unref(conn->defer);
        sd_event_source_disable_unref(conn->drain_timer);
        safe_close(conn->fd);
        varlink_buffer_done(&conn->input);
        free(conn->output);
        free(conn);

        /* A slot is free again after EMFILE or the connection cap. */
        if (s->accept_paused && s->listen_source && !s->free_requested &&
            sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON) >= 0)
                s->accept_paused = false;
}

static int connection_queue(ApiConnection *conn, const char *data, size_t len) {
        /* Input is held back above the soft limit, so only one reply can
         * take the queue past it; one this large no client could read. */
        if (len > API_OUTPUT_HARD_MAX - conn->output_size)
                return -ENOBUFS;
        if (conn->output_offset > 0 && conn->output_size == 0)
                conn->output_offset = 0;
        if (conn->output_offset + conn->output_size + len > conn->output_allocated) {
                size_t a;
                char *p;

                /* Move the unsent tail to the front before growing. */
                if (conn->output_offset > 0) {
                        memmove(conn->output, conn->output + conn->output_offset, conn->output_size);
                        conn->output_offset = 0;
                }
                a = MAX(conn->output_allocated * 2, conn->output_size + len);
                if (a > conn->output_allocated) {
                        p = realloc(conn->output, a);
                        if (!p)
                                return -ENOMEM;
                        conn->output = p;
                        conn->output_allocated = a;
                }
        }
        memcpy(conn->output + conn->output_offset + conn->output_size, data, len);
        conn->output_size += len;
        return 0;
}

/* Queues the reply on the call's connection and detaches the call from it. */
static int call_reply_internal(ApiCall *c, cJSON *parameters, const char *error) {
        _cleanup_json_ cJSON *p = parameters;
        _cleanup_free_ char *text = NULL;
        ApiConnection *conn;
        size_t len;
        int r;

        if (!c)
                return -EINVAL;
        if (c->replied || c->oneway)
                return 0;
        c->replied = true;

        conn = c->connection;
        if (!conn)
                return 0; /* the client hung up */

        if (!p) {
                p = cJSON_CreateObject();
                if (!p)
                        return -ENOMEM;
        }
        r = varlink_format_reply(p, error, &text, &len);
        if (r < 0)
                return log_debug_errno(r, "Failed to format reply to %s: %m", c->method);

        r = connection_queue(conn, text, len);
        if (r == -ENOBUFS) {
                /* Nobody can get this reply: drop the connection rather than
                 * leave the client waiting for one that never comes. */
                c->connection = NULL;
                conn->drop_reason = "reply too large to queue";
                (void) sd_event_source_set_enabled(conn->defer, SD_EVENT_ONESHOT);
                return r;
        }
        if (r < 0)
                return r;

        /* The connection's own code (deferred) writes it and moves on to the
         * next call; doing that here could free the connection under a
         * caller's feet, e.g. a handler of another connection. */
        c->connection = NULL;
        if (conn->current == c)
                conn->current = api_call_unref(conn->current);
        (void) sd_event_source_set_enabled(conn->defer, SD_EVENT_ONESHOT);
        return 0;
}

int api_call_reply(ApiCall *c, cJSON *parameters) {
        return call_reply_internal(c, parameters, NULL);
}

int api_call_reply_error(ApiCall *c, const char *error, cJSON *parameters) {
        if (!error) {
                cJSON_Delete(parameters);
                return -EINVAL;
        }
        return call_reply_internal(c, parameters, error);
}

int api_call_reply_errorf(ApiCall *c, const char *error, const char *format, ...) {
        _cleanup_free_ char *m = NULL;
        cJSON *p;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&m, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;

        p = cJSON_CreateObject();
        if (!p || !cJSON_AddStringToObject(p, "message", m)) {
                cJSON_Delete(p);
                return -ENOMEM;
        }
        return api_call_reply_error(c, error, p);
}

static const ApiMethod *server_find_method(ApiServer *s, const char *name) {
        for (size_t i = 0; i < s->n_methods; i++)
                if (streq(s->methods[i].name, name))
                        return &s->methods[i];
        return NULL;
}

static int connection_reply_not_implemented(ApiConnection *conn, const cJSON *msg) {
        _cleanup_(api_call_unrefp) ApiCall *call = NULL;
        const char *method = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "method"));
        int r;

        if (!method)
                return -EBADMSG;
        r = call_new(conn, method, /* oneway= */ false, &call);
        if (r < 0)
                return r;
        conn->current = api_call_ref(call);
        return api_call_reply_error(call, ERROR_METHOD_NOT_IMPLEMENTED,
                                    json_object_with_string("method", method));
}

static int connection_dispatch(ApiConnection *conn, const cJSON *msg) {
        ApiServer *s = conn->server;
        _cleanup_(api_call_unrefp) ApiCall *call = NULL;
        const cJSON *parameters, *oneway;
        const ApiMethod *m;
        const char *method;
        cJSON *empty = NULL;
        int r;

        r = varlink_parse_call(msg, &method, &parameters);
        if (r == -EOPNOTSUPP)
                /* "more"/"upgrade": a well-formed call we cannot serve. */
                return connection_reply_not_implemented(conn, msg);
        if (r < 0)
                return r;
        oneway = cJSON_GetObjectItemCaseSensitive(msg, "oneway");

        r = call_new(conn, method, cJSON_IsTrue(oneway), &call);
        if (r < 0)
                return r;
        if (!call->oneway)
                conn->current = api_call_ref(call);

        if (!parameters) {
                parameters = empty = cJSON_CreateObject();
                if (!empty)
                        return -ENOMEM;
        }

        log_debug("API call %s from uid %u", method, (unsigned) conn->uid);

        if (streq(method, VARLINK_SERVICE ".GetInfo"))
                r = api_service_reply_get_info(call, s->interface_name);
        else if (streq(method, VARLINK_SERVICE ".GetInterfaceDescription"))
                r = api_service_reply_get_interface_description(call, parameters, s->interface_name,
                                                                s->description);
        else if (!(m = server_find_method(s, method)))
                r = api_call_reply_error(call, ERROR_METHOD_NOT_FOUND,
                                         json_object_with_string("method", method));
        else if (m->root_only && conn->uid != 0)
                r = api_call_reply_errorf(call, ERROR_PERMISSION_DENIED, "%s is only allowed for root", method);
        else {
                r = m->handler(call, parameters, s->userdata);
                if (r < 0)
                        log_error_errno(r, "Method %s failed: %m", method);
                else if (!call->oneway && !call->replied && call->n_ref <= 2)
                        /* Nobody kept the call, so nobody could ever answer it. */
                        r = log_error_errno(-EINVAL, "Method %s neither replied nor kept the call", method);
        }
        cJSON_Delete(empty);

        if (r < 0 && !call->replied)
                (void) api_call_reply_errorf(call, ERROR_INTERNAL, "%s failed: %s", method, strerror(-r));
        return 0;
}

static int connection_read(ApiConnection *conn) {
        char buf[READ_CHUNK];
        ssize_t n;

        n = read(conn->fd, buf, sizeof(buf));
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                return -errno;
        }
        if (n == 0) {
                conn->read_eof = true;
                return 0;
        }
        return varlink_buffer_append(&conn->input, buf, (size_t) n);
}

static int connection_write(ApiConnection *conn) {
        while (conn->output_size > 0) {
                ssize_t n = send(conn->fd, conn->output + conn->output_offset, conn->output_size,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        return -errno;
                }
                conn->output_offset += (size_t) n;
                conn->output_size -= (size_t) n;
        }
        conn->output_offset = 0;
        return 0;
}

/* Processes what is buffered: complete calls in order, one outstanding
 * call at a time. Returns <0 when the connection must be closed. */
static int connection_process(ApiConnection *conn) {
        ApiServer *s = conn->server;
        int r;

        conn->output_blocked = false;
        while (!conn->current && !s->free_requested) {
                _cleanup_json_ cJSON *msg = NULL;

                /* A client that sends calls without reading the replies
                 * would otherwise make us queue output without bound. */
                if (conn->output_size >= API_OUTPUT_SOFT_MAX) {
                        conn->output_blocked = true;
                        break;
                }

                r = varlink_buffer_pop(&conn->input, &msg);
                if (r < 0)
                        return log_debug_errno(r, "Bad message from API client, closing: %m");
                if (r == 0)
                        break;
                r = connection_dispatch(conn, msg);
                if (r < 0)
                        return log_debug_errno(r, "Cannot process API call, closing: %m");
        }
        if (!conn->current && !conn->output_blocked && conn->input.size >= CONNECTION_INPUT_MAX)
                return log_debug_errno(-EMSGSIZE, "API message too large, closing connection");
        return 0;
}

static int connection_update_events(ApiConnection *conn) {
        uint32_t events = 0;

        /* Keep reading while a call is outstanding, a little, so a
         * half-close is seen; a full close also shows as EPOLLHUP
         * regardless. Nothing while the client does not read its replies. */
        if (!conn->read_eof && conn->output_size < API_OUTPUT_SOFT_MAX &&
            conn->input.size < (conn->current ? API_INPUT_PENDING_MAX : CONNECTION_INPUT_MAX))
                events |= EPOLLIN;
        if (conn->output_size > 0)
                events |= EPOLLOUT;
        return sd_event_source_set_io_events(conn->io, events);
}

/* One warning naming the client, then the connection is gone; what was
 * queued for it is freed with it. */
static void connection_drop(ApiConnection *conn, const char *reason) {
        ApiServer *s = conn->server;
        unsigned suppressed = 0;
        uint64_t now = 0;

        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        if (api_rate_limit_test(&s->drop_log, now, &suppressed))
                log_warning("Dropping API connection of uid %u pid %u: %s (%zu bytes of replies unread)%s",
                            (unsigned) conn->uid, (unsigned) conn->pid, reason, conn->output_size,
                            suppressed > 0 ? "; more were dropped, not logged" : "");
        connection_free(conn);
}

static int on_connection_drain_timeout(sd_event_source *es, uint64_t usec, void *userdata) {
        connection_drop(userdata, "client does not read its replies");
        return 0;
}

/* Arms the drain deadline while the output is over the soft limit, and
 * lets held-back calls run again once it is below. */
static int connection_update_output(ApiConnection *conn) {
        int enabled = SD_EVENT_OFF, r;

        if (conn->output_size < API_OUTPUT_SOFT_MAX) {
                if (conn->output_blocked)
                        (void) sd_event_source_set_enabled(conn->defer, SD_EVENT_ONESHOT);
                return conn->drain_timer ? sd_event_source_set_enabled(conn->drain_timer, SD_EVENT_OFF) : 0;
        }

        if (!conn->drain_timer) {
                r = sd_event_add_time_relative(conn->server->event, &conn->drain_timer, CLOCK_MONOTONIC,
                                               conn->server->drain_timeout_usec, 0, on_connection_drain_timeout,
                                               conn);
                if (r >= 0)
                        (void) sd_event_source_set_description(conn->drain_timer, "api-connection-drain");
                return r;
        }
        r = sd_event_source_get_enabled(conn->drain_timer, &enabled);
        if (r < 0 || enabled != SD_EVENT_OFF)
                return r;
        r = sd_event_source_set_time_relative(conn->drain_timer, conn->server->drain_timeout_usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(conn->drain_timer, SD_EVENT_ONESHOT);
}

static void server_free_now(ApiServer *s);

/* Everything a connection does after an event; it may free the connection. */
static void connection_run(ApiConnection *conn, uint32_t revents) {
        ApiServer *s = conn->server;
        bool hangup = false;
        int r = 0;

        if (conn->drop_reason) {
                connection_drop(conn, conn->drop_reason);
                return;
        }

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                r = connection_read(conn);
        /* A full close of the peer: nobody is left to answer. Calls already
         * buffered still run (a oneway "Down" then close is legitimate). */
        if (revents & (EPOLLHUP | EPOLLERR))
                hangup = true;

        s->dispatching++;
        if (r >= 0)
                r = connection_process(conn);
        s->dispatching--;
        if (s->free_requested) {
                if (s->dispatching == 0)
                        server_free_now(s);
                return;
        }

        /* Also before closing for a bad message: the calls before it were
         * fine and their answers are queued. */
        if (!hangup) {
                int k = connection_write(conn);
                if (r >= 0)
                        r = k;
        }
        if (r < 0 || hangup) {
                if (r < 0 && r != -EMSGSIZE && r != -EBADMSG)
                        log_debug_errno(r, "API connection failed: %m");
                connection_free(conn);
                return;
        }

        /* Half-closed by the client after its calls: close once they are
         * all answered and the answers are out. */
        if (conn->read_eof && !conn->current && conn->output_size == 0) {
                connection_free(conn);
                return;
        }

        r = connection_update_output(conn);
        if (r >= 0)
                r = connection_update_events(conn);
        if (r < 0) {
                log_debug_errno(r, "Failed to update API connection events: %m");
                connection_free(conn);
                return;
        }
}

static int on_connection_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        connection_run(userdata, revents);
        return 0;
}

static int on_connection_defer(sd_event_source *es, void *userdata) {
        connection_run(userdata, 0);
        return 0;
}

static void server_pause_accept(ApiServer *s) {
        if (sd_event_source_set_enabled(s->listen_source, SD_EVENT_OFF) >= 0)
                s->accept_paused = true;
}

static unsigned server_count_connections(ApiServer *s, uid_t uid) {
        unsigned n = 0;

        for (ApiConnection *c = s->connections; c; c = c->next)
                if (c->uid == uid)
                        n++;
        return n;
}

/* Tells the client why before closing, so meshctl can say it, and logs
 * one line per interval however many are refused. */
static void server_refuse(ApiServer *s, int fd, const struct ucred *ucred, int reason) {
        _cleanup_free_ char *text = NULL;
        unsigned suppressed = 0;
        uint64_t now = 0;
        size_t len;
        cJSON *p;

        p = json_object_with_string("message", api_admission_reason(reason));
        if (p && varlink_format_reply(p, ERROR_TOO_MANY_CONNECTIONS, &text, &len) >= 0)
                /* Into an empty socket buffer: never blocks, a short write is moot. */
                (void) send(fd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        cJSON_Delete(p);

        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        if (api_rate_limit_test(&s->refuse_log, now, &suppressed))
                log_warning("Refusing API connection of uid %u pid %u: %s (%u open, %u refused since the last "
                            "message)",
                            (unsigned) ucred->uid, (unsigned) ucred->pid, api_admission_reason(reason),
                            s->n_connections, suppressed);
}

static int on_accept(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        ApiServer *s = userdata;
        _cleanup_close_ int cfd = -EBADF;
        struct ucred ucred = {};
        socklen_t sl = sizeof(ucred);
        ApiConnection *conn;
        int r;

        cfd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
                if (errno == EMFILE || errno == ENFILE) {
                        /* Level-triggered listening would spin: wait for a close. */
                        log_warning_errno(errno, "Cannot accept API connection: %m");
                        if (s->n_connections > 0)
                                server_pause_accept(s);
                }
                return 0;
        }

        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &ucred, &sl) < 0) {
                log_debug_errno(errno, "SO_PEERCRED failed, refusing API connection: %m");
                return 0;
        }

        r = api_admission_check(ucred.uid, s->n_connections, server_count_connections(s, ucred.uid));
        if (r < 0) {
                server_refuse(s, cfd, &ucred, r);
                return 0;
        }

        conn = calloc(1, sizeof(*conn));
        if (!conn) {
                log_oom();
                return 0;
        }
        conn->server = s;
        conn->fd = TAKE_FD(cfd);
        conn->uid = ucred.uid;
        conn->pid = ucred.pid;
        conn->next = s->connections;
        if (s->connections)
                s->connections->prev = conn;
        s->connections = conn;
        s->n_connections++;

        r = sd_event_add_io(s->event, &conn->io, conn->fd, EPOLLIN, on_connection_io, conn);
        if (r >= 0)
                r = sd_event_add_defer(s->event, &conn->defer, on_connection_defer, conn);
        if (r >= 0)
                r = sd_event_source_set_enabled(conn->defer, SD_EVENT_OFF);
        if (r < 0) {
                log_debug_errno(r, "Failed to watch API connection: %m");
                connection_free(conn);
                return 0;
        }
        (void) sd_event_source_set_description(conn->io, "api-connection");
        (void) sd_event_source_set_description(conn->defer, "api-connection-defer");

        log_debug("API connection from uid %u", (unsigned) conn->uid);
        return 0;
}

static int server_listen(ApiServer *s) {
        struct stat st;

        s->fd = api_socket_listen(s->path, &st);
        if (s->fd < 0)
                return s->fd;
        s->socket_dev = st.st_dev;
        s->socket_ino = st.st_ino;
        return 0;
}

int api_server_new(sd_event *event, const char *path, const ApiMethod *methods, size_t n_methods,
                   const char *interface_name, const char *description, void *userdata, ApiServer **ret) {
        _cleanup_(api_server_freep) ApiServer *s = NULL;
        int r;

        if (!event || !path || (!methods && n_methods > 0) || !interface_name || !description || !ret)
                return -EINVAL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fd = -EBADF;
        s->event = sd_event_ref(event);
        s->methods = methods;
        s->n_methods = n_methods;
        s->refuse_log = (ApiRateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 1 };
        s->drop_log = (ApiRateLimit) { .interval_usec = 10 * USEC_PER_SEC, .burst = 10 };
        s->drain_timeout_usec = API_OUTPUT_DRAIN_USEC;
        s->userdata = userdata;
        s->path = strdup(path);
        s->interface_name = strdup(interface_name);
        s->description = strdup(description);
        if (!s->path || !s->interface_name || !s->description)
                return -ENOMEM;

        r = server_listen(s);
        if (r < 0)
                return log_debug_errno(r, "Failed to listen on %s: %m", path);

        r = sd_event_add_io(event, &s->listen_source, s->fd, EPOLLIN, on_accept, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->listen_source, "api-listen");

        *ret = TAKE_PTR(s);
        return 0;
}

void api_server_set_drain_timeout(ApiServer *s, uint64_t usec) {
        if (s)
                s->drain_timeout_usec = usec;
}

static void server_free_now(ApiServer *s) {
        struct stat st;

        while (s->connections)
                connection_free(s->connections);
        sd_event_source_disable_unref(s->listen_source);
        s->listen_source = NULL;
        if (s->fd >= 0 && s->path && stat(s->path, &st) >= 0 && st.st_dev == s->socket_dev &&
            st.st_ino == s->socket_ino)
                (void) unlink(s->path);
        safe_close(s->fd);
        sd_event_unref(s->event);
        free(s->path);
        free(s->interface_name);
        free(s->description);
        free(s);
}

ApiServer *api_server_free(ApiServer *s) {
        if (!s)
                return NULL;
        if (s->dispatching > 0) {
                s->free_requested = true;
                return NULL;
        }
        server_free_now(s);
        return NULL;
}
