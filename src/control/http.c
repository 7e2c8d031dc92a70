/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The server's glue: libmicrohttpd driven by sd-event through its epoll
 * fd, the routes to the API's handlers (api-*.c), signals, and the
 * Server's lifetime. */
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "dns-server.h"
#include "http-internal.h"
#include "log.h"
#include "mesh-secrets.h"
#include "register-batch.h"
#include "time-util.h"
#include "tls.h"

#define BODY_MAX (1024 * 1024)
/* longer than a long-poll, so MHD never cuts one that is being answered */
#define CONNECTION_TIMEOUT_SEC 90
#define CONNECTION_LIMIT_MAX 16384
#define CONNECTION_MEMORY_LIMIT (8 * 1024)
#define UNFINISHED_POLL_MSEC 10

static enum MHD_Result request_dispatch(Request *req) {
        static const struct {
                const char *path;
                const char *method;
                enum MHD_Result (*handler)(Request *req);
        } routes[] = {
                { "/v1/challenge", MHD_HTTP_METHOD_POST, handle_challenge },
                { "/v1/register", MHD_HTTP_METHOD_POST, handle_register },
                { "/v1/netmap", MHD_HTTP_METHOD_GET, handle_netmap },
                { "/v1/endpoints", MHD_HTTP_METHOD_POST, handle_endpoints },
                { "/v1/routes", MHD_HTTP_METHOD_POST, handle_routes },
                { "/v1/paths", MHD_HTTP_METHOD_POST, handle_paths },
                { "/v1/cert", MHD_HTTP_METHOD_POST, handle_cert },
                { "/v1/ca", MHD_HTTP_METHOD_GET, handle_ca },
                { "/v1/relay", MHD_HTTP_METHOD_GET, handle_relay },
        };

        if (req->conn)
                req->conn->in_request = true;

        if (req->too_large)
                return request_reply_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "body larger than 1 MiB");

        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                if (!streq(req->path, routes[i].path))
                        continue;
                if (!streq(req->method, routes[i].method))
                        return request_reply_error(req, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
                return routes[i].handler(req);
        }
        return request_reply_error(req, MHD_HTTP_NOT_FOUND, "no such endpoint");
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *connection, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
        Server *s = cls;
        Request *req = *con_cls;

        if (!req) {
                const union MHD_ConnectionInfo *info;
                const char *length;
                uint64_t n;

                req = calloc(1, sizeof(*req));
                if (!req)
                        return MHD_NO;
                req->server = s;
                req->connection = connection;
                req->node_id = -1;
                info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
                req->conn = info ? info->socket_context : NULL;
                req->method = strdup(method);
                req->path = strdup(url);
                *con_cls = req;
                if (!req->method || !req->path)
                        return MHD_NO;

                /* refuse a declared large body before reading any of it */
                length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (length && parse_uint64(length, &n) >= 0 && n > BODY_MAX) {
                        req->too_large = true;
                        return request_dispatch(req);
                }
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;

                *upload_data_size = 0;
                if (req->status != 0 || req->too_large)
                        return MHD_YES;
                /* A body without Content-Length that grows past the limit:
                 * reading the rest only to answer 413 would let a client
                 * stream at full speed until the request deadline, so
                 * the connection goes now. */
                if (req->body_size + n > BODY_MAX) {
                        log_debug("%s %s: body larger than 1 MiB, closing the connection.", req->method,
                                  req->path);
                        return MHD_NO;
                }
                char *b = realloc(req->body, req->body_size + n + 1);
                if (!b)
                        return MHD_NO;
                memcpy(b + req->body_size, upload_data, n);
                req->body_size += n;
                b[req->body_size] = 0;
                req->body = b;
                return MHD_YES;
        }

        if (req->status != 0)
                return MHD_YES;
        return request_dispatch(req);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
        Server *s = cls;
        Request *req = *con_cls;
        const union MHD_ConnectionInfo *info;
        char peer[ENDPOINT_STRLEN] = "?";

        if (!req)
                return;
        *con_cls = NULL;
        if (req->status == MHD_HTTP_SWITCHING_PROTOCOLS && req->relay_name && s->n_unfinished > 0)
                s->n_unfinished--;
        if (req->conn) {
                req->conn->in_request = false;
                req->conn->since = clock_usec(CLOCK_MONOTONIC);
        }

        if (log_get_max_level() >= LOG_DEBUG) {
                info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
                if (info && info->client_addr)
                        (void) endpoint_format((const union sockaddr_union *) info->client_addr, peer,
                                               sizeof(peer));
                if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
                        log_debug("%s %s %s → %u", peer, strna(req->method), strna(req->path), req->status);
                else
                        log_debug("%s %s %s → %u, terminated (%i)", peer, strna(req->method), strna(req->path),
                                  req->status, (int) toe);
        }
        request_free(req);
}

_printf_(2, 0) static void on_mhd_log(void *cls, const char *format, va_list ap) {
        Server *s = cls;
        char buf[512];
        size_t n;

        (void) vsnprintf(buf, sizeof(buf), format, ap);
        n = strlen(buf);
        while (n > 0 && buf[n - 1] == '\n')
                buf[--n] = 0;
        /* once serving, MHD mostly reports clients that failed a handshake */
        log_full(s->running ? LOG_DEBUG : LOG_WARNING, "libmicrohttpd: %s", buf);
}

/* ---- event loop glue ---- */

static void server_run_mhd(Server *s) {
        MHD_UNSIGNED_LONG_LONG timeout_ms;
        int r;

        if (!s->daemon)
                return;
        s->in_mhd_run = true;
        (void) MHD_run(s->daemon);
        s->in_mhd_run = false;
        if (s->n_closing > 0) {
                for (size_t i = 0; i < s->n_closing; i++)
                        (void) MHD_upgrade_action(s->closing[i], MHD_UPGRADE_ACTION_CLOSE);
                s->n_closing = 0;
                (void) MHD_run(s->daemon);
        }

        /* MHD 0.9.75 with TLS and epoll finishes an upgraded connection that
         * the application let go only in a later MHD_run(), and nothing in
         * its epoll set wakes us for it: the TLS connection would stay open
         * until some other connection's traffic. So while one is pending,
         * MHD runs again soon. */
        if (MHD_get_timeout(s->daemon, &timeout_ms) != MHD_YES)
                timeout_ms = UINT64_MAX;
        if (s->n_unfinished > 0)
                timeout_ms = MIN(timeout_ms, (MHD_UNSIGNED_LONG_LONG) UNFINISHED_POLL_MSEC);
        if (timeout_ms != UINT64_MAX) {
                r = sd_event_source_set_time_relative(s->mhd_timer, (uint64_t) timeout_ms * USEC_PER_MSEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->mhd_timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_source_set_enabled(s->mhd_timer, SD_EVENT_OFF);
        if (r < 0)
                (void) log_warning_errno(r, "Failed to arm libmicrohttpd timer: %m");
}

/* MHD processes resumed connections in its next MHD_run(). */
void server_schedule_mhd(Server *s) {
        int r;

        r = sd_event_source_set_time_relative(s->mhd_timer, 0);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->mhd_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                (void) log_warning_errno(r, "Failed to arm libmicrohttpd timer: %m");
}

static int on_mhd_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        server_run_mhd(userdata);
        return 0;
}

static int on_mhd_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        server_run_mhd(userdata);
        return 0;
}

static int on_signal(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata) {
        Server *s = userdata;

        log_info("Received SIG%s, shutting down.", sigabbrev_np(si->ssi_signo) ?: "?");
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down.");
        s->stopping = true;
        /* MHD must not be stopped with suspended connections: answer them */
        server_wake_waiters(s);
        server_run_mhd(s);
        return sd_event_exit(sd_event_source_get_event(source), 0);
}

static unsigned connection_limit(void) {
        struct rlimit rl;

        /* like systemd: raise the soft limit to the hard one, we need an fd per node */
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 1024;
        if (rl.rlim_cur < rl.rlim_max) {
                struct rlimit raised = { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };
                if (setrlimit(RLIMIT_NOFILE, &raised) >= 0)
                        rl = raised;
        }
        if (rl.rlim_cur <= 128)
                return 64;
        return (unsigned) MIN(rl.rlim_cur - 64, (rlim_t) CONNECTION_LIMIT_MAX);
}

static int server_start_mhd(Server *s) {
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_TLS |
                         MHD_USE_TURBO | MHD_USE_ERROR_LOG;
        int r;

        if (s->listen.sa.sa_family == AF_INET6)
                flags |= MHD_USE_IPv6;

        s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_access, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
                                     s, /* first, or MHD logs some to stderr */
                                     MHD_OPTION_SOCK_ADDR, &s->listen.sa, MHD_OPTION_HTTPS_MEM_KEY, s->key_pem,
                                     MHD_OPTION_HTTPS_MEM_CERT, s->cert_pem, MHD_OPTION_HTTPS_PRIORITIES,
                                     TLS_PRIORITIES, MHD_OPTION_CONNECTION_TIMEOUT,
                                     (unsigned) CONNECTION_TIMEOUT_SEC, MHD_OPTION_CONNECTION_LIMIT,
                                     connection_limit(),
                                     /* per connection; MHD's 32 KiB default costs 300 MiB with
                                      * 10,000 long-polls, and our requests are a few hundred
                                      * bytes of headers (bodies are streamed to on_access()) */
                                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONNECTION_MEMORY_LIMIT,
                                     MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
                                     on_connection, s, MHD_OPTION_END);
        if (!s->daemon)
                return log_error_errno(-EADDRNOTAVAIL, "Failed to start HTTPS server on %s.", s->listen_text);

        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info || info->epoll_fd < 0)
                return log_error_errno(-EIO, "libmicrohttpd has no epoll fd.");

        r = sd_event_add_io(s->event, &s->mhd_io, info->epoll_fd, EPOLLIN, on_mhd_io, s);
        if (r < 0)
                return log_error_errno(r, "Failed to watch libmicrohttpd: %m");
        /* accuracy 1 µs: sd-event's default slack (250 ms) would delay every
         * request MHD wants to continue without a new socket event */
        r = sd_event_add_time_relative(s->event, &s->mhd_timer, CLOCK_MONOTONIC, 0, 1, on_mhd_timer, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add libmicrohttpd timer: %m");
        return 0;
}

static int server_load_ranges(Server *s) {
        static const char *const keys[] = { "ipv4_range", "ipv6_range" };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *v = NULL;
                InAddrPrefix *p = s->mesh_ranges + i;
                int r;

                r = store_get_setting(s->store, keys[i], &v);
                if (r < 0)
                        return log_error_errno(r, "Database has no %s: %m", keys[i]);
                r = in_addr_prefix_parse(v, &p->family, &p->address, &p->prefixlen);
                if (r < 0)
                        return log_error_errno(r, "Database has an invalid %s '%s'.", keys[i], v);
        }
        return 0;
}

int server_new(Store *store, const char *state_dir, const char *listen, Server **ret) {
        _cleanup_(server_freep) Server *s = NULL;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s) {
                store_free(store);
                return log_oom();
        }
        s->store = store;
        s->state_dir = strdup(state_dir);
        if (!s->state_dir)
                return log_oom();

        r = endpoint_parse(listen, &s->listen);
        if (r < 0)
                return log_error_errno(r, "Invalid listen address '%s', expected ADDR:PORT or [ADDR6]:PORT.",
                                       listen);
        if (!endpoint_format(&s->listen, s->listen_text, sizeof(s->listen_text)))
                return log_error_errno(-EINVAL, "Invalid listen address '%s'.", listen);

        r = mesh_tls_credentials(s->store, &s->key_pem, &s->cert_pem);
        if (r < 0)
                return r;
        r = store_get_version(s->store, &s->version);
        if (r < 0)
                return r;
        r = server_db_poll_init(s);
        if (r < 0)
                return r;

        r = server_load_ranges(s);
        if (r < 0)
                return r;
        r = challenge_secret_load(s->store, &s->challenge_secret);
        if (r < 0)
                return r;
        s->used_challenges = challenge_set_new();
        if (!s->used_challenges)
                return log_oom();

        r = sd_event_new(&s->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate event loop: %m");

        *ret = TAKE_PTR(s);
        return 0;
}

int server_set_hub(Server *s, const HubOptions *opts, const char *public_key, const char *endpoint) {
        s->hub_ifname = strdup(opts->ifname);
        s->hub_public_key = strdup(public_key);
        s->hub_endpoint = strdup(endpoint);
        if (opts->n_allow > 0) {
                s->hub_allow = calloc(opts->n_allow, sizeof(HubAllow));
                if (s->hub_allow)
                        memcpy(s->hub_allow, opts->allow, opts->n_allow * sizeof(HubAllow));
        }
        if (!s->hub_ifname || !s->hub_public_key || !s->hub_endpoint || (opts->n_allow > 0 && !s->hub_allow))
                return log_oom();
        s->hub_options = *opts;
        s->hub_options.ifname = s->hub_ifname;
        s->hub_options.allow = s->hub_allow;
        s->netmap_hub = (NetmapHub) { .public_key = s->hub_public_key, .endpoint = s->hub_endpoint };
        s->hub_enabled = true;
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;

        /* no suspended connection may be left when MHD stops */
        register_batch_free(s);
        while (s->waiters) {
                Request *req = s->waiters;
                request_unlink(req);
                MHD_resume_connection(req->connection);
        }
        /* before MHD stops: every upgraded connection let go; before the
         * hub, which the streams' hooks use */
        relay_server_free(s->relay);
        /* after the streams, which closed its connections through their hook */
        relay_listener_free(s->relay_listener);
        udp_echo_free(s->echo);
        dns_server_free(s->dns);
        free(s->dns_resolv_conf);
        if (s->daemon)
                MHD_stop_daemon(s->daemon); /* notifies every connection's close */
        hub_free(s->hub);
        sd_event_source_disable_unref(s->sweep);
        ca_free(s->ca);
        acme_issuer_free(s->acme);
        free(s->domain);

        sd_event_source_disable_unref(s->mhd_io);
        sd_event_source_disable_unref(s->mhd_timer);
        sd_event_source_disable_unref(s->db_poll);
        sd_event_source_disable_unref(s->db_notify);
        sd_event_source_disable_unref(s->sigterm);
        sd_event_source_disable_unref(s->sigint);
        sd_event_unref(s->event);

        netmap_snapshot_free(s->snapshot);
        netmap_snapshot_free(s->previous);
        store_free(s->store);
        challenge_set_free(s->used_challenges);
        explicit_bzero(&s->challenge_secret, sizeof(s->challenge_secret));
        if (s->key_pem)
                erase_and_free(s->key_pem, strlen(s->key_pem));
        free(s->cert_pem);
        free(s->state_dir);
        free(s->hub_ifname);
        free(s->hub_public_key);
        free(s->hub_endpoint);
        free(s->hub_allow);
        free(s->closing);
        explicit_bzero(&s->hub_options.private_key, sizeof(s->hub_options.private_key));
        free(s);
        return NULL;
}

void server_set_relay(Server *s, bool relay, unsigned max_streams, bool udp_echo) {
        s->relay_disabled = !relay;
        s->relay_max_streams = max_streams;
        s->udp_echo_disabled = !udp_echo;
}

void server_set_relay_port(Server *s, uint16_t port) {
        s->relay_port = port;
}

void server_set_expired_needs_admin(Server *s, bool b) {
        s->expired_needs_admin = b;
}

int server_set_ca(Server *s, CertAuthority *ca, const char *domain, uint64_t lifetime_sec) {
        _cleanup_(ca_freep) CertAuthority *owned = ca;
        char *d = strdup(domain);

        if (!d)
                return log_oom();
        ca_free(s->ca);
        free(s->domain);
        s->ca = TAKE_PTR(owned);
        s->domain = d;
        s->cert_lifetime_sec = lifetime_sec;
        return 0;
}

int server_set_acme(Server *s, const AcmeConfig *config) {
        return acme_issuer_new(s->event, s->state_dir, config, &s->acme);
}

int server_run(Server *s) {
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        /* the hub's wireguard-go child, watched by sd-event */
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(negative_errno(), "Failed to block signals: %m");
        r = sd_event_add_signal(s->event, &s->sigterm, SIGTERM, on_signal, s);
        if (r >= 0)
                r = sd_event_add_signal(s->event, &s->sigint, SIGINT, on_signal, s);
        if (r < 0)
                return log_error_errno(r, "Failed to watch signals: %m");

        r = server_start_db_poll(s);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(s->event, &s->sweep, CLOCK_MONOTONIC, SWEEP_USEC, 100 * USEC_PER_MSEC,
                                       on_sweep, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add connection sweep: %m");

        if (s->hub_enabled) {
                r = hub_new(s->event, s->store, &s->hub_options, on_hub_changed, s, &s->hub);
                explicit_bzero(&s->hub_options.private_key, sizeof(s->hub_options.private_key));
                if (r < 0)
                        return r;
        }
        r = server_start_relay(s);
        if (r < 0)
                return r;
        server_start_dns(s);

        r = server_start_mhd(s);
        if (r < 0)
                return r;
        /* after the API's port is ours: a --relay-port that names it only
         * costs the relay port, never the server */
        if (s->relay)
                server_start_relay_listener(s);

        s->running = true;
        log_info("Listening on https://%s (netmap version %" PRIu64 ").", s->listen_text, s->version);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Listening on %s.", s->listen_text);

        r = sd_event_loop(s->event);
        s->running = false;
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}
