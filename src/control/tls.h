/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The server's TLS identity: a key pair and a self-signed certificate made
 * once by `meshd-control init`. Clients pin the public key (the "pin":
 * sha256//BASE64 of the SHA-256 of the DER SubjectPublicKeyInfo, libcurl's
 * CURLOPT_PINNEDPUBLICKEY format), so the certificate never expires. */

#include <stddef.h>

#define TLS_KEY_FILE "tls-key.pem"
#define TLS_CERT_FILE "tls-cert.pem"

/* A new key and self-signed certificate as one PEM text (the key first),
 * which the store keeps (setting "tls_pem"). host: DNS name or IP address,
 * for the subject CN and subjectAltName. */
int tls_generate(const char *host, char **ret_pem);
/* The files of a state directory from before the store kept them, as one
 * text like tls_generate()'s: -ENOENT when dir holds none. */
int tls_read_files(const char *dir, char **ret_pem);
/* tls_generate()'s text into the PEM texts MHD_OPTION_HTTPS_MEM_KEY/CERT
 * want (either may be NULL). */
int tls_split(const char *pem, char **ret_key_pem, char **ret_cert_pem);
int tls_pin_from_cert_pem(const char *pem, size_t len, char **ret_pin);
/* The pin of tls_generate()'s text. */
int tls_pin(const char *pem, char **ret_pin);
