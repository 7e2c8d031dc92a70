/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Joining (docs/protocol.md, "Joining"), the messages of both sides:
 *   POST /v1/challenge   reply {"challenge", "server_key", "expires"}
 *   POST /v1/register    {"authkey", "public_key", "hostname", "challenge",
 *                         "proof", "endpoints", "netmap_scope"}
 *                        reply {"node_id", "name", "token", "netmap", "netmap_scope"}
 * The register reply embeds the netmap as the control server rendered it:
 * the whole of it, or with "netmap_scope": "self" (asked for by the node,
 * confirmed by the server) without peers and devices, which the node's
 * first long-poll brings. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "key.h"
#include "netmap.h"

struct cJSON;

#define REGISTER_AUTHKEY_MAX 256
#define REGISTER_HOSTNAME_MAX 253

/* The reply of POST /v1/challenge. */
int challenge_reply_render(const char *challenge, const WgKey *server_key, int64_t expires, char **ret);
/* -EBADMSG unless body has a string "challenge" and a valid "server_key";
 * *ret_challenge is a copy. */
int challenge_reply_parse(const char *body, size_t len, char **ret_challenge, WgKey *ret_server_key);

/* POST /v1/register */
typedef struct RegisterRequest {
        const char *authkey;
        const char *public_key; /* base64 WireGuard key, not all-zero */
        const char *hostname;   /* not yet a DNS label */
        char **endpoints;       /* owned strv, canonical (msg-endpoints.h) */
        const char *challenge;  /* NULL when missing: checked by the server */
        const char *proof;      /* NULL when missing */
        bool netmap_self;       /* "netmap_scope": "self" */
} RegisterRequest;

/* The body; the tree that held the auth key is wiped before it is freed. */
int register_request_render(const RegisterRequest *req, char **ret);

/* String results point into body, which must outlive them. On -EINVAL,
 * error holds a one-line message naming the field at fault; -ENOMEM is the
 * only other error. Unknown fields are ignored. */
void register_request_done(RegisterRequest *r);
int register_request_parse(const struct cJSON *body, RegisterRequest *ret, char *error, size_t error_size);

/* The reply of POST /v1/register; netmap: the node's netmap, JSON text. */
typedef struct RegisterReplyFields {
        int64_t node_id;
        const char *name;
        const char *token;
        const char *netmap;
        bool netmap_self; /* netmap has no peers: "netmap_scope": "self" */
} RegisterReplyFields;

int register_reply_render(const RegisterReplyFields *f, char **ret);

/* Reply of POST /v1/register, validated as a whole before anything is stored. */
typedef struct RegisterReply {
        uint64_t node_id;
        char *token;
        Netmap *netmap;    /* its self is this node */
        char *netmap_json; /* the "netmap" object as sent, unformatted (for the cache); NULL: out of memory */
        bool netmap_self;  /* "netmap_scope": "self": no peers in it, the first long-poll has them */
} RegisterReply;

int register_reply_parse(const char *json, size_t len, RegisterReply *ret, char **ret_error);
void register_reply_done(RegisterReply *r);
