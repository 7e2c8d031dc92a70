/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The HTTP/1.1 upgrade that opens a TLS relay stream (docs/protocol.md,
 * "GET /v1/relay"): the request meshd sends and the reply it reads. Pure
 * text handling; the reply is the server's and trusted in nothing. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The reply head, or a refusal with its short JSON body, is read into a
 * buffer of this size at most. */
#define RELAY_UPGRADE_REPLY_MAX (16U * 1024U)

/* GET /v1/relay for https://HOST[:PORT] with the node token. -EINVAL for an
 * URL without a host, or a host or token with blanks, line breaks or other
 * characters a header cannot carry. The request carries the token: erase it
 * when done. */
int relay_upgrade_request(const char *control_url, const char *token, char **ret, size_t *ret_len);

/* Judges the reply so far: buf holds len bytes (len ≤ RELAY_UPGRADE_REPLY_MAX,
 * NUL-terminated at len), eof whether the server closed the connection.
 * Returns 1 for a 101 with "Upgrade: meshd-relay/1" (*ret_head_size: the
 * bytes up to and with the blank line; frames follow), 0 while more bytes
 * are needed, -EPROTO when the relay is refused or the reply is broken, with
 * *ret_reason one printable line ("relay refused: 401 unknown token"). */
int relay_upgrade_reply(const char *buf, size_t len, bool eof, size_t *ret_head_size, char **ret_reason);

/* Where the TLS relay is when the netmap's hub has "relay_port": the control
 * URL's host (an IPv6 literal keeps its brackets) on that port, as
 * https://HOST:PORT in *ret_url; *ret_control_port: the control URL's own
 * port (443 when it names none), where the UDP echo still answers. -EINVAL
 * for an URL that is not https://HOST[:PORT][/…] or relay_port 0. */
int relay_upgrade_url(const char *control_url, uint16_t relay_port, char **ret_url, uint16_t *ret_control_port);
