/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The certificate directory (STATE_DIR/certs): cert.pem, key.pem (PKCS#8),
 * ca.pem, fullchain.pem (certificate, then CA), all 0600, the directory
 * 0700. A new set is built in a new directory beside it and swapped in with
 * one rename (RENAME_EXCHANGE), so key and certificate never get out of
 * step: a reader sees the old set or the new one. (Where the file system
 * cannot exchange, the files move one by one, key last.) Beside it,
 * DIRECTORY.renewed changes with every new set. */

#include <stdint.h>

#define CERT_FILE "cert.pem"
#define CERT_KEY_FILE "key.pem"
#define CERT_CA_FILE "ca.pem"
#define CERT_FULLCHAIN_FILE "fullchain.pem"

/* A crash between building a set and swapping it in leaves the new (or the
 * old) set under a temporary name in parent: removed. */
void cert_dir_remove_stale(const char *parent);

/* Builds the set in a new directory in parent (the directory's parent, so
 * the same file system), then swaps it with directory in one rename. */
int cert_dir_store(const char *directory, const char *parent, const char *cert, const char *key,
                   const char *ca);

/* The set in directory, and when it was written (REALTIME µs, 0: unknown):
 * the files are written only when a new set comes. 0 with *ret_cert NULL
 * when there is no certificate (never asked for); an error when a file of a
 * set cannot be read. */
int cert_dir_read(const char *directory, char **ret_cert, char **ret_key, char **ret_ca,
                  uint64_t *ret_mtime_usec);

/* DIRECTORY.renewed, rewritten after every new set: what meshd-reload@.path
 * watches. Failures are logged. */
void cert_dir_write_stamp(const char *directory, const char *serial, uint64_t not_after_usec);
