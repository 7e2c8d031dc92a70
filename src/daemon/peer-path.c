/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "macro.h"
#include "peer-path.h"

void peer_path_init(PeerPathState *s, uint64_t now) {
        *s = (PeerPathState) { .path = PEER_PATH_DIRECT, .reason = PEER_PATH_REASON_START, .since = now };
}

bool peer_path_is_relay(PeerPath p) {
        return p == PEER_PATH_RELAY || p == PEER_PATH_RELAY_TLS;
}

static unsigned peer_path_enter(PeerPathState *s, PeerPath path, PeerPathReason reason, uint64_t now) {
        unsigned flags = PEER_PATH_CHANGED;

        if (peer_path_is_relay(path) != peer_path_is_relay(s->path)) {
                flags |= PEER_PATH_REROUTE;
                if (peer_path_is_relay(path)) {
                        if (s->returned && now - s->since < PEER_PATH_FLAP_USEC)
                                s->flaps = MIN(s->flaps + 1, (unsigned) PEER_PATH_RETRY_MAX_SHIFT);
                        s->last_retry = now;
                }
                s->returned = !peer_path_is_relay(path) && reason == PEER_PATH_REASON_DIRECT_HEARD;
                s->since = now;
        }
        s->path = path;
        s->reason = reason;
        return flags;
}

bool peer_path_silent(uint64_t now, uint64_t oldest_unanswered, uint64_t last_reply, uint64_t since,
                      uint64_t underlay_changed) {
        uint64_t start = MAX(MAX(last_reply, since), underlay_changed);

        return oldest_unanswered != 0 && now - oldest_unanswered >= PEER_PATH_DEAD_USEC &&
               now - start >= PEER_PATH_GRACE_USEC;
}

static bool path_is_dead(const PeerPathState *s, const PeerPathInput *in) {
        return peer_path_silent(in->now, in->oldest_unanswered, in->last_reply, s->since, in->underlay_changed);
}

static unsigned step_direct(PeerPathState *s, const PeerPathInput *in) {
        uint64_t fresh = MAX(s->since, in->underlay_changed);

        if (in->last_reply > fresh && in->oldest_unanswered == 0) {
                unsigned flags = 0;

                /* answered again after a spell with no path at all: say so */
                if (s->reason == PEER_PATH_REASON_NO_PATH || s->reason == PEER_PATH_REASON_NO_HUB)
                        flags |= PEER_PATH_CHANGED;
                if (s->reason == PEER_PATH_REASON_START || s->reason == PEER_PATH_REASON_NO_PATH ||
                    s->reason == PEER_PATH_REASON_NO_HUB)
                        s->reason = PEER_PATH_REASON_DIRECT_WORKS;
                if (s->flaps > 0 && in->now - s->since >= PEER_PATH_STABLE_USEC)
                        s->flaps = 0;
                return flags;
        }

        if (!path_is_dead(s, in)) {
                /* still within the grace: punch until a handshake gets through both NATs */
                if (in->last_reply <= fresh && in->now - fresh < PEER_PATH_GRACE_USEC &&
                    in->oldest_unanswered != 0 && in->now - in->oldest_unanswered >= PEER_PATH_PUNCH_USEC &&
                    in->now - s->last_punch >= PEER_PATH_PUNCH_USEC) {
                        s->last_punch = in->now;
                        return in->punch_leader ? PEER_PATH_PUNCH : PEER_PATH_NUDGE;
                }
                return 0;
        }

        if (in->has_hub && in->hub_up)
                return peer_path_enter(s, in->hub_tls ? PEER_PATH_RELAY_TLS : PEER_PATH_RELAY,
                                       PEER_PATH_REASON_DIRECT_SILENT, in->now);

        /* no relay to go to: keep waking the direct entry */
        unsigned flags = 0;
        PeerPathReason reason = in->has_hub ? PEER_PATH_REASON_NO_PATH : PEER_PATH_REASON_NO_HUB;
        if (s->reason != reason) {
                s->reason = reason;
                flags |= PEER_PATH_CHANGED;
        }
        if (in->now - s->last_retry >= PEER_PATH_RETRY_USEC) {
                s->last_retry = in->now;
                flags |= PEER_PATH_RETRY_DIRECT;
        }
        return flags;
}

static unsigned step_relay(PeerPathState *s, const PeerPathInput *in) {
        if (!in->has_hub)
                return peer_path_enter(s, PEER_PATH_DIRECT, PEER_PATH_REASON_NO_HUB, in->now);
        if (!in->hub_up)
                return peer_path_enter(s, PEER_PATH_DIRECT, PEER_PATH_REASON_HUB_LOST, in->now);
        if (in->direct_heard >= s->since + PEER_PATH_EVIDENCE_MARGIN_USEC)
                return peer_path_enter(s, PEER_PATH_DIRECT, PEER_PATH_REASON_DIRECT_HEARD, in->now);

        if (in->hub_tls != (s->path == PEER_PATH_RELAY_TLS))
                return peer_path_enter(s, in->hub_tls ? PEER_PATH_RELAY_TLS : PEER_PATH_RELAY,
                                       in->hub_tls ? PEER_PATH_REASON_HUB_TLS : PEER_PATH_REASON_HUB_UDP,
                                       in->now);

        if (in->now - s->last_retry >= PEER_PATH_RETRY_USEC << s->flaps) {
                s->last_retry = in->now;
                return PEER_PATH_RETRY_DIRECT;
        }
        return 0;
}

unsigned peer_path_step(PeerPathState *s, const PeerPathInput *in) {
        if (peer_path_is_relay(s->path))
                return step_relay(s, in);
        return step_direct(s, in);
}

const char *peer_path_to_string(PeerPath p) {
        static const char *const table[_PEER_PATH_MAX] = {
                [PEER_PATH_DIRECT] = "direct",
                [PEER_PATH_RELAY] = "relay",
                [PEER_PATH_RELAY_TLS] = "relay-tls",
        };
        return p >= 0 && p < _PEER_PATH_MAX ? table[p] : "unknown";
}

const char *peer_path_reason_to_string(PeerPathReason r) {
        static const char *const table[_PEER_PATH_REASON_MAX] = {
                [PEER_PATH_REASON_START] = "trying the direct path first",
                [PEER_PATH_REASON_NO_HUB] = "no hub to relay through",
                [PEER_PATH_REASON_DIRECT_WORKS] = "probe replies over the direct path",
                [PEER_PATH_REASON_DIRECT_SILENT] = "no probe reply over the direct path",
                [PEER_PATH_REASON_DIRECT_HEARD] = "WireGuard heard the peer over the direct path",
                [PEER_PATH_REASON_HUB_LOST] = "the hub stopped answering",
                [PEER_PATH_REASON_NO_PATH] = "no probe reply over the direct path and the hub unreachable",
                [PEER_PATH_REASON_HUB_TLS] = "the hub is reached over the TLS relay",
                [PEER_PATH_REASON_HUB_UDP] = "the hub is reached over UDP again",
        };
        return r >= 0 && r < _PEER_PATH_REASON_MAX ? table[r] : "unknown";
}
