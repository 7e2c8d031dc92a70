/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Running nft scripts through libnftables, shared by the control server's
 * hub firewall (src/control/hub-firewall.c) and the node's own table
 * (src/daemon/firewall.c). Each script is one buffer, hence one netlink
 * batch: the kernel applies all of it or none of it. */

#include <stddef.h>

struct nft_ctx;

/* 0 when the kernel speaks nfnetlink, else -errno (EPROTONOSUPPORT: no
 * nf_tables). libnftables exit()s the whole process when it cannot open
 * its netlink socket, so callers ask this first. */
int nftables_available(void);

/* A context with buffered output and errors; -errno (see above) when the
 * kernel has no nf_tables. Free with nft_ctx_free(). */
int nftables_open(struct nft_ctx **ret);

/* Runs script as one transaction. On failure: -errno (the errno named on
 * the first "Error:" line when it is one we know, else -EIO) and that line
 * (at most 200 characters) in error. */
int nftables_run(struct nft_ctx *nft, const char *script, char *error, size_t error_size);
