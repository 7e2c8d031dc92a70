/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A token bucket: rate tokens a second, at most burst saved up. Used where
 * a stranger's packets make us send or forward something (the UDP echo,
 * handshakes on a relay stream), so we never become a flood's amplifier. */

#include <stdbool.h>
#include <stdint.h>

#include "time-util.h"

typedef struct RateLimit {
        uint32_t rate, burst;
        uint64_t tokens_x1e6; /* tokens in millionths, so a µs clock refills smoothly */
        uint64_t last_usec;
} RateLimit;

static inline void rate_limit_init(RateLimit *rl, uint32_t rate, uint32_t burst, uint64_t now_usec) {
        *rl = (RateLimit) {
                .rate = rate,
                .burst = burst,
                .tokens_x1e6 = (uint64_t) burst * 1000000,
                .last_usec = now_usec,
        };
}

/* Takes one token: true when the event may happen now. */
static inline bool rate_limit_take(RateLimit *rl, uint64_t now_usec) {
        uint64_t cap = (uint64_t) rl->burst * 1000000;

        if (now_usec > rl->last_usec) {
                uint64_t add = (now_usec - rl->last_usec) * rl->rate;
                rl->tokens_x1e6 = add >= cap || rl->tokens_x1e6 + add >= cap ? cap : rl->tokens_x1e6 + add;
                rl->last_usec = now_usec;
        }
        if (rl->tokens_x1e6 < 1000000)
                return false;
        rl->tokens_x1e6 -= 1000000;
        return true;
}
