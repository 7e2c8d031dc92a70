/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "time-util.h"
#include "varlink.h"

/* After a big message the buffer would otherwise stay big for the whole
 * life of a long-lived connection. */
#define VARLINK_BUFFER_KEEP (64U * 1024U)

/* What parse_call()/parse_reply() hand out for an absent "parameters":
 * read-only, so one shared instance is fine. */
static const cJSON empty_object = { .type = cJSON_Object };

void varlink_buffer_done(VarlinkBuffer *b) {
        if (!b)
                return;
        free(b->data);
        *b = (VarlinkBuffer) {};
}

int varlink_buffer_append(VarlinkBuffer *b, const void *data, size_t len) {
        if (!b || (!data && len > 0))
                return -EINVAL;
        if (len == 0)
                return 0;

        /* A reader pops after every append, so more than two maximal messages
         * buffered means someone is flooding us. */
        if (len > 2 * (size_t) VARLINK_MESSAGE_MAX - b->size || b->size > 2 * (size_t) VARLINK_MESSAGE_MAX)
                return -EMSGSIZE;

        if (b->size + len > b->allocated) {
                size_t n = MAX(b->allocated * 2, b->size + len);
                n = MAX(n, (size_t) 4096);

                char *p = realloc(b->data, n);
                if (!p)
                        return -ENOMEM;
                b->data = p;
                b->allocated = n;
        }

        memcpy(b->data + b->size, data, len);
        b->size += len;
        return 0;
}

static void varlink_buffer_consume(VarlinkBuffer *b, size_t n) {
        memmove(b->data, b->data + n, b->size - n);
        b->size -= n;

        if (b->size == 0 && b->allocated > VARLINK_BUFFER_KEEP) {
                free(b->data);
                b->data = NULL;
                b->allocated = 0;
        }
}

int varlink_buffer_pop(VarlinkBuffer *b, cJSON **ret) {
        const char *end = NULL;
        char *nul;

        if (!b || !ret)
                return -EINVAL;

        nul = b->size > 0 ? memchr(b->data, 0, b->size) : NULL;
        if (!nul)
                return b->size > VARLINK_MESSAGE_MAX ? -EMSGSIZE : 0;

        size_t len = (size_t) (nul - b->data);
        if (len > VARLINK_MESSAGE_MAX) {
                varlink_buffer_consume(b, len + 1);
                return -EMSGSIZE;
        }

        cJSON *j = cJSON_ParseWithLengthOpts(b->data, len + 1, &end, true);
        /* The bad message is dropped too: the caller decides whether the
         * connection survives, the buffer stays aligned to message starts. */
        varlink_buffer_consume(b, len + 1);
        if (!j)
                return -EBADMSG;
        if (!cJSON_IsObject(j)) {
                cJSON_Delete(j);
                return -EBADMSG;
        }

        *ret = j;
        return 1;
}

static int varlink_format(cJSON *msg, const cJSON *parameters, char **ret, size_t *ret_len) {
        _cleanup_json_ cJSON *m = msg;
        cJSON *p;

        if (parameters && !cJSON_IsObject(parameters))
                return -EINVAL;

        /* A reference avoids deep-copying the caller's (borrowed) tree. */
        p = parameters ? cJSON_CreateObjectReference(parameters->child) : cJSON_CreateObject();
        if (!p)
                return -ENOMEM;
        if (!cJSON_AddItemToObject(m, "parameters", p)) {
                cJSON_Delete(p);
                return -ENOMEM;
        }

        char *s = cJSON_PrintUnformatted(m);
        if (!s)
                return -ENOMEM;

        *ret = s;
        if (ret_len)
                *ret_len = strlen(s) + 1;
        return 0;
}

int varlink_format_call(const char *method, const cJSON *parameters, char **ret, size_t *ret_len) {
        cJSON *m;

        if (!method || !ret)
                return -EINVAL;

        m = cJSON_CreateObject();
        if (!m)
                return -ENOMEM;
        if (!cJSON_AddStringToObject(m, "method", method)) {
                cJSON_Delete(m);
                return -ENOMEM;
        }
        return varlink_format(m, parameters, ret, ret_len);
}

int varlink_format_reply(const cJSON *parameters, const char *error, char **ret, size_t *ret_len) {
        cJSON *m;

        if (!ret)
                return -EINVAL;

        m = cJSON_CreateObject();
        if (!m)
                return -ENOMEM;
        if (error && !cJSON_AddStringToObject(m, "error", error)) {
                cJSON_Delete(m);
                return -ENOMEM;
        }
        return varlink_format(m, parameters, ret, ret_len);
}

/* Varlink interface names: dot-separated labels of [A-Za-z0-9-], at least
 * two, no label beginning or ending with '-'. */
static bool interface_name_is_valid(const char *s, size_t n) {
        size_t labels = 0;

        for (size_t i = 0; i < n;) {
                size_t l = 0;

                while (i + l < n && s[i + l] != '.')
                        l++;
                if (l == 0 || s[i] == '-' || s[i + l - 1] == '-')
                        return false;
                for (size_t k = i; k < i + l; k++)
                        if (!((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
                              (s[k] >= '0' && s[k] <= '9') || s[k] == '-'))
                                return false;
                labels++;
                i += l;
                if (i < n) {
                        i++; /* the dot */
                        if (i == n)
                                return false;
                }
        }
        return labels >= 2;
}

/* "iface.Name" as methods and errors are qualified: Name is [A-Z][A-Za-z0-9]*. */
static bool qualified_name_is_valid(const char *s) {
        const char *dot = strrchr(s, '.');

        if (!dot || !interface_name_is_valid(s, (size_t) (dot - s)))
                return false;
        if (!(dot[1] >= 'A' && dot[1] <= 'Z'))
                return false;
        for (const char *c = dot + 2; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
                        return false;
        return true;
}

static int get_parameters(const cJSON *msg, const cJSON **ret) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(msg, "parameters");

        if (!p || cJSON_IsNull(p))
                p = &empty_object;
        else if (!cJSON_IsObject(p))
                return -EBADMSG;

        if (ret)
                *ret = p;
        return 0;
}

static int check_flag(const cJSON *msg, const char *name, bool *ret) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(msg, name);

        if (!f || cJSON_IsNull(f)) {
                *ret = false;
                return 0;
        }
        if (!cJSON_IsBool(f))
                return -EBADMSG;
        *ret = cJSON_IsTrue(f);
        return 0;
}

int varlink_parse_call(const cJSON *msg, const char **ret_method, const cJSON **ret_parameters) {
        const cJSON *method;
        bool more, upgrade, oneway;
        int r;

        if (!cJSON_IsObject(msg))
                return -EBADMSG;

        method = cJSON_GetObjectItemCaseSensitive(msg, "method");
        if (!cJSON_IsString(method) || !method->valuestring || !qualified_name_is_valid(method->valuestring))
                return -EBADMSG;

        r = get_parameters(msg, ret_parameters);
        if (r < 0)
                return r;

        if (check_flag(msg, "oneway", &oneway) < 0 || check_flag(msg, "more", &more) < 0 ||
            check_flag(msg, "upgrade", &upgrade) < 0)
                return -EBADMSG;
        /* Streams and protocol upgrades are not part of our subset; the
         * server answers these with an error instead of a wrong reply. */
        if (more || upgrade)
                return -EOPNOTSUPP;

        if (ret_method)
                *ret_method = method->valuestring;
        return 0;
}

int varlink_parse_reply(const cJSON *msg, const char **ret_error, const cJSON **ret_parameters) {
        const cJSON *error;
        bool continues;
        int r;

        if (!cJSON_IsObject(msg))
                return -EBADMSG;

        error = cJSON_GetObjectItemCaseSensitive(msg, "error");
        if (cJSON_IsNull(error))
                error = NULL;
        if (error &&
            (!cJSON_IsString(error) || !error->valuestring || !qualified_name_is_valid(error->valuestring)))
                return -EBADMSG;

        r = get_parameters(msg, ret_parameters);
        if (r < 0)
                return r;

        /* We never ask for "more", so a streamed reply is a protocol error. */
        if (check_flag(msg, "continues", &continues) < 0 || continues)
                return -EBADMSG;

        if (ret_error)
                *ret_error = error ? error->valuestring : NULL;
        return 0;
}

/* Waits for events on fd until the absolute deadline (UINT64_MAX: forever).
 * Returns the revents, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, uint64_t deadline) {
        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = events };
                int timeout_ms = -1;

                if (deadline != UINT64_MAX) {
                        uint64_t n = clock_usec(CLOCK_MONOTONIC);
                        if (n >= deadline)
                                return -ETIMEDOUT;
                        /* Rounded up: poll() must not return just before the deadline. */
                        uint64_t ms = (deadline - n + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
                        timeout_ms = (int) MIN(ms, (uint64_t) INT32_MAX);
                }

                int r = poll(&pfd, 1, timeout_ms);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (r > 0)
                        return pfd.revents;
        }
}

static int connect_with_deadline(int fd, const char *path, uint64_t deadline) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t l = strlen(path);

        if (l == 0 || l >= sizeof(sa.sun_path))
                return -EINVAL;
        memcpy(sa.sun_path, path, l);

        for (;;) {
                if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) >= 0)
                        return 0;

                if (errno == EINTR)
                        continue;
                if (errno == EINPROGRESS) {
                        int error = 0, r;
                        socklen_t sl = sizeof(error);

                        r = wait_fd(fd, POLLOUT, deadline);
                        if (r < 0)
                                return r;
                        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &sl) < 0)
                                return negative_errno();
                        return -error;
                }
                if (errno != EAGAIN)
                        return negative_errno();

                /* AF_UNIX gives EAGAIN when the listen backlog is full, and the
                 * socket cannot be polled for that: retry a little later. */
                if (deadline != UINT64_MAX && clock_usec(CLOCK_MONOTONIC) >= deadline)
                        return -ETIMEDOUT;
                (void) poll(NULL, 0, 10);
        }
}

static int send_all(int fd, const char *data, size_t len, uint64_t deadline) {
        while (len > 0) {
                ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return negative_errno();

                        int r = wait_fd(fd, POLLOUT, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                data += n;
                len -= (size_t) n;
        }
        return 0;
}

static int receive_message(int fd, uint64_t deadline, cJSON **ret) {
        _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};
        char chunk[16384];

        for (;;) {
                int r = varlink_buffer_pop(&b, ret);
                if (r != 0)
                        return r;

                ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return negative_errno();

                        r = wait_fd(fd, POLLIN, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                /* The server hung up before a complete reply. */
                if (n == 0)
                        return -ECONNRESET;

                r = varlink_buffer_append(&b, chunk, (size_t) n);
                if (r < 0)
                        return r;
        }
}

int varlink_call(const char *socket_path, const char *method, const cJSON *parameters, uint64_t timeout_usec,
                 cJSON **ret_parameters, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *call = NULL;
        _cleanup_json_ cJSON *reply = NULL;
        const char *error;
        size_t len;
        uint64_t deadline;
        int r, k;

        if (!socket_path || !method)
                return -EINVAL;

        if (timeout_usec == 0 || timeout_usec == UINT64_MAX)
                deadline = UINT64_MAX;
        else {
                uint64_t n = clock_usec(CLOCK_MONOTONIC);
                deadline = timeout_usec > UINT64_MAX - 1 - n ? UINT64_MAX : n + timeout_usec;
        }

        r = varlink_format_call(method, parameters, &call, &len);
        if (r < 0)
                return r;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();

        r = connect_with_deadline(fd, socket_path, deadline);
        if (r < 0)
                return r;

        r = send_all(fd, call, len, deadline);
        if (r < 0 && r != -EPIPE && r != -ECONNRESET)
                return r;

        /* A server that refuses the connection (too many of them) says why
         * and closes, maybe before our call went out: read its answer. */
        k = receive_message(fd, deadline, &reply);
        if (k < 0)
                return r < 0 ? r : k;

        r = varlink_parse_reply(reply, &error, NULL);
        if (r < 0)
                return r;

        if (ret_error) {
                *ret_error = NULL;
                if (error) {
                        *ret_error = strdup(error);
                        if (!*ret_error)
                                return -ENOMEM;
                }
        }

        if (ret_parameters) {
                cJSON *p = cJSON_DetachItemFromObjectCaseSensitive(reply, "parameters");

                if (!p || cJSON_IsNull(p)) {
                        cJSON_Delete(p);
                        p = cJSON_CreateObject();
                        if (!p) {
                                if (ret_error) {
                                        free(*ret_error);
                                        *ret_error = NULL;
                                }
                                return -ENOMEM;
                        }
                }
                *ret_parameters = p;
        }

        return error ? 1 : 0;
}
