/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "test-util.h"
#include "varlink.h"

static void test_buffer_single_and_merged(void **state) {
        _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};
        static const char two[] = "{\"a\":1}\0{\"b\":2}";
        cJSON *j = NULL;

        assert_int_equal(varlink_buffer_pop(&b, &j), 0);

        /* Two messages in one read: sizeof includes the final NUL. */
        assert_int_equal(varlink_buffer_append(&b, two, sizeof(two)), 0);
        assert_int_equal(varlink_buffer_pop(&b, &j), 1);
        assert_int_equal(cJSON_GetObjectItem(j, "a")->valueint, 1);
        cJSON_Delete(j);
        assert_int_equal(varlink_buffer_pop(&b, &j), 1);
        assert_int_equal(cJSON_GetObjectItem(j, "b")->valueint, 2);
        cJSON_Delete(j);
        assert_int_equal(varlink_buffer_pop(&b, &j), 0);
        assert_int_equal(b.size, 0);
}

static void test_buffer_split(void **state) {
        _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};
        static const char msg[] = "{\"method\":\"io.meshd.GetStatus\"}";
        cJSON *j = NULL;

        /* One byte at a time, the NUL last. */
        for (size_t i = 0; i < sizeof(msg); i++) {
                assert_int_equal(varlink_buffer_pop(&b, &j), 0);
                assert_int_equal(varlink_buffer_append(&b, msg + i, 1), 0);
        }
        assert_int_equal(varlink_buffer_pop(&b, &j), 1);
        assert_string_equal(cJSON_GetObjectItem(j, "method")->valuestring, "io.meshd.GetStatus");
        cJSON_Delete(j);

        /* A message and the start of the next. */
        assert_int_equal(varlink_buffer_append(&b, "{}\0{\"x\":", 8), 0);
        assert_int_equal(varlink_buffer_pop(&b, &j), 1);
        cJSON_Delete(j);
        assert_int_equal(varlink_buffer_pop(&b, &j), 0);
        assert_int_equal(varlink_buffer_append(&b, "true}", 6), 0);
        assert_int_equal(varlink_buffer_pop(&b, &j), 1);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "x")));
        cJSON_Delete(j);
}

static void test_buffer_bad_messages(void **state) {
        _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};
        static const char *const bad[] = {
                "[1,2]", "\"string\"", "42", "null", "", "{\"a\":", "{} trailing", "{}}",
        };
        cJSON *j = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(varlink_buffer_append(&b, bad[i], strlen(bad[i]) + 1), 0);
                assert_int_equal(varlink_buffer_pop(&b, &j), -EBADMSG);
                assert_int_equal(b.size, 0);
        }

        /* White space around the object is fine. */
        assert_int_equal(varlink_buffer_append(&b, " {} \n", 6), 0);
        assert_int_equal(varlink_buffer_pop(&b, &j), 1);
        cJSON_Delete(j);
}

static void test_buffer_oversize(void **state) {
        _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};
        _cleanup_free_ char *big = malloc(VARLINK_MESSAGE_MAX + 2);
        cJSON *j = NULL;

        assert_non_null(big);
        memset(big, ' ', VARLINK_MESSAGE_MAX + 2);
        big[0] = '{';

        /* Exactly at the limit, no NUL yet: still waiting. */
        assert_int_equal(varlink_buffer_append(&b, big, VARLINK_MESSAGE_MAX), 0);
        assert_int_equal(varlink_buffer_pop(&b, &j), 0);
        assert_int_equal(varlink_buffer_append(&b, " ", 1), 0);
        assert_int_equal(varlink_buffer_pop(&b, &j), -EMSGSIZE);
        varlink_buffer_done(&b);

        /* Over the limit with its NUL in the same read. */
        big[VARLINK_MESSAGE_MAX] = '}';
        big[VARLINK_MESSAGE_MAX + 1] = '\0';
        assert_int_equal(varlink_buffer_append(&b, big, VARLINK_MESSAGE_MAX + 2), 0);
        assert_int_equal(varlink_buffer_pop(&b, &j), -EMSGSIZE);

        /* Within the limit: a message of VARLINK_MESSAGE_MAX bytes is fine. */
        varlink_buffer_done(&b);
        big[VARLINK_MESSAGE_MAX - 1] = '}';
        big[VARLINK_MESSAGE_MAX] = '\0';
        assert_int_equal(varlink_buffer_append(&b, big, VARLINK_MESSAGE_MAX + 1), 0);
        assert_int_equal(varlink_buffer_pop(&b, &j), 1);
        cJSON_Delete(j);
        assert_int_equal(b.allocated, 0);
}

static void test_format_parse_call(void **state) {
        _cleanup_json_ cJSON *params = cJSON_CreateObject(), *msg = NULL;
        _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};
        _cleanup_free_ char *s = NULL, *s2 = NULL;
        const char *method;
        const cJSON *p;
        size_t len;

        cJSON_AddStringToObject(params, "peer", "nas");
        cJSON_AddNumberToObject(params, "timeout_usec", 5000000);

        assert_int_equal(varlink_format_call("io.meshd.Ping", params, &s, &len), 0);
        assert_int_equal(len, strlen(s) + 1);
        assert_int_equal(s[len - 1], '\0');
        /* The caller's tree is borrowed, not consumed. */
        assert_string_equal(cJSON_GetObjectItem(params, "peer")->valuestring, "nas");

        assert_int_equal(varlink_buffer_append(&b, s, len), 0);
        assert_int_equal(varlink_buffer_pop(&b, &msg), 1);
        assert_int_equal(varlink_parse_call(msg, &method, &p), 0);
        assert_string_equal(method, "io.meshd.Ping");
        assert_string_equal(cJSON_GetObjectItem(p, "peer")->valuestring, "nas");
        assert_int_equal(cJSON_GetObjectItem(p, "timeout_usec")->valuedouble, 5000000);

        /* Without parameters: an empty object, never NULL. */
        assert_int_equal(varlink_format_call("org.varlink.service.GetInfo", NULL, &s2, NULL), 0);
        cJSON_Delete(msg);
        msg = cJSON_Parse(s2);
        assert_int_equal(varlink_parse_call(msg, &method, &p), 0);
        assert_non_null(p);
        assert_true(cJSON_IsObject(p));
        assert_null(p->child);

        /* Parameters that are not an object are refused when formatting. */
        _cleanup_json_ cJSON *array = cJSON_CreateArray();
        char *s3 = NULL;
        assert_int_equal(varlink_format_call("io.meshd.Ping", array, &s3, NULL), -EINVAL);
        assert_null(s3);
}

static void test_parse_call_invalid(void **state) {
        static const char *const bad[] = {
                "{}",
                "{\"method\":42}",
                "{\"method\":\"Ping\"}",
                "{\"method\":\"io.meshd.ping\"}",
                "{\"method\":\"io..meshd.Ping\"}",
                "{\"method\":\".io.meshd.Ping\"}",
                "{\"method\":\"meshd.\"}",
                "{\"method\":\"io.meshd.Pi-ng\"}",
                "{\"method\":\"io.-meshd.Ping\"}",
                "{\"method\":\"io.meshd.Ping\",\"parameters\":[]}",
                "{\"method\":\"io.meshd.Ping\",\"parameters\":\"x\"}",
                "{\"method\":\"io.meshd.Ping\",\"oneway\":\"yes\"}",
        };
        const char *method;
        const cJSON *p;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_json_ cJSON *j = cJSON_Parse(bad[i]);
                assert_non_null(j);
                assert_int_equal(varlink_parse_call(j, &method, &p), -EBADMSG);
        }

        _cleanup_json_ cJSON *more = cJSON_Parse("{\"method\":\"io.meshd.ListPeers\",\"more\":true}");
        assert_int_equal(varlink_parse_call(more, &method, &p), -EOPNOTSUPP);

        _cleanup_json_ cJSON *ok = cJSON_Parse("{\"method\":\"org.varlink.service.GetInterfaceDescription\","
                                               "\"parameters\":{\"interface\":\"io.meshd\"},\"oneway\":false}");
        assert_int_equal(varlink_parse_call(ok, &method, &p), 0);
        assert_string_equal(method, "org.varlink.service.GetInterfaceDescription");
}

static void test_format_parse_reply(void **state) {
        _cleanup_json_ cJSON *params = cJSON_CreateObject(), *msg = NULL, *msg2 = NULL;
        _cleanup_free_ char *s = NULL, *s2 = NULL;
        const char *error;
        const cJSON *p;

        cJSON_AddStringToObject(params, "message", "no such peer");
        assert_int_equal(varlink_format_reply(params, "io.meshd.PeerNotFound", &s, NULL), 0);
        msg = cJSON_Parse(s);
        assert_int_equal(varlink_parse_reply(msg, &error, &p), 0);
        assert_string_equal(error, "io.meshd.PeerNotFound");
        assert_string_equal(cJSON_GetObjectItem(p, "message")->valuestring, "no such peer");

        assert_int_equal(varlink_format_reply(NULL, NULL, &s2, NULL), 0);
        assert_string_equal(s2, "{\"parameters\":{}}");
        msg2 = cJSON_Parse(s2);
        assert_int_equal(varlink_parse_reply(msg2, &error, &p), 0);
        assert_null(error);
        assert_true(cJSON_IsObject(p));

        static const char *const bad[] = {
                "{\"error\":42}",
                "{\"error\":\"NotQualified\"}",
                "{\"parameters\":7}",
                "{\"parameters\":{},\"continues\":true}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_json_ cJSON *j = cJSON_Parse(bad[i]);
                assert_int_equal(varlink_parse_reply(j, &error, &p), -EBADMSG);
        }

        /* Absent parameters in a reply are {} too. */
        _cleanup_json_ cJSON *bare = cJSON_Parse("{}");
        assert_int_equal(varlink_parse_reply(bare, &error, &p), 0);
        assert_non_null(p);
        assert_null(error);
}

/* A one-shot server: accepts one connection, reads one call, then acts as told. */
typedef enum ServerMode {
        SERVER_REPLY,       /* echo the parameters back */
        SERVER_ERROR,       /* io.meshd.PeerNotFound */
        SERVER_CLOSE,       /* hang up without replying */
        SERVER_HALF_REPLY,  /* half a reply, then hang up */
        SERVER_SILENT,      /* never reply (until the client gives up) */
        SERVER_SPLIT_REPLY, /* the reply in several writes */
        SERVER_REFUSE,      /* an error at once, then hang up, the call unread (meshd at a limit) */
} ServerMode;

typedef struct Server {
        char *dir;
        char path[128];
        int listen_fd;
        ServerMode mode;
        pthread_t thread;
        char method[128];
} Server;

static void *server_run(void *userdata) {
        Server *s = userdata;
        _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};
        _cleanup_json_ cJSON *call = NULL;
        _cleanup_free_ char *reply = NULL;
        _cleanup_close_ int fd = -EBADF;
        const cJSON *params;
        const char *method;
        size_t len;
        char buf[256];

        fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
                return NULL;

        if (s->mode == SERVER_REFUSE) {
                _cleanup_json_ cJSON *p = cJSON_CreateObject();
                cJSON_AddStringToObject(p, "message", "too many connections from this user");
                if (varlink_format_reply(p, "io.meshd.TooManyConnections", &reply, &len) >= 0)
                        (void) write(fd, reply, len);
                snprintf(s->method, sizeof(s->method), "(refused)");
                return NULL;
        }

        while (varlink_buffer_pop(&b, &call) == 0) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n <= 0)
                        return NULL;
                if (varlink_buffer_append(&b, buf, (size_t) n) < 0)
                        return NULL;
        }
        if (!call || varlink_parse_call(call, &method, &params) < 0)
                return NULL;
        snprintf(s->method, sizeof(s->method), "%s", method);

        switch (s->mode) {
        case SERVER_REPLY:
        case SERVER_SPLIT_REPLY:
                if (varlink_format_reply(params, NULL, &reply, &len) < 0)
                        return NULL;
                break;
        case SERVER_ERROR: {
                _cleanup_json_ cJSON *p = cJSON_CreateObject();
                cJSON_AddStringToObject(p, "peer", "ghost");
                if (varlink_format_reply(p, "io.meshd.PeerNotFound", &reply, &len) < 0)
                        return NULL;
                break;
        }
        case SERVER_CLOSE:
        case SERVER_REFUSE:
                return NULL;
        case SERVER_HALF_REPLY:
                if (write(fd, "{\"parameters\":", 14) < 0)
                        return NULL;
                return NULL;
        case SERVER_SILENT:
                /* Wait for the client to hang up. */
                while (read(fd, buf, sizeof(buf)) > 0)
                        ;
                return NULL;
        }

        if (s->mode == SERVER_SPLIT_REPLY) {
                for (size_t i = 0; i < len; i++) {
                        if (write(fd, reply + i, 1) != 1)
                                return NULL;
                        if (i % 4 == 0)
                                (void) poll(NULL, 0, 1);
                }
        } else if (write(fd, reply, len) != (ssize_t) len)
                return NULL;

        return NULL;
}

static int server_setup(void **state) {
        Server *s = calloc(1, sizeof(Server));
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        assert_non_null(s);
        s->dir = test_tmpdir_new("test-varlink");
        snprintf(s->path, sizeof(s->path), "%s/io.meshd.sock", s->dir);
        strcpy(sa.sun_path, s->path);

        s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(s->listen_fd >= 0);
        assert_int_equal(bind(s->listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(s->listen_fd, 4), 0);
        *state = s;
        return 0;
}

static int server_teardown(void **state) {
        Server *s = *state;

        safe_close(s->listen_fd);
        test_tmpdir_free(s->dir);
        free(s);
        return 0;
}

static void server_start(Server *s, ServerMode mode) {
        s->mode = mode;
        assert_int_equal(pthread_create(&s->thread, NULL, server_run, s), 0);
}

static void server_join(Server *s) {
        assert_int_equal(pthread_join(s->thread, NULL), 0);
}

static void test_call_success(void **state) {
        Server *s = *state;
        _cleanup_json_ cJSON *params = cJSON_CreateObject(), *reply = NULL;
        _cleanup_free_ char *error = NULL;

        cJSON_AddStringToObject(params, "peer", "nas");
        server_start(s, SERVER_REPLY);
        assert_int_equal(varlink_call(s->path, "io.meshd.Ping", params, 5 * USEC_PER_SEC, &reply, &error), 0);
        server_join(s);

        assert_null(error);
        assert_string_equal(s->method, "io.meshd.Ping");
        assert_string_equal(cJSON_GetObjectItem(reply, "peer")->valuestring, "nas");
}

static void test_call_split_reply(void **state) {
        Server *s = *state;
        _cleanup_json_ cJSON *reply = NULL;

        server_start(s, SERVER_SPLIT_REPLY);
        assert_int_equal(varlink_call(s->path, "io.meshd.GetStatus", NULL, 5 * USEC_PER_SEC, &reply, NULL), 0);
        server_join(s);
        assert_true(cJSON_IsObject(reply));
        assert_null(reply->child);
}

static void test_call_error_reply(void **state) {
        Server *s = *state;
        _cleanup_json_ cJSON *reply = NULL;
        _cleanup_free_ char *error = NULL;

        server_start(s, SERVER_ERROR);
        assert_int_equal(varlink_call(s->path, "io.meshd.Ping", NULL, 5 * USEC_PER_SEC, &reply, &error), 1);
        server_join(s);
        assert_string_equal(error, "io.meshd.PeerNotFound");
        assert_string_equal(cJSON_GetObjectItem(reply, "peer")->valuestring, "ghost");
}

static void test_call_server_closes(void **state) {
        Server *s = *state;
        cJSON *reply = NULL;
        char *error = NULL;

        server_start(s, SERVER_CLOSE);
        assert_int_equal(varlink_call(s->path, "io.meshd.Ping", NULL, 5 * USEC_PER_SEC, &reply, &error),
                         -ECONNRESET);
        server_join(s);
        assert_null(reply);
        assert_null(error);

        server_start(s, SERVER_HALF_REPLY);
        assert_int_equal(varlink_call(s->path, "io.meshd.Ping", NULL, 5 * USEC_PER_SEC, &reply, &error),
                         -ECONNRESET);
        server_join(s);
        assert_null(reply);
}

static void test_call_refused(void **state) {
        Server *s = *state;

        /* The client reads the reason the server gave, the call unread.
         * (When the hang-up comes before the call goes out, send() fails
         * with EPIPE and the reason must still be read: timing decides,
         * so the loop tries a few times.) */
        for (int i = 0; i < 20; i++) {
                _cleanup_json_ cJSON *reply = NULL;
                _cleanup_free_ char *error = NULL;

                server_start(s, SERVER_REFUSE);
                assert_int_equal(varlink_call(s->path, "io.meshd.GetStatus", NULL, 5 * USEC_PER_SEC, &reply,
                                              &error),
                                 1);
                server_join(s);
                assert_string_equal(error, "io.meshd.TooManyConnections");
                assert_string_equal(cJSON_GetObjectItem(reply, "message")->valuestring,
                                    "too many connections from this user");
        }
}

static void test_call_timeout(void **state) {
        Server *s = *state;
        struct timespec a, b;
        cJSON *reply = NULL;

        server_start(s, SERVER_SILENT);
        clock_gettime(CLOCK_MONOTONIC, &a);
        assert_int_equal(varlink_call(s->path, "io.meshd.WaitOnline", NULL, 200 * USEC_PER_MSEC, &reply, NULL),
                         -ETIMEDOUT);
        clock_gettime(CLOCK_MONOTONIC, &b);
        server_join(s);
        assert_null(reply);

        int64_t ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
        assert_in_range(ms, 190, 2000);
}

static void test_call_no_daemon(void **state) {
        Server *s = *state;
        _cleanup_free_ char *missing = NULL, *long_path = NULL;

        assert_int_equal(asprintf(&missing, "%s/nothing.sock", s->dir) > 0, 1);
        assert_int_equal(varlink_call(missing, "io.meshd.GetStatus", NULL, USEC_PER_SEC, NULL, NULL), -ENOENT);

        /* A socket file with nobody listening. */
        safe_close(s->listen_fd);
        s->listen_fd = -EBADF;
        assert_int_equal(varlink_call(s->path, "io.meshd.GetStatus", NULL, USEC_PER_SEC, NULL, NULL),
                         -ECONNREFUSED);

        long_path = malloc(200);
        memset(long_path, 'x', 199);
        long_path[199] = '\0';
        assert_int_equal(varlink_call(long_path, "io.meshd.GetStatus", NULL, USEC_PER_SEC, NULL, NULL),
                         -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_buffer_single_and_merged),
                cmocka_unit_test(test_buffer_split),
                cmocka_unit_test(test_buffer_bad_messages),
                cmocka_unit_test(test_buffer_oversize),
                cmocka_unit_test(test_format_parse_call),
                cmocka_unit_test(test_parse_call_invalid),
                cmocka_unit_test(test_format_parse_reply),
                cmocka_unit_test_setup_teardown(test_call_success, server_setup, server_teardown),
                cmocka_unit_test_setup_teardown(test_call_split_reply, server_setup, server_teardown),
                cmocka_unit_test_setup_teardown(test_call_error_reply, server_setup, server_teardown),
                cmocka_unit_test_setup_teardown(test_call_server_closes, server_setup, server_teardown),
                cmocka_unit_test_setup_teardown(test_call_refused, server_setup, server_teardown),
                cmocka_unit_test_setup_teardown(test_call_timeout, server_setup, server_teardown),
                cmocka_unit_test_setup_teardown(test_call_no_daemon, server_setup, server_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
