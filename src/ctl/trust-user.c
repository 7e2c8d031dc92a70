/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshctl trust --user: the mesh CA in this user's NSS databases, the ones
 * Chromium (~/.pki/nssdb) and Firefox (each profile) read, through
 * certutil: NSS's own tool, never a hand-edited database. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "run-program.h"
#include "trust.h"

#define CERTUTIL "certutil"
#define PROFILES_INI_MAX (1024U * 1024)
/* Trusted to issue TLS server certificates; nothing for mail or code. */
#define NSSDB_TRUST "C,,"

typedef struct UserDbs {
        char *certutil;
        char **dirs; /* NSS databases, the first Chromium's */
        size_t n;
        bool chromium_missing;
        unsigned firefox_profiles;
} UserDbs;

static void user_dbs_done(UserDbs *u) {
        free(u->certutil);
        for (size_t i = 0; i < u->n; i++)
                free(u->dirs[i]);
        free(u->dirs);
}

static int user_dbs_add(UserDbs *u, char *dir) {
        char **d = reallocarray(u->dirs, u->n + 1, sizeof(char *));

        if (!d) {
                free(dir);
                return -ENOMEM;
        }
        u->dirs = d;
        u->dirs[u->n++] = dir;
        return 0;
}

static bool has_nssdb(const char *dir) {
        _cleanup_free_ char *p = NULL;

        return asprintf(&p, "%s/cert9.db", dir) >= 0 && access(p, F_OK) == 0;
}

/* Every [Profile*] Path= of one profiles.ini, relative or not. */
static int add_firefox_profiles(UserDbs *u, const char *root) {
        _cleanup_free_ char *ini = NULL, *text = NULL;
        bool relative = true;
        char *state = NULL;
        int r;

        if (asprintf(&ini, "%s/profiles.ini", root) < 0)
                return -ENOMEM;
        r = read_full_file(ini, PROFILES_INI_MAX, &text, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_error_errno(r, "cannot read %s: %m", ini);
        /* IsRelative= comes before or after Path=: a section is read whole. */
        for (char *l = strtok_r(text, "\n", &state), *path = NULL;; l = strtok_r(NULL, "\n", &state)) {
                if (!l || l[0] == '[') {
                        char *dir = NULL;

                        if (path &&
                            (relative ? asprintf(&dir, "%s/%s", root, path) : asprintf(&dir, "%s", path)) < 0)
                                return -ENOMEM;
                        if (dir && has_nssdb(dir)) {
                                r = user_dbs_add(u, dir);
                                if (r < 0)
                                        return r;
                                u->firefox_profiles++;
                        } else
                                free(dir);
                        if (!l)
                                return 0;
                        path = NULL;
                        relative = true;
                        continue;
                }
                l[strcspn(l, "\r")] = 0;
                if (strncmp(l, "Path=", 5) == 0 && l[5])
                        path = l + 5;
                else if (strncmp(l, "IsRelative=", 11) == 0)
                        relative = !streq(l + 11, "0");
        }
}

/* Chromium's database first (made when missing, as Chromium itself would on
 * its first start), then Firefox's profiles in both places Firefox keeps
 * them: ~/.mozilla/firefox, and $XDG_CONFIG_HOME/mozilla/firefox where new
 * Firefox versions put a new user's. */
static int user_dbs_find(UserDbs *u, bool install) {
        const char *home = getenv("HOME"), *xdg = getenv("XDG_CONFIG_HOME");
        _cleanup_free_ char *mozilla = NULL, *config = NULL;
        char *chromium = NULL;
        int r;

        struct stat st;

        if (!home || home[0] != '/')
                return log_error_errno(-EINVAL, "trust --user: $HOME is not set to an absolute path");
        /* sudo may keep the user's HOME: databases root made there would
         * lock the user out of them. */
        if (stat(home, &st) < 0)
                return log_error_errno(negative_errno(), "trust --user: cannot use $HOME (%s): %m", home);
        if (st.st_uid != geteuid())
                return log_error_errno(-EPERM,
                                       "trust --user: %s belongs to another user: run this as that user "
                                       "(not with sudo)",
                                       home);
        u->certutil = find_program(CERTUTIL);
        if (!u->certutil)
                return log_error_errno(-ENOENT, CERTUTIL " not found: install libnss3-tools (nothing changed)");
        if (asprintf(&chromium, "%s/.pki/nssdb", home) < 0)
                return log_oom();
        u->chromium_missing = !has_nssdb(chromium);
        if (u->chromium_missing && !install)
                free(chromium);
        else if (user_dbs_add(u, chromium) < 0)
                return log_oom();

        if (asprintf(&mozilla, "%s/.mozilla/firefox", home) < 0 ||
            (xdg && xdg[0] == '/' ? asprintf(&config, "%s/mozilla/firefox", xdg)
                                  : asprintf(&config, "%s/.config/mozilla/firefox", home)) < 0)
                return log_oom();
        r = add_firefox_profiles(u, mozilla);
        if (r >= 0)
                r = add_firefox_profiles(u, config);
        return r == -ENOMEM ? log_oom() : r;
}

static int certutil(const UserDbs *u, const char *dir, const char *input, bool quiet, char **ret_out, ...) {
        _cleanup_free_ char *db = NULL;
        char *argv[12] = { (char *) CERTUTIL };
        size_t n = 1;
        va_list ap;
        int r;

        if (asprintf(&db, "sql:%s", dir) < 0)
                return log_oom();
        argv[n++] = (char *) "-d";
        argv[n++] = db;
        va_start(ap, ret_out);
        for (char *s; (s = va_arg(ap, char *)) && n < ELEMENTSOF(argv) - 1;)
                argv[n++] = s;
        va_end(ap);
        argv[n] = NULL;
        r = spawn_program(u->certutil, argv,
                          &(SpawnOptions) { .input = input, .quiet_stdout = true, .quiet_stderr = quiet },
                          ret_out);
        if (r > 0)
                return log_error_errno(-EIO, "certutil %s -d %s failed (exit status %d)", argv[3], db, r);
        return r;
}

/* The first nickname of ours in dir; certutil -L prints each certificate
 * as "NICKNAME  TRUST", the trust flags one word at the end. */
static int find_ours(const UserDbs *u, const char *dir, char **ret_nick) {
        _cleanup_free_ char *out = NULL;
        char *state = NULL;
        int r;

        *ret_nick = NULL;
        r = certutil(u, dir, NULL, false, &out, "-L", NULL);
        if (r < 0)
                return r;
        for (char *l = strtok_r(out, "\n", &state); l; l = strtok_r(NULL, "\n", &state)) {
                char *end = l + strlen(l);

                if (strncmp(l, NSSDB_NICKNAME_PREFIX, strlen(NSSDB_NICKNAME_PREFIX)) != 0)
                        continue;
                while (end > l && isspace((unsigned char) end[-1]))
                        end--;
                while (end > l && !isspace((unsigned char) end[-1]))
                        end--;
                while (end > l && isspace((unsigned char) end[-1]))
                        end--;
                *end = 0;
                *ret_nick = strdup(l);
                return *ret_nick ? 1 : log_oom();
        }
        return 0;
}

static bool same_certificate(const UserDbs *u, const char *dir, const char *nick, const char *pem) {
        _cleanup_free_ char *out = NULL, *have = NULL, *want = NULL;

        return certutil(u, dir, NULL, true, &out, "-L", "-n", nick, "-a", NULL) == 0 &&
               pem_to_base64_der(out, &have) >= 0 && pem_to_base64_der(pem, &want) >= 0 && streq(have, want);
}

/* Each of ours goes, whatever mesh domain it was installed for. */
static int remove_ours(const UserDbs *u, const char *dir, const char *keep_pem, const char *keep_nick,
                       unsigned *ret_removed) {
        unsigned removed = 0;
        int r;

        for (unsigned i = 0; i < 64; i++) {
                _cleanup_free_ char *nick = NULL;

                r = find_ours(u, dir, &nick);
                if (r <= 0) {
                        *ret_removed = removed;
                        return r;
                }
                if (keep_nick && streq(nick, keep_nick) && same_certificate(u, dir, nick, keep_pem))
                        return 1;
                r = certutil(u, dir, NULL, false, NULL, "-D", "-n", nick, NULL);
                if (r < 0)
                        return r;
                removed++;
        }
        return log_error_errno(-ELOOP, "certutil -d sql:%s keeps listing meshd's CA after deleting it", dir);
}

static int create_nssdb(const UserDbs *u, const char *dir) {
        _cleanup_free_ char *parent = strdup(dir);
        char *slash = parent ? strrchr(parent, '/') : NULL;

        if (!slash)
                return log_oom();
        *slash = 0;
        if ((mkdir(parent, 0700) < 0 && errno != EEXIST) || (mkdir(dir, 0700) < 0 && errno != EEXIST))
                return log_error_errno(negative_errno(), "cannot create %s: %m", dir);
        return certutil(u, dir, NULL, false, NULL, "-N", "--empty-password", NULL);
}

static int install_one(const UserDbs *u, const char *dir, const TrustCA *ca, const char *nick) {
        unsigned removed;
        int r;

        if (!has_nssdb(dir)) {
                r = create_nssdb(u, dir);
                if (r < 0)
                        return r;
        }
        r = remove_ours(u, dir, ca->pem, nick, &removed);
        if (r != 0)
                return r;
        r = certutil(u, dir, ca->pem, false, NULL, "-A", "-n", nick, "-t", NSSDB_TRUST, NULL);
        return r < 0 ? r : 0;
}

int trust_user_install(const TrustCA *ca) {
        _cleanup_(user_dbs_done) UserDbs u = {};
        _cleanup_free_ char *nick = NULL;
        int r;

        r = user_dbs_find(&u, true);
        if (r < 0)
                return r;
        if (asprintf(&nick, NSSDB_NICKNAME_PREFIX "%s)", ca->domain) < 0)
                return log_oom();
        for (size_t i = 0; i < u.n; i++) {
                r = install_one(&u, u.dirs[i], ca, nick);
                if (r < 0)
                        return r;
                printf("%s %s: %s \"%s\".\n", i == 0 ? "Chromium" : "Firefox profile", u.dirs[i],
                       r == 1 ? "already trusts" : "now trusts", nick);
        }
        if (u.firefox_profiles == 0)
                printf("Firefox: this user has no profile yet: start Firefox once, then run\n"
                       "'meshctl trust install --user' again.\n");
        printf("Restart Chromium and Firefox to pick this up.\n");
        return 0;
}

int trust_user_remove(void) {
        _cleanup_(user_dbs_done) UserDbs u = {};
        unsigned total = 0;
        int r;

        r = user_dbs_find(&u, false);
        if (r < 0)
                return r;
        for (size_t i = 0; i < u.n; i++) {
                unsigned removed = 0;

                r = remove_ours(&u, u.dirs[i], NULL, NULL, &removed);
                if (r < 0)
                        return r;
                if (removed > 0)
                        printf("Removed the mesh CA from %s\n", u.dirs[i]);
                total += removed;
        }
        if (total == 0)
                printf("The mesh CA was in none of this user's browser databases.\n");
        return 0;
}
