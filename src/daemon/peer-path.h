/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The path to one peer, decided by this node alone from what it observes
 * (docs/architecture.md, "Paths"): WireGuard straight to the peer, or
 * through the control server's hub, which this node reaches over UDP or over
 * the TLS relay. The control server only offers endpoints; a lost server
 * never pins a path. Pure: no I/O, no clock; peer.c feeds it once a second
 * and acts on what it returns. */

#include <stdbool.h>
#include <stdint.h>

#include "time-util.h"

typedef enum PeerPath {
        PEER_PATH_DIRECT,
        PEER_PATH_RELAY,     /* through the hub, the hub over UDP */
        PEER_PATH_RELAY_TLS, /* through the hub, the hub over the TLS relay */
        _PEER_PATH_MAX,
} PeerPath;

typedef enum PeerPathReason {
        PEER_PATH_REASON_START,         /* trying the direct path first */
        PEER_PATH_REASON_NO_HUB,        /* nothing to relay through */
        PEER_PATH_REASON_DIRECT_WORKS,  /* the direct path answers probes */
        PEER_PATH_REASON_DIRECT_SILENT, /* no probe reply over the direct path */
        PEER_PATH_REASON_DIRECT_HEARD,  /* WireGuard heard the peer over the direct path again */
        PEER_PATH_REASON_HUB_LOST,      /* the hub stopped answering: the relay is no path */
        PEER_PATH_REASON_NO_PATH,       /* direct silent and the hub unreachable: keep trying direct */
        PEER_PATH_REASON_HUB_TLS,       /* the hub is reached over the TLS relay now */
        PEER_PATH_REASON_HUB_UDP,       /* the hub is reached over UDP again */
        _PEER_PATH_REASON_MAX,
} PeerPathReason;

/* A path is dead when the oldest unanswered probe on it is this old; a
 * relayed pair needs both sides to agree, and both see the same silence. */
#define PEER_PATH_DEAD_USEC (3 * USEC_PER_SEC)
/* After start, a switch of path or an underlay change: no verdict before
 * this, and hole punching meanwhile. Only one side of a pair re-creates
 * its entry every second (a fresh handshake at once); the other only wakes
 * its entry, which WireGuard turns into a handshake at most every 5 s. Two
 * sides that both start a handshake at the same instant each answer the
 * other's and both wait as responders, and two sides re-creating on the
 * same beat would do that every second. */
#define PEER_PATH_GRACE_USEC (5 * USEC_PER_SEC)
#define PEER_PATH_PUNCH_USEC (1 * USEC_PER_SEC)
/* While relayed, wake the direct entry this often (doubling per flap). */
#define PEER_PATH_RETRY_USEC (3 * USEC_PER_SEC)
#define PEER_PATH_RETRY_MAX_SHIFT 4
/* Traffic on the direct entry counts as proof only this long after the
 * relay began: packets that were in flight at the switch prove nothing. */
#define PEER_PATH_EVIDENCE_MARGIN_USEC (2 * USEC_PER_SEC)
/* A return to the direct path that fails within this is a flap. */
#define PEER_PATH_FLAP_USEC (30 * USEC_PER_SEC)
/* Direct this long with replies forgives earlier flaps. */
#define PEER_PATH_STABLE_USEC (60 * USEC_PER_SEC)

typedef struct PeerPathInput {
        uint64_t now; /* CLOCK_MONOTONIC, as every time here */
        bool has_hub;
        bool hub_up;                /* the hub answers probes */
        bool hub_tls;               /* … over the TLS relay */
        uint64_t last_reply;        /* latest probe reply from the peer, 0 = never */
        uint64_t oldest_unanswered; /* send time of the first probe after the latest reply (or switch), 0 = none
                                     */
        uint64_t direct_heard;      /* when WireGuard last received on the peer's own entry, 0 = never */
        uint64_t underlay_changed;  /* start or the latest underlay change */
        bool punch_leader;          /* our key sorts first: we re-create, the peer only nudges */
} PeerPathInput;

typedef struct PeerPathState {
        PeerPath path;
        PeerPathReason reason;
        uint64_t since; /* when path was entered */
        uint64_t last_retry;
        uint64_t last_punch;
        bool returned; /* path entered as a return from the relay */
        unsigned flaps;
} PeerPathState;

/* What peer_path_step() asks of its caller (a bit mask). */
enum {
        PEER_PATH_CHANGED = 1 << 0,      /* path or reason changed: log it */
        PEER_PATH_REROUTE = 1 << 1,      /* direct ↔ relay: move the peer's addresses between entries */
        PEER_PATH_PUNCH = 1 << 2,        /* recreate the direct entry: a handshake now, from both sides */
        PEER_PATH_RETRY_DIRECT = 1 << 3, /* wake the direct entry (keepalive or handshake), next candidate */
        PEER_PATH_NUDGE = 1 << 4,        /* wake the direct entry, same candidate */
};

/* The verdict on any path, a peer's or the hub's: its oldest unanswered
 * probe is PEER_PATH_DEAD_USEC old, and silence (counted from the latest
 * of the last reply, the path's start and the underlay's last move) has
 * lasted the grace. */
bool peer_path_silent(uint64_t now, uint64_t oldest_unanswered, uint64_t last_reply, uint64_t since,
                      uint64_t underlay_changed);

void peer_path_init(PeerPathState *s, uint64_t now);
unsigned peer_path_step(PeerPathState *s, const PeerPathInput *in);

bool peer_path_is_relay(PeerPath p);
const char *peer_path_to_string(PeerPath p);
const char *peer_path_reason_to_string(PeerPathReason r);
