/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The mesh DNS server's upstream resolvers follow the host's resolv.conf
 * as it changes (a new network, a VPN, NetworkManager or resolvconf
 * rewriting it), not only when the netmap does. resolv.conf is usually
 * replaced by a rename, often through a symlink (/etc/resolv.conf →
 * /run/…/resolv.conf), so the directories of the path and of its target
 * are watched (inotify), not the file. */

#include <systemd/sd-event.h>

#include "dns-server.h"
#include "macro.h"

typedef struct DnsResolvWatch DnsResolvWatch;

/* Sets server's upstreams from path (dns_upstreams_from_resolv_conf(),
 * leaving out exclude: the server's own addresses) now and after every
 * change of the file. server and exclude are borrowed (exclude only
 * during the call: it is copied). A directory that cannot be watched is
 * logged and the file read once. */
int dns_resolv_watch_new(sd_event *event, DnsServer *server, const char *path,
                         const union sockaddr_union *exclude, size_t n_exclude, DnsResolvWatch **ret);
DnsResolvWatch *dns_resolv_watch_free(DnsResolvWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(DnsResolvWatch *, dns_resolv_watch_free);
