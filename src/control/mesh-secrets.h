/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The mesh's secrets live in the store (settings), so every
 * `meshd-control serve` on one database is interchangeable
 * (docs/replicas.md): the hub's private key ("hub_private_key", base64),
 * the server's TLS key and certificate ("tls_pem") and the mesh CA's
 * ("ca_pem"), each key and certificate one text so that they never come
 * from two different replicas. Written with store_set_setting_once(): of
 * two replicas that create or import one at the same moment, one wins and
 * both use its value. */

#include <stdbool.h>

#include "ca.h"
#include "key.h"
#include "store.h"

#define SETTING_HUB_PRIVATE_KEY "hub_private_key"
#define SETTING_TLS_PEM "tls_pem"
#define SETTING_CA_PEM "ca_pem"
/* the file of a state directory from before the store kept the hub key */
#define HUB_KEY_FILE "hub.key"

/* init: a new mesh's hub key, TLS identity (host: for the certificate's
 * names) and CA, into the store only; the pin into ret_pin. */
int mesh_secrets_create(Store *s, const char *host, const char *domain, const char *ipv4_range,
                        const char *ipv6_range, char **ret_pin);
/* serve: what the store lacks comes from the files of an older state
 * directory (once: later starts find it in the store), or is made (the hub
 * key and the CA of a mesh older than them). A missing TLS identity is an
 * error. */
int mesh_secrets_import(Store *s, const char *state_dir);

/* -ENOENT (logged) when the store has none. */
int mesh_tls_credentials(Store *s, char **ret_key_pem, char **ret_cert_pem);
int mesh_tls_pin(Store *s, char **ret_pin);
int mesh_ca_load(Store *s, CertAuthority **ret);
/* Also records the public half as "hub_public_key", so that no node can
 * register with it. */
int mesh_hub_key_load(Store *s, WgKey *ret_private, char ret_public[static WG_KEY_B64_LEN + 1]);
