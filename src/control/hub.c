/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "fileio.h"
#include "hub-policy.h"
#include "hub-watch.h"
#include "hub.h"
#include "link.h"
#include "log.h"
#include "probe-packet.h"

#define HUB_POLL_USEC (1 * USEC_PER_SEC)
#define HUB_POLL_ACCURACY_USEC (50 * USEC_PER_MSEC)
/* after a relayed handshake: long enough for the hub to have processed it */
#define HUB_READ_SOON_USEC (100 * USEC_PER_MSEC)

typedef struct HubMember {
        WgKey key;
        int64_t id;
        union in_addr_union ipv4, ipv6;
        bool has_ipv6;
        union sockaddr_union endpoint; /* as we last stored it; AF_UNSPEC: none yet */
} HubMember;

struct Hub {
        sd_event *event;
        Store *store;
        WgBackend *wg;
        char ifname[16];
        bool keep_interface;
        IpamRange range;
        struct in_addr hub_ipv4;
        struct in6_addr hub_ipv6;
        HubFirewall *firewall; /* NULL with --no-hub-firewall */

        HubMember *members; /* ordered by key */
        size_t n_members;
        uint64_t members_version;
        bool synced;

        sd_event_source *poll_source, *child_source;
        HubWatch *watch;
        sd_event_source *probe_sources[2];
        int probe_fds[2];

        HubChangedHandler on_changed;
        void *userdata;

        /* the TLS relay looks at every read of the peers */
        HubPeersHandler on_peers;
        void *peers_userdata;
        sd_event_source *read_soon;
};

static int compare_members(const void *a, const void *b) {
        return memcmp(((const HubMember *) a)->key.data, ((const HubMember *) b)->key.data, WG_KEY_LEN);
}

static HubMember *hub_find_member(Hub *h, const WgKey *key) {
        HubMember needle = { .key = *key };
        return bsearch(&needle, h->members, h->n_members, sizeof(HubMember), compare_members);
}

/* Nodes and devices alike: each is a peer of the hub with only its own
 * addresses as allowed IPs (WireGuard's cryptokey routing then drops what
 * a peer sends from any other source), and a member for the firewall. */
static size_t hub_members_from_rows(const StoreNode *rows, size_t n, HubMember *members) {
        size_t k = 0;
        int family;

        for (size_t i = 0; i < n; i++) {
                HubMember *m = &members[k];

                /* the store validated all of this at registration; a row
                 * that does not parse is skipped, not fatal */
                if (key_from_base64(rows[i].public_key, &m->key) < 0 ||
                    in_addr_parse(rows[i].ipv4, &family, &m->ipv4) < 0 || family != AF_INET) {
                        log_warning("%s %s has an unusable key or address, not adding it to the hub.",
                                    rows[i].device ? "Device" : "Node", rows[i].name);
                        continue;
                }
                m->has_ipv6 = in_addr_parse(rows[i].ipv6, &family, &m->ipv6) >= 0 && family == AF_INET6;
                m->id = rows[i].id;
                if (rows[i].observed_endpoint)
                        (void) endpoint_parse(rows[i].observed_endpoint, &m->endpoint);
                k++;
        }
        return k;
}

static int hub_load_members(Hub *h, HubMember **ret, size_t *ret_n) {
        StoreNode *nodes = NULL, *devices = NULL;
        _cleanup_free_ HubMember *members = NULL;
        size_t n = 0, n_devices = 0, k;
        int r;

        r = store_list_nodes(h->store, false, &nodes, &n);
        if (r < 0)
                return r;
        r = store_list_devices(h->store, false, &devices, &n_devices);
        if (r < 0) {
                store_nodes_free(nodes, n);
                return r;
        }
        members = calloc(MAX(n + n_devices, (size_t) 1), sizeof(HubMember));
        if (!members) {
                store_nodes_free(nodes, n);
                store_nodes_free(devices, n_devices);
                return log_oom();
        }
        k = hub_members_from_rows(nodes, n, members);
        k += hub_members_from_rows(devices, n_devices, members + k);
        store_nodes_free(nodes, n);
        store_nodes_free(devices, n_devices);

        qsort(members, k, sizeof(HubMember), compare_members);
        *ret = TAKE_PTR(members);
        *ret_n = k;
        return 0;
}

static int hub_add_peer(WgDevice *d, const HubMember *m) {
        WgPeer *p;
        int r;

        r = wg_device_add_peer(d, &p);
        if (r < 0)
                return r;
        p->public_key = m->key;
        p->flags = WG_PEER_REPLACE_ALLOWED_IPS;
        r = wg_peer_add_allowed_ip(p, AF_INET, &m->ipv4, 32);
        if (r >= 0 && m->has_ipv6)
                r = wg_peer_add_allowed_ip(p, AF_INET6, &m->ipv6, 128);
        return r;
}

/* The firewall's member sets: the same addresses as the peers' allowed IPs. */
static int hub_member_addresses(const HubMember *members, size_t n, HubFirewallMembers *ret) {
        HubFirewallMembers m = {
                .ipv4 = calloc(MAX(n, (size_t) 1), sizeof(struct in_addr)),
                .ipv6 = calloc(MAX(n, (size_t) 1), sizeof(struct in6_addr)),
        };

        if (!m.ipv4 || !m.ipv6) {
                hub_firewall_members_done(&m);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                m.ipv4[m.n_ipv4++] = members[i].ipv4.in;
                if (members[i].has_ipv6)
                        m.ipv6[m.n_ipv6++] = members[i].ipv6.in6;
        }
        *ret = m;
        return 0;
}

static int hub_firewall_sync(Hub *h, const HubMember *members, size_t n) {
        HubFirewallMembers m;
        int r;

        if (!h->firewall)
                return 0;
        r = hub_member_addresses(members, n, &m);
        if (r < 0)
                return log_oom();
        return hub_firewall_update(h->firewall, &m);
}

static bool hub_member_same(const HubMember *a, const HubMember *b) {
        return a->id == b->id && memcmp(&a->ipv4, &b->ipv4, sizeof(a->ipv4)) == 0 &&
               a->has_ipv6 == b->has_ipv6 && memcmp(&a->ipv6, &b->ipv6, sizeof(a->ipv6)) == 0;
}

/* Both lists ordered by key: one merge pass gives the removed, added and
 * changed members, and only those reach the device. */
static int hub_diff(const HubMember *old, size_t n_old, HubMember *new, size_t n_new, WgDevice *d) {
        size_t i = 0, j = 0;
        int r;

        while (i < n_old || j < n_new) {
                int c = i == n_old ? 1 : j == n_new ? -1 : compare_members(&old[i], &new[j]);

                if (c < 0) {
                        WgPeer *p;
                        r = wg_device_add_peer(d, &p);
                        if (r < 0)
                                return r;
                        p->public_key = old[i].key;
                        p->flags = WG_PEER_REMOVE_ME;
                        i++;
                } else if (c > 0) {
                        r = hub_add_peer(d, &new[j]);
                        if (r < 0)
                                return r;
                        j++;
                } else {
                        if (!hub_member_same(&old[i], &new[j])) {
                                r = hub_add_peer(d, &new[j]);
                                if (r < 0)
                                        return r;
                        } else
                                new[j].endpoint = old[i].endpoint;
                        i++;
                        j++;
                }
        }
        return 0;
}

int hub_sync(Hub *h) {
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        _cleanup_free_ HubMember *members = NULL;
        size_t n = 0;
        uint64_t v;
        int r;

        r = store_get_members_version(h->store, &v);
        if (r < 0)
                return r;
        if (h->synced && v == h->members_version && !hub_firewall_pending(h->firewall))
                return 0;

        r = hub_load_members(h, &members, &n);
        if (r < 0)
                return r;
        d = calloc(1, sizeof(*d));
        if (!d)
                return log_oom();
        r = hub_diff(h->members, h->n_members, members, n, d);
        if (r < 0)
                return log_oom();
        if (d->n_peers > 0) {
                r = wg_set_device(h->wg, d);
                if (r < 0)
                        return log_error_errno(r, "Failed to update the peers of hub %s: %m", h->ifname);
        }
        log_debug("Hub %s: %zu member(s), %zu peer change(s).", h->ifname, n, d->n_peers);
        /* after the peers: a removed member can send nothing any more while
         * its addresses leave the sets; a failure is retried by the poll */
        (void) hub_firewall_sync(h, members, n);
        /* a policy change bumps the members' version too (store-policy.c) */
        if (h->firewall)
                (void) hub_policy_sync(h->firewall, h->store, h->ifname);

        free(h->members);
        h->members = TAKE_PTR(members);
        h->n_members = n;
        h->members_version = v;
        h->synced = true;
        return 0;
}

/* ---- observed endpoints ---- */

static int hub_read_endpoints(Hub *h) {
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        _cleanup_free_ StoreObservation *observations = NULL;
        _cleanup_free_ char *texts = NULL;
        _cleanup_free_ HubMember **changed = NULL;
        size_t n = 0;
        int r;

        r = wg_get_device(h->wg, &d);
        if (r < 0)
                return log_warning_errno(r, "Failed to read hub %s: %m", h->ifname);
        if (h->on_peers)
                h->on_peers(h, d, h->peers_userdata);

        for (size_t i = 0; i < d->n_peers; i++) {
                const WgPeer *p = &d->peers[i];
                HubMember *m;

                /* AF_UNSPEC: not seen yet. Loopback: a TLS relay stream's
                 * socket on this host, which means nothing to peers; and a
                 * stranger's socket must never become what the mesh sends
                 * handshakes to (docs/protocol.md). */
                if (p->endpoint.sa.sa_family == AF_UNSPEC || !endpoint_is_announceable(&p->endpoint, NULL, 0))
                        continue;
                m = hub_find_member(h, &p->public_key);
                if (!m || endpoint_equal(&m->endpoint, &p->endpoint))
                        continue;
                if (!observations) {
                        observations = calloc(d->n_peers, sizeof(StoreObservation));
                        texts = calloc(d->n_peers, ENDPOINT_STRLEN);
                        changed = calloc(d->n_peers, sizeof(HubMember *));
                        if (!observations || !texts || !changed)
                                return log_oom();
                }
                if (!endpoint_format(&p->endpoint, texts + n * ENDPOINT_STRLEN, ENDPOINT_STRLEN))
                        continue;
                observations[n] = (StoreObservation) { .id = m->id, .endpoint = texts + n * ENDPOINT_STRLEN };
                changed[n] = m;
                m->endpoint = p->endpoint;
                n++;
        }
        if (n == 0)
                return 0;

        r = store_set_observed_endpoints(h->store, observations, n);
        if (r < 0) {
                /* busy or failing: forget what we noted, the next round tries again */
                for (size_t i = 0; i < n; i++)
                        changed[i]->endpoint.sa.sa_family = AF_UNSPEC;
                return log_warning_errno(r, "Failed to store observed endpoints: %m");
        }
        for (size_t i = 0; i < n; i++)
                log_debug("Hub %s: node %" PRId64 " seen at %s.", h->ifname, observations[i].id,
                          observations[i].endpoint);
        if (r > 0 && h->on_changed)
                h->on_changed(h, h->userdata);
        return 0;
}

static int on_read_soon(sd_event_source *source, uint64_t usec, void *userdata) {
        (void) hub_read_endpoints(userdata);
        return 0;
}

void hub_set_peers_handler(Hub *h, HubPeersHandler handler, void *userdata) {
        h->on_peers = handler;
        h->peers_userdata = userdata;
}

int hub_read_soon(Hub *h) {
        int enabled = SD_EVENT_OFF, r;

        if (h->read_soon) {
                (void) sd_event_source_get_enabled(h->read_soon, &enabled);
                if (enabled != SD_EVENT_OFF)
                        return 0; /* one read serves every request until then */
                r = sd_event_source_set_time_relative(h->read_soon, HUB_READ_SOON_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(h->read_soon, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(h->event, &h->read_soon, CLOCK_MONOTONIC, HUB_READ_SOON_USEC,
                                               10 * USEC_PER_MSEC, on_read_soon, h);
        if (r < 0)
                return log_warning_errno(r, "Failed to schedule a read of hub %s: %m", h->ifname);
        return 0;
}

bool hub_has_member(Hub *h, const WgKey *key, int64_t id) {
        const HubMember *m = hub_find_member(h, key);
        return m && m->id == id;
}

int hub_restore_endpoint(Hub *h, const WgKey *key, union sockaddr_union *endpoint) {
        _cleanup_(wg_device_freep) WgDevice *d = calloc(1, sizeof(WgDevice));
        const HubMember *m = hub_find_member(h, key);
        WgPeer *p;
        int r;

        if (!d)
                return -ENOMEM;
        if (!m)
                return -ENOENT;
        if (endpoint->sa.sa_family == AF_UNSPEC)
                *endpoint = m->endpoint; /* only ever an announceable one, see hub_read_endpoints() */
        if (endpoint->sa.sa_family != AF_UNSPEC) {
                r = wg_device_add_peer(d, &p);
                if (r < 0)
                        return r;
                p->public_key = m->key;
                p->flags = WG_PEER_UPDATE_ONLY | WG_PEER_HAS_ENDPOINT;
                p->endpoint = *endpoint;
        } else {
                /* never seen outside the relay: WireGuard cannot unset an
                 * endpoint, so the peer goes and comes back without one */
                r = wg_device_add_peer(d, &p);
                if (r < 0)
                        return r;
                p->public_key = m->key;
                p->flags = WG_PEER_REMOVE_ME;
                r = hub_add_peer(d, m);
                if (r < 0)
                        return r;
        }
        r = wg_set_device(h->wg, d);
        if (r < 0)
                return log_warning_errno(r, "Failed to put back a peer's endpoint on hub %s: %m", h->ifname);
        return 0;
}

static int on_hub_poll(sd_event_source *source, uint64_t usec, void *userdata) {
        Hub *h = userdata;
        int r;

        /* a sync that failed (device busy, database locked) is retried here */
        (void) hub_sync(h);
        (void) hub_read_endpoints(h);

        r = sd_event_source_set_time_relative(source, HUB_POLL_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
        if (r < 0)
                return log_error_errno(r, "Failed to re-arm hub poll: %m");
        return 0;
}

static int on_child_exit(sd_event_source *source, const siginfo_t *si, void *userdata) {
        Hub *h = userdata;

        h->child_source = sd_event_source_disable_unref(h->child_source);
        log_error("wireguard-go for hub %s exited (status %i); the hub is gone, exiting.", h->ifname,
                  si->si_status);
        return sd_event_exit(h->event, -ECHILD);
}

/* ---- probes ---- */

static int on_probe(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Hub *h = userdata;

        for (int i = 0; i < 64; i++) {
                union sockaddr_union from = {};
                socklen_t fromlen = sizeof(from);
                union in_addr_union addr = {};
                uint8_t buf[64];
                ProbePacket pkt;
                ssize_t n;

                n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, &from.sa, &fromlen);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_debug_errno(errno, "Failed to receive probe: %m");
                        return 0;
                }
                if (probe_packet_decode(buf, (size_t) n, &pkt) < 0 || pkt.type != PROBE_REQUEST)
                        continue;
                if (from.sa.sa_family == AF_INET)
                        addr.in = from.in.sin_addr;
                else if (from.sa.sa_family == AF_INET6)
                        addr.in6 = from.in6.sin6_addr;
                /* only the mesh may probe: never a reflector for the underlay */
                if (!ipam_range_contains(&h->range, from.sa.sa_family, &addr))
                        continue;

                pkt.type = PROBE_REPLY;
                probe_packet_encode(&pkt, buf);
                if (sendto(fd, buf, PROBE_PACKET_SIZE, MSG_DONTWAIT, &from.sa, fromlen) < 0)
                        log_debug_errno(errno, "Failed to answer probe: %m");
        }
        return 0;
}

static int hub_open_probe_socket(Hub *h, int family, const union in_addr_union *addr, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        union sockaddr_union sa = {};
        int one = 1;

        fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
                return -errno;
        /* a meshd on this host binds [::]:41642 with SO_REUSEADDR too */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) < 0)
                return -errno;
        if (family == AF_INET) {
                sa.in = (struct sockaddr_in) { .sin_family = AF_INET,
                                               .sin_port = htons(PROBE_PORT),
                                               .sin_addr = addr->in };
        } else
                sa.in6 = (struct sockaddr_in6) { .sin6_family = AF_INET6,
                                                 .sin6_port = htons(PROBE_PORT),
                                                 .sin6_addr = addr->in6 };
        if (bind(fd, &sa.sa, endpoint_socklen(&sa)) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* ---- set-up ---- */

static int write_sysctl(const char *path, const char *value) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        return write_all(fd, value, strlen(value));
}

/* IPv6's forwarding switch is host-wide (all.forwarding, which also turns
 * off router advertisement acceptance on every interface), so only on
 * request. Linux 6.17+ has force_forwarding: IPv6 arriving on the hub alone
 * is forwarded, like IPv4 in hub_setup_link(); the hub firewall keeps it between members
 * (so not without the firewall). Devices get an IPv6 address either way:
 * "hub_ipv6_relay" tells `devices add` whether it works. */
static int hub_setup_ipv6_forwarding(Hub *h, const HubOptions *opts) {
        bool force = !opts->no_firewall, relay = false;
        char path[128];
        int r;

        /* also "0": an adopted interface may have it from a run with the firewall */
        (void) snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/force_forwarding", h->ifname);
        r = write_sysctl(path, force ? "1" : "0");
        if (r >= 0)
                relay = force;
        else if (force && !opts->ipv6_forwarding)
                log_notice_errno(r,
                                 "The kernel cannot forward IPv6 on %s alone (%s: %m): the hub relays IPv4 "
                                 "only, see --hub-ipv6-forwarding.",
                                 h->ifname, path);
        if (opts->ipv6_forwarding) {
                r = write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1");
                if (r < 0)
                        return log_error_errno(r, "Failed to enable IPv6 forwarding: %m");
                relay = true;
        }
        r = store_set_setting(h->store, "hub_ipv6_relay", relay ? "1" : "0");
        if (r < 0)
                log_warning_errno(r, "Failed to record whether the hub relays IPv6: %m");
        return 0;
}

static int hub_setup_link(Hub *h, const HubOptions *opts) {
        union in_addr_union a4 = { .in = h->hub_ipv4 }, a6 = { .in6 = h->hub_ipv6 };
        char path[128];
        int ifindex, r;

        ifindex = wg_backend_get_ifindex(h->wg);
        r = link_address_add(ifindex, AF_INET, &a4, h->range.ipv4_prefixlen);
        if (r < 0)
                return log_error_errno(r, "Failed to add the hub address to %s: %m", h->ifname);
        (void) link_address_flush_except(ifindex, AF_INET, &a4, h->range.ipv4_prefixlen);
        r = link_address_add(ifindex, AF_INET6, &a6, h->range.ipv6_prefixlen);
        if (r < 0)
                return log_error_errno(r, "Failed to add the hub IPv6 address to %s: %m", h->ifname);
        (void) link_address_flush_except(ifindex, AF_INET6, &a6, h->range.ipv6_prefixlen);
        r = link_set_up(ifindex, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to bring up %s: %m", h->ifname);

        /* IPv4 forwarding is decided by the interface a packet came in on:
         * relayed traffic enters and leaves through the hub, so enabling it
         * there alone changes nothing else on this host. */
        (void) snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/forwarding", h->ifname);
        r = write_sysctl(path, "1");
        if (r < 0)
                return log_error_errno(r, "Failed to enable IPv4 forwarding on %s (%s): %m", h->ifname, path);
        r = hub_setup_ipv6_forwarding(h, opts);
        if (r < 0)
                return r;

        for (int i = 0; i < 2; i++) {
                int family = i == 0 ? AF_INET : AF_INET6;

                r = hub_open_probe_socket(h, family, i == 0 ? &a4 : &a6, &h->probe_fds[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to open the hub's probe socket (%s port %u): %m",
                                               family == AF_INET ? "IPv4" : "IPv6", PROBE_PORT);
                r = sd_event_add_io(h->event, &h->probe_sources[i], h->probe_fds[i], EPOLLIN, on_probe, h);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch the probe socket: %m");
        }
        return 0;
}

/* Before the interface has peers (or, adopted, gets ours): from the first
 * relayed packet on, the hub forwards only between members. */
static int hub_setup_firewall(Hub *h, const HubOptions *opts, const HubMember *members, size_t n) {
        HubFirewallConfig c = {
                .ifname = h->ifname,
                .hub_ipv4 = h->hub_ipv4,
                .hub_ipv6 = h->hub_ipv6,
                .listen_port = opts->listen_port,
                .allow = opts->allow,
                .n_allow = opts->n_allow,
        };
        HubFirewallMembers m;
        int r;

        if (opts->no_firewall) {
                (void) hub_firewall_remove_stale(h->ifname);
                log_warning("Hub %s runs without its firewall (--no-hub-firewall): any node can reach this "
                            "host's services and, with forwarding on, its networks through the hub.",
                            h->ifname);
                return 0;
        }
        r = hub_member_addresses(members, n, &m);
        if (r < 0)
                return log_oom();
        r = hub_firewall_new(&c, &m, &h->firewall);
        hub_firewall_members_done(&m);
        return r;
}

/* Key, port and every member at once: REPLACE_PEERS drops whatever an
 * adopted interface had. */
static int hub_setup_device(Hub *h, const HubOptions *opts) {
        _cleanup_(wg_device_freep) WgDevice *d = calloc(1, sizeof(WgDevice));
        _cleanup_free_ HubMember *members = NULL;
        uint64_t v;
        size_t n;
        int r;

        if (!d)
                return log_oom();
        r = store_get_members_version(h->store, &v);
        if (r < 0)
                return r;
        r = hub_load_members(h, &members, &n);
        if (r < 0)
                return r;
        r = hub_setup_firewall(h, opts, members, n);
        if (r < 0)
                return r;
        if (h->firewall)
                (void) hub_policy_sync(h->firewall, h->store, h->ifname);

        d->flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT | WG_DEVICE_REPLACE_PEERS;
        d->private_key = opts->private_key;
        d->listen_port = opts->listen_port;
        for (size_t i = 0; i < n; i++) {
                r = hub_add_peer(d, &members[i]);
                if (r < 0)
                        return log_oom();
                /* stored observations are history: the device has seen nothing yet */
                members[i].endpoint = (union sockaddr_union) {};
        }
        r = wg_set_device(h->wg, d);
        explicit_bzero(&d->private_key, sizeof(d->private_key));
        if (r < 0)
                return log_error_errno(r, "Failed to configure hub %s: %m", h->ifname);

        h->members = TAKE_PTR(members);
        h->n_members = n;
        h->members_version = v;
        h->synced = true;
        return 0;
}

/* The mesh's ranges from the database, and the hub's own addresses in them. */
static int hub_load_ranges(Hub *h, Store *store) {
        _cleanup_free_ char *v4 = NULL, *v6 = NULL;
        int r;

        r = store_get_setting(store, "ipv4_range", &v4);
        if (r >= 0)
                r = store_get_setting(store, "ipv6_range", &v6);
        if (r < 0)
                return log_error_errno(r, "Database has no mesh ranges: %m");
        r = ipam_range_parse(v4, v6, &h->range);
        if (r < 0)
                return log_error_errno(r, "Invalid mesh ranges '%s', '%s': %m", v4, v6);
        r = ipam_host_ipv4(&h->range, IPAM_HOST_HUB, &h->hub_ipv4);
        if (r >= 0)
                r = ipam_host_ipv6(&h->range, IPAM_HOST_HUB, &h->hub_ipv6);
        if (r < 0)
                return log_error_errno(r, "Mesh ranges have no hub address: %m");
        return 0;
}

/* Whether the hub's nftables table can be installed at all. */
static int hub_check_firewall(const char *ifname) {
        char table[HUB_FIREWALL_TABLE_MAX];
        int r;

        if (hub_firewall_table_name(ifname, table) < 0)
                return log_error_errno(-EINVAL,
                                       "Hub interface name '%s' cannot be used in nftables "
                                       "rules (letters, digits, '_', '-', '.' only).",
                                       ifname);
        r = hub_firewall_available();
        if (r < 0)
                return log_error_errno(r,
                                       "Failed to install the hub firewall (nftables table inet %s): "
                                       "no nftables (%m); without it a node can reach this host and "
                                       "its networks through the hub (--no-hub-firewall runs "
                                       "without it anyway).",
                                       table);
        return 0;
}

int hub_new(sd_event *event, Store *store, const HubOptions *opts, HubChangedHandler on_changed, void *userdata,
            Hub **ret) {
        _cleanup_(hub_freep) Hub *h = NULL;
        WgBackendOptions wg_opts = {
                .type = opts->backend,
                .ifname = opts->ifname,
                .userspace_command = getenv("MESHD_WIREGUARD_GO"),
        };
        bool created = false;
        pid_t child;
        int r;

        h = calloc(1, sizeof(*h));
        if (!h)
                return log_oom();
        h->event = sd_event_ref(event);
        h->store = store;
        h->probe_fds[0] = h->probe_fds[1] = -EBADF;
        h->keep_interface = opts->keep_interface;
        h->on_changed = on_changed;
        h->userdata = userdata;
        (void) snprintf(h->ifname, sizeof(h->ifname), "%s", opts->ifname);

        r = hub_load_ranges(h, store);
        if (r < 0)
                return r;
        /* before anything exists: nothing to undo */
        if (!opts->no_firewall) {
                r = hub_check_firewall(opts->ifname);
                if (r < 0)
                        return r;
        }
        r = wg_backend_open(&wg_opts, &h->wg, &created);
        if (r < 0)
                return log_error_errno(r, "Failed to set up hub interface %s (%s backend): %m", opts->ifname,
                                       wg_backend_type_to_string(opts->backend));
        child = wg_backend_get_child_pid(h->wg);
        if (child > 0) {
                r = sd_event_add_child(event, &h->child_source, child, WEXITED, on_child_exit, h);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch wireguard-go: %m");
        }

        r = hub_setup_device(h, opts);
        if (r < 0)
                return r;
        r = hub_setup_link(h, opts);
        if (r < 0)
                return r;

        r = sd_event_add_time_relative(event, &h->poll_source, CLOCK_MONOTONIC, HUB_POLL_USEC,
                                       HUB_POLL_ACCURACY_USEC, on_hub_poll, h);
        if (r < 0)
                return log_error_errno(r, "Failed to add hub poll: %m");
        if (opts->database) {
                r = hub_watch_new(event, opts->database, h, &h->watch);
                if (r < 0)
                        return r;
        }

        log_info("%s hub %s (%s backend), port %u, %zu peer(s).", created ? "Created" : "Adopted", h->ifname,
                 wg_backend_type_to_string(wg_backend_get_type(h->wg)), opts->listen_port, h->n_members);
        *ret = TAKE_PTR(h);
        return 0;
}

Hub *hub_free(Hub *h) {
        if (!h)
                return NULL;
        for (int i = 0; i < 2; i++) {
                sd_event_source_disable_unref(h->probe_sources[i]);
                safe_close(h->probe_fds[i]);
        }
        sd_event_source_disable_unref(h->poll_source);
        sd_event_source_disable_unref(h->read_soon);
        hub_watch_free(h->watch);
        /* before destroying: wg_backend_destroy() reaps the child itself */
        sd_event_source_disable_unref(h->child_source);
        if (h->wg) {
                if (!h->keep_interface) {
                        int r = wg_backend_destroy(h->wg);
                        if (r < 0)
                                log_warning_errno(r, "Failed to remove hub interface %s: %m", h->ifname);
                        else
                                log_info("Removed hub interface %s.", h->ifname);
                }
                wg_backend_free(h->wg);
        }
        /* after the interface: never an interface without its firewall */
        if (h->firewall && !h->keep_interface)
                (void) hub_firewall_remove(h->firewall);
        hub_firewall_free(h->firewall);
        free(h->members);
        sd_event_unref(h->event);
        free(h);
        return NULL;
}
