/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lego process of an ACME order: started with posix_spawn, its output
 * read by sd-event into the journal (and kept for the error summary), its
 * exit reaped by sd-event, killed when it outlives ACME_TIMEOUT_SEC. The
 * TSIG secret goes through its environment (readable only by our user),
 * never its command line. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/x509.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acme-internal.h"
#include "gnutls-util.h"
#include "log.h"
#include "strv.h"
#include "time-util.h"

#define OUTPUT_MAX (64 * 1024)

extern char **environ;

void acme_output_drain(AcmeIssuer *a, bool final) {
        char buf[4096];

        for (;;) {
                ssize_t n = a->output_fd >= 0 ? read(a->output_fd, buf, sizeof(buf)) : 0;
                if (n <= 0)
                        break;
                /* past the bound we keep reading (the child must not block)
                 * but no longer store */
                if (a->output_len + (size_t) n > OUTPUT_MAX)
                        continue;
                char *t = realloc(a->output, a->output_len + (size_t) n + 1);
                if (!t)
                        continue;
                a->output = t;
                memcpy(a->output + a->output_len, buf, (size_t) n);
                a->output_len += (size_t) n;
                a->output[a->output_len] = 0;
        }
        while (a->output && a->output_logged < a->output_len) {
                char *line = a->output + a->output_logged, *nl = strchr(line, '\n');
                size_t len = nl ? (size_t) (nl - line) : strlen(line);
                if (!nl && !final)
                        break;
                if (len > 0)
                        log_peer_info(a->running ? a->running->node : NULL, "%s[%i]: %.*s", a->program,
                                      (int) a->pid, (int) MIN(len, 1000u), line);
                a->output_logged += len + (nl ? 1 : 0);
        }
}

static int on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        AcmeIssuer *a = userdata;

        acme_output_drain(a, false);
        if (revents & (EPOLLHUP | EPOLLERR))
                a->output_source = sd_event_source_disable_unref(a->output_source);
        return 0;
}

static int on_exit_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        acme_child_done(userdata, si->si_code, si->si_status);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        AcmeIssuer *a = userdata;

        log_peer_error(a->running ? a->running->node : NULL,
                       "ACME order for %s runs longer than %u s, stopping %s.",
                       a->running ? a->running->name : "?", (unsigned) ACME_TIMEOUT_SEC, a->program);
        a->timed_out = true;
        if (a->pid > 0)
                (void) kill(a->pid, SIGKILL);
        return 0;
}

/* The environment: ours without lego's and the provider's variables, then
 * the provider's settings. */
static int build_env(const AcmeIssuer *a, char ***ret) {
        _cleanup_strv_free_ char **env = NULL;
        const char *dropped[] = { "LEGO_", "RFC2136_" };
        int r = 0;

        for (char **e = environ; e && *e && r >= 0; e++) {
                bool drop = false;
                for (size_t i = 0; i < ELEMENTSOF(dropped); i++)
                        drop = drop || strncmp(*e, dropped[i], strlen(dropped[i])) == 0;
                if (!drop)
                        r = strv_consume(&env, strdup(*e));
        }
        if (r < 0)
                return r;
#define ADD(fmt, ...)                                    \
        do {                                             \
                char *_s;                                \
                if (asprintf(&_s, fmt, __VA_ARGS__) < 0) \
                        return -ENOMEM;                  \
                if (strv_consume(&env, _s) < 0)          \
                        return -ENOMEM;                  \
        } while (0)
        ADD("RFC2136_NAMESERVER=%s", a->dns_server);
        ADD("RFC2136_TSIG_KEY=%s", a->tsig.name);
        ADD("RFC2136_TSIG_ALGORITHM=%s.", a->tsig.algorithm);
        ADD("RFC2136_TSIG_SECRET=%s", a->tsig.secret);
        ADD("RFC2136_TTL=%i", 60);
        ADD("RFC2136_DNS_TIMEOUT=%i", 10);
        ADD("RFC2136_PROPAGATION_TIMEOUT=%i", 60);
        ADD("RFC2136_POLLING_INTERVAL=%i", 2);
        if (a->ca_bundle)
                ADD("LEGO_CA_CERTIFICATES=%s", a->ca_bundle);
#undef ADD
        *ret = TAKE_PTR(env);
        return 0;
}

static int build_argv(const AcmeIssuer *a, char ***ret) {
        _cleanup_strv_free_ char **argv = NULL;
        const char *fixed[] = { a->program, "--server", a->directory_url,  "--accept-tos",
                                "--path",   a->dir,     "--csr",           a->csr_path,
                                "--dns",    "rfc2136",  "--dns.resolvers", a->dns_server };

        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                if (strv_consume(&argv, strdup(fixed[i])) < 0)
                        return -ENOMEM;
        if (a->email &&
            (strv_consume(&argv, strdup("--email")) < 0 || strv_consume(&argv, strdup(a->email)) < 0))
                return -ENOMEM;
        /* Each order proves control of the name afresh: a valid
         * authorization left at the CA would let the account's key alone
         * (and a restarted order) skip DNS-01 for weeks. */
        if (strv_consume(&argv, strdup("run")) < 0 ||
            strv_consume(&argv, strdup("--always-deactivate-authorizations=true")) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

static int spawn(const AcmeIssuer *a, int out_fd, pid_t *ret_pid) {
        _cleanup_strv_free_ char **argv = NULL, **env = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t mask, defaults;
        int r;

        r = build_argv(a, &argv);
        if (r >= 0)
                r = build_env(a, &env);
        if (r < 0)
                return r;
        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        /* a clean signal slate: we block SIGCHLD and the server's signals */
        sigemptyset(&mask);
        sigfillset(&defaults);
        sigdelset(&defaults, SIGKILL);
        sigdelset(&defaults, SIGSTOP);
        r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, out_fd, STDERR_FILENO);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &mask);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &defaults);
        if (r == 0)
                r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (r == 0)
                r = posix_spawnp(ret_pid, argv[0], &fa, &attr, argv, env);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        return -r;
}

int acme_spawn(AcmeIssuer *a, AcmeJob *j) {
        _cleanup_close_ int rd = -EBADF, wr = -EBADF;
        int fds[2], r;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        rd = fds[0];
        wr = fds[1];
        if (fcntl(rd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        r = spawn(a, wr, &pid);
        if (r < 0)
                return r;
        a->pid = pid;
        a->timed_out = false;
        r = sd_event_add_child(a->event, &a->child_source, pid, WEXITED, on_exit_child, a);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                return r;
        }
        r = sd_event_add_io(a->event, &a->output_source, rd, EPOLLIN, on_output, a);
        if (r >= 0)
                r = sd_event_add_time_relative(a->event, &a->timeout_source, CLOCK_MONOTONIC,
                                               ACME_TIMEOUT_SEC * USEC_PER_SEC, 0, on_timeout, a);
        if (r < 0) {
                /* the child source reaps it and fails the job */
                (void) kill(pid, SIGKILL);
                return 0;
        }
        (void) sd_event_source_set_description(a->child_source, "acme-child");
        a->output_fd = TAKE_FD(rd);
        (void) j;
        return 0;
}

/* ---- the result --------------------------------------------------------------------------- */

static int leaf_times(const char *pem, size_t len, int64_t *nb, int64_t *na) {
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        time_t t0, t1;

        if (gnutls_x509_crt_init(&crt) < 0 ||
            gnutls_x509_crt_import(crt, &(gnutls_datum_t) { (unsigned char *) pem, (unsigned) len },
                                   GNUTLS_X509_FMT_PEM) < 0)
                return -EBADMSG;
        t0 = gnutls_x509_crt_get_activation_time(crt);
        t1 = gnutls_x509_crt_get_expiration_time(crt);
        if (t0 == (time_t) -1 || t1 == (time_t) -1 || t1 <= t0)
                return -EBADMSG;
        *nb = t0;
        *na = t1;
        return 0;
}

int acme_split_bundle(const char *bundle, char **ret_leaf, char **ret_chain, int64_t *ret_not_before,
                      int64_t *ret_not_after, char *error, size_t error_size) {
        static const char end[] = "-----END CERTIFICATE-----";
        const char *begin = strstr(bundle, "-----BEGIN CERTIFICATE-----"), *e, *rest;
        _cleanup_free_ char *leaf = NULL, *chain = NULL;

        e = begin ? strstr(begin, end) : NULL;
        rest = e ? strstr(e, "-----BEGIN CERTIFICATE-----") : NULL;
        if (!e || !rest) {
                snprintf(error, error_size, "the ACME CA's reply is not a certificate and its chain");
                return -EBADMSG;
        }
        e += strlen(end);
        if (asprintf(&leaf, "%.*s\n", (int) (e - begin), begin) < 0 || !(chain = strdup(rest)))
                return -ENOMEM;
        if (leaf_times(leaf, strlen(leaf), ret_not_before, ret_not_after) < 0) {
                snprintf(error, error_size, "the ACME CA's certificate does not parse");
                return -EBADMSG;
        }
        *ret_leaf = TAKE_PTR(leaf);
        *ret_chain = TAKE_PTR(chain);
        return 0;
}
