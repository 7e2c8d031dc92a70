/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What meshd keeps in its state directory (0700):
 *   private.key   WireGuard private key, base64, 0600
 *   node.json     credentials from registration: control URL, pin, node id, name, token,
 *                 and the pins of what was accepted at join: domain, ranges, CA (0600)
 *   netmap.json   the last netmap applied, exactly as the server sent it (0600)
 * Every file is replaced atomically, so a crash never leaves half a file. */

#include <stdint.h>

#include "key.h"
#include "macro.h"

typedef struct Credentials {
        char *control_url;
        char *control_pin;
        uint64_t node_id;
        char *name;
        char *token;
        /* Pinned at join (older node.json files have none: the first netmap
         * applied after the upgrade sets them). domain != NULL means pinned;
         * ipv6_range NULL then means "no IPv6", ca_sha256 NULL "not fetched yet". */
        char *domain;
        char *ipv4_range; /* "100.64.0.0/10" */
        char *ipv6_range;
        char *ca_sha256; /* hex SHA-256 of the mesh CA's DER */
} Credentials;

void credentials_done(Credentials *c);

/* Creates the directory (0700) if needed. */
int state_dir_prepare(const char *dir);
/* Loads private.key, creating it on first start; *ret_created tells which. */
int state_load_or_create_key(const char *dir, WgKey *ret, bool *ret_created);
/* -ENOENT when the node never joined, -EBADMSG when node.json is not
 * valid JSON or lacks a field (logged, see state_set_aside_credentials()). */
int state_load_credentials(const char *dir, Credentials *ret);
/* Renames a corrupt node.json to node.json.corrupt (replacing an older one)
 * and removes the cached netmap with it; the key stays. */
int state_set_aside_credentials(const char *dir);
int state_save_credentials(const char *dir, const Credentials *c);
int state_load_netmap(const char *dir, char **ret_json, size_t *ret_len);
int state_save_netmap(const char *dir, const char *json, size_t len);
/* Forget the mesh (logout): credentials and netmap; the key stays. */
int state_remove_membership(const char *dir);
