/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* meshctl nss enable|disable: the "mesh" service on the hosts: line of
 * nsswitch.conf, see nss-mesh(8). */

#include <stdbool.h>

#include "meshctl.h"

#define NSSWITCH_CONF_DEFAULT "/etc/nsswitch.conf"

/* Rewrites path (through symlinks) atomically when it changes: a temporary
 * file in the same directory with the same mode and owner, fsync(), rename().
 * Returns 1 when changed, 0 when it already was as asked, -errno (logged). */
int nsswitch_update_file(const char *path, bool enable);

int verb_nss(const Arguments *a, char **argv);
