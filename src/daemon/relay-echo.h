/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The UDP echo of docs/protocol.md ("The UDP echo"): while a node rides the
 * TLS relay, it asks the control server every 2 s, over plain UDP, whether
 * UDP reaches it again. One request carries a fresh random nonce; a reply
 * counts only when it comes from the server's address and echoes one of the
 * last few nonces, so nobody off the path can fake "UDP works". */

#include <systemd/sd-event.h>

#include "endpoint.h"
#include "macro.h"

#define RELAY_ECHO_INTERVAL_USEC (2 * USEC_PER_SEC)
/* How many recent nonces a reply may echo: a reply that is a few seconds
 * late still proves that UDP gets through. */
#define RELAY_ECHO_NONCES 3

typedef struct RelayEcho RelayEcho;

/* Called for each valid reply; may free the RelayEcho. */
typedef void (*RelayEchoHandler)(RelayEcho *e, void *userdata);

/* server: the control server's address and HTTPS port number. Sends the
 * first request at once, then one every RELAY_ECHO_INTERVAL_USEC. */
/* fwmark: SO_MARK of the socket (exit-route.h), 0: none. */
int relay_echo_new(sd_event *event, const union sockaddr_union *server, uint32_t fwmark,
                   RelayEchoHandler handler, void *userdata, RelayEcho **ret);
RelayEcho *relay_echo_free(RelayEcho *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(RelayEcho *, relay_echo_free);
