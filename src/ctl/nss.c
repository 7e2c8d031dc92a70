/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>

#include "log.h"
#include "nss.h"
#include "nsswitch.h"

/* nsswitch.conf is a few kB; anything this large is not one. */
#define NSSWITCH_SIZE_MAX (1024 * 1024)

static int read_text_file(int fd, const char *path, size_t limit, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;

        buf = malloc(limit + 1);
        if (!buf)
                return log_oom();
        for (;;) {
                ssize_t k = read(fd, buf + n, limit + 1 - n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(negative_errno(), "cannot read %s: %m", path);
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > limit)
                        return log_error_errno(-EFBIG, "%s is too large for an nsswitch.conf", path);
        }
        if (memchr(buf, 0, n))
                return log_error_errno(-EBADMSG, "%s is not a text file", path);
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}

static int write_all(int fd, const char *text, size_t size) {
        while (size > 0) {
                ssize_t k = write(fd, text, size);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                text += k;
                size -= (size_t) k;
        }
        return 0;
}

static void unlink_and_free(char **p) {
        if (*p) {
                (void) unlink(*p);
                free(*p);
        }
}

/* Replaces target with text: a half-written nsswitch.conf would break name
 * resolution for the whole machine, so readers see the old or the new file,
 * never a mix, also after a crash (fsync before rename, then the directory). */
static int write_file_atomic_like(const char *target, const struct stat *st, const char *text) {
        _cleanup_(unlink_and_free) char *tmp = NULL;
        _cleanup_free_ char *dir_buf = NULL;
        _cleanup_close_ int fd = -EBADF, dir_fd = -EBADF;
        const char *dir;
        int r;

        dir_buf = strdup(target);
        if (!dir_buf)
                return log_oom();
        dir = dirname(dir_buf);
        if (asprintf(&tmp, "%s/.#nsswitch.conf.XXXXXX", dir) < 0) {
                tmp = NULL;
                return log_oom();
        }
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                free(TAKE_PTR(tmp)); /* nothing to unlink */
                return log_error_errno(negative_errno(), "cannot create a temporary file in %s: %m", dir);
        }
        if (fchown(fd, st->st_uid, st->st_gid) < 0)
                return log_error_errno(negative_errno(), "cannot give %s the owner of %s: %m", tmp, target);
        if (fchmod(fd, st->st_mode & 07777) < 0)
                return log_error_errno(negative_errno(), "cannot give %s the mode of %s: %m", tmp, target);
        r = write_all(fd, text, strlen(text));
        if (r < 0)
                return log_error_errno(r, "cannot write %s: %m", tmp);
        if (fsync(fd) < 0)
                return log_error_errno(negative_errno(), "cannot write %s: %m", tmp);
        if (rename(tmp, target) < 0)
                return log_error_errno(negative_errno(), "cannot replace %s: %m", target);
        free(TAKE_PTR(tmp)); /* renamed: nothing to unlink any more */

        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd >= 0)
                (void) fsync(dir_fd);
        return 0;
}

int nsswitch_update_file(const char *path, bool enable) {
        _cleanup_free_ char *target = NULL, *text = NULL, *edited = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        /* A symlinked /etc/nsswitch.conf stays a symlink: replace its target. */
        target = realpath(path, NULL);
        if (!target)
                return log_error_errno(negative_errno(), "cannot read %s: %m", path);
        fd = open(target, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_error_errno(negative_errno(), "cannot read %s: %m", path);
        if (fstat(fd, &st) < 0)
                return log_error_errno(negative_errno(), "cannot read %s: %m", path);
        if (!S_ISREG(st.st_mode))
                return log_error_errno(-EINVAL, "%s is not a regular file", path);
        r = read_text_file(fd, path, NSSWITCH_SIZE_MAX, &text);
        if (r < 0)
                return r;

        r = nsswitch_edit(text, enable, &edited);
        if (r < 0)
                return log_oom();
        if (r == 0)
                return 0;

        r = write_file_atomic_like(target, &st, edited);
        if (r < 0)
                return r;
        return 1;
}

int verb_nss(const Arguments *a, char **argv) {
        const char *path = a->nsswitch_path ?: NSSWITCH_CONF_DEFAULT;
        bool enable;
        int r;

        if (streq(argv[0], "enable"))
                enable = true;
        else if (streq(argv[0], "disable"))
                enable = false;
        else
                return log_error_errno(-EINVAL, "unknown nss command '%s' (enable or disable)", argv[0]);

        r = nsswitch_update_file(path, enable);
        return r < 0 ? r : 0;
}
