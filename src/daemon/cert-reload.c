/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>

#include "cert-dir.h"
#include "cert-reload.h"
#include "log.h"
#include "messages.h"
#include "strv.h"

extern char **environ;

struct CertReload {
        sd_event *event;
        char *directory;
        char *command; /* NULL: none */
        pid_t pid;
        sd_event_source *source;
        bool again;
};

int cert_reload_new(sd_event *event, const char *directory, CertReload **ret) {
        _cleanup_(cert_reload_freep) CertReload *r = NULL;

        if (!event || !directory || !ret)
                return -EINVAL;
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->event = sd_event_ref(event);
        r->directory = strdup(directory);
        if (!r->directory)
                return -ENOMEM;
        *ret = TAKE_PTR(r);
        return 0;
}

CertReload *cert_reload_free(CertReload *r) {
        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->source);
        free(r->command);
        free(r->directory);
        sd_event_unref(r->event);
        free(r);
        return NULL;
}

int cert_reload_set_command(CertReload *r, const char *command) {
        char *c = NULL;

        if (command && *command) {
                c = strdup(command);
                if (!c)
                        return -ENOMEM;
        }
        free(r->command);
        r->command = c;
        return 0;
}

static int on_reload_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        CertReload *r = userdata;
        LogFields fields = { .message_id = MESSAGE_CERT_RELOAD };

        r->source = sd_event_source_disable_unref(r->source);
        r->pid = 0;
        if (si->si_code == CLD_EXITED && si->si_status == 0)
                log_full_errno_fields(LOG_INFO, 0, &fields, "ReloadCommand=%s succeeded.", strna(r->command));
        else if (si->si_code == CLD_EXITED)
                log_full_errno_fields(LOG_WARNING, 0, &fields, "ReloadCommand=%s failed with exit status %i.",
                                      strna(r->command), si->si_status);
        else
                log_full_errno_fields(LOG_WARNING, 0, &fields, "ReloadCommand=%s was killed by signal %s.",
                                      strna(r->command), strsignal(si->si_status));

        if (r->again) {
                r->again = false;
                cert_reload_run(r);
        }
        return 0;
}

/* Ours to set, or systemd's for meshd alone: a hook must not send
 * READY=1 or watchdog pings in meshd's name. */
static bool env_is_dropped(const char *e) {
        static const char *const prefixes[] = {
                "MESHD_CERT_FILE=", "MESHD_KEY_FILE=", "MESHD_CA_FILE=", "MESHD_FULLCHAIN_FILE=",
                "MESHD_CERT_DIR=",  "NOTIFY_SOCKET=",  "WATCHDOG_USEC=", "WATCHDOG_PID=",
        };

        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (strncmp(e, prefixes[i], strlen(prefixes[i])) == 0)
                        return true;
        return false;
}

static int reload_environment(const CertReload *r, char ***ret) {
        _cleanup_strv_free_ char **env = NULL;
        static const struct {
                const char *var, *file;
        } ours[] = {
                { "MESHD_CERT_FILE", CERT_FILE },
                { "MESHD_KEY_FILE", CERT_KEY_FILE },
                { "MESHD_CA_FILE", CERT_CA_FILE },
                { "MESHD_FULLCHAIN_FILE", CERT_FULLCHAIN_FILE },
        };
        char *s;

        for (char **e = environ; e && *e; e++)
                if (!env_is_dropped(*e) && strv_consume(&env, strdup(*e)) < 0)
                        return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(ours); i++) {
                if (asprintf(&s, "%s=%s/%s", ours[i].var, r->directory, ours[i].file) < 0 ||
                    strv_consume(&env, s) < 0)
                        return -ENOMEM;
        }
        if (asprintf(&s, "MESHD_CERT_DIR=%s", r->directory) < 0 || strv_consume(&env, s) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(env);
        return 0;
}

/* The child must not inherit our blocked signals (sd-event's) or ignored
 * SIGPIPE, nor sockets a library opened without O_CLOEXEC (curl's).
 * Returns 0 or a positive errno, as posix_spawn() does. */
static int spawn_shell(posix_spawnattr_t *attr, posix_spawn_file_actions_t *actions, char *command, char **env,
                       pid_t *ret_pid) {
        char *argv[] = { (char *) "sh", (char *) "-c", command, NULL };
        sigset_t none, all;
        int r;

        sigemptyset(&none);
        sigfillset(&all);
        r = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (r == 0)
                r = posix_spawnattr_setsigmask(attr, &none);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(attr, &all);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(actions, STDERR_FILENO + 1);
#endif
        if (r == 0)
                r = posix_spawn(ret_pid, "/bin/sh", actions, attr, argv, env);
        return r;
}

/* /bin/sh -c, in the background: the command may take its time (a service
 * reload), meshd goes on. */
void cert_reload_run(CertReload *r) {
        _cleanup_strv_free_ char **env = NULL;
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attr;
        pid_t pid;
        int k;

        if (!r->command)
                return;
        if (r->pid > 0) {
                r->again = true;
                return;
        }
        k = reload_environment(r, &env);
        if (k < 0) {
                log_oom();
                return;
        }

        k = posix_spawnattr_init(&attr);
        if (k != 0) {
                log_error_errno(k, "Failed to run ReloadCommand=: %m");
                return;
        }
        k = posix_spawn_file_actions_init(&actions);
        if (k != 0) {
                posix_spawnattr_destroy(&attr);
                log_error_errno(k, "Failed to run ReloadCommand=: %m");
                return;
        }
        k = spawn_shell(&attr, &actions, r->command, env, &pid);
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
        if (k != 0) {
                log_full_errno_fields(LOG_WARNING, k, &((LogFields) { .message_id = MESSAGE_CERT_RELOAD }),
                                      "Failed to run ReloadCommand=%s: %m", r->command);
                return;
        }

        k = sd_event_add_child(r->event, &r->source, pid, WEXITED, on_reload_exit, r);
        if (k < 0) {
                log_warning_errno(k, "Failed to watch ReloadCommand= (pid %i), its result is not logged: %m",
                                  (int) pid);
                return;
        }
        (void) sd_event_source_set_description(r->source, "cert-reload-command");
        r->pid = pid;
        log_info("Running ReloadCommand=%s (pid %i).", r->command, (int) pid);
}
