/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* How this node reaches the control server's hub: over UDP (the hub's
 * endpoint from the netmap) or over the TLS relay (docs/protocol.md,
 * "GET /v1/relay") when UDP does not get through. Pure, like peer-path.h:
 * hub-link.c feeds it once a second and on relay events, and acts. */

#include <stdbool.h>
#include <stdint.h>

#include "time-util.h"

typedef enum HubTransport {
        HUB_TRANSPORT_UDP,
        HUB_TRANSPORT_TLS,
} HubTransport;

/* Between two attempts to open the relay. */
#define HUB_PATH_RELAY_RETRY_USEC (10 * USEC_PER_SEC)
/* A return to UDP that fails within this is a failure: the next return
 * waits HUB_PATH_HOLD_USEC << failures. */
#define HUB_PATH_RETURN_USEC (30 * USEC_PER_SEC)
#define HUB_PATH_HOLD_USEC (10 * USEC_PER_SEC)
#define HUB_PATH_HOLD_MAX_SHIFT 5
/* UDP this long with replies forgives earlier failures. */
#define HUB_PATH_STABLE_USEC (120 * USEC_PER_SEC)

typedef struct HubPathInput {
        uint64_t now;        /* CLOCK_MONOTONIC */
        bool relay_possible; /* joined: the relay can be asked for */
        bool relay_up;       /* the relay stream is open */
        bool relay_connecting;
        uint64_t last_reply;        /* the hub's latest probe reply, 0 = never */
        uint64_t oldest_unanswered; /* first probe after it, 0 = none */
        uint64_t udp_echo;          /* latest UDP echo reply from the control server, 0 = none */
        uint64_t underlay_changed;
} HubPathInput;

typedef struct HubPathState {
        HubTransport transport;
        uint64_t since;
        uint64_t last_relay_attempt;
        uint64_t hold_until; /* no return to UDP before this */
        bool returned;       /* on UDP because the echo said it works */
        unsigned failures;
} HubPathState;

enum {
        HUB_PATH_CONNECT_RELAY = 1 << 0, /* open the TLS relay */
        HUB_PATH_USE_TLS = 1 << 1,       /* point the hub entry at the relay's loopback socket */
        HUB_PATH_USE_UDP = 1 << 2,       /* point the hub entry back at the hub's UDP endpoint */
        HUB_PATH_CLOSE_RELAY = 1 << 3,   /* UDP proved itself: the relay can go */
};

void hub_path_init(HubPathState *s, uint64_t now);
unsigned hub_path_step(HubPathState *s, const HubPathInput *in);
const char *hub_transport_to_string(HubTransport t);
