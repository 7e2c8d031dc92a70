/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include "log.h"

static int log_max_level = LOG_INFO;
static LogTarget log_target = LOG_TARGET_CONSOLE;
static const char *log_identifier = NULL;
static bool log_timestamps = false;

/* journald sets $JOURNAL_STREAM to "DEV:INODE" of the stream it gave us;
 * only when stderr still is that stream do we log natively to the journal. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(const char *identifier, LogTarget target) {
        const char *e;

        log_identifier = identifier;
        if (target == LOG_TARGET_AUTO)
                target = stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_CONSOLE;
        log_target = target;

        /* For tests that rebuild timelines from several daemons' stderr;
         * the journal has its own timestamps. */
        log_timestamps = getenv("MESHD_LOG_TIMESTAMPS") != NULL;

        e = getenv("MESHD_LOG_LEVEL");
        if (e && log_level_from_string(e) >= 0)
                log_max_level = log_level_from_string(e);
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

int log_level_from_string(const char *s) {
        /* clang-format off */
        static const char *const names[] = {
                [LOG_EMERG] = "emerg",   [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit",
                [LOG_ERR] = "err",       [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
                [LOG_INFO] = "info",     [LOG_DEBUG] = "debug",
        };
        /* clang-format on */
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(s, names[i]))
                        return (int) i;
        if (streq(s, "error"))
                return LOG_ERR;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == 0)
                return s[0] - '0';
        return -EINVAL;
}

int log_internal(int level, int error, const LogFields *fields, const char *file, int line, const char *func,
                 const char *format, ...) {
        char buf[2048];
        va_list ap;
        int saved_errno = errno;

        if (error < 0)
                error = -error;
        if (level > log_max_level)
                return -error;

        /* Make %m print the error we were handed, not whatever errno is. */
        errno = error;
        va_start(ap, format);
        (void) vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        if (log_target == LOG_TARGET_JOURNAL) {
                char priority[16], code_line[32], errno_field[24];
                char msgid[64], peer[300], endpoint[128], path[64], state[64], code_file[512], code_func[256];
                char control_url[600];
                char routes[512];
                struct iovec iov[14];
                size_t n = 0;

#define ADD_FIELD(buffer, ...)                                                               \
        do {                                                                                 \
                snprintf(buffer, sizeof(buffer), __VA_ARGS__);                               \
                iov[n++] = (struct iovec) { .iov_base = buffer, .iov_len = strlen(buffer) }; \
        } while (0)

                _cleanup_free_ char *message = NULL;
                if (asprintf(&message, "MESSAGE=%s", buf) < 0)
                        message = NULL;
                if (message)
                        iov[n++] = (struct iovec) { .iov_base = message, .iov_len = strlen(message) };
                ADD_FIELD(priority, "PRIORITY=%i", level);
                ADD_FIELD(code_file, "CODE_FILE=%s", file);
                ADD_FIELD(code_line, "CODE_LINE=%i", line);
                ADD_FIELD(code_func, "CODE_FUNC=%s", func);
                if (error > 0)
                        ADD_FIELD(errno_field, "ERRNO=%i", error);
                if (fields && fields->message_id)
                        ADD_FIELD(msgid, "MESSAGE_ID=%s", fields->message_id);
                if (fields && fields->peer)
                        ADD_FIELD(peer, "MESHD_PEER=%s", fields->peer);
                if (fields && fields->endpoint)
                        ADD_FIELD(endpoint, "MESHD_ENDPOINT=%s", fields->endpoint);
                if (fields && fields->path)
                        ADD_FIELD(path, "MESHD_PATH=%s", fields->path);
                if (fields && fields->state)
                        ADD_FIELD(state, "MESHD_STATE=%s", fields->state);
                if (fields && fields->control_url)
                        ADD_FIELD(control_url, "MESHD_CONTROL_URL=%s", fields->control_url);
                if (fields && fields->routes)
                        ADD_FIELD(routes, "MESHD_ROUTES=%s", fields->routes);
#undef ADD_FIELD
                if (sd_journal_sendv(iov, (int) n) >= 0)
                        goto done;
                /* journald gone: fall through to stderr rather than lose the line */
        }

        if (log_timestamps) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                fprintf(stderr, "[%5lld.%06ld] ", (long long) ts.tv_sec, ts.tv_nsec / 1000);
        }
        if (log_identifier && level <= LOG_WARNING)
                fprintf(stderr, "%s: %s\n", log_identifier, buf);
        else
                fprintf(stderr, "%s\n", buf);
done:
        errno = saved_errno;
        return -error;
}
