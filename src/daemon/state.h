/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What meshd keeps in its state directory (0700):
 *   private.key   WireGuard private key, base64, 0600
 *   node.json     credentials from registration: control URL, pin, node id, name, token (0600)
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
} Credentials;

void credentials_done(Credentials *c);

/* Creates the directory (0700) if needed. */
int state_dir_prepare(const char *dir);
/* Loads private.key, creating it on first start; *ret_created tells which. */
int state_load_or_create_key(const char *dir, WgKey *ret, bool *ret_created);
/* -ENOENT when the node never joined. */
int state_load_credentials(const char *dir, Credentials *ret);
int state_save_credentials(const char *dir, const Credentials *c);
int state_load_netmap(const char *dir, char **ret_json, size_t *ret_len);
int state_save_netmap(const char *dir, const char *json, size_t len);
/* Forget the mesh (logout): credentials and netmap; the key stays. */
int state_remove_membership(const char *dir);
