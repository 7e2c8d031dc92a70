/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The state that the registrations of one write transaction share
 * (store-register-tx.c), for store-register.c only. */

#include <stdbool.h>
#include <stdint.h>

#include "ipam.h"
#include "store-private.h"

/* What the registrations of one write transaction share, so that a batch
 * costs a few statements however many it holds (on PostgreSQL every
 * statement is a round trip, and round trips bound a group commit): one
 * lookup per REGISTER_LOOKUP_MAX registrations (register_lookup_all()),
 * the new members' rows inserted REGISTER_INSERT_MAX at a time, the IPAM
 * settings and next host, a window of hosts known to be taken, and the
 * uses of auth keys not yet written; a re-join costs its own UPDATE.
 * register_tx_flush() writes what is pending. */
#define REGISTER_HOST_WINDOW 256

typedef struct AuthkeyUses {
        int64_t id, uses;
} AuthkeyUses;

/* A new member whose row waits for the transaction's next multi-row
 * INSERT; node is the caller's, its id and tags filled in then. */
typedef struct PendingInsert {
        StoreNode *node;
        uint64_t host;
        uint8_t token_hash[HASH_BYTES];
        char *endpoints_json;
        int64_t authkey_id;
} PendingInsert;

#define REGISTER_INSERT_MAX 64
#define REGISTER_LOOKUP_MAX 64

typedef struct RegisterTx {
        Store *store;
        int64_t now;
        PendingInsert pending[REGISTER_INSERT_MAX];
        size_t n_pending;
        bool have_ipam, next_changed;
        IpamRange range;
        int64_t next;
        bool have_window;
        uint64_t window_first;
        bool window_taken[REGISTER_HOST_WINDOW];
        AuthkeyUses *key_uses;
        size_t n_key_uses;
} RegisterTx;

/* Everything a registration is decided on, in one statement: its auth key,
 * the member that holds its public key (if any), whether that key is the
 * hub's, and whether its name is taken as it is. */
typedef struct RegisterLookup {
        int64_t authkey_id; /* 0: no such key */
        bool reusable;
        int64_t expires, used;
        int64_t member_id; /* 0: the key is no member's */
        bool expired, device, hub, name_taken;
} RegisterLookup;

void register_tx_done(RegisterTx *tx);
/* The uses of auth key id this transaction has counted so far; NULL: none. */
int64_t *register_tx_key_uses(RegisterTx *tx, int64_t id);
int register_tx_use_key(RegisterTx *tx, int64_t id);
/* The next free host from the IPAM's next one, marked taken. */
int register_tx_allocate_host(RegisterTx *tx, uint64_t *ret_host, char ipv4[static INET6_ADDRSTRLEN],
                              char ipv6[static INET6_ADDRSTRLEN]);
/* Queues node's row (node stays the caller's; its id and tags are set when
 * the row is inserted); takes endpoints_json. Inserts the queue first when
 * it is full. */
int register_tx_queue_insert(RegisterTx *tx, StoreNode *node, uint64_t host,
                             const uint8_t token_hash[static HASH_BYTES], char *endpoints_json,
                             int64_t authkey_id);
int register_tx_insert_pending(RegisterTx *tx);
int register_tx_flush(RegisterTx *tx);
/* One registration's lookup, as the database is now (pending rows
 * included only once inserted). */
int register_lookup(RegisterTx *tx, const StoreRegistration *reg, RegisterLookup *ret);
int register_lookup_all(RegisterTx *tx, const StoreRegistration *regs, size_t n, RegisterLookup *ret);
