/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The request head the TLS relay's own listener reads (docs/protocol.md,
 * "GET /v1/relay"): pure text handling, so unit tests and fuzzers reach it
 * without a socket. The bytes come from anyone and are trusted in nothing. */

#include <stdbool.h>
#include <stddef.h>

/* A head longer than this (request line, headers, blank line) is refused. */
#define RELAY_HEAD_MAX (8U * 1024U)

typedef struct RelayHead {
        size_t size; /* bytes up to and with the blank line; what follows are frames */
        const char *method, *target;
        const char *authorization; /* header values, NULL when absent */
        const char *upgrade;
        bool connection_upgrade; /* "Connection:" lists the token "upgrade" */
} RelayHead;

/* Parses the first len bytes of buf (which has room for one more byte). Works
 * in place: on success the head's lines are NUL-terminated inside buf and
 * *ret points into it. Returns 1 for a complete head, 0 while more bytes are
 * needed, -E2BIG when RELAY_HEAD_MAX bytes hold no complete head, -EBADMSG
 * for a head that is not HTTP/1.1 (a bad request line, a header without a
 * colon, a folded line, a control character, Authorization or Upgrade twice). */
int relay_head_parse(char *buf, size_t len, RelayHead *ret);
