/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The server's TLS identity: a key pair and a self-signed certificate made
 * once by `meshd-control init`. Clients pin the public key (the "pin":
 * sha256//BASE64 of the SHA-256 of the DER SubjectPublicKeyInfo, libcurl's
 * CURLOPT_PINNEDPUBLICKEY format), so the certificate never expires. */

#include <stddef.h>

#define TLS_KEY_FILE "tls-key.pem"
#define TLS_CERT_FILE "tls-cert.pem"

/* Writes TLS_KEY_FILE and TLS_CERT_FILE into dir (mode 0600, atomically).
 * host: DNS name or IP address, for the subject CN and subjectAltName. */
int tls_generate(const char *dir, const char *host, char **ret_pin);
int tls_pin_from_cert_pem(const char *pem, size_t len, char **ret_pin);
int tls_read_pin(const char *dir, char **ret_pin);
/* PEM texts, as MHD_OPTION_HTTPS_MEM_KEY/CERT want them. */
int tls_read_credentials(const char *dir, char **ret_key_pem, char **ret_cert_pem);
