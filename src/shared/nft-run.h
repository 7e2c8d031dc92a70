/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Running nft scripts through libnftables, shared by the control server's
 * hub firewall (src/control/hub-firewall.c) and the node's own table
 * (src/daemon/firewall.c). Each script is one buffer, hence one netlink
 * batch: the kernel applies all of it or none of it.
 *
 * libnftables is loaded with dlopen() when the first context is opened
 * (and then stays): most nodes never have a table, and linking it (with
 * libnftnl, libxtables, libjansson) cost every meshd about 0.5-0.9 MB of
 * resident memory for nothing. */

#include <stddef.h>

#include "macro.h"

#define NFTABLES_SONAME "libnftables.so.1"

typedef struct Nftables Nftables;

/* 0 when the kernel speaks nfnetlink, else -errno (EPROTONOSUPPORT: no
 * nf_tables). libnftables exit()s the whole process when it cannot open
 * its netlink socket, so nftables_open() asks this first. */
int nftables_available(void);

/* A context with buffered output and errors; -ENOPKG when libnftables is
 * not installed, -errno of nftables_available() without nf_tables. */
int nftables_open(Nftables **ret);
Nftables *nftables_close(Nftables *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(Nftables *, nftables_close);

/* Runs script as one transaction. On failure: -errno (the errno named on
 * the first "Error:" line when it is one we know, else -EIO) and that line
 * (at most 200 characters) in error. */
int nftables_run(Nftables *n, const char *script, char *error, size_t error_size);
