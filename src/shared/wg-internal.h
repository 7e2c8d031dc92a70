/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Private to wg.c, wg-kernel.c and wg-uapi.c (and their unit tests): the
 * backend object and the per-backend entry points wg.c dispatches to. */

#include <stdio.h>
#include <sys/types.h>

#include "wg.h"

struct WgBackend {
        WgBackendType type; /* never AUTO once open */
        char ifname[16];
        int ifindex;

        /* userspace */
        char *socket_path;
        pid_t child_pid; /* our wireguard-go, 0 when adopted */
};

/* Kernel backend (generic netlink). wg_kernel_open() checks that the
 * "wireguard" family exists (-EOPNOTSUPP otherwise). Each call opens its own
 * socket: a failed dump can leave nothing behind to confuse the next one. */
int wg_kernel_open(WgBackend *b);
int wg_kernel_get_device(WgBackend *b, WgDevice **ret);
int wg_kernel_set_device(WgBackend *b, const WgDevice *d);

/* Userspace backend (wireguard-go's UAPI socket). `opts` fills in the socket
 * path and the binary to start; *ret_created says whether we started it. */
int wg_uapi_open(WgBackend *b, const WgBackendOptions *opts, bool *ret_created);
int wg_uapi_get_device(WgBackend *b, WgDevice **ret);
int wg_uapi_set_device(WgBackend *b, const WgDevice *d);
int wg_uapi_destroy(WgBackend *b);
void wg_uapi_close(WgBackend *b);

/* The UAPI text protocol, without any I/O, for unit tests.
 * Writes a complete "set=1" request, blank line included. */
int wg_uapi_format_set(const WgDevice *d, FILE *f);
int wg_uapi_format_set_string(const WgDevice *d, char **ret, size_t *ret_len);
/* Parses the reply to "get=1": -EBADMSG for malformed text, -N for errno=N. */
int wg_uapi_parse_get(const char *text, size_t len, WgDevice **ret);
/* Parses the reply to "set=1" ("errno=N\n\n"): 0, -N, or -EBADMSG. */
int wg_uapi_parse_set_reply(const char *text, size_t len);
