/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The mesh DNS server (issue 14): UDP and TCP (RFC 1035 4.2.2, 2-byte
 * length framing) on a few addresses of one port, answering from
 * dns-answer.c with the name table its owner hands it, and forwarding the
 * rest to upstream resolvers. meshd serves it on the node's mesh
 * addresses, meshd-control on the hub's.
 *
 * Limits, so that no client can make it hold more than a bounded amount:
 * DNS_SERVER_TCP_MAX connections (more are closed at once), each closed
 * after DNS_SERVER_TCP_IDLE_USEC without a complete query; at most
 * DNS_SERVER_FORWARDS_MAX forwarded queries in flight (more get SERVFAIL).
 * A forwarded query leaves with a new random ID from a socket of its own
 * (a new random source port), and only a reply from the upstream it was
 * sent to with that ID counts; after DNS_SERVER_FORWARD_TIMEOUT_USEC the
 * next upstream is asked, and when none answered the client gets SERVFAIL.
 * A TCP client whose reply came truncated over UDP gets it asked again
 * over TCP from the same upstream. */

#include <systemd/sd-event.h>

#include "dns-answer.h"
#include "endpoint.h"
#include "macro.h"

#define DNS_SERVER_TCP_MAX 64
#define DNS_SERVER_TCP_IDLE_USEC (10 * USEC_PER_SEC)
#define DNS_SERVER_FORWARDS_MAX 256
#define DNS_SERVER_FORWARD_TIMEOUT_USEC (2 * USEC_PER_SEC)
#define DNS_SERVER_UPSTREAMS_MAX 3 /* as glibc's MAXNS: the rest are never asked */
#define DNS_SERVER_LISTEN_MAX 4

typedef struct DnsServer DnsServer;

/* Binds UDP and TCP on every address of listen (with IP_FREEBIND: a mesh
 * address need not be configured yet). */
int dns_server_new(sd_event *event, const union sockaddr_union *listen, size_t n_listen, DnsServer **ret);
DnsServer *dns_server_free(DnsServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(DnsServer *, dns_server_free);

/* Takes t (sealed; NULL: no names yet, everything is forwarded). */
void dns_server_set_names(DnsServer *s, DnsNameTable *t);
/* Copies servers (port 53 when a port is 0). None: forwarded queries get SERVFAIL. */
int dns_server_set_upstreams(DnsServer *s, const union sockaddr_union *servers, size_t n);

/* The upstreams in use (for tests and status), their number. */
size_t dns_server_get_upstreams(const DnsServer *s, union sockaddr_union ret[static DNS_SERVER_UPSTREAMS_MAX]);
/* Sets the upstreams from the resolv.conf(5) at path now and again
 * whenever that file changes (dns-resolv-watch.h), for the server's
 * lifetime, leaving out the server's own addresses. */
int dns_server_watch_resolv_conf(DnsServer *s, const char *path);

/* The "nameserver" lines of a resolv.conf(5), port 53, at most
 * DNS_SERVER_UPSTREAMS_MAX, leaving out those in exclude (the server's own
 * addresses: forwarding to itself would loop). A missing file gives none. */
int dns_upstreams_from_resolv_conf(const char *path, const union sockaddr_union *exclude, size_t n_exclude,
                                   union sockaddr_union **ret, size_t *ret_n);
