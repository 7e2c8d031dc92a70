/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control-client.h"
#include "hub-link.h"
#include "log.h"
#include "manager.h"
#include "messages.h"
#include "peer.h"
#include "relay-client.h"
#include "relay-upgrade.h"

struct HubLink {
        Manager *manager;
        HubPathState path;
        RelayClient *relay;
        bool relay_connecting;
        char *relay_url; /* where the relay goes: the relay port's URL or the control URL */
        /* the last try on the netmap's relay_port never came up (a network
         * that blocks that port): the next goes to the API port, and so on
         * in turn until one comes up */
        bool relay_on_api_port;
        uint64_t udp_echo_usec;  /* CLOCK_MONOTONIC of the latest echo reply */
        uint64_t reassert_until; /* keep setting the UDP endpoint until then */
};

/* After moving back to UDP, datagrams the relay handed to WireGuard just
 * before it closed can still roam the hub entry to the dead loopback
 * socket: set the UDP endpoint again on each tick for this long. */
#define HUB_LINK_REASSERT_USEC (3 * USEC_PER_SEC)

static uint64_t hub_link_now(const HubLink *l) {
        uint64_t now = 0;
        (void) sd_event_now(l->manager->event, CLOCK_MONOTONIC, &now);
        return now;
}

int hub_link_new(Manager *m, HubLink **ret) {
        HubLink *l = calloc(1, sizeof(*l));

        if (!l)
                return -ENOMEM;
        l->manager = m;
        hub_path_init(&l->path, hub_link_now(l));
        *ret = l;
        return 0;
}

static void hub_link_close_relay(HubLink *l) {
        l->relay = relay_client_free(l->relay);
        l->relay_connecting = false;
        l->relay_url = mfree(l->relay_url);
}

HubLink *hub_link_free(HubLink *l) {
        if (!l)
                return NULL;
        hub_link_close_relay(l);
        free(l);
        return NULL;
}

HubTransport hub_link_transport(const HubLink *l) {
        return l ? l->path.transport : HUB_TRANSPORT_UDP;
}

int hub_link_endpoint(const HubLink *l, union sockaddr_union *ret) {
        if (!l || l->path.transport != HUB_TRANSPORT_TLS || !l->relay)
                return 0;
        return relay_client_local_endpoint(l->relay, ret) < 0 ? 0 : 1;
}

static void hub_link_set_endpoint(HubLink *l, const union sockaddr_union *endpoint) {
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        Manager *m = l->manager;
        WgPeer *w;
        int r;

        if (!m->wg || !m->hub)
                return;
        d = calloc(1, sizeof(WgDevice));
        if (!d || wg_device_add_peer(d, &w) < 0)
                return (void) log_oom();
        w->public_key = m->hub->public_key;
        w->flags = WG_PEER_UPDATE_ONLY | WG_PEER_HAS_ENDPOINT;
        w->endpoint = *endpoint;
        r = wg_set_device(m->wg, d);
        if (r < 0)
                log_warning_errno(r, "Failed to point the hub entry at its new endpoint: %m");
}

/* Points the hub's WireGuard entry at endpoint and probes the hub through
 * it at once: WireGuard sends, the hub roams to where it came from. */
static void hub_link_point_hub(HubLink *l, const union sockaddr_union *endpoint) {
        Manager *m = l->manager;

        hub_link_set_endpoint(l, endpoint);
        if (!m->hub)
                return;
        m->hub->oldest_unanswered_usec = 0;
        peer_probe_now(m->hub, hub_link_now(l));
}

static void on_relay_event(RelayClient *c, RelayClientEvent event, const char *reason, void *userdata);

static void hub_link_connect_relay(HubLink *l) {
        Manager *m = l->manager;
        _cleanup_free_ char *relay_url = NULL;
        uint16_t relay_port =
                m->netmap && m->netmap->has_hub && !l->relay_on_api_port ? m->netmap->hub.relay_port : 0;
        uint16_t echo_port = 0;
        /* the replica the control client talks to now: its hub is the one
         * this node's netmap names (docs/replicas.md) */
        const char *url = m->control ? control_client_get_url(m->control) : NULL;
        int r;

        hub_link_close_relay(l);
        if (!url)
                return;
        /* the relay's own port when the server has one (libmicrohttpd < 1.0
         * forwards an upgrade on the API port a few bytes at a time); the
         * same host and pin, and the echo stays on the API port */
        if (relay_port != 0) {
                r = relay_upgrade_url(url, relay_port, &relay_url, &echo_port);
                if (r < 0)
                        log_warning_errno(r,
                                          "Cannot make the TLS relay's URL from %s and port %u, using the "
                                          "control URL: %m",
                                          url, (unsigned) relay_port);
                else
                        url = relay_url;
        }
        r = relay_client_new(m->event,
                             &(RelayClientOptions) {
                                     .control_url = url,
                                     .pin = m->credentials.control_pin,
                                     .token = m->credentials.token,
                                     .wg_listen_port = m->listen_port,
                                     .echo_port = echo_port,
                                     .fwmark = m->config.exit_fwmark,
                             },
                             on_relay_event, l, &l->relay);
        if (r < 0) {
                log_warning_errno(r, "Failed to start the TLS relay to %s: %m", url);
                return;
        }
        l->relay_connecting = true;
        log_peer_info("hub", "The hub does not answer over UDP; opening the TLS relay to %s.", url);
        l->relay_url = relay_url ? TAKE_PTR(relay_url) : strdup(url);
}

static void hub_link_act(HubLink *l, unsigned flags) {
        Manager *m = l->manager;
        union sockaddr_union sa;

        if (flags & HUB_PATH_CONNECT_RELAY)
                hub_link_connect_relay(l);
        if ((flags & HUB_PATH_USE_TLS) && l->relay && relay_client_local_endpoint(l->relay, &sa) >= 0) {
                m->hub_tls = true;
                log_peer_full_errno_fields(
                        "hub", LOG_NOTICE, 0, (.message_id = MESSAGE_HUB_TLS, .path = "relay-tls"),
                        "The hub is now reached over the TLS relay: no probe reply over UDP.");
                hub_link_point_hub(l, &sa);
        }
        if (flags & HUB_PATH_USE_UDP) {
                const char *endpoint = m->hub ? peer_current_endpoint(m->hub) : NULL;
                bool by_echo = l->relay != NULL;

                /* The relay goes first: while it is open, what the hub still
                 * sends through it would roam the entry back to loopback. If
                 * UDP fails after all, a new relay is one TLS handshake away. */
                hub_link_close_relay(l);
                m->hub_tls = false;
                log_peer_full_errno_fields("hub", LOG_NOTICE, 0,
                                           (.message_id = MESSAGE_HUB_UDP, .endpoint = endpoint,
                                            .path = "direct"),
                                           "The hub is reached over UDP again at %s (%s).", strna(endpoint),
                                           by_echo ? "the UDP echo answered" : "the TLS relay closed");
                if (endpoint && endpoint_parse(endpoint, &sa) >= 0)
                        hub_link_point_hub(l, &sa);
                l->reassert_until = hub_link_now(l) + HUB_LINK_REASSERT_USEC;
        }
        if ((flags & HUB_PATH_CLOSE_RELAY) && l->relay) {
                log_info("UDP to the hub works; closing the TLS relay.");
                hub_link_close_relay(l);
        }
}

static void hub_link_reassert_udp(HubLink *l, uint64_t now) {
        Manager *m = l->manager;
        union sockaddr_union sa;
        const char *endpoint;

        if (now >= l->reassert_until || l->path.transport != HUB_TRANSPORT_UDP || !m->hub)
                return;
        endpoint = peer_current_endpoint(m->hub);
        if (endpoint && endpoint_parse(endpoint, &sa) >= 0)
                hub_link_set_endpoint(l, &sa);
}

static void hub_link_step(HubLink *l, uint64_t now) {
        Manager *m = l->manager;
        const Peer *hub = m->hub;

        if (!hub)
                return;
        hub_link_act(l, hub_path_step(&l->path,
                                      &(HubPathInput) {
                                              .now = now,
                                              .relay_possible = m->joined && m->wg && m->credentials.token &&
                                                                m->credentials.control_url,
                                              .relay_up = l->relay && relay_client_is_up(l->relay),
                                              .relay_connecting = l->relay_connecting,
                                              .last_reply = hub->last_reply_usec,
                                              .oldest_unanswered = hub->oldest_unanswered_usec,
                                              .udp_echo = l->udp_echo_usec,
                                              .underlay_changed = m->underlay_changed_usec,
                                      }));
}

static void on_relay_event(RelayClient *c, RelayClientEvent event, const char *reason, void *userdata) {
        HubLink *l = userdata;
        uint64_t now = hub_link_now(l);

        switch (event) {
        case RELAY_CLIENT_UP:
                l->relay_connecting = false;
                log_info("TLS relay to %s is up.", strna(l->relay_url));
                break;
        case RELAY_CLIENT_CLOSED:
                log_peer_warning("hub", "TLS relay closed: %s", strna(reason));
                /* never up: the other port next time, when there are two */
                if (l->relay_connecting && l->manager->netmap && l->manager->netmap->has_hub &&
                    l->manager->netmap->hub.relay_port != 0)
                        l->relay_on_api_port = !l->relay_on_api_port;
                hub_link_close_relay(l);
                break;
        case RELAY_CLIENT_UDP_WORKS:
                l->udp_echo_usec = now;
                break;
        }
        hub_link_step(l, now);
}

void hub_link_tick(HubLink *l, uint64_t now) {
        if (!l)
                return;
        hub_link_reassert_udp(l, now);
        hub_link_step(l, now);
}

void hub_link_reset(HubLink *l) {
        if (!l)
                return;
        hub_link_close_relay(l);
        l->manager->hub_tls = false;
        hub_path_init(&l->path, hub_link_now(l));
}
