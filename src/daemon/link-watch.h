/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Tells when the underlay may have changed: any address, route or link
 * event from rtnetlink, debounced, so a burst (DHCP renew, a veth moving
 * to another router) becomes one callback. The message content does not
 * matter: the handler re-reads what it needs. */

#include <systemd/sd-event.h>

#include "macro.h"

typedef struct LinkWatch LinkWatch;
typedef void (*LinkWatchHandler)(LinkWatch *w, void *userdata);

#define LINK_WATCH_DEBOUNCE_USEC (300 * USEC_PER_MSEC)

int link_watch_new(sd_event *event, LinkWatchHandler handler, void *userdata, LinkWatch **ret);
/* Events about this interface (our own tunnel, whose addresses and routes
 * we set ourselves) say nothing about the underlay: ignore them. */
void link_watch_ignore_ifindex(LinkWatch *w, int ifindex);
LinkWatch *link_watch_free(LinkWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(LinkWatch *, link_watch_free);
