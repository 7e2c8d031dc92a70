/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cross-platform userspace API of wireguard-go
 * (https://www.wireguard.com/xplatform/): "key=value\n" lines on a unix
 * socket, a request ends with an empty line, every reply with "errno=N\n\n".
 * Keys travel in hex, not base64. This file owns the socket and the
 * wireguard-go process; the text itself is wg-uapi-format.c's. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "link.h"
#include "log.h"
#include "macro.h"
#include "time-util.h"
#include "wg-internal.h"

#define UAPI_DIR_DEFAULT "/var/run/wireguard"
#define UAPI_COMMAND_DEFAULT "wireguard-go"
/* wireguard-go refuses to start on Linux without it, pointing at the module. */
#define UAPI_ENV_PREFER_USERSPACE "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1"
#define UAPI_START_TIMEOUT_USEC (5 * USEC_PER_SEC)
#define UAPI_EXIT_TIMEOUT_USEC (2 * USEC_PER_SEC)
#define UAPI_POLL_USEC (2 * USEC_PER_MSEC)
#define UAPI_IO_TIMEOUT_SEC 5
/* A get reply for 10,000 peers is a few MiB; anything far beyond is a bug. */
#define UAPI_REPLY_MAX (256U * 1024U * 1024U)

static int uapi_connect(const char *path, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = UAPI_IO_TIMEOUT_SEC };

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A wedged wireguard-go must not wedge the daemon's event loop forever. */
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int uapi_transact(WgBackend *b, const char *req, size_t req_len, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, len = 0;
        int r;

        r = uapi_connect(b->socket_path, &fd);
        if (r < 0)
                return log_debug_errno(r, "Failed to connect to %s: %m", b->socket_path);

        while (req_len > 0) {
                ssize_t k = send(fd, req, req_len, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_debug_errno(errno, "Failed to write to %s: %m", b->socket_path);
                }
                req += k;
                req_len -= (size_t) k;
        }

        /* wireguard-go keeps the connection open for further requests: the
         * reply's end is its empty line, not EOF. */
        for (;;) {
                ssize_t k;

                if (len + 4096 + 1 > size) {
                        size_t nsize = MAX(size * 2, (size_t) 16384);
                        char *p;

                        if (nsize > UAPI_REPLY_MAX)
                                return log_debug_errno(-EMSGSIZE, "UAPI reply from %s too large.",
                                                       b->socket_path);
                        p = malloc(nsize);
                        if (!p)
                                return -ENOMEM;
                        if (buf) {
                                memcpy(p, buf, len);
                                explicit_bzero(buf, size);
                                free(buf);
                        }
                        buf = p;
                        size = nsize;
                }
                k = recv(fd, buf + len, size - len - 1, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        explicit_bzero(buf, size);
                        return log_debug_errno(r, "Failed to read from %s: %m", b->socket_path);
                }
                if (k == 0) {
                        explicit_bzero(buf, size);
                        return log_debug_errno(-ECONNRESET, "%s closed the connection mid-reply.",
                                               b->socket_path);
                }
                len += (size_t) k;
                if ((len >= 2 && buf[len - 1] == '\n' && buf[len - 2] == '\n') || (len == 1 && buf[0] == '\n'))
                        break;
        }
        buf[len] = 0;

        *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int wg_uapi_get_device(WgBackend *b, WgDevice **ret) {
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        char *reply = NULL;
        size_t len = 0;
        int r;

        static const char req[] = "get=1\n\n";
        r = uapi_transact(b, req, sizeof(req) - 1, &reply, &len);
        if (r < 0)
                return r;
        r = wg_uapi_parse_get(reply, len, &d);
        erase_and_free(reply, len);
        if (r < 0)
                return log_debug_errno(r, "Failed to read device %s over UAPI: %m", b->ifname);

        snprintf(d->ifname, sizeof(d->ifname), "%s", b->ifname);
        d->ifindex = b->ifindex;
        *ret = TAKE_PTR(d);
        return 0;
}

int wg_uapi_set_device(WgBackend *b, const WgDevice *d) {
        char *req = NULL, *reply = NULL;
        size_t req_len = 0, reply_len = 0;
        int r;

        r = wg_uapi_format_set_string(d, &req, &req_len);
        if (r < 0)
                return log_debug_errno(r, "Failed to format UAPI request: %m");
        r = uapi_transact(b, req, req_len, &reply, &reply_len);
        erase_and_free(req, req_len);
        if (r < 0)
                return r;
        r = wg_uapi_parse_set_reply(reply, reply_len);
        erase_and_free(reply, reply_len);
        if (r < 0)
                return log_debug_errno(r, "wireguard-go refused configuration of %s: %m", b->ifname);
        return 0;
}

static void sleep_usec(uint64_t usec) {
        struct timespec ts = {
                .tv_sec = (time_t) (usec / USEC_PER_SEC),
                .tv_nsec = (long) ((usec % USEC_PER_SEC) * NSEC_PER_USEC),
        };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Returns 1 if the child exited (and is reaped), 0 if it still runs. */
static int child_reap(pid_t pid, int *ret_status) {
        int status = 0;
        pid_t p;

        do
                p = waitpid(pid, &status, WNOHANG);
        while (p < 0 && errno == EINTR);
        if (p < 0)
                return errno == ECHILD ? 1 : -errno; /* reaped elsewhere */
        if (p == 0)
                return 0;
        if (ret_status)
                *ret_status = status;
        return 1;
}

static int child_wait(pid_t pid, uint64_t timeout_usec) {
        uint64_t deadline = clock_usec(CLOCK_MONOTONIC) + timeout_usec;

        for (;;) {
                int r = child_reap(pid, NULL);
                if (r != 0)
                        return r;
                if (clock_usec(CLOCK_MONOTONIC) >= deadline)
                        return 0;
                sleep_usec(UAPI_POLL_USEC);
        }
}

static void child_stop(pid_t pid) {
        if (pid <= 0)
                return;
        if (child_wait(pid, UAPI_EXIT_TIMEOUT_USEC) != 0)
                return;
        (void) kill(pid, SIGTERM);
        if (child_wait(pid, UAPI_EXIT_TIMEOUT_USEC) != 0)
                return;
        (void) kill(pid, SIGKILL);
        (void) child_wait(pid, UAPI_EXIT_TIMEOUT_USEC);
}

extern char **environ;

static int spawn_wireguard_go(const char *command, const char *ifname, pid_t *ret_pid) {
        _cleanup_free_ char **env = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t mask, defaults;
        size_t n = 0, k = 0;
        pid_t pid;
        int r;

        /* Our environment plus the opt-in variable; built here rather than
         * with setenv() so the parent's environment stays untouched. */
        for (char **e = environ; e && *e; e++)
                n++;
        env = calloc(n + 2, sizeof(char *));
        if (!env)
                return -ENOMEM;
        for (char **e = environ; e && *e; e++)
                if (strncmp(*e, "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=", 45) != 0)
                        env[k++] = *e;
        env[k++] = (char *) UAPI_ENV_PREFER_USERSPACE;
        env[k] = NULL;

        char *argv[] = { (char *) command, (char *) "-f", (char *) ifname, NULL };

        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }

        /* stdin from /dev/null; stdout/stderr stay ours so its log lines end
         * up where ours do (the journal, under the service). A daemon may have
         * signals blocked or ignored: the child gets a clean slate. */
        sigemptyset(&mask);
        sigfillset(&defaults);
        sigdelset(&defaults, SIGKILL);
        sigdelset(&defaults, SIGSTOP);
        r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &mask);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &defaults);
        if (r == 0)
                r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (r == 0)
                r = posix_spawnp(&pid, command, &fa, &attr, argv, env);

        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return log_debug_errno(-r, "Failed to start %s: %m", command);

        *ret_pid = pid;
        return 0;
}

/* Ready means: the tun link exists here and the socket accepts us. */
static int uapi_probe(WgBackend *b) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = uapi_connect(b->socket_path, &fd);
        if (r < 0)
                return r;
        r = link_get_ifindex(b->ifname);
        if (r < 0)
                return r;
        b->ifindex = r;
        return 0;
}

/* Until wireguard-go PID answers on its socket; it is stopped on time-out. */
static int wait_wireguard_go(WgBackend *b, const char *command, pid_t pid) {
        uint64_t deadline;
        int r;

        deadline = clock_usec(CLOCK_MONOTONIC) + UAPI_START_TIMEOUT_USEC;
        for (;;) {
                int status = 0;

                r = child_reap(pid, &status);
                if (r != 0) {
                        if (r > 0 && WIFEXITED(status))
                                return log_debug_errno(-ESRCH,
                                                       "%s -f %s exited with status %i before it was ready.",
                                                       command, b->ifname, WEXITSTATUS(status));
                        if (r > 0 && WIFSIGNALED(status))
                                return log_debug_errno(-ESRCH,
                                                       "%s -f %s was killed by signal %i before it was ready.",
                                                       command, b->ifname, WTERMSIG(status));
                        return log_debug_errno(-ESRCH, "%s -f %s went away before it was ready.", command,
                                               b->ifname);
                }

                if (uapi_probe(b) >= 0)
                        break;

                if (clock_usec(CLOCK_MONOTONIC) >= deadline) {
                        (void) kill(pid, SIGTERM);
                        child_stop(pid);
                        return log_debug_errno(-ETIMEDOUT, "%s -f %s did not open %s in time.", command,
                                               b->ifname, b->socket_path);
                }
                sleep_usec(UAPI_POLL_USEC);
        }
        return 0;
}

int wg_uapi_open(WgBackend *b, const WgBackendOptions *opts, bool *ret_created) {
        const char *dir = opts->uapi_dir ?: UAPI_DIR_DEFAULT;
        const char *command = opts->userspace_command ?: UAPI_COMMAND_DEFAULT;
        _cleanup_close_ int fd = -EBADF;
        pid_t pid;
        int r;

        free(b->socket_path);
        if (asprintf(&b->socket_path, "%s/%s.sock", dir, b->ifname) < 0) {
                b->socket_path = NULL;
                return -ENOMEM;
        }
        b->type = WG_BACKEND_USERSPACE;
        b->ifindex = 0;
        b->child_pid = 0;

        r = uapi_connect(b->socket_path, &fd);
        if (r >= 0) {
                fd = safe_close(fd);
                r = link_get_ifindex(b->ifname);
                if (r == -ENODEV)
                        /* The socket directory is shared by all network
                         * namespaces, the link is not: this socket is some
                         * other namespace's interface of the same name. */
                        return log_debug_errno(-EEXIST,
                                               "%s is in use by an interface %s in another network namespace.",
                                               b->socket_path, b->ifname);
                if (r < 0)
                        return r;
                b->ifindex = r;
                if (ret_created)
                        *ret_created = false;
                return 0;
        }
        if (r == -ECONNREFUSED) {
                /* Left behind by a wireguard-go that died without cleaning up. */
                log_debug("Removing stale UAPI socket %s.", b->socket_path);
                if (unlink(b->socket_path) < 0 && errno != ENOENT)
                        return log_debug_errno(errno, "Failed to remove stale socket %s: %m", b->socket_path);
        } else if (r != -ENOENT)
                return log_debug_errno(r, "Failed to connect to %s: %m", b->socket_path);

        r = spawn_wireguard_go(command, b->ifname, &pid);
        if (r < 0)
                return r;

        r = wait_wireguard_go(b, command, pid);
        if (r < 0)
                return r;

        b->child_pid = pid;
        log_debug("Started %s for %s as PID %i.", command, b->ifname, (int) pid);
        if (ret_created)
                *ret_created = true;
        return 0;
}

int wg_uapi_destroy(WgBackend *b) {
        int r;

        /* wireguard-go exits when its tun goes away, and removes its socket. */
        r = link_delete(b->ifindex);
        if (r == -ENODEV)
                r = 0;
        if (r < 0) {
                log_debug_errno(r, "Failed to delete link %s: %m", b->ifname);
                /* Deleting the socket also makes wireguard-go shut down. */
                if (b->child_pid <= 0 && unlink(b->socket_path) >= 0)
                        r = 0;
        }

        if (b->child_pid > 0) {
                child_stop(b->child_pid);
                b->child_pid = 0;
                r = 0;
        }
        return r;
}

void wg_uapi_close(WgBackend *b) {
        free(b->socket_path);
        b->socket_path = NULL;
}
