/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Editing the hosts: line of nsswitch.conf(5) for "meshctl nss": pure text
 * in, text out, so it is tested without touching any file. */

#include <stdbool.h>

#define NSSWITCH_SERVICE "mesh"
/* What "enable" writes when there is no hosts: line (nor any service on it). */
#define NSSWITCH_HOSTS_DEFAULT "files " NSSWITCH_SERVICE " dns"

/* Adds (enable) or removes "mesh" on every hosts: line of text and stores
 * the whole new text in *ret (also when nothing changed). enable puts it
 * right after "files" and the action list that belongs to files, so that
 * files keeps its meaning; first when there is no "files"; a missing
 * hosts: line becomes "hosts: files mesh dns". disable removes "mesh" with
 * its action list. Everything else stays byte for byte. Returns 1 when the
 * text changed, 0 when not, -ENOMEM. */
int nsswitch_edit(const char *text, bool enable, char **ret);
