/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api-socket.h"
#include "log.h"
#include "macro.h"

static int socket_chown_group(const char *path, const char *group) {
        _cleanup_free_ char *buf = NULL;
        struct group grp, *result = NULL;
        long size = sysconf(_SC_GETGR_R_SIZE_MAX);
        int r;

        if (size <= 0)
                size = 16384;
        for (;;) {
                buf = malloc((size_t) size);
                if (!buf)
                        return -ENOMEM;
                r = getgrnam_r(group, &grp, buf, (size_t) size, &result);
                if (r != ERANGE)
                        break;
                free(buf);
                buf = NULL;
                size *= 2;
        }
        if (r != 0)
                return -r;
        if (!result)
                return 0; /* no such group: root-only access, as documented */
        if (chown(path, (uid_t) -1, grp.gr_gid) < 0)
                return -errno;
        return 1;
}

/* Mode and group of the bound socket, then listen(). */
static int socket_open_up(int fd, const char *path) {
        int r;

        /* Before listen(): nobody can connect while the mode is still wrong. */
        if (chmod(path, 0660) < 0)
                return -errno;
        r = socket_chown_group(path, "meshd");
        if (r < 0)
                log_warning_errno(r, "Failed to give group meshd access to %s: %m", path);

        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        return 0;
}

int api_socket_listen(const char *path, struct stat *ret_st) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        /* A socket left by a previous run (crash, SIGKILL) would make bind()
         * fail; anything else at that path is not ours to remove. */
        if (lstat(path, &st) >= 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                if (unlink(path) < 0)
                        return -errno;
        } else if (errno != ENOENT)
                return -errno;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        if (stat(path, &st) < 0)
                return -errno;

        r = socket_open_up(fd, path);
        if (r < 0) {
                /* ours, and of no use to anyone */
                (void) unlink(path);
                return r;
        }
        *ret_st = st;
        return TAKE_FD(fd);
}
