/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The node's end of the TLS relay (docs/protocol.md, "GET /v1/relay"): a
 * pinned TLS connection to the control server, upgraded to a stream of
 * framed WireGuard messages, and a loopback UDP socket that WireGuard's hub
 * entry points at while the relay is used. What WireGuard sends to that
 * socket is framed onto the stream; what the server sends is handed to
 * WireGuard from that socket. While the stream is up, the UDP echo
 * (relay-echo.h) tells whether UDP reaches the control server again.
 *
 * Everything is non-blocking in the caller's sd-event loop: libcurl's multi
 * interface makes the TCP connection and the TLS handshake (CONNECT_ONLY),
 * then the upgrade and the frames go through curl_easy_send/recv. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "endpoint.h"
#include "macro.h"

/* From relay_client_new() to the 101: past it, the attempt is CLOSED. */
#define RELAY_CLIENT_TIMEOUT_USEC (10 * USEC_PER_SEC)
/* Frames waiting for the TLS connection; past it they are dropped like UDP. */
#define RELAY_CLIENT_QUEUE_MAX (256U * 1024U)

typedef struct RelayClient RelayClient;

typedef enum RelayClientEvent {
        RELAY_CLIENT_UP,     /* 101 received; frames flow */
        RELAY_CLIENT_CLOSED, /* connect failed, refused (status + one-line reason), or stream ended; the object
                                stays allocated, free it */
        RELAY_CLIENT_UDP_WORKS, /* a UDP echo reply came from the control server: UDP reaches it again */
} RelayClientEvent;

/* Runs from the event loop, never from inside relay_client_new(); reason is
 * one line for people with CLOSED, NULL otherwise. The handler may call
 * relay_client_free(). After CLOSED nothing more is reported. UDP_WORKS
 * comes for each valid echo reply (every 2 s while UDP works). */
typedef void (*RelayClientHandler)(RelayClient *c, RelayClientEvent event, const char *reason, void *userdata);

typedef struct RelayClientOptions {
        const char *control_url; /* https://HOST:PORT as in the credentials */
        const char *pin;   /* sha256//BASE64, the same pin the control client uses (CURLOPT_PINNEDPUBLICKEY) */
        const char *token; /* node token */
        uint16_t
                wg_listen_port; /* meshd's WireGuard listen port: frames from the server go to 127.0.0.1:this */
        uint64_t timeout_usec;  /* connect + TLS + 101; 0: RELAY_CLIENT_TIMEOUT_USEC */
        uint32_t fwmark;        /* SO_MARK of the TLS connection and the UDP echo (exit-route.h), 0: none */
        uint16_t echo_port;     /* the UDP echo's port on the server's address; 0: the TLS connection's */
} RelayClientOptions;

/* Binds the loopback UDP socket at once, starts connecting (never blocks the
 * event loop). -EINVAL for an URL that is not https://, a pin that is not
 * sha256//..., an empty token or one with characters a header cannot carry,
 * or port 0. curl_global_init() must have been called once, by main(). */
int relay_client_new(sd_event *e, const RelayClientOptions *o, RelayClientHandler h, void *userdata,
                     RelayClient **ret);
/* 127.0.0.1:PORT of the loopback socket: where WireGuard's hub entry must
 * point while the relay is used. */
int relay_client_local_endpoint(const RelayClient *c, union sockaddr_union *ret);
bool relay_client_is_up(const RelayClient *c);
/* The control server's address the TLS connection reached (and the echo
 * goes to); -ENOTCONN before the connection is made. */
int relay_client_server_endpoint(const RelayClient *c, union sockaddr_union *ret);
RelayClient *relay_client_free(RelayClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(RelayClient *, relay_client_free);
