/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cert-dir.h"
#include "cert-x509.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"

/* A PEM certificate or key is a few kB; this is generous. */
#define CERT_PEM_MAX (256U * 1024U)
#define CERT_SET_PREFIX ".certs."

static const char *const set_files[] = { CERT_CA_FILE, CERT_FILE, CERT_FULLCHAIN_FILE, CERT_KEY_FILE };

/* Removes a set directory that is not (or no longer) the live one: flat, files only. */
static int remove_set_directory(const char *path) {
        _cleanup_close_ int fd = -EBADF;
        DIR *d;
        struct dirent *de;

        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        d = fdopendir(fd);
        if (!d)
                return -errno;
        fd = -EBADF; /* owned by d now */
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        return rmdir(path) < 0 ? -errno : 0;
}

void cert_dir_remove_stale(const char *parent) {
        DIR *d = opendir(parent);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                _cleanup_free_ char *path = NULL;

                if (strncmp(de->d_name, CERT_SET_PREFIX, strlen(CERT_SET_PREFIX)) != 0)
                        continue;
                if (asprintf(&path, "%s/%s", parent, de->d_name) < 0)
                        break;
                if (remove_set_directory(path) >= 0)
                        log_debug("Removed unfinished certificate set %s.", path);
        }
        closedir(d);
}

static int write_in(const char *dir, const char *name, const char *data, size_t len) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        return write_file_atomic(path, data, len, 0600);
}

static void fsync_path(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd >= 0)
                (void) fsync(fd);
}

static void set_directory_removep(char **path) {
        if (*path) {
                (void) remove_set_directory(*path);
                free(*path);
        }
}

/* Where the file system cannot exchange (overlayfs may say EXDEV for a
 * directory from a lower layer): file by file, key last. */
static int move_files_one_by_one(const char *from_dir, const char *to_dir) {
        log_debug("Cannot exchange %s atomically, replacing the files one by one.", to_dir);
        for (size_t i = 0; i < ELEMENTSOF(set_files); i++) {
                _cleanup_free_ char *from = NULL, *to = NULL;

                if (asprintf(&from, "%s/%s", from_dir, set_files[i]) < 0 ||
                    asprintf(&to, "%s/%s", to_dir, set_files[i]) < 0)
                        return -ENOMEM;
                if (rename(from, to) < 0)
                        return -errno;
        }
        fsync_path(to_dir);
        return 0;
}

static int write_set(const char *dir, const char *cert, const char *key, const char *ca) {
        _cleanup_free_ char *fullchain = NULL;
        size_t cert_len = strlen(cert);
        int r;

        if (asprintf(&fullchain, "%s%s%s", cert, cert_len > 0 && cert[cert_len - 1] != '\n' ? "\n" : "", ca) <
            0)
                return -ENOMEM;
        r = write_in(dir, CERT_KEY_FILE, key, strlen(key));
        if (r >= 0)
                r = write_in(dir, CERT_FILE, cert, cert_len);
        if (r >= 0)
                r = write_in(dir, CERT_CA_FILE, ca, strlen(ca));
        if (r >= 0)
                r = write_in(dir, CERT_FULLCHAIN_FILE, fullchain, strlen(fullchain));
        if (r < 0)
                return r;
        fsync_path(dir);
        return 0;
}

int cert_dir_store(const char *directory, const char *parent, const char *cert, const char *key,
                   const char *ca) {
        /* Whatever it names at the end goes: the new set after a failure,
         * the old one after the exchange. */
        _cleanup_(set_directory_removep) char *tmp = NULL;
        int r;

        if (asprintf(&tmp, "%s/" CERT_SET_PREFIX "XXXXXX", parent) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        if (!mkdtemp(tmp)) /* mode 0700 */
                return -errno;
        r = write_set(tmp, cert, key, ca);
        if (r < 0)
                return r;

        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, directory, RENAME_EXCHANGE) < 0) {
                if (errno == ENOENT) {
                        /* The first set. */
                        if (rename(tmp, directory) < 0)
                                return -errno;
                } else if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EXDEV) {
                        r = move_files_one_by_one(tmp, directory);
                        if (r < 0)
                                return r;
                } else
                        return -errno;
        }
        fsync_path(parent);
        return 0;
}

static int read_in(const char *dir, const char *name, char **ret) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        return read_full_file(path, CERT_PEM_MAX, ret, NULL);
}

int cert_dir_read(const char *directory, char **ret_cert, char **ret_key, char **ret_ca,
                  uint64_t *ret_mtime_usec) {
        _cleanup_free_ char *cert = NULL, *ca = NULL, *path = NULL;
        _cleanup_(cert_erase_key) char *key = NULL;
        struct stat st;
        int r;

        r = read_in(directory, CERT_FILE, &cert);
        if (r == -ENOENT) {
                *ret_cert = *ret_key = *ret_ca = NULL;
                *ret_mtime_usec = 0;
                return 0;
        }
        if (r >= 0)
                r = read_in(directory, CERT_KEY_FILE, &key);
        if (r >= 0)
                r = read_in(directory, CERT_CA_FILE, &ca);
        if (r < 0)
                return r;

        *ret_mtime_usec = 0;
        if (asprintf(&path, "%s/%s", directory, CERT_FILE) >= 0 && stat(path, &st) >= 0)
                *ret_mtime_usec = (uint64_t) st.st_mtim.tv_sec * USEC_PER_SEC +
                                  (uint64_t) st.st_mtim.tv_nsec / NSEC_PER_USEC;
        *ret_cert = TAKE_PTR(cert);
        *ret_key = TAKE_PTR(key);
        *ret_ca = TAKE_PTR(ca);
        return 0;
}

/* ReloadCommand= runs inside meshd's sandbox (no CAP_SYS_ADMIN, a read-only
 * file system), where `systemctl reload` is refused; a path unit's service
 * runs outside it. The stamp lives beside the directory, not in it, because
 * the directory is swapped as a whole. */
void cert_dir_write_stamp(const char *directory, const char *serial, uint64_t not_after_usec) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (asprintf(&path, "%s.renewed", directory) < 0 ||
            asprintf(&text, "serial=%s\nnot_after_usec=%" PRIu64 "\n", strna(serial), not_after_usec) < 0) {
                log_oom();
                return;
        }
        r = write_file_atomic(path, text, strlen(text), 0600);
        if (r < 0)
                log_warning_errno(r,
                                  "Failed to write %s, meshd-reload@.path units will not notice the "
                                  "new certificate: %m",
                                  path);
}
