/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The mesh DNS server's registration with systemd-resolved (issue 14):
 * on the mesh interface, SetLinkDNS (the node's own mesh addresses, where
 * manager-dns.c serves), SetLinkDomains (the routing-only ~DOMAIN),
 * SetLinkDefaultRoute=false and SetLinkDNSSEC=no (the mesh zone is
 * unsigned and private); RevertLink when it is withdrawn. /etc/resolv.conf
 * is never written.
 *
 * One object owns the system bus connection (DBUS_SYSTEM_BUS_ADDRESS is
 * honoured), the NameOwnerChanged match for org.freedesktop.resolve1 and the
 * wanted registration. Every call is asynchronous and never auto-starts
 * resolved; the registration is sent again whenever resolved (re)appears
 * on the bus. Without a system bus or without resolved, nothing is sent
 * and one line is logged; errors are logged once per registration and not
 * retried (a resolved that restarts gets it again). */

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "endpoint.h"
#include "macro.h"

typedef struct ResolvedLink ResolvedLink;

/* Never fails for want of a bus or of resolved (then the object only
 * remembers); only -ENOMEM. */
int resolved_link_new(sd_event *event, ResolvedLink **ret);
ResolvedLink *resolved_link_free(ResolvedLink *l);

/* The wanted registration: DNS servers (address and port) for ifindex,
 * routing domain `domain`. Sent when it differs from the last one sent,
 * now if resolved is on the bus, else once it appears. */
int resolved_link_set(ResolvedLink *l, int ifindex, const char *domain, const union sockaddr_union *servers,
                      size_t n_servers);
/* Withdraws it: RevertLink, asynchronous. */
void resolved_link_clear(ResolvedLink *l);
/* At shutdown: RevertLink and wait for the answer at most
 * RESOLVED_LINK_REVERT_USEC, so that resolved checks a caller that is still
 * connected. Done by itself when the event loop exits (before sd-bus
 * closes the connection there); for a meshd that stops without having run
 * its loop. */
#define RESOLVED_LINK_REVERT_USEC (2 * USEC_PER_SEC)
void resolved_link_revert_now(ResolvedLink *l);
