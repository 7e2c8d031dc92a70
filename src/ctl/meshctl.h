/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What meshctl's command line says, parsed once in meshctl.c and handed to
 * the command that runs. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "macro.h"

/* Exit codes, documented in meshctl(8). */
#define EXIT_USAGE 2

#define PING_COUNT_DEFAULT 3U
#define PING_INTERVAL_USEC (1 * USEC_PER_SEC)
#define PING_TIMEOUT_DEFAULT_USEC (2 * USEC_PER_SEC)
#define WAIT_ONLINE_TIMEOUT_DEFAULT_USEC (120 * USEC_PER_SEC)

typedef struct Arguments {
        const char *verb;
        const char *socket_path;
        bool json;
        /* up */
        const char *server;
        const char *authkey;
        const char *authkey_file;
        const char *pin;
        /* up: route settings; NULL / -1: not given */
        const char *advertise_routes;
        int advertise_exit_node;
        const char *accept_routes;
        const char *exit_node;
        /* ping */
        unsigned count;
        /* ping, wait-online; 0 = forever for wait-online */
        uint64_t timeout_usec;
        bool timeout_set;
        /* wait-online */
        bool any;
        /* ip: AF_UNSPEC for both */
        int family;
        /* nss: NULL for the default */
        const char *nsswitch_path;
        /* cert */
        const char *out_dir;
        bool renew;
        /* trust: this user's browsers instead of the system's */
        bool user;
} Arguments;

/* Each command gets the positional arguments after its name (NULL-terminated,
 * count already checked) and returns 0 or a negative errno, already logged. */
int verb_up(const Arguments *a, char **argv);
int verb_down(const Arguments *a, char **argv);
int verb_logout(const Arguments *a, char **argv);
int verb_status(const Arguments *a, char **argv);
int verb_peers(const Arguments *a, char **argv);
int verb_ip(const Arguments *a, char **argv);
int verb_wait_online(const Arguments *a, char **argv);
int verb_ping(const Arguments *a, char **argv);
int verb_genkey(const Arguments *a, char **argv);
int verb_pubkey(const Arguments *a, char **argv);
int verb_cert(const Arguments *a, char **argv);
int verb_trust(const Arguments *a, char **argv);
