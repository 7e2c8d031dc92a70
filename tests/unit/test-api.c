/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Varlink server on a temporary socket, driven by its sd-event loop in
 * the main thread; clients talk raw bytes to it from a second thread. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "api-limits.h"
#include "api.h"
#include "macro.h"
#include "test-util.h"
#include "time-util.h"
#include "varlink.h"

#define REPLIES_MAX 32
#define NOBODY_UID 65534

typedef struct Test {
        sd_event *event;
        ApiServer *server;
        char *dir;
        char path[128];
        int efd;
        bool client_done;
        int later_pending;
        int later_disconnected;
        int oneway_calls;
        uid_t last_uid;
        int echo_calls; /* read by the client thread: only ever grows */
} Test;

typedef struct Later {
        Test *test;
        ApiCall *call;
} Later;

/* ---- server side: the test methods */

static int on_later(sd_event_source *s, uint64_t usec, void *userdata) {
        Later *l = userdata;
        Test *t = l->test;
        cJSON *p = cJSON_CreateObject();

        cJSON_AddTrueToObject(p, "late");
        if (!api_call_is_connected(l->call))
                t->later_disconnected++;
        /* After a hang-up this is a no-op, and must be harmless. */
        assert_int_equal(api_call_reply(l->call, p), 0);
        api_call_unref(l->call);
        free(l);
        t->later_pending--;
        if (t->client_done && t->later_pending == 0)
                sd_event_exit(sd_event_source_get_event(s), 0);
        return 0;
}

static int method_echo(ApiCall *call, const cJSON *parameters, void *userdata) {
        Test *t = userdata;

        t->last_uid = api_call_get_peer_uid(call);
        __atomic_add_fetch(&t->echo_calls, 1, __ATOMIC_RELAXED);
        if (!api_call_is_connected(call))
                t->oneway_calls++;
        return api_call_reply(call, cJSON_Duplicate(parameters, true));
}

static int method_later(ApiCall *call, const cJSON *parameters, void *userdata) {
        Test *t = userdata;
        const cJSON *d = cJSON_GetObjectItem(parameters, "delay_ms");
        uint64_t now;
        Later *l;

        l = calloc(1, sizeof(*l));
        assert_non_null(l);
        l->test = t;
        l->call = api_call_ref(call);
        t->later_pending++;
        assert_true(sd_event_now(t->event, CLOCK_MONOTONIC, &now) >= 0);
        /* floating: the loop owns the source */
        assert_int_equal(sd_event_add_time(t->event, NULL, CLOCK_MONOTONIC,
                                           now + (uint64_t) (cJSON_IsNumber(d) ? d->valueint : 50) *
                                                           USEC_PER_MSEC,
                                           1000, on_later, l),
                         0);
        return 0;
}

static int method_fail(ApiCall *call, const cJSON *parameters, void *userdata) {
        return api_call_reply_errorf(call, "io.meshd.PeerNotFound", "no peer %s", "nas");
}

static int method_broken(ApiCall *call, const cJSON *parameters, void *userdata) {
        return -EIO;
}

static int method_forgets(ApiCall *call, const cJSON *parameters, void *userdata) {
        return 0;
}

static int method_root(ApiCall *call, const cJSON *parameters, void *userdata) {
        return api_call_reply(call, NULL);
}

static const ApiMethod methods[] = {
        { "io.meshd.Echo", method_echo, false },       { "io.meshd.Later", method_later, false },
        { "io.meshd.Fail", method_fail, false },       { "io.meshd.Broken", method_broken, false },
        { "io.meshd.Forgets", method_forgets, false }, { "io.meshd.Root", method_root, true },
};

static const char description[] = "interface io.meshd\nmethod Echo() -> ()\n";

/* ---- client side, in a thread */

typedef struct Client Client;
struct Client {
        Test *test;
        void (*script)(Client *c);
        int fd;
        char buf[65536];
        size_t n;
        char *replies[REPLIES_MAX];
        int n_replies;
        bool eof;
        int result;      /* of varlink_call() */
        int seen;        /* calls meshd had run when it stopped taking more */
        int admitted[4]; /* per step of script_limits */
        int fds[API_CONNECTIONS_MAX + 8];
        int n_fds;
        cJSON *call_reply;
        char *call_error;
};

static void client_connect(Client *c) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = 5 };

        strcpy(sa.sun_path, c->test->path);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return;
        (void) setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                c->fd = safe_close(c->fd);
}

static void client_send(Client *c, const char *data, size_t len) {
        while (c->fd >= 0 && len > 0) {
                ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
                if (n <= 0)
                        return;
                data += n;
                len -= (size_t) n;
        }
}

/* Messages are given without their NULs; each gets one. */
_sentinel_ static void client_send_messages(Client *c, const char *first, ...) {
        char buf[8192];
        size_t n = 0;
        va_list ap;

        va_start(ap, first);
        for (const char *m = first; m; m = va_arg(ap, const char *)) {
                size_t l = strlen(m) + 1;
                assert_true(n + l <= sizeof(buf));
                memcpy(buf + n, m, l);
                n += l;
        }
        va_end(ap);
        client_send(c, buf, n); /* one write for all of them */
}

/* Reads replies until it has `want` of them or the server closes. */
static void client_receive(Client *c, int want) {
        while (c->fd >= 0 && c->n_replies < want && c->n_replies < REPLIES_MAX) {
                char *nul = memchr(c->buf, 0, c->n);
                ssize_t k;

                if (nul) {
                        size_t l = (size_t) (nul - c->buf) + 1;
                        c->replies[c->n_replies++] = strdup(c->buf);
                        memmove(c->buf, c->buf + l, c->n - l);
                        c->n -= l;
                        continue;
                }
                k = recv(c->fd, c->buf + c->n, sizeof(c->buf) - c->n, 0);
                if (k <= 0) {
                        c->eof = true;
                        return;
                }
                c->n += (size_t) k;
        }
}

/* True when the server closed the connection (EOF or reset). */
static void client_expect_close(Client *c) {
        char b;

        if (c->fd >= 0 && recv(c->fd, &b, 1, 0) <= 0)
                c->eof = true;
}

static void *client_thread(void *userdata) {
        Client *c = userdata;
        uint64_t one = 1;

        c->fd = -EBADF;
        c->script(c);
        safe_close(c->fd);
        assert_int_equal(write(c->test->efd, &one, sizeof(one)), (ssize_t) sizeof(one));
        return NULL;
}

static void client_free(Client *c) {
        for (int i = 0; i < c->n_replies; i++)
                free(c->replies[i]);
        cJSON_Delete(c->call_reply);
        free(c->call_error);
}

/* ---- harness */

static int on_client_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Test *t = userdata;
        uint64_t v;

        assert_int_equal(read(fd, &v, sizeof(v)), (ssize_t) sizeof(v));
        t->client_done = true;
        if (t->later_pending == 0)
                return sd_event_exit(t->event, 0);
        return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), -ETIMEDOUT);
}

static int setup(void **state) {
        Test *t = calloc(1, sizeof(*t));

        assert_non_null(t);
        t->dir = test_tmpdir_new("test-api");
        /* let the unprivileged test client reach the socket */
        assert_int_equal(chmod(t->dir, 0755), 0);
        snprintf(t->path, sizeof(t->path), "%s/io.meshd.sock", t->dir);
        assert_int_equal(sd_event_new(&t->event), 0);
        t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        assert_true(t->efd >= 0);
        assert_int_equal(sd_event_add_io(t->event, NULL, t->efd, EPOLLIN, on_client_done, t), 0);
        assert_int_equal(api_server_new(t->event, t->path, methods, ELEMENTSOF(methods), "io.meshd",
                                        description, t, &t->server),
                         0);
        *state = t;
        return 0;
}

static int teardown(void **state) {
        Test *t = *state;

        api_server_free(t->server);
        /* the server removes its socket */
        assert_int_equal(access(t->path, F_OK), -1);
        assert_int_equal(rmdir(t->dir), 0);
        free(t->dir);
        sd_event_unref(t->event);
        safe_close(t->efd);
        free(t);
        return 0;
}

/* Runs the server loop while script runs in a client thread. */
static void run_client(Test *t, Client *c, void (*script)(Client *c)) {
        sd_event_source *deadline = NULL;
        pthread_t thread;
        uint64_t now;

        *c = (Client) { .test = t, .script = script, .fd = -EBADF };
        t->client_done = false;
        assert_true(sd_event_now(t->event, CLOCK_MONOTONIC, &now) >= 0);
        assert_int_equal(sd_event_add_time(t->event, &deadline, CLOCK_MONOTONIC, now + 10 * USEC_PER_SEC, 0,
                                           on_deadline, NULL),
                         0);
        assert_int_equal(pthread_create(&thread, NULL, client_thread, c), 0);
        assert_int_equal(sd_event_loop(t->event), 0);
        assert_int_equal(pthread_join(thread, NULL), 0);
        sd_event_source_disable_unref(deadline);
}

static cJSON *reply(Client *c, int i, const char **ret_error) {
        cJSON *j, *e;

        assert_true(i < c->n_replies);
        j = cJSON_Parse(c->replies[i]);
        assert_non_null(j);
        e = cJSON_GetObjectItem(j, "error");
        *ret_error = cJSON_IsString(e) ? e->valuestring : NULL;
        assert_true(cJSON_IsObject(cJSON_GetObjectItem(j, "parameters")));
        return j;
}

static const char *param_string(cJSON *j, const char *name) {
        return cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "parameters"), name));
}

/* ---- tests */

static void script_many(Client *c) {
        client_connect(c);
        /* Several calls in one write, including one answered later: replies
         * must come in call order. */
        client_send_messages(
                c, "{\"method\":\"io.meshd.Echo\",\"parameters\":{\"n\":1}}",
                "{\"method\":\"io.meshd.Later\",\"parameters\":{\"delay_ms\":30}}",
                "{\"method\":\"io.meshd.Echo\",\"parameters\":{\"n\":2},\"oneway\":true}",
                "{\"method\":\"io.meshd.Echo\",\"parameters\":{\"n\":3}}", "{\"method\":\"io.meshd.Nope\"}",
                "{\"method\":\"io.meshd.Fail\",\"parameters\":{}}", "{\"method\":\"io.meshd.Broken\"}",
                "{\"method\":\"io.meshd.Forgets\"}", "{\"method\":\"org.varlink.service.GetInfo\"}",
                "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"io.meshd\"}}",
                "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"x.y\"}}",
                "{\"method\":\"io.meshd.Echo\",\"more\":true}", NULL);
        /* and one split over two writes */
        client_send(c, "{\"method\":\"io.meshd.E", strlen("{\"method\":\"io.meshd.E"));
        usleep(20000);
        client_send(c, "cho\",\"parameters\":{\"n\":4}}", sizeof("cho\",\"parameters\":{\"n\":4}}"));
        client_receive(c, 12);
}

static void test_many(void **state) {
        Test *t = *state;
        Client c;
        const char *e;
        cJSON *j, *l;
        int i = 0;

        run_client(t, &c, script_many);
        assert_int_equal(c.n_replies, 12);

        j = reply(&c, i++, &e);
        assert_null(e);
        assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "parameters"), "n")->valueint, 1);
        cJSON_Delete(j);

        j = reply(&c, i++, &e);
        assert_null(e);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "parameters"), "late")));
        cJSON_Delete(j);

        /* the oneway Echo n=2 ran but was not answered */
        j = reply(&c, i++, &e);
        assert_null(e);
        assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "parameters"), "n")->valueint, 3);
        cJSON_Delete(j);
        assert_int_equal(t->oneway_calls, 1);

        j = reply(&c, i++, &e);
        assert_string_equal(e, "org.varlink.service.MethodNotFound");
        assert_string_equal(param_string(j, "method"), "io.meshd.Nope");
        cJSON_Delete(j);

        j = reply(&c, i++, &e);
        assert_string_equal(e, "io.meshd.PeerNotFound");
        assert_string_equal(param_string(j, "message"), "no peer nas");
        cJSON_Delete(j);

        j = reply(&c, i++, &e);
        assert_string_equal(e, "org.varlink.service.InternalError");
        cJSON_Delete(j);

        j = reply(&c, i++, &e);
        assert_string_equal(e, "org.varlink.service.InternalError");
        cJSON_Delete(j);

        j = reply(&c, i++, &e);
        assert_null(e);
        assert_string_equal(param_string(j, "vendor"), "meshd");
        assert_string_equal(param_string(j, "product"), "meshd");
        assert_non_null(param_string(j, "version"));
        assert_non_null(param_string(j, "url"));
        l = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "parameters"), "interfaces");
        assert_int_equal(cJSON_GetArraySize(l), 2);
        assert_string_equal(cJSON_GetArrayItem(l, 0)->valuestring, "io.meshd");
        assert_string_equal(cJSON_GetArrayItem(l, 1)->valuestring, "org.varlink.service");
        cJSON_Delete(j);

        j = reply(&c, i++, &e);
        assert_null(e);
        assert_string_equal(param_string(j, "description"), description);
        cJSON_Delete(j);

        j = reply(&c, i++, &e);
        assert_string_equal(e, "org.varlink.service.InterfaceNotFound");
        assert_string_equal(param_string(j, "interface"), "x.y");
        cJSON_Delete(j);

        j = reply(&c, i++, &e);
        assert_string_equal(e, "org.varlink.service.MethodNotImplemented");
        cJSON_Delete(j);

        j = reply(&c, i++, &e);
        assert_null(e);
        assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "parameters"), "n")->valueint, 4);
        cJSON_Delete(j);

        assert_int_equal(t->later_disconnected, 0);
        assert_int_equal(t->last_uid, geteuid());
        client_free(&c);
}

static void script_hangup(Client *c) {
        client_connect(c);
        client_send_messages(c, "{\"method\":\"io.meshd.Later\",\"parameters\":{\"delay_ms\":200}}", NULL);
        usleep(50000); /* let the server take the call */
        c->fd = safe_close(c->fd);
}

static void test_hangup_with_pending_call(void **state) {
        Test *t = *state;
        Client c;

        /* The loop ends only after the deferred reply ran (see on_later). */
        run_client(t, &c, script_hangup);
        assert_int_equal(t->later_pending, 0);
        assert_int_equal(t->later_disconnected, 1);
        client_free(&c);
}

static void script_half_close(Client *c) {
        client_connect(c);
        client_send_messages(c, "{\"method\":\"io.meshd.Later\",\"parameters\":{\"delay_ms\":30}}", NULL);
        /* "that's all from me": the reply must still come, then the close */
        (void) shutdown(c->fd, SHUT_WR);
        client_receive(c, 1);
        client_expect_close(c);
}

static void test_half_close(void **state) {
        Test *t = *state;
        Client c;
        const char *e;
        cJSON *j;

        run_client(t, &c, script_half_close);
        assert_int_equal(c.n_replies, 1);
        j = reply(&c, 0, &e);
        assert_null(e);
        cJSON_Delete(j);
        assert_true(c.eof);
        assert_int_equal(t->later_disconnected, 0);
        client_free(&c);
}

static void script_bad_message(Client *c) {
        client_connect(c);
        client_send_messages(c, "{\"method\":\"io.meshd.Echo\"}", "not json", "{\"method\":\"io.meshd.Echo\"}",
                             NULL);
        client_receive(c, 2);
}

static void test_bad_message(void **state) {
        Test *t = *state;
        Client c;

        run_client(t, &c, script_bad_message);
        /* the call before the garbage is answered, then the connection closes */
        assert_int_equal(c.n_replies, 1);
        assert_true(c.eof);
        client_free(&c);
}

static void script_too_large(Client *c) {
        size_t size = 2 * 1024 * 1024;
        char *big = malloc(size);

        assert_non_null(big);
        memset(big, ' ', size);
        client_connect(c);
        client_send(c, big, size); /* no NUL: never a complete message */
        free(big);
        client_expect_close(c);
}

static void test_too_large(void **state) {
        Test *t = *state;
        Client c;

        run_client(t, &c, script_too_large);
        assert_true(c.eof);
        client_free(&c);
}

static void script_root(Client *c) {
        client_connect(c);
        client_send_messages(c, "{\"method\":\"io.meshd.Root\"}", NULL);
        client_receive(c, 1);
        c->fd = safe_close(c->fd);

        /* As someone else: raw syscalls change this thread's credentials
         * only (glibc's wrappers would change the whole process). */
        if (geteuid() != 0 || syscall(SYS_setresuid, -1, NOBODY_UID, -1) < 0)
                return;
        client_connect(c);
        (void) syscall(SYS_setresuid, -1, 0, -1);
        client_send_messages(c, "{\"method\":\"io.meshd.Root\"}", "{\"method\":\"io.meshd.Echo\"}", NULL);
        client_receive(c, 3);
}

static void test_root_only(void **state) {
        Test *t = *state;
        Client c;
        const char *e;
        cJSON *j;

        /* the test's client is not in group meshd: open the socket up */
        assert_int_equal(chmod(t->path, 0666), 0);
        run_client(t, &c, script_root);
        assert_true(c.n_replies >= 1);

        j = reply(&c, 0, &e);
        if (geteuid() == 0)
                assert_null(e);
        else
                assert_string_equal(e, "io.meshd.PermissionDenied");
        cJSON_Delete(j);

        if (c.n_replies == 3) {
                j = reply(&c, 1, &e);
                assert_string_equal(e, "io.meshd.PermissionDenied");
                assert_non_null(param_string(j, "message"));
                cJSON_Delete(j);
                j = reply(&c, 2, &e);
                assert_null(e);
                cJSON_Delete(j);
                assert_int_equal(t->last_uid, NOBODY_UID);
        } else
                print_message("could not switch uid, PermissionDenied for root tested only when not root\n");
        client_free(&c);
}

static void script_varlink_call(Client *c) {
        c->result = varlink_call(c->test->path, "org.varlink.service.GetInfo", NULL, 5 * USEC_PER_SEC,
                                 &c->call_reply, &c->call_error);
}

static void test_varlink_call(void **state) {
        Test *t = *state;
        Client c;

        /* the shared blocking client, as meshctl uses it */
        run_client(t, &c, script_varlink_call);
        assert_int_equal(c.result, 0);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(c.call_reply, "vendor")), "meshd");
        client_free(&c);
}

static void test_socket_mode(void **state) {
        Test *t = *state;
        struct stat st;

        assert_int_equal(stat(t->path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0660);
}

static void test_stale_socket(void **state) {
        Test *t = *state;
        ApiServer *s = NULL;
        char path[160];
        int fd;

        /* a new server replaces a socket left behind... */
        assert_int_equal(api_server_new(t->event, t->path, methods, ELEMENTSOF(methods), "io.meshd",
                                        description, t, &s),
                         0);
        api_server_free(s);
        t->server = api_server_free(t->server); /* its socket is gone: must not unlink the new one's */
        assert_int_equal(access(t->path, F_OK), -1);

        /* ...but never a file that is not a socket */
        snprintf(path, sizeof(path), "%s/regular", t->dir);
        fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(api_server_new(t->event, path, methods, ELEMENTSOF(methods), "io.meshd", description,
                                        t, &s),
                         -EEXIST);
        assert_int_equal(unlink(path), 0);
}

/* ---- limits */

#define FLOOD_CALLS 2000
#define FLOOD_PAD 2000

static size_t flood_call(char *buf, size_t size, int i) {
        char pad[FLOOD_PAD + 1];

        memset(pad, 'x', FLOOD_PAD);
        pad[FLOOD_PAD] = 0;
        return (size_t) snprintf(buf, size,
                                 "{\"method\":\"io.meshd.Echo\",\"parameters\":{\"n\":%d,\"pad\":\"%s\"}}", i,
                                 pad) +
               1;
}

/* Counts complete replies and checks they come in call order. */
static int client_count_replies(Client *c, int want) {
        int n = 0;

        while (n < want) {
                char *nul = memchr(c->buf, 0, c->n);
                ssize_t k;

                if (nul) {
                        size_t l = (size_t) (nul - c->buf) + 1;
                        cJSON *j = cJSON_Parse(c->buf);
                        const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "parameters"), "n");

                        if (!cJSON_IsNumber(v) || v->valueint != n) {
                                cJSON_Delete(j);
                                return -1;
                        }
                        cJSON_Delete(j);
                        n++;
                        memmove(c->buf, c->buf + l, c->n - l);
                        c->n -= l;
                        continue;
                }
                k = recv(c->fd, c->buf + c->n, sizeof(c->buf) - c->n, 0);
                if (k <= 0)
                        break;
                c->n += (size_t) k;
        }
        return n;
}

static void script_never_reads(Client *c) {
        char buf[FLOOD_PAD + 128];
        int sent = 0;

        client_connect(c);
        assert_true(c->fd >= 0);
        /* Pipeline calls without reading, until meshd stops taking them. */
        for (uint64_t until = clock_usec(CLOCK_MONOTONIC) + USEC_PER_SEC; sent < FLOOD_CALLS;) {
                size_t l = flood_call(buf, sizeof(buf), sent);
                ssize_t k = send(c->fd, buf, l, MSG_DONTWAIT | MSG_NOSIGNAL);

                if (k < 0 && errno == EAGAIN) {
                        if (clock_usec(CLOCK_MONOTONIC) > until)
                                break;
                        usleep(10000);
                        continue;
                }
                assert_int_equal(k, (ssize_t) l); /* a unix socket takes a small message whole */
                sent++;
        }
        usleep(200000);
        c->seen = __atomic_load_n(&c->test->echo_calls, __ATOMIC_RELAXED);
        c->result = sent;

        /* Once the client reads, the held-back calls run, in order. */
        c->n_replies = client_count_replies(c, sent);
}

static void test_output_cap(void **state) {
        Test *t = *state;
        Client c;

        run_client(t, &c, script_never_reads);
        /* Held back: meshd stopped taking calls with at most the soft limit
         * queued, plus what the kernel buffers, plus one reply. */
        assert_true(c.result < FLOOD_CALLS);
        assert_true(c.seen < c.result);
        assert_true((size_t) c.seen * (FLOOD_PAD + 40) < API_OUTPUT_SOFT_MAX + 1024 * 1024);
        assert_int_equal(c.n_replies, c.result);
        assert_int_equal(t->echo_calls, c.result);
        print_message("meshd ran %d of %d pipelined calls while the client did not read\n", c.seen, c.result);
        c.n_replies = 0;
        client_free(&c);
}

static void script_never_reads_at_all(Client *c) {
        char buf[FLOOD_PAD + 128];
        int sent = 0;

        client_connect(c);
        for (uint64_t until = clock_usec(CLOCK_MONOTONIC) + USEC_PER_SEC; sent < FLOOD_CALLS;) {
                size_t l = flood_call(buf, sizeof(buf), sent);
                ssize_t k = send(c->fd, buf, l, MSG_DONTWAIT | MSG_NOSIGNAL);

                if (k < 0 && errno == EAGAIN) {
                        if (clock_usec(CLOCK_MONOTONIC) > until)
                                break;
                        usleep(10000);
                        continue;
                }
                if (k < 0)
                        break;
                sent++;
        }
        /* Then wait, still not reading: meshd must hang up on us. Not
         * POLLIN: the replies it sent before sit unread in our buffer. */
        struct pollfd p = { .fd = c->fd, .events = POLLRDHUP };
        if (poll(&p, 1, 5000) == 1 && (p.revents & (POLLHUP | POLLRDHUP)))
                c->eof = true;
        c->result = sent;
}

static void test_output_drain_timeout(void **state) {
        Test *t = *state;
        Client c;

        api_server_set_drain_timeout(t->server, 300 * USEC_PER_MSEC);
        run_client(t, &c, script_never_reads_at_all);
        assert_true(c.result > 0);
        assert_true(c.eof);
        client_free(&c);
}

/* Connects as uid and makes one Echo call. Returns 1 when admitted (the
 * connection stays open), 0 when refused (*ret_message: meshd's reason),
 * -1 on trouble. */
static int client_try(Client *c, uid_t uid, char **ret_message) {
        Client one = { .test = c->test, .fd = -EBADF };
        cJSON *j;
        const char *e;
        int r;

        if (uid != 0 && syscall(SYS_setresuid, -1, uid, -1) < 0)
                return -1;
        client_connect(&one);
        if (uid != 0)
                (void) syscall(SYS_setresuid, -1, 0, -1);
        if (one.fd < 0)
                return -1;
        client_send_messages(&one, "{\"method\":\"io.meshd.Echo\"}", NULL);
        client_receive(&one, 1);
        if (one.n_replies != 1) {
                safe_close(one.fd);
                client_free(&one);
                return -1;
        }
        j = cJSON_Parse(one.replies[0]);
        e = cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"));
        if (!e) {
                c->fds[c->n_fds++] = one.fd;
                r = 1;
        } else {
                if (streq(e, "io.meshd.TooManyConnections"))
                        *ret_message = strdup(param_string(j, "message"));
                client_expect_close(&one);
                r = one.eof && *ret_message ? 0 : -1;
                safe_close(one.fd);
        }
        cJSON_Delete(j);
        client_free(&one);
        return r;
}

/* Fills the slots step by step; each step ends with one refusal, whose
 * reason goes to c->replies[step]. */
static void script_limits(Client *c) {
        static const struct {
                uid_t uid;
                int users; /* consecutive uids from uid on, each filled to its limit */
        } steps[] = {
                { NOBODY_UID, 1 },     /* one user: 32, then "from this user" */
                { NOBODY_UID - 1, 7 }, /* up to 240, then "reserved for root" */
                { 0, 1 },              /* root: the last 16, then "too many" */
        };

        if (geteuid() != 0)
                return;
        for (size_t i = 0; i < ELEMENTSOF(steps); i++)
                for (int u = 0; u < steps[i].users; u++)
                        for (;;) {
                                char *message = NULL;
                                int r = client_try(c, steps[i].uid - (uid_t) u, &message);

                                if (r == 1) {
                                        c->admitted[i]++;
                                        continue;
                                }
                                if (r == 0 && u == steps[i].users - 1)
                                        c->replies[c->n_replies++] = message;
                                else
                                        free(message);
                                break;
                        }

        /* meshctl's client reports the refusal, even when meshd closed
         * before the call went out. */
        c->result = varlink_call(c->test->path, "org.varlink.service.GetInfo", NULL, 5 * USEC_PER_SEC,
                                 &c->call_reply, &c->call_error);

        /* Every slot comes back when the clients go. */
        while (c->n_fds > 0)
                safe_close(c->fds[--c->n_fds]);
        for (int i = 0; i < 100; i++) {
                char *message = NULL;
                int r = client_try(c, NOBODY_UID, &message);

                free(message);
                if (r == 1) {
                        c->admitted[3]++;
                        break;
                }
                usleep(20000); /* the server has not seen all the hang-ups yet */
        }
        while (c->n_fds > 0)
                safe_close(c->fds[--c->n_fds]);
}

static void test_connection_limits(void **state) {
        Test *t = *state;
        Client c;

        assert_int_equal(chmod(t->path, 0666), 0);
        run_client(t, &c, script_limits);
        if (geteuid() != 0) {
                print_message("not root: cannot connect as other users, limits not tested\n");
                return;
        }
        /* one non-root user gets its share and no more */
        assert_int_equal(c.admitted[0], (int) API_CONNECTIONS_PER_USER_MAX);
        /* six more users with their full share, and a seventh with what is
         * left before the slots kept for root */
        assert_int_equal(c.admitted[1], (int) (API_CONNECTIONS_MAX - API_CONNECTIONS_ROOT_RESERVED -
                                               API_CONNECTIONS_PER_USER_MAX));
        /* root still gets in, into the reserved slots */
        assert_int_equal(c.admitted[2], (int) API_CONNECTIONS_ROOT_RESERVED);
        assert_int_equal(c.n_replies, 3);
        assert_string_equal(c.replies[0], "too many connections from this user");
        assert_string_equal(c.replies[1], "the remaining connection slots are reserved for root");
        assert_string_equal(c.replies[2], "too many connections");
        assert_int_equal(c.result, 1);
        assert_string_equal(c.call_error, "io.meshd.TooManyConnections");
        assert_int_equal(c.admitted[3], 1);
        client_free(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_socket_mode, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hangup_with_pending_call, setup, teardown),
                cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_message, setup, teardown),
                cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
                cmocka_unit_test_setup_teardown(test_root_only, setup, teardown),
                cmocka_unit_test_setup_teardown(test_varlink_call, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stale_socket, setup, teardown),
                cmocka_unit_test_setup_teardown(test_output_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_output_drain_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_connection_limits, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
