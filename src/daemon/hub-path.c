/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "hub-path.h"
#include "macro.h"
#include "peer-path.h"

void hub_path_init(HubPathState *s, uint64_t now) {
        *s = (HubPathState) { .transport = HUB_TRANSPORT_UDP, .since = now };
}

static bool udp_is_dead(const HubPathState *s, const HubPathInput *in) {
        return peer_path_silent(in->now, in->oldest_unanswered, in->last_reply, s->since, in->underlay_changed);
}

/* by_echo: back on UDP because the echo said UDP works, which the next
 * seconds may prove wrong. */
static unsigned hub_path_enter(HubPathState *s, HubTransport t, bool by_echo, uint64_t now) {
        if (t == HUB_TRANSPORT_TLS && s->returned && now - s->since < HUB_PATH_RETURN_USEC) {
                s->failures = MIN(s->failures + 1, (unsigned) HUB_PATH_HOLD_MAX_SHIFT);
                s->hold_until = now + (HUB_PATH_HOLD_USEC << s->failures);
        }
        s->returned = by_echo;
        s->transport = t;
        s->since = now;
        return t == HUB_TRANSPORT_TLS ? HUB_PATH_USE_TLS : HUB_PATH_USE_UDP;
}

static unsigned step_udp(HubPathState *s, const HubPathInput *in) {
        if (in->last_reply > s->since && in->oldest_unanswered == 0) {
                if (s->failures > 0 && in->now - s->since >= HUB_PATH_STABLE_USEC)
                        s->failures = 0;
                return in->relay_up || in->relay_connecting ? HUB_PATH_CLOSE_RELAY : 0;
        }
        if (!udp_is_dead(s, in) || !in->relay_possible)
                return 0;
        if (in->relay_up)
                return hub_path_enter(s, HUB_TRANSPORT_TLS, false, in->now);
        if (!in->relay_connecting &&
            (s->last_relay_attempt == 0 || in->now - s->last_relay_attempt >= HUB_PATH_RELAY_RETRY_USEC)) {
                s->last_relay_attempt = in->now;
                return HUB_PATH_CONNECT_RELAY;
        }
        return 0;
}

static unsigned step_tls(HubPathState *s, const HubPathInput *in) {
        if (!in->relay_up)
                return hub_path_enter(s, HUB_TRANSPORT_UDP, false, in->now);
        if (in->udp_echo > s->since && in->now >= s->hold_until)
                return hub_path_enter(s, HUB_TRANSPORT_UDP, true, in->now);
        return 0;
}

unsigned hub_path_step(HubPathState *s, const HubPathInput *in) {
        return s->transport == HUB_TRANSPORT_TLS ? step_tls(s, in) : step_udp(s, in);
}

const char *hub_transport_to_string(HubTransport t) {
        return t == HUB_TRANSPORT_TLS ? "tls" : "udp";
}
