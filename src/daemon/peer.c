/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>

#include "log.h"
#include "manager.h"
#include "messages.h"
#include "peer.h"
#include "strv.h"
#include "time-util.h"
#include "varlink.h"

struct PendingPing {
        PendingPing *next;
        Peer *peer;
        ApiCall *call;
        uint32_t seq;
        uint64_t sent_usec;
        sd_event_source *timeout;
};

static void pending_ping_free(PendingPing *pp) {
        if (!pp)
                return;
        sd_event_source_disable_unref(pp->timeout);
        api_call_unref(pp->call);
        free(pp);
}

static void peer_unlink_ping(Peer *p, PendingPing *pp) {
        for (PendingPing **i = &p->pings; *i; i = &(*i)->next)
                if (*i == pp) {
                        *i = pp->next;
                        return;
                }
}

static int peer_set_name(Peer *p, const char *name, const char *domain) {
        char *n = strdup(name), *f = NULL;
        if (!n || asprintf(&f, "%s.%s", name, domain) < 0) {
                free(n);
                return -ENOMEM;
        }
        free(p->name);
        free(p->fqdn);
        p->name = n;
        p->fqdn = f;
        return 0;
}

int peer_new(Manager *m, const NetmapNode *node, const char *domain, Peer **ret) {
        _cleanup_(peer_freep) Peer *p = NULL;
        int r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        uint64_t now = 0;
        p->manager = m;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        peer_path_init(&p->path, now);
        p->public_key = node->public_key;
        key_to_base64(&p->public_key, p->public_key_b64);

        r = peer_update(p, node, domain);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(p);
        return 0;
}

Peer *peer_free(Peer *p) {
        if (!p)
                return NULL;
        while (p->pings) {
                PendingPing *pp = p->pings;
                p->pings = pp->next;
                (void) api_call_reply_errorf(pp->call, "io.meshd.PeerNotFound", "peer '%s' left the mesh",
                                             p->name);
                pending_ping_free(pp);
        }
        free(p->name);
        free(p->fqdn);
        strv_free(p->endpoints);
        free(p->device_endpoint);
        free(p->routes);
        free(p);
        return NULL;
}

/* Whether p->fqdn is "NAME.DOMAIN". */
static bool peer_fqdn_is(const Peer *p, const char *name, const char *domain) {
        size_t n = strlen(name);

        return p->fqdn && strncmp(p->fqdn, name, n) == 0 && p->fqdn[n] == '.' && streq(p->fqdn + n + 1, domain);
}

int peer_update(Peer *p, const NetmapNode *node, const char *domain) {
        bool wg_changed = false;
        int r;

        /* compared in place: every peer of every netmap comes through here */
        if (!peer_fqdn_is(p, node->name, domain)) {
                r = peer_set_name(p, node->name, domain);
                if (r < 0)
                        return r;
        }

        if (memcmp(&p->ipv4, &node->ipv4, sizeof(p->ipv4)) != 0 || p->has_ipv6 != node->has_ipv6 ||
            (node->has_ipv6 && memcmp(&p->ipv6, &node->ipv6, sizeof(p->ipv6)) != 0)) {
                p->ipv4 = node->ipv4;
                p->ipv6 = node->ipv6;
                p->has_ipv6 = node->has_ipv6;
                wg_changed = true;
        }

        if (!p->endpoints || !strv_equal(p->endpoints, node->endpoints)) {
                char **e;
                r = strv_copy(node->endpoints, &e);
                if (r < 0)
                        return r;
                strv_free(p->endpoints);
                p->endpoints = e;
                p->endpoint_index = 0;
                p->endpoint_since_usec = 0;
                wg_changed = true;
        }

        return wg_changed;
}

const char *peer_current_endpoint(const Peer *p) {
        size_t n = strv_length(p->endpoints);
        if (n == 0)
                return NULL;
        return p->endpoints[p->endpoint_index % n];
}

int peer_to_wg(const Peer *p, WgDevice *d) {
        const char *endpoint = peer_current_endpoint(p);
        WgPeer *w;
        int r;

        r = wg_device_add_peer(d, &w);
        if (r < 0)
                return r;
        w->public_key = p->public_key;
        w->flags = WG_PEER_REPLACE_ALLOWED_IPS | WG_PEER_HAS_PERSISTENT_KEEPALIVE;
        w->persistent_keepalive = PEER_KEEPALIVE_SEC;
        if (endpoint && endpoint_parse(endpoint, &w->endpoint) >= 0)
                w->flags |= WG_PEER_HAS_ENDPOINT;

        /* An exit node's default routes stay on its own entry even while it
         * is relayed: the hub does not forward to the internet, so the
         * traffic waits for the direct path rather than leak elsewhere. */
        r = peer_add_exit_allowed_ips(p, w);
        if (r < 0)
                return r;
        /* Relayed: the addresses live on the hub peer; this entry stays,
         * without them, so that the direct path can still be tried. */
        if (peer_is_relayed(p))
                return 0;
        r = peer_add_allowed_ips(p, w);
        /* subnet routes: never on the hub's entry, which forwards only
         * mesh addresses, so a relayed peer's routes are unreachable */
        for (size_t i = 0; r >= 0 && i < p->n_routes; i++)
                r = wg_peer_add_allowed_ip(w, p->routes[i].family, &p->routes[i].address,
                                           p->routes[i].prefixlen);
        return r;
}

int peer_add_exit_allowed_ips(const Peer *p, WgPeer *w) {
        static const union in_addr_union any = {};
        int r = 0;

        if (p->exit_ipv4)
                r = wg_peer_add_allowed_ip(w, AF_INET, &any, 0);
        if (r >= 0 && p->exit_ipv6)
                r = wg_peer_add_allowed_ip(w, AF_INET6, &any, 0);
        return r;
}

int peer_to_wg_fresh(const Peer *p, WgDevice *d) {
        WgPeer *w;
        int r;

        r = wg_device_add_peer(d, &w);
        if (r < 0)
                return r;
        w->public_key = p->public_key;
        w->flags = WG_PEER_REMOVE_ME;
        return peer_to_wg(p, d);
}

int peer_add_allowed_ips(const Peer *p, WgPeer *w) {
        int r;

        r = wg_peer_add_allowed_ip(w, AF_INET, &p->ipv4, 32);
        if (r < 0)
                return r;
        if (p->has_ipv6) {
                r = wg_peer_add_allowed_ip(w, AF_INET6, &p->ipv6, 128);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void peer_set_reachable(Peer *p, bool reachable) {
        const char *endpoint = p->device_endpoint ? p->device_endpoint : peer_current_endpoint(p);

        if (p->reachable == reachable)
                return;
        p->reachable = reachable;

        if (reachable)
                log_peer_full_errno_fields(p->name, LOG_INFO, 0,
                                           (.message_id = MESSAGE_PEER_ONLINE, .endpoint = endpoint,
                                            .path = peer_path_to_string(p->path.path)),
                                           "Peer %s is reachable (%s, via %s).", p->name,
                                           peer_path_to_string(p->path.path), strna(endpoint));
        else
                log_peer_full_errno_fields(p->name, LOG_WARNING, 0,
                                           (.message_id = MESSAGE_PEER_OFFLINE, .endpoint = endpoint),
                                           "Peer %s is no longer reachable: no probe reply for %llus.", p->name,
                                           (unsigned long long) (PEER_REACHABLE_USEC / USEC_PER_SEC));
        manager_check_online(p->manager);
}

static void peer_send_probe(Peer *p, uint64_t now) {
        Manager *m = p->manager;

        if (!m->prober)
                return;
        p->last_probe_seq = manager_next_probe_seq(m);
        p->last_probe_usec = now;
        if (p->oldest_unanswered_usec == 0)
                p->oldest_unanswered_usec = now;
        if (manager_device_batch_add_probe(m, p))
                return;
        peer_send_probe_now(p);
}

void peer_send_probe_now(Peer *p) {
        int r;

        if (!p->manager->prober)
                return;
        r = prober_send(p->manager->prober, AF_INET, &p->ipv4, p->last_probe_seq);
        if (r < 0)
                log_debug_errno(r, "Failed to send probe to %s: %m", p->name);
}

/* Where a peer's device change goes: the batch of the tick in progress,
 * written once at its end (manager_device_batch_flush()), else a device of
 * its own in *own, which peer_device_write() writes now. NULL when the
 * batch is full: a tick wakes at most PEER_WAKE_BATCH_MAX entries, so that
 * 10,000 silent peers do not keep the backend (and us, waiting for it)
 * busy; the others wake in the next ticks. */
static WgDevice *peer_device(Peer *p, WgDevice **own) {
        WgDevice *batch = p->manager->device_batch;

        if (batch)
                return batch->n_peers < PEER_WAKE_BATCH_MAX ? batch : NULL;
        *own = calloc(1, sizeof(WgDevice));
        return *own;
}

static int peer_device_write(Peer *p, WgDevice *own) {
        return own ? wg_set_device(p->manager->wg, own) : 0;
}

static void peer_try_next_endpoint(Peer *p, uint64_t now) {
        Manager *m = p->manager;
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        size_t n = strv_length(p->endpoints);
        int r;

        if (n < 2 || !m->wg) {
                p->endpoint_since_usec = now;
                return;
        }
        WgDevice *batch = peer_device(p, &d);
        if (!batch)
                return; /* the next tick tries */
        p->endpoint_since_usec = now;
        p->endpoint_index = (p->endpoint_index + 1) % n;
        size_t first = batch->n_peers;
        r = peer_to_wg(p, batch);
        if (r >= 0) {
                batch->peers[first].flags =
                        WG_PEER_UPDATE_ONLY | (batch->peers[first].flags & WG_PEER_HAS_ENDPOINT);
                r = peer_device_write(p, d);
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to switch endpoint of %s: %m", p->name);
                return;
        }
        log_peer_full_errno_fields(p->name, LOG_INFO, 0,
                                   (.message_id = MESSAGE_ENDPOINT_CHANGED,
                                    .endpoint = peer_current_endpoint(p)),
                                   "Trying endpoint %s for peer %s.", peer_current_endpoint(p), p->name);
}

void peer_probe_now(Peer *p, uint64_t now) {
        peer_send_probe(p, now);
}

/* WireGuard starts a handshake when it has something to send; a relayed
 * peer's entry gets no traffic, so turning its keepalive off and on makes
 * both kernel and wireguard-go send one (or a keepalive, when a session
 * exists) at once. With next_candidate, each retry takes the next endpoint
 * candidate, starting over with the first (the one the hub saw). */
static void peer_retry_direct(Peer *p, bool next_candidate) {
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        Manager *m = p->manager;
        size_t n = strv_length(p->endpoints);
        int r;

        if (!m->wg || n == 0)
                return;
        /* Both steps in one write (also in a batch) do the same: the
         * backends take the entries in order. */
        WgDevice *batch = peer_device(p, &d);
        if (!batch)
                return;
        if (next_candidate)
                p->endpoint_index = p->direct_retries++ % n;
        log_debug("Waking the direct path to %s at %s.", p->name, peer_current_endpoint(p));

        for (int keepalive = 0; keepalive <= PEER_KEEPALIVE_SEC; keepalive += PEER_KEEPALIVE_SEC) {
                WgPeer *w;

                if (wg_device_add_peer(batch, &w) < 0)
                        return;
                w->public_key = p->public_key;
                w->flags = WG_PEER_UPDATE_ONLY | WG_PEER_HAS_PERSISTENT_KEEPALIVE;
                w->persistent_keepalive = (uint16_t) keepalive;
                if (keepalive == 0 && endpoint_parse(peer_current_endpoint(p), &w->endpoint) >= 0)
                        w->flags |= WG_PEER_HAS_ENDPOINT;
        }
        r = peer_device_write(p, d);
        if (r < 0)
                log_debug_errno(r, "Failed to retry the direct path to %s: %m", p->name);
}

static void peer_punch(Peer *p) {
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        WgDevice *batch;
        int r;

        if (!p->manager->wg)
                return;
        batch = peer_device(p, &d);
        if (!batch)
                return;
        log_debug("Punching towards %s at %s: a fresh handshake.", p->name, strna(peer_current_endpoint(p)));
        r = peer_to_wg_fresh(p, batch);
        if (r >= 0)
                r = peer_device_write(p, d);
        if (r < 0)
                log_debug_errno(r, "Failed to punch towards %s: %m", p->name);
}

bool peer_answers(const Peer *p, uint64_t now) {
        return p->last_reply_usec > 0 &&
               !(p->oldest_unanswered_usec > 0 && now - p->oldest_unanswered_usec >= PEER_PATH_DEAD_USEC);
}

void peer_take_device_stats(Peer *p, const WgPeer *w, uint64_t now) {
        uint64_t handshake = (uint64_t) w->last_handshake.tv_sec * USEC_PER_SEC +
                             (uint64_t) w->last_handshake.tv_nsec / NSEC_PER_USEC;

        if (w->rx_bytes > p->rx_bytes || handshake > p->last_handshake_realtime_usec)
                p->direct_heard_usec = now;
        p->last_handshake_realtime_usec = handshake;
        p->rx_bytes = w->rx_bytes;
        p->tx_bytes = w->tx_bytes;
}

static void peer_log_path(const Peer *p) {
        const char *path = peer_path_to_string(p->path.path), *why = peer_path_reason_to_string(p->path.reason);
        bool relayed = peer_is_relayed(p);

        log_peer_full_errno_fields(p->name, LOG_NOTICE, 0,
                                   (.message_id = relayed ? MESSAGE_RELAY_FALLBACK : MESSAGE_PATH_DIRECT,
                                    .path = path),
                                   relayed ? "Peer %s is now reached through the hub (%s): %s."
                                           : "Peer %s is now reached %s: %s.",
                                   p->name, relayed ? path : "directly", why);
}

static void peer_judge_path(Peer *p, uint64_t now) {
        Manager *m = p->manager;
        unsigned flags;

        if (p->is_hub)
                return;
        flags = peer_path_step(&p->path, &(PeerPathInput) {
                                                 .now = now,
                                                 .has_hub = m->hub,
                                                 .hub_up = m->hub && peer_answers(m->hub, now),
                                                 .hub_tls = manager_hub_over_tls(m),
                                                 .last_reply = p->last_reply_usec,
                                                 .oldest_unanswered = p->oldest_unanswered_usec,
                                                 .direct_heard = p->direct_heard_usec,
                                                 .underlay_changed = m->underlay_changed_usec,
                                                 .punch_leader = memcmp(&m->public_key, &p->public_key,
                                                                        sizeof(p->public_key)) < 0,
                                         });
        if (flags & PEER_PATH_CHANGED)
                peer_log_path(p);
        if (flags & PEER_PATH_REROUTE) {
                p->direct_retries = 0;
                manager_reroute_peer(m, p);
                /* silence on the new path counts from now */
                p->oldest_unanswered_usec = 0;
                peer_send_probe(p, now);
        }
        if (flags & PEER_PATH_PUNCH)
                peer_punch(p);
        if (flags & PEER_PATH_RETRY_DIRECT)
                peer_retry_direct(p, true);
        if (flags & PEER_PATH_NUDGE)
                peer_retry_direct(p, false);
}

void peer_tick(Peer *p, uint64_t now) {
        if (p->reachable && now > p->last_reply_usec && now - p->last_reply_usec > PEER_REACHABLE_USEC)
                peer_set_reachable(p, false);

        peer_judge_path(p, now);

        if (!p->reachable && !peer_is_relayed(p)) {
                if (p->endpoint_since_usec == 0)
                        p->endpoint_since_usec = now;
                else if (now - p->endpoint_since_usec >= PEER_ENDPOINT_TRY_USEC)
                        peer_try_next_endpoint(p, now);
        }

        bool relaxed = p->reachable && p->oldest_unanswered_usec == 0;
        if (p->last_probe_usec == 0 ||
            now - p->last_probe_usec >= (relaxed ? PEER_PROBE_REACHABLE_USEC : PEER_PROBE_UNREACHABLE_USEC))
                peer_send_probe(p, now);
}

static cJSON *ping_reply_json(const Peer *p, uint64_t rtt) {
        char addr[INET6_ADDRSTRLEN];
        cJSON *o = cJSON_CreateObject();

        if (!o)
                return NULL;
        in_addr_format(AF_INET, &p->ipv4, addr, sizeof(addr));
        if (!cJSON_AddStringToObject(o, "peer", p->name) || !cJSON_AddStringToObject(o, "address", addr) ||
            !cJSON_AddNumberToObject(o, "rtt_usec", (double) rtt) ||
            !cJSON_AddStringToObject(o, "path", peer_path_to_string(p->path.path))) {
                cJSON_Delete(o);
                return NULL;
        }
        return o;
}

void peer_handle_probe_reply(Peer *p, uint32_t seq, uint64_t now) {
        PendingPing *pp, *next;

        if (seq == p->last_probe_seq && p->last_probe_usec > 0)
                p->rtt_usec = now - p->last_probe_usec;

        for (pp = p->pings; pp; pp = next) {
                next = pp->next;
                if (pp->seq != seq)
                        continue;
                p->rtt_usec = now - pp->sent_usec;
                (void) api_call_reply(pp->call, ping_reply_json(p, p->rtt_usec));
                peer_unlink_ping(p, pp);
                pending_ping_free(pp);
        }

        p->last_reply_usec = now;
        p->oldest_unanswered_usec = 0;
        p->last_reply_realtime_usec = clock_usec(CLOCK_REALTIME);
        p->endpoint_since_usec = now;
        peer_set_reachable(p, true);
}

static int on_ping_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        PendingPing *pp = userdata;
        Peer *p = pp->peer;

        (void) api_call_reply_errorf(pp->call, "io.meshd.Timeout", "no probe reply from %s within %llu ms (%s)",
                                     p->name, (unsigned long long) ((usec - pp->sent_usec) / USEC_PER_MSEC),
                                     p->last_handshake_realtime_usec > 0 ? "handshake done, probe lost"
                                                                         : "no handshake");
        peer_unlink_ping(p, pp);
        pending_ping_free(pp);
        return 0;
}

int peer_ping(Peer *p, ApiCall *call, uint64_t timeout_usec) {
        Manager *m = p->manager;
        PendingPing *pp;
        uint64_t now;
        int r;

        if (!m->prober)
                return api_call_reply_errorf(call, "io.meshd.Timeout", "the mesh interface is not up");

        pp = calloc(1, sizeof(*pp));
        if (!pp)
                return -ENOMEM;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        pp->peer = p;
        pp->call = api_call_ref(call);
        pp->seq = manager_next_probe_seq(m);
        pp->sent_usec = now;

        r = sd_event_add_time(m->event, &pp->timeout, CLOCK_MONOTONIC, now + timeout_usec, 0, on_ping_timeout,
                              pp);
        if (r < 0) {
                pending_ping_free(pp);
                return r;
        }
        pp->next = p->pings;
        p->pings = pp;

        r = prober_send(m->prober, AF_INET, &p->ipv4, pp->seq);
        if (r < 0)
                log_debug_errno(r, "Failed to send ping probe to %s: %m", p->name);
        return 0;
}

bool peer_has_address(const Peer *p, int family, const union in_addr_union *a) {
        if (family == AF_INET)
                return memcmp(&p->ipv4.in, &a->in, sizeof(a->in)) == 0;
        return p->has_ipv6 && memcmp(&p->ipv6.in6, &a->in6, sizeof(a->in6)) == 0;
}

static uint64_t peer_path_since_realtime(const Peer *p) {
        uint64_t now = 0, real = clock_usec(CLOCK_REALTIME);

        (void) sd_event_now(p->manager->event, CLOCK_MONOTONIC, &now);
        return now > p->path.since && real > now - p->path.since ? real - (now - p->path.since) : real;
}

cJSON *peer_to_json(const Peer *p) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        char a4[INET6_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];
        const char *endpoint = p->device_endpoint ? p->device_endpoint : peer_current_endpoint(p);

        if (!o)
                return NULL;
        in_addr_format(AF_INET, &p->ipv4, a4, sizeof(a4));
        if (p->has_ipv6)
                in_addr_format(AF_INET6, &p->ipv6, a6, sizeof(a6));

        if (!cJSON_AddStringToObject(o, "name", p->name) || !cJSON_AddStringToObject(o, "fqdn", p->fqdn) ||
            !cJSON_AddStringToObject(o, "ipv4", a4) ||
            !(p->has_ipv6 ? cJSON_AddStringToObject(o, "ipv6", a6) : cJSON_AddNullToObject(o, "ipv6")) ||
            !cJSON_AddStringToObject(o, "public_key", p->public_key_b64) ||
            !(endpoint ? cJSON_AddStringToObject(o, "endpoint", endpoint)
                       : cJSON_AddNullToObject(o, "endpoint")) ||
            !cJSON_AddStringToObject(o, "path", peer_path_to_string(p->path.path)) ||
            !cJSON_AddStringToObject(o, "path_reason", peer_path_reason_to_string(p->path.reason)) ||
            !cJSON_AddNumberToObject(o, "path_since_usec", (double) peer_path_since_realtime(p)) ||
            !cJSON_AddBoolToObject(o, "reachable", p->reachable) ||
            !cJSON_AddNumberToObject(o, "last_handshake_usec", (double) p->last_handshake_realtime_usec) ||
            !cJSON_AddNumberToObject(o, "last_probe_reply_usec", (double) p->last_reply_realtime_usec) ||
            !cJSON_AddNumberToObject(o, "rtt_usec", (double) p->rtt_usec) ||
            !cJSON_AddNumberToObject(o, "rx_bytes", (double) p->rx_bytes) ||
            !cJSON_AddNumberToObject(o, "tx_bytes", (double) p->tx_bytes) ||
            !cJSON_AddStringToObject(o, "kind", "node"))
                return NULL;
        return TAKE_PTR(o);
}

bool peer_has_route(const Peer *p, int family, const union in_addr_union *addr, uint8_t prefixlen) {
        for (size_t i = 0; i < p->n_routes; i++)
                if (p->routes[i].family == family && p->routes[i].prefixlen == prefixlen &&
                    memcmp(&p->routes[i].address, addr, family == AF_INET ? 4 : 16) == 0)
                        return true;
        return false;
}
