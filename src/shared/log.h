/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

/* Structured journal fields that meshd's events carry. Any member may be NULL.
 * A fixed set, rather than free-form varargs, keeps call sites type-checked. */
typedef struct LogFields {
        const char *message_id;  /* 32 hex digits, see catalog/meshd.catalog */
        const char *peer;        /* MESHD_PEER= */
        const char *endpoint;    /* MESHD_ENDPOINT= */
        const char *path;        /* MESHD_PATH= direct|relay */
        const char *state;       /* MESHD_STATE= the manager's new state */
        const char *control_url; /* MESHD_CONTROL_URL= the control server now used */
        const char *routes;      /* MESHD_ROUTES= the rules and routes meshd re-added */
} LogFields;

typedef enum LogTarget {
        LOG_TARGET_AUTO, /* journal when stderr is the journal stream, else console */
        LOG_TARGET_JOURNAL,
        LOG_TARGET_CONSOLE,
} LogTarget;

/* Logging is configured once at start-up by main(); it is the one piece of
 * process-wide state, like in every systemd tool, since every function logs. */
void log_setup(const char *identifier, LogTarget target);
void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s);

int log_internal(int level, int error, const LogFields *fields, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(7, 8);

/* All log_*_errno() return -abs(error), so an error path is one line:
 *         return log_error_errno(r, "Failed to open %s: %m", path);
 * %m prints strerror(error). */
#define log_full_errno_fields(level, error, fields, ...) \
        log_internal((level), (error), (fields), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full_errno(level, error, ...) log_full_errno_fields(level, error, NULL, __VA_ARGS__)
#define log_full(level, ...) (void) log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")

/* Lines about one peer carry MESHD_PEER=NAME, so that `journalctl
 * MESHD_PEER=nas` tells that peer's story. Further fields go in parentheses
 * as designated initializers of LogFields:
 *         log_peer_full_errno_fields(p->name, LOG_INFO, 0, (.message_id = MESSAGE_PEER_ONLINE),
 *                                    "Peer %s is reachable.", p->name);
 * Naming .peer there again is a -Woverride-init error. */
#define LOG_FIELDS_UNPACK(...) __VA_ARGS__
#define log_peer_full_errno_fields(name, level, error, fields, ...)                                          \
        log_full_errno_fields((level), (error), &((LogFields) { .peer = (name), LOG_FIELDS_UNPACK fields }), \
                              __VA_ARGS__)
#define log_peer_full_errno(name, level, error, ...) \
        log_peer_full_errno_fields(name, level, error, (), __VA_ARGS__)
#define log_peer_full(name, level, ...) (void) log_peer_full_errno(name, level, 0, __VA_ARGS__)

#define log_peer_debug(name, ...) log_peer_full(name, LOG_DEBUG, __VA_ARGS__)
#define log_peer_info(name, ...) log_peer_full(name, LOG_INFO, __VA_ARGS__)
#define log_peer_notice(name, ...) log_peer_full(name, LOG_NOTICE, __VA_ARGS__)
#define log_peer_warning(name, ...) log_peer_full(name, LOG_WARNING, __VA_ARGS__)
#define log_peer_error(name, ...) log_peer_full(name, LOG_ERR, __VA_ARGS__)

#define log_peer_debug_errno(name, e, ...) log_peer_full_errno(name, LOG_DEBUG, e, __VA_ARGS__)
#define log_peer_warning_errno(name, e, ...) log_peer_full_errno(name, LOG_WARNING, e, __VA_ARGS__)
#define log_peer_error_errno(name, e, ...) log_peer_full_errno(name, LOG_ERR, e, __VA_ARGS__)
