/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control client against a real TLS server on loopback: libmicrohttpd in
 * its own thread, with a throwaway self-signed certificate made by GnuTLS. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <microhttpd.h>
#include <cmocka.h>

#include "control-client.h"
#include "key.h"
#include "macro.h"
#include "register-proof.h"
#include "tls-test-cert.h"
#include "varlink.h"

#define POLLS_MAX 8

typedef enum Scenario {
        SCENARIO_REGISTER_OK,
        SCENARIO_REGISTER_401,
        SCENARIO_REGISTER_500,
        SCENARIO_REGISTER_NOT_JSON,
        SCENARIO_REGISTER_TRUNCATED,
        SCENARIO_REGISTER_HUGE,
        SCENARIO_POLL,
} Scenario;

/* Written by the test before the server thread runs, or under lock. */
typedef struct Server {
        struct MHD_Daemon *daemon;
        char url[64];
        pthread_mutex_t lock;
        Scenario scenario;
        int poll_plan[POLLS_MAX]; /* HTTP status of each poll; 0 ends the plan (repeat last) */
        int n_polls;
        char poll_since[POLLS_MAX][32];
        char poll_timeout[32];
        char authorization[128];
        char user_agent[64];
        char register_body[1024];
        char endpoints_body[256];
        int n_requests;
} Server;

typedef struct Request {
        char body[4096];
        size_t size;
} Request;

static TlsTestCert tls;

static int make_cert(void **state) {
        tls_test_cert_make(&tls);
        return 0;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *body) {
        struct MHD_Response *resp;
        enum MHD_Result ret;

        resp = MHD_create_response_from_buffer(strlen(body), (void *) body, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        if (body[0] == '{')
                (void) MHD_add_response_header(resp, "Content-Type", "application/json");
        ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* Promises 1000 bytes, sends 10, then makes MHD drop the connection. */
static ssize_t truncated_reader(void *cls, uint64_t pos, char *buf, size_t max) {
        if (pos > 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        memcpy(buf, "{\"node_id\"", 10);
        return 10;
}

static void copy_header(struct MHD_Connection *conn, enum MHD_ValueKind kind, const char *name, char *buf,
                        size_t size) {
        const char *v = MHD_lookup_connection_value(conn, kind, name);
        snprintf(buf, size, "%s", v ? v : "");
}

static enum MHD_Result serve_poll(Server *s, struct MHD_Connection *conn) {
        int i, status;

        pthread_mutex_lock(&s->lock);
        i = s->n_polls++;
        if (i < POLLS_MAX)
                copy_header(conn, MHD_GET_ARGUMENT_KIND, "since", s->poll_since[i], sizeof(s->poll_since[i]));
        copy_header(conn, MHD_GET_ARGUMENT_KIND, "timeout", s->poll_timeout, sizeof(s->poll_timeout));
        copy_header(conn, MHD_HEADER_KIND, "Authorization", s->authorization, sizeof(s->authorization));
        copy_header(conn, MHD_HEADER_KIND, "User-Agent", s->user_agent, sizeof(s->user_agent));
        while (i > 0 && (i >= POLLS_MAX || s->poll_plan[i] == 0))
                i--;
        status = s->poll_plan[i];
        pthread_mutex_unlock(&s->lock);

        switch (status) {
        case 200:
                return respond(conn, 200, "{\"version\": 5}");
        case 304:
                return respond(conn, 304, "");
        case 401:
                return respond(conn, 401, "{\"error\": \"unknown node token\"}");
        default:
                return respond(conn, (unsigned) status, "oops");
        }
}

static enum MHD_Result serve_register(Server *s, struct MHD_Connection *conn, const Request *req) {
        struct MHD_Response *resp;
        enum MHD_Result ret;
        char *huge;

        pthread_mutex_lock(&s->lock);
        snprintf(s->register_body, sizeof(s->register_body), "%.*s", (int) req->size, req->body);
        copy_header(conn, MHD_HEADER_KIND, "User-Agent", s->user_agent, sizeof(s->user_agent));
        pthread_mutex_unlock(&s->lock);

        switch (s->scenario) {
        case SCENARIO_REGISTER_OK:
                return respond(conn, 200, "{\"node_id\": 3, \"name\": \"nas\", \"token\": \"tok\"}");
        case SCENARIO_REGISTER_401:
                return respond(conn, 401, "{\"error\": \"auth key expired\"}");
        case SCENARIO_REGISTER_500:
                return respond(conn, 500, "<html>internal error</html>");
        case SCENARIO_REGISTER_NOT_JSON:
                return respond(conn, 200, "{\"node_id\": 3,");
        case SCENARIO_REGISTER_TRUNCATED:
                resp = MHD_create_response_from_callback(1000, 64, truncated_reader, NULL, NULL);
                ret = MHD_queue_response(conn, 200, resp);
                MHD_destroy_response(resp);
                return ret;
        case SCENARIO_REGISTER_HUGE:
                huge = malloc(5 * 1024 * 1024 + 1);
                if (!huge)
                        return MHD_NO;
                memset(huge, ' ', 5 * 1024 * 1024);
                huge[0] = '{';
                huge[5 * 1024 * 1024 - 1] = '}';
                resp = MHD_create_response_from_buffer(5 * 1024 * 1024, huge, MHD_RESPMEM_MUST_FREE);
                ret = MHD_queue_response(conn, 200, resp);
                MHD_destroy_response(resp);
                return ret;
        default:
                return respond(conn, 404, "{\"error\": \"no such thing\"}");
        }
}

/* The fake server's per-challenge key: fixed, so the test can check the proof. */
static const WgKey server_private = { { 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                        7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7 } };
static const WgKey node_private = { { 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                                      9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9 } };
#define TEST_CHALLENGE "test-challenge"

static enum MHD_Result serve_challenge(struct MHD_Connection *conn) {
        char pub[WG_KEY_B64_LEN + 1], body[256];
        WgKey k;

        assert_int_equal(key_public_from_private(&server_private, &k), 0);
        key_to_base64(&k, pub);
        snprintf(body, sizeof(body),
                 "{\"challenge\": \"" TEST_CHALLENGE "\", \"server_key\": \"%s\", \"expires\": 1}", pub);
        return respond(conn, 200, body);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **con_cls) {
        Server *s = cls;
        Request *req = *con_cls;

        if (!req) {
                req = calloc(1, sizeof(*req));
                if (!req)
                        return MHD_NO;
                *con_cls = req;
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                size_t n = MIN(*upload_data_size, sizeof(req->body) - 1 - req->size);
                memcpy(req->body + req->size, upload_data, n);
                req->size += n;
                *upload_data_size = 0;
                return MHD_YES;
        }

        pthread_mutex_lock(&s->lock);
        s->n_requests++;
        pthread_mutex_unlock(&s->lock);

        if (streq(method, "POST") && streq(url, "/v1/challenge"))
                return serve_challenge(conn);
        if (streq(method, "POST") && streq(url, "/v1/register"))
                return serve_register(s, conn, req);
        if (streq(method, "GET") && streq(url, "/v1/netmap"))
                return serve_poll(s, conn);
        if (streq(method, "POST") && streq(url, "/v1/endpoints")) {
                pthread_mutex_lock(&s->lock);
                snprintf(s->endpoints_body, sizeof(s->endpoints_body), "%.*s", (int) req->size, req->body);
                pthread_mutex_unlock(&s->lock);
                return respond(conn, 204, "");
        }
        return respond(conn, 404, "{\"error\": \"no such thing\"}");
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
        free(*con_cls);
        *con_cls = NULL;
}

static Server *server_start(Scenario scenario) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        const union MHD_DaemonInfo *info;
        Server *s;

        s = calloc(1, sizeof(*s));
        assert_non_null(s);
        pthread_mutex_init(&s->lock, NULL);
        s->scenario = scenario;
        s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL, NULL, handler, s,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa, MHD_OPTION_HTTPS_MEM_KEY,
                                     tls.key_pem, MHD_OPTION_HTTPS_MEM_CERT, tls.cert_pem,
                                     MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL, MHD_OPTION_END);
        assert_non_null(s->daemon);
        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
        assert_non_null(info);
        snprintf(s->url, sizeof(s->url), "https://127.0.0.1:%u/", (unsigned) info->port);
        return s;
}

static void server_stop(Server *s) {
        MHD_stop_daemon(s->daemon);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

static int server_get(Server *s, const int *field) {
        int v;

        pthread_mutex_lock(&s->lock);
        v = *field;
        pthread_mutex_unlock(&s->lock);
        return v;
}

/* ---- the client side, in the test's sd-event loop */

typedef struct Context {
        sd_event *event;
        ControlClient *client;
        Server *server;
        int n_calls;
        int errors[POLLS_MAX];
        char message[256];
        char body[256];
        bool connected_at_callback[POLLS_MAX];
        bool done;
        /* what the poll callback does */
        bool stop_in_callback;
        bool free_in_callback;
        bool reject_netmap; /* don't advance the version */
        int stop_after;     /* stop polling at this many callbacks */
        bool post_endpoints_in_callback;
        bool wait_for_endpoints; /* also wait until the server got them */
        uint64_t started_usec;
        uint64_t elapsed_usec;
} Context;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static int on_check(sd_event_source *s, uint64_t usec, void *userdata) {
        Context *ctx = userdata;
        bool seen = true;

        if (ctx->wait_for_endpoints) {
                pthread_mutex_lock(&ctx->server->lock);
                seen = ctx->server->endpoints_body[0] != 0;
                pthread_mutex_unlock(&ctx->server->lock);
        }
        if (ctx->done && seen)
                return sd_event_exit(ctx->event, 0);
        return sd_event_source_set_time(s, usec + 5 * USEC_PER_MSEC);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Context *ctx = userdata;

        return sd_event_exit(ctx->event, -ETIMEDOUT);
}

/* Runs the loop until ctx->done, or fails after timeout. */
static void run_until_done(Context *ctx, uint64_t timeout_usec) {
        sd_event_source *check = NULL, *deadline = NULL;
        uint64_t now;

        assert_true(sd_event_now(ctx->event, CLOCK_MONOTONIC, &now) >= 0);
        assert_int_equal(sd_event_add_time(ctx->event, &check, CLOCK_MONOTONIC, now, 1000, on_check, ctx), 0);
        assert_int_equal(sd_event_source_set_enabled(check, SD_EVENT_ON), 0);
        assert_int_equal(sd_event_add_time(ctx->event, &deadline, CLOCK_MONOTONIC, now + timeout_usec, 1000,
                                           on_deadline, ctx),
                         0);
        assert_int_equal(sd_event_loop(ctx->event), 0);
        sd_event_source_disable_unref(check);
        sd_event_source_disable_unref(deadline);
}

static void context_init(Context *ctx, Server *server, const char *url, const char *the_pin) {
        *ctx = (Context) { .server = server };
        assert_int_equal(sd_event_new(&ctx->event), 0);
        assert_int_equal(control_client_new(ctx->event, url, the_pin, &ctx->client), 0);
        ctx->started_usec = now_usec();
}

static void context_done(Context *ctx) {
        control_client_free(ctx->client);
        sd_event_unref(ctx->event);
}

static void on_reply(ControlClient *c, int error, const char *message, const char *body, size_t len,
                     void *userdata) {
        Context *ctx = userdata;

        assert_ptr_equal(c, ctx->client);
        if (ctx->n_calls < POLLS_MAX)
                ctx->errors[ctx->n_calls] = error;
        ctx->n_calls++;
        snprintf(ctx->message, sizeof(ctx->message), "%s", message ? message : "");
        snprintf(ctx->body, sizeof(ctx->body), "%s", body ? body : "");
        if (error == 0) {
                assert_non_null(body);
                assert_int_equal(strlen(body), len);
        } else {
                assert_null(body);
                assert_non_null(message);
        }
        ctx->done = true;
}

static char *const test_endpoints[] = { (char *) "192.0.2.11:41641", NULL };

static void do_register(Scenario scenario, const char *the_pin, int expected, const char *expected_message) {
        Server *s = server_start(scenario);
        Context ctx;

        context_init(&ctx, s, s->url, the_pin ? the_pin : tls.pin);
        assert_int_equal(control_client_register(ctx.client, "mskey-secret", &node_private, "nas",
                                                 test_endpoints, on_reply, &ctx),
                         0);
        assert_int_equal(control_client_register(ctx.client, "k", &node_private, "h", NULL, on_reply, &ctx),
                         -EBUSY);
        run_until_done(&ctx, 10 * USEC_PER_SEC);

        assert_int_equal(ctx.n_calls, 1);
        assert_int_equal(ctx.errors[0], expected);
        if (expected_message)
                assert_string_equal(ctx.message, expected_message);
        context_done(&ctx);
        server_stop(s);
}

static void test_register_ok(void **state) {
        Server *s = server_start(SCENARIO_REGISTER_OK);
        _cleanup_json_ cJSON *j = NULL;
        Context ctx;

        context_init(&ctx, s, s->url, tls.pin);
        assert_int_equal(control_client_register(ctx.client, "mskey-secret", &node_private, "nas",
                                                 test_endpoints, on_reply, &ctx),
                         0);
        run_until_done(&ctx, 10 * USEC_PER_SEC);

        assert_int_equal(ctx.n_calls, 1);
        assert_int_equal(ctx.errors[0], 0);
        assert_string_equal(ctx.body, "{\"node_id\": 3, \"name\": \"nas\", \"token\": \"tok\"}");

        j = cJSON_Parse(s->register_body);
        assert_non_null(j);
        assert_string_equal(cJSON_GetObjectItem(j, "authkey")->valuestring, "mskey-secret");
        {
                char node_public_b64[WG_KEY_B64_LEN + 1];
                WgKey node_public;

                assert_int_equal(key_public_from_private(&node_private, &node_public), 0);
                key_to_base64(&node_public, node_public_b64);
                assert_string_equal(cJSON_GetObjectItem(j, "public_key")->valuestring, node_public_b64);
                assert_string_equal(cJSON_GetObjectItem(j, "challenge")->valuestring, TEST_CHALLENGE);
                /* the proof is the one the server side of register-proof.c accepts */
                assert_int_equal(register_proof_verify(&server_private, &node_public,
                                                       &(RegisterProofFields) {
                                                               .challenge = TEST_CHALLENGE,
                                                               .public_key = node_public_b64,
                                                               .hostname = "nas",
                                                               .authkey = "mskey-secret",
                                                       },
                                                       cJSON_GetObjectItem(j, "proof")->valuestring),
                                 0);
        }
        assert_string_equal(cJSON_GetObjectItem(j, "hostname")->valuestring, "nas");
        assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "endpoints"), 0)->valuestring,
                            "192.0.2.11:41641");
        assert_int_equal(strncmp(s->user_agent, "meshd/", 6), 0);

        context_done(&ctx);
        server_stop(s);
}

static void test_register_401(void **state) {
        do_register(SCENARIO_REGISTER_401, NULL, -EACCES, "auth key expired");
}

static void test_register_500(void **state) {
        do_register(SCENARIO_REGISTER_500, NULL, -EBADMSG, "HTTP 500 from control server");
}

static void test_register_not_json(void **state) {
        do_register(SCENARIO_REGISTER_NOT_JSON, NULL, -EBADMSG, NULL);
}

static void test_register_truncated(void **state) {
        do_register(SCENARIO_REGISTER_TRUNCATED, NULL, -EBADMSG, "truncated reply");
}

static void test_register_huge(void **state) {
        do_register(SCENARIO_REGISTER_HUGE, NULL, -EBADMSG, "reply too large");
}

static void test_wrong_pin(void **state) {
        /* Verification of the chain is off: only the pin can refuse this server. */
        do_register(SCENARIO_REGISTER_OK, "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", -EKEYREJECTED,
                    NULL);
}

/* A port that was free a moment ago and has no listener now. */
static void refused_url(char url[static 64]) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof(sa);
        int fd;

        fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &sl), 0);
        close(fd);
        snprintf(url, 64, "https://127.0.0.1:%u", (unsigned) ntohs(sa.sin_port));
}

static void test_connection_refused(void **state) {
        char url[64];
        Context ctx;

        refused_url(url);
        context_init(&ctx, NULL, url, tls.pin);
        assert_int_equal(control_client_register(ctx.client, "k", &node_private, "h", NULL, on_reply, &ctx), 0);
        run_until_done(&ctx, 10 * USEC_PER_SEC);
        assert_int_equal(ctx.n_calls, 1);
        assert_int_equal(ctx.errors[0], -EHOSTUNREACH);
        context_done(&ctx);
}

static void test_new_invalid(void **state) {
        sd_event *e = NULL;
        ControlClient *c = NULL;

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(control_client_new(e, "http://127.0.0.1", tls.pin, &c), -EINVAL);
        assert_int_equal(control_client_new(e, "https://127.0.0.1", "md5//x", &c), -EINVAL);
        assert_int_equal(control_client_new(e, "https://127.0.0.1//", tls.pin, &c), 0);
        assert_string_equal(control_client_get_url(c), "https://127.0.0.1");
        assert_false(control_client_is_connected(c));
        assert_int_equal(control_client_post_endpoints(c, test_endpoints), -ENOTCONN);
        control_client_free(c);
        sd_event_unref(e);
}

static void on_poll(ControlClient *c, int error, const char *message, const char *body, size_t len,
                    void *userdata) {
        Context *ctx = userdata;
        int n = ctx->n_calls;

        if (n < POLLS_MAX) {
                ctx->errors[n] = error;
                ctx->connected_at_callback[n] = control_client_is_connected(c);
        }
        ctx->n_calls++;
        snprintf(ctx->message, sizeof(ctx->message), "%s", message ? message : "");
        snprintf(ctx->body, sizeof(ctx->body), "%s", body ? body : "");

        if (error == 0) {
                ctx->elapsed_usec = now_usec() - ctx->started_usec;
                if (!ctx->reject_netmap)
                        control_client_set_netmap_version(c, 5);
                if (ctx->stop_after > 0 && ctx->n_calls < ctx->stop_after)
                        return;
                if (ctx->post_endpoints_in_callback)
                        assert_int_equal(control_client_post_endpoints(c, test_endpoints), 0);
                if (ctx->stop_in_callback) {
                        control_client_stop_polling(c);
                        ctx->done = true;
                }
                if (ctx->free_in_callback) {
                        assert_null(control_client_free(c));
                        ctx->client = NULL;
                        ctx->done = true;
                }
        } else if (error == -EACCES)
                ctx->done = true;
}

static void test_poll_304_200_401(void **state) {
        Server *s = server_start(SCENARIO_POLL);
        Context ctx;

        memcpy(s->poll_plan, (int[]) { 304, 200, 401 }, 3 * sizeof(int));
        context_init(&ctx, s, s->url, tls.pin);
        assert_int_equal(control_client_start_polling(ctx.client, "tok", 0, on_poll, &ctx), 0);
        run_until_done(&ctx, 10 * USEC_PER_SEC);

        /* 304 is silent, 200 delivers, 401 reports and ends the loop */
        assert_int_equal(ctx.n_calls, 2);
        assert_int_equal(ctx.errors[0], 0);
        assert_true(ctx.connected_at_callback[0]);
        assert_int_equal(ctx.errors[1], -EACCES);
        assert_false(ctx.connected_at_callback[1]);
        assert_string_equal(ctx.message, "unknown node token");
        assert_false(control_client_is_connected(ctx.client));

        assert_int_equal(server_get(s, &s->n_polls), 3);
        assert_string_equal(s->poll_since[0], "0");
        assert_string_equal(s->poll_since[1], "0");
        assert_string_equal(s->poll_since[2], "5");
        assert_string_equal(s->poll_timeout, "55");
        assert_string_equal(s->authorization, "Bearer tok");

        context_done(&ctx);
        server_stop(s);
}

static void test_poll_backoff(void **state) {
        Server *s = server_start(SCENARIO_POLL);
        Context ctx;

        memcpy(s->poll_plan, (int[]) { 500, 200 }, 2 * sizeof(int));
        context_init(&ctx, s, s->url, tls.pin);
        ctx.stop_in_callback = true;
        assert_int_equal(control_client_start_polling(ctx.client, "tok", 7, on_poll, &ctx), 0);
        run_until_done(&ctx, 10 * USEC_PER_SEC);

        assert_int_equal(ctx.n_calls, 2);
        assert_int_equal(ctx.errors[0], -EBADMSG);
        assert_false(ctx.connected_at_callback[0]);
        assert_int_equal(ctx.errors[1], 0);
        assert_string_equal(ctx.body, "{\"version\": 5}");
        /* the retry waited the first backoff step */
        assert_true(ctx.elapsed_usec >= 900 * USEC_PER_MSEC);
        assert_false(control_client_is_connected(ctx.client));
        assert_int_equal(server_get(s, &s->n_polls), 2);
        assert_string_equal(s->poll_since[1], "7");

        context_done(&ctx);
        server_stop(s);
}

static void test_poll_rejected_netmap(void **state) {
        Server *s = server_start(SCENARIO_POLL);
        Context ctx;

        /* The server answers at once while the node stays behind; the
         * client must not hammer it. */
        memcpy(s->poll_plan, (int[]) { 200 }, sizeof(int));
        context_init(&ctx, s, s->url, tls.pin);
        ctx.reject_netmap = true;
        ctx.stop_in_callback = true;
        ctx.stop_after = 2;
        assert_int_equal(control_client_start_polling(ctx.client, "tok", 3, on_poll, &ctx), 0);
        run_until_done(&ctx, 10 * USEC_PER_SEC);

        assert_int_equal(ctx.n_calls, 2);
        assert_true(ctx.elapsed_usec >= 900 * USEC_PER_MSEC);
        assert_int_equal(server_get(s, &s->n_polls), 2);
        assert_string_equal(s->poll_since[1], "3");

        context_done(&ctx);
        server_stop(s);
}

static void test_poll_free_in_callback(void **state) {
        Server *s = server_start(SCENARIO_POLL);
        Context ctx;

        memcpy(s->poll_plan, (int[]) { 200 }, sizeof(int));
        context_init(&ctx, s, s->url, tls.pin);
        ctx.free_in_callback = true;
        assert_int_equal(control_client_start_polling(ctx.client, "tok", 0, on_poll, &ctx), 0);
        run_until_done(&ctx, 10 * USEC_PER_SEC);
        assert_int_equal(ctx.n_calls, 1);
        assert_null(ctx.client);
        context_done(&ctx);
        server_stop(s);
}

static void test_post_endpoints(void **state) {
        Server *s = server_start(SCENARIO_POLL);
        Context ctx;

        memcpy(s->poll_plan, (int[]) { 200 }, sizeof(int));
        context_init(&ctx, s, s->url, tls.pin);
        ctx.post_endpoints_in_callback = true;
        ctx.stop_in_callback = true;
        /* the POST outlives the poll loop that started it */
        ctx.wait_for_endpoints = true;
        assert_int_equal(control_client_start_polling(ctx.client, "tok", 0, on_poll, &ctx), 0);
        run_until_done(&ctx, 10 * USEC_PER_SEC);

        assert_string_equal(s->endpoints_body, "{\"endpoints\":[\"192.0.2.11:41641\"]}");
        assert_int_equal(server_get(s, &s->n_polls), 1);
        context_done(&ctx);
        server_stop(s);
}

/* Replicas: a join whose first URL refuses goes on at the second. */
static void test_register_fails_over(void **state) {
        Server *s = server_start(SCENARIO_REGISTER_OK);
        char dead[64], list[160];
        Context ctx;

        refused_url(dead);
        snprintf(list, sizeof(list), "%s, %s", dead, s->url);
        context_init(&ctx, s, list, tls.pin);
        assert_string_equal(control_client_get_url(ctx.client), dead);
        assert_int_equal(control_client_register(ctx.client, "mskey-secret", &node_private, "nas",
                                                 test_endpoints, on_reply, &ctx),
                         0);
        run_until_done(&ctx, 10 * USEC_PER_SEC);
        assert_int_equal(ctx.n_calls, 1);
        assert_int_equal(ctx.errors[0], 0);
        assert_string_equal(control_client_get_urls(ctx.client), list);
        assert_int_equal(strncmp(control_client_get_url(ctx.client), s->url, strlen(s->url) - 1), 0);
        context_done(&ctx);
        server_stop(s);
}

/* Replicas: a 5xx moves the poll to the next URL at once, which is asked
 * for its whole netmap; no backoff while a URL is left to try. */
static void test_poll_fails_over(void **state) {
        Server *a = server_start(SCENARIO_POLL), *b = server_start(SCENARIO_POLL);
        char list[160];
        Context ctx;

        memcpy(a->poll_plan, (int[]) { 503 }, sizeof(int));
        memcpy(b->poll_plan, (int[]) { 200 }, sizeof(int));
        snprintf(list, sizeof(list), "%s %s", a->url, b->url);
        context_init(&ctx, b, list, tls.pin);
        ctx.stop_in_callback = true;
        assert_int_equal(control_client_start_polling(ctx.client, "tok", 7, on_poll, &ctx), 0);
        assert_false(control_client_replica_changed(ctx.client));
        run_until_done(&ctx, 10 * USEC_PER_SEC);

        assert_int_equal(ctx.n_calls, 2);
        assert_int_equal(ctx.errors[0], -EBADMSG);
        assert_int_equal(ctx.errors[1], 0);
        assert_true(ctx.elapsed_usec < 900 * USEC_PER_MSEC);
        assert_int_equal(server_get(a, &a->n_polls), 1);
        assert_string_equal(a->poll_since[0], "7");
        assert_int_equal(server_get(b, &b->n_polls), 1);
        assert_string_equal(b->poll_since[0], "0");
        /* the callback took version 5: the replica's first netmap is in */
        assert_false(control_client_replica_changed(ctx.client));
        assert_int_equal(strncmp(control_client_get_url(ctx.client), b->url, strlen(b->url) - 1), 0);

        context_done(&ctx);
        server_stop(a);
        server_stop(b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_new_invalid),           cmocka_unit_test(test_register_ok),
                cmocka_unit_test(test_register_401),          cmocka_unit_test(test_register_500),
                cmocka_unit_test(test_register_not_json),     cmocka_unit_test(test_register_truncated),
                cmocka_unit_test(test_register_huge),         cmocka_unit_test(test_wrong_pin),
                cmocka_unit_test(test_connection_refused),    cmocka_unit_test(test_poll_304_200_401),
                cmocka_unit_test(test_poll_backoff),          cmocka_unit_test(test_poll_rejected_netmap),
                cmocka_unit_test(test_poll_free_in_callback), cmocka_unit_test(test_post_endpoints),
                cmocka_unit_test(test_register_fails_over),   cmocka_unit_test(test_poll_fails_over),
        };
        int r;

        /* Loopback only: a proxy from the environment must not get these. */
        unsetenv("https_proxy");
        unsetenv("HTTPS_PROXY");
        unsetenv("all_proxy");
        unsetenv("ALL_PROXY");

        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
                fprintf(stderr, "libmicrohttpd without TLS, skipping\n");
                return 77;
        }
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return 1;
        r = cmocka_run_group_tests(tests, make_cert, NULL);
        curl_global_cleanup();
        return r;
}
