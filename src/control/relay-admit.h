/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Who may open a TLS relay stream (docs/protocol.md, "GET /v1/relay"): the
 * one decision both ways in make, the upgrade on the API port (http.c) and
 * the relay's own listener (relay-listener.c), so that both refuse alike,
 * with the same status and the same one-line error. */

#include <stdbool.h>
#include <stdint.h>

#include "key.h"
#include "relay-server.h"
#include "store.h"

typedef struct RelayAdmission {
        unsigned status; /* 0: admitted; else the HTTP status of the refusal */
        char error[256]; /* the refusal's "error" text */
        int64_t id;      /* admitted: the node */
        char *name;
        WgKey key;
} RelayAdmission;

void relay_admission_done(RelayAdmission *a);

/* authorization, upgrade: the request's header values, NULL when absent.
 * rs: NULL without a hub; disabled: serve --no-relay. Fills *ret (admitted
 * or refused) and returns 0, or -ENOMEM (nothing to answer but 500). */
int relay_admit(Store *store, const RelayServer *rs, bool disabled, const char *authorization,
                const char *upgrade, RelayAdmission *ret);
