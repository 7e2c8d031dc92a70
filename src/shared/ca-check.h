/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Whether a mesh CA is one a node (meshd) and the system trust store
 * (meshctl trust install) may trust: a CA that can only vouch for the mesh.
 * Links GnuTLS; in its own library so that only meshd and meshctl pull it in. */

#define CA_SHA256_HEX_LEN 64

/* Lowercase hex SHA-256 of the certificate's DER; buf of CA_SHA256_HEX_LEN + 1. */
int ca_fingerprint_sha256(const char *pem, char *buf);

/* The certificate parses, is CA:TRUE, and has CRITICAL name constraints
 * whose permitted subtrees are exactly the DNS name `domain`, the IP range
 * ipv4_range and (when not NULL) ipv6_range, nothing else. -EBADMSG with
 * one line in *ret_error otherwise. */
int ca_check_constraints(const char *pem, const char *domain, const char *ipv4_range, const char *ipv6_range,
                         char **ret_error);
