/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The hub's peers follow the database the moment another process commits
 * to it (meshd-control devices add, nodes remove), instead of at the
 * server's next database poll (up to 250 ms later): a phone brought up
 * right after `devices add` sends its first handshake at once, and one
 * that finds no peer at the hub is answered only by WireGuard's retry
 * 5 s later. */

#include <systemd/sd-event.h>

#include "macro.h"

typedef struct Hub Hub;
typedef struct HubWatch HubWatch;

/* Watches the directory of db_path (SQLite writes the commit to
 * "<db>-wal") and runs hub_sync(hub) shortly after each write there; hub
 * is borrowed. */
int hub_watch_new(sd_event *event, const char *db_path, Hub *hub, HubWatch **ret);
HubWatch *hub_watch_free(HubWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(HubWatch *, hub_watch_free);
