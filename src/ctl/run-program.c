/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "run-program.h"

extern char **environ;

#define SPAWN_OUTPUT_MAX (4U * 1024 * 1024)

char *find_program(const char *name) {
        const char *path = getenv("PATH");
        _cleanup_free_ char *all = NULL;
        char *state = NULL;

        if (asprintf(&all, "%s:/usr/local/sbin:/usr/sbin:/sbin", path && *path ? path : "/usr/bin:/bin") < 0)
                return NULL;
        for (char *d = strtok_r(all, ":", &state); d; d = strtok_r(NULL, ":", &state)) {
                char *p = NULL;

                if (!*d)
                        continue;
                if (asprintf(&p, "%s/%s", d, name) < 0)
                        return NULL;
                if (access(p, X_OK) == 0)
                        return p;
                free(p);
        }
        return NULL;
}

/* Reads fd to EOF; more than SPAWN_OUTPUT_MAX is an error, not a cut. */
static int read_all(int fd, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, size = 0;

        for (;;) {
                ssize_t n;

                if (len + 4096 + 1 > size) {
                        char *b;

                        if (size >= SPAWN_OUTPUT_MAX)
                                return -EFBIG;
                        size = size ? size * 2 : 8192;
                        b = realloc(buf, size);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                }
                n = read(fd, buf + len, size - len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}

static int wait_program(const char *program, pid_t pid) {
        int status;

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return log_error_errno(negative_errno(), "cannot wait for %s: %m", program);
        if (!WIFEXITED(status))
                return log_error_errno(-EIO, "%s died of signal %d", program, WTERMSIG(status));
        return WEXITSTATUS(status);
}

static int setup_actions(posix_spawn_file_actions_t *fa, const SpawnOptions *o, int in_fd, int out_fd) {
        int r = 0;

        if (in_fd >= 0)
                r = posix_spawn_file_actions_adddup2(fa, in_fd, STDIN_FILENO);
        else
                r = posix_spawn_file_actions_addopen(fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0 && out_fd >= 0)
                r = posix_spawn_file_actions_adddup2(fa, out_fd, STDOUT_FILENO);
        else if (r == 0 && o->quiet_stdout)
                r = posix_spawn_file_actions_addopen(fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        if (r == 0 && o->quiet_stderr)
                r = posix_spawn_file_actions_addopen(fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        return -r;
}

int spawn_program(const char *program, char *const argv[], const SpawnOptions *o, char **ret_stdout) {
        static const SpawnOptions none = {};
        int in[2] = { -1, -1 }, out[2] = { -1, -1 }, r, status;
        _cleanup_free_ char *output = NULL;
        posix_spawn_file_actions_t fa;
        pid_t pid;

        o = o ?: &none;
        if ((o->input && pipe2(in, O_CLOEXEC) < 0) || (ret_stdout && pipe2(out, O_CLOEXEC) < 0)) {
                r = log_error_errno(negative_errno(), "cannot run %s: %m", program);
                goto finish;
        }
        r = -posix_spawn_file_actions_init(&fa);
        if (r == 0) {
                r = setup_actions(&fa, o, in[0], out[1]);
                if (r == 0)
                        r = -posix_spawn(&pid, program, &fa, NULL, argv, environ);
                posix_spawn_file_actions_destroy(&fa);
        }
        if (r < 0) {
                log_error_errno(r, "cannot run %s: %m", program);
                goto finish;
        }
        in[0] = safe_close(in[0]);
        out[1] = safe_close(out[1]);
        /* The input is a certificate: far below a pipe's buffer, so writing
         * it all before reading cannot deadlock. */
        if (o->input && write(in[1], o->input, strlen(o->input)) < 0)
                log_debug_errno(negative_errno(), "writing to %s: %m", program);
        in[1] = safe_close(in[1]);
        if (ret_stdout)
                r = read_all(out[0], &output);
        status = wait_program(program, pid);
        if (r < 0) {
                log_error_errno(r, "cannot read what %s printed: %m", program);
                goto finish;
        }
        r = status;
        if (r >= 0 && ret_stdout)
                *ret_stdout = TAKE_PTR(output);
finish:
        for (unsigned i = 0; i < 2; i++) {
                in[i] = safe_close(in[i]);
                out[i] = safe_close(out[i]);
        }
        return r;
}
