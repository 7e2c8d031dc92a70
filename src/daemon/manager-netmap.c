/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>

#include "fileio.h"
#include "hub-link.h"
#include "link.h"
#include "log.h"
#include "manager-private.h"
#include "messages.h"
#include "peer.h"
#include "strv.h"
#include "time-util.h"

/* The netmap: taking it from the control server (full or as a delta) or
 * from the cache, and applying it as a difference: the peer list, the hub,
 * the device's entries, the hosts file for nss-mesh, and the endpoints we
 * announce in return. */

/* ---- the peer list -------------------------------------------------------------------------- */

/* Finds the old Peer of each new netmap peer. m->peers is in the order of
 * the netmap applied before, and a new one mostly keeps it (a delta's
 * netmap always: the peers that stay, then the changed ones), so the peer
 * after the last one found is tried first: O(n) for a whole netmap. Any
 * other is found in a copy sorted by key, made at the first miss:
 * O(n log n), where a linear search made every netmap change O(peers²). */
#define PEER_FINDER_AHEAD 8

typedef struct PeerFinder {
        Peer *const *peers;
        size_t n;
        size_t next;    /* the index tried first */
        size_t *sorted; /* indices into peers, by key; NULL until needed */
} PeerFinder;

static void peer_finder_done(PeerFinder *f) {
        f->sorted = mfree(f->sorted);
}

static int peer_index_compare(const void *a, const void *b, void *userdata) {
        Peer *const *peers = userdata;
        return memcmp(peers[*(const size_t *) a]->public_key.data, peers[*(const size_t *) b]->public_key.data,
                      WG_KEY_LEN);
}

/* The index of the peer with key, or -1 (-ENOMEM as -2). */
static ssize_t peer_finder_find(PeerFinder *f, const WgKey *key) {
        size_t lo = 0, hi = f->n;

        /* in order, or a few on (the peers that left or changed came out) */
        for (size_t i = f->next; i < f->n && i < f->next + PEER_FINDER_AHEAD; i++)
                if (key_equal_public(&f->peers[i]->public_key, key)) {
                        f->next = i + 1;
                        return (ssize_t) i;
                }
        if (!f->sorted && f->n > 0) {
                f->sorted = malloc(f->n * sizeof(size_t));
                if (!f->sorted)
                        return -2;
                for (size_t i = 0; i < f->n; i++)
                        f->sorted[i] = i;
                qsort_r(f->sorted, f->n, sizeof(size_t), peer_index_compare, (void *) f->peers);
        }
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2, i = f->sorted[mid];
                int c = memcmp(key->data, f->peers[i]->public_key.data, sizeof(key->data));

                if (c == 0) {
                        f->next = i + 1;
                        return (ssize_t) i;
                }
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return -1;
}

/* More peers joining or leaving at once than this are one log line, not
 * one each: the first netmap of a large mesh would flood the journal (and
 * cost a tenth of the apply time of 1,000 peers). */
#define PEER_EVENTS_MAX 16

/* A netmap being applied: what it changes, and the device changes it queues. */
typedef struct NetmapApply {
        const Netmap *netmap;   /* the new one */
        NetmapDiff diff;        /* against the one applied before */
        WgDevice *device;       /* the changed peer entries, written at the end */
        bool first;             /* the device is new: manager_sync_device_peers() writes everything */
        bool *taken;            /* which of m->peers went to the new list */
        bool relay_changed;     /* a relayed peer came, went or moved: the hub entry is rewritten */
        uint64_t received_usec; /* CLOCK_MONOTONIC when it arrived */
} NetmapApply;

static void netmap_apply_done(NetmapApply *a) {
        netmap_diff_done(&a->diff);
        a->device = wg_device_free(a->device);
        a->taken = mfree(a->taken);
}

/* Peers gathered for the new list; those still in it at the end of the
 * scope (a failed apply) are freed. */
typedef struct PeerList {
        Peer **peers;
        size_t n;
} PeerList;

static void peer_list_done(PeerList *l) {
        for (size_t i = 0; i < l->n; i++)
                peer_free(l->peers[i]);
        l->peers = mfree(l->peers);
        l->n = 0;
}

/* The old Peer of a netmap node, updated; its reachability stays. */
static int manager_reuse_peer(NetmapApply *a, Peer *p, const NetmapNode *n) {
        bool endpoints_differ = !strv_equal(p->endpoints, n->endpoints);
        int r;

        r = peer_update(p, n, a->netmap->domain);
        /* a relayed peer's new addresses live on the hub entry */
        a->relay_changed |= r > 0 && peer_is_relayed(p);
        if (r <= 0 || a->first)
                return r;
        /* A peer not reached yet starts afresh at a new endpoint: WireGuard
         * would otherwise hold its next handshake back for up to 5 s after
         * the last futile one, and hole punching needs both sides to send now. */
        if (endpoints_differ && !p->reachable)
                return peer_to_wg_fresh(p, a->device);
        return peer_to_wg(p, a->device);
}

static int manager_add_peer(Manager *m, NetmapApply *a, const NetmapNode *n, Peer **ret) {
        _cleanup_(peer_freep) Peer *p = NULL;
        int r;

        r = peer_new(m, n, a->netmap->domain, &p);
        if (r >= 0 && !a->first)
                r = peer_to_wg(p, a->device);
        if (r < 0)
                return r;
        log_peer_full(n->name, a->diff.n_added <= PEER_EVENTS_MAX ? LOG_INFO : LOG_DEBUG,
                      "Peer %s joined the netmap (%s).", n->name, p->public_key_b64);
        *ret = TAKE_PTR(p);
        return 0;
}

/* One Peer per netmap peer into l, in the netmap's order: the old object
 * with the same key, or a new one. */
static int manager_gather_peers(Manager *m, NetmapApply *a, PeerList *l) {
        _cleanup_(peer_finder_done) PeerFinder f = { .peers = m->peers, .n = m->n_peers };
        /* the diff against the netmap before knows the new ones: no search
         * (and no sorting) for them; a first apply (a new device) keeps
         * whatever Peer objects are left, so it searches for all */
        _cleanup_free_ bool *added = calloc(a->netmap->n_peers + 1, sizeof(bool));

        if (!added)
                return log_oom();
        for (size_t i = 0; !a->first && i < a->diff.n_added; i++)
                added[a->diff.added[i] - a->netmap->peers] = true;
        for (size_t i = 0; i < a->netmap->n_peers; i++) {
                const NetmapNode *n = &a->netmap->peers[i];
                ssize_t old = added[i] ? -1 : peer_finder_find(&f, &n->public_key);
                Peer *p = NULL;
                int r;

                if (old == -2)
                        return log_oom();

                if (old >= 0 && !a->taken[old]) {
                        p = m->peers[old];
                        a->taken[old] = true;
                        l->peers[l->n++] = p;
                        r = manager_reuse_peer(a, p, n);
                } else {
                        r = manager_add_peer(m, a, n, &p);
                        if (r >= 0)
                                l->peers[l->n++] = p;
                }
                if (r < 0)
                        return log_error_errno(r, "Failed to prepare peer %s: %m", n->name);
        }
        return 0;
}

/* After a failed apply: the old objects taken so far go with the new
 * list; the rest stay, without holes. */
static void manager_keep_untaken_peers(Manager *m, const bool *taken) {
        size_t kept = 0;

        for (size_t j = 0; j < m->n_peers; j++)
                if (!taken[j])
                        m->peers[kept++] = m->peers[j];
        m->n_peers = kept;
}

/* Whatever is left in the old list is gone from the netmap. */
static void manager_drop_left_peers(Manager *m, NetmapApply *a) {
        for (size_t j = 0; j < m->n_peers; j++) {
                Peer *p = m->peers[j];

                if (a->taken[j])
                        continue;
                log_peer_full(p->name, a->diff.n_removed <= PEER_EVENTS_MAX ? LOG_INFO : LOG_DEBUG,
                              "Peer %s left the netmap.", p->name);
                a->relay_changed |= peer_is_relayed(p);
                if (!a->first)
                        (void) wg_device_add_removal(a->device, &p->public_key);
                peer_free(p);
        }
        if (a->diff.n_removed > PEER_EVENTS_MAX)
                log_info("%zu peers left the netmap.", a->diff.n_removed);
}

/* Builds the new peer list, reusing Peer objects (and their reachability) by key. */
static int manager_update_peers(Manager *m, NetmapApply *a) {
        _cleanup_(peer_list_done) PeerList l = {};
        int r;

        /* peers come, go and move: the index of their addresses goes now */
        manager_forget_peer_index(m);

        l.peers = calloc(a->netmap->n_peers + 1, sizeof(Peer *));
        if (!l.peers)
                return log_oom();
        a->taken = calloc(MAX(m->n_peers, (size_t) 1), sizeof(bool));
        if (!a->taken)
                return log_oom();

        r = manager_gather_peers(m, a, &l);
        if (r < 0) {
                manager_keep_untaken_peers(m, a->taken);
                return r;
        }
        if (a->diff.n_added > PEER_EVENTS_MAX)
                log_info("%zu peers joined the netmap.", a->diff.n_added);
        manager_drop_left_peers(m, a);

        free(m->peers);
        m->peers = TAKE_PTR(l.peers);
        m->n_peers = l.n;
        l.n = 0;
        return 0;
}

/* Keeps m->hub in step with the netmap's hub; queues its WireGuard entry in
 * d when it or the set of relayed peers changed (the first apply writes
 * everything in manager_sync_device_peers() instead). */
static int manager_update_hub(Manager *m, const Netmap *new, bool first, bool changed, WgDevice *d) {
        int r;

        if (!new->has_hub) {
                if (m->hub && !first)
                        (void) wg_device_add_removal(d, &m->hub->public_key);
                hub_link_reset(m->hub_link);
                m->hub = peer_free(m->hub);
                return 0;
        }

        if (m->hub && !key_equal(&m->hub->public_key, &new->hub.public_key)) {
                if (!first)
                        (void) wg_device_add_removal(d, &m->hub->public_key);
                hub_link_reset(m->hub_link);
                m->hub = peer_free(m->hub);
        }
        if (!m->hub_link) {
                r = hub_link_new(m, &m->hub_link);
                if (r < 0)
                        return r;
        }
        if (!m->hub) {
                r = peer_new(m, &new->hub, new->domain, &m->hub);
                if (r < 0)
                        return r;
                m->hub->is_hub = true;
                changed = true;
                log_info("Control server hub at %s.", strna(peer_current_endpoint(m->hub)));
        } else {
                r = peer_update(m->hub, &new->hub, new->domain);
                if (r < 0)
                        return r;
        }
        return changed && !first ? manager_hub_to_wg(m, new, d) : 0;
}

/* Devices that came or went, by name: they have no Peer object (nothing
 * is probed), so this is their only trace in the journal. */
static void manager_log_devices(const Netmap *old, const Netmap *new) {
        size_t n_old = old ? old->n_devices : 0;

        if (new->n_devices + n_old > PEER_EVENTS_MAX) {
                log_info("Netmap version %llu lists %zu devices.", (unsigned long long) new->version,
                         new->n_devices);
                return;
        }
        for (size_t i = 0; i < new->n_devices; i++)
                if (!netmap_find_device_by_name(old, new->devices[i].name))
                        log_info("Device %s joined the netmap (reached through the hub).",
                                 new->devices[i].name);
        for (size_t i = 0; i < n_old; i++)
                if (!netmap_find_device_by_name(new, old->devices[i].name))
                        log_info("Device %s left the netmap.", old->devices[i].name);
}

/* ---- applying ------------------------------------------------------------------------------- */

static int manager_write_device(Manager *m, const NetmapApply *a) {
        NetmapApplyStats *s = &m->apply_stats;
        int r;

        s->prepare_usec = clock_usec(CLOCK_MONOTONIC) - a->received_usec;
        if (a->first)
                r = manager_sync_device_peers(m, a->netmap);
        else
                r = a->device->n_peers > 0 ? wg_set_device(m->wg, a->device) : 0;
        if (r < 0)
                return log_error_errno(r, "Failed to apply netmap version %llu to %s: %m",
                                       (unsigned long long) a->netmap->version, m->config.interface);
        s->version = a->netmap->version;
        s->device_peers = a->first ? (size_t) r : a->device->n_peers;
        s->device_usec = clock_usec(CLOCK_MONOTONIC) - a->received_usec;
        log_debug("Applied netmap version %llu: %zu added, %zu removed, %zu changed.",
                  (unsigned long long) a->netmap->version, a->diff.n_added, a->diff.n_removed,
                  a->diff.n_changed);
        return 0;
}

/* The text of a netmap that came as a delta and was applied without it
 * (netmap_delta_apply()): merged now, after the device has it, for the
 * cache and for a delta the fast path does not take. NULL when that fails:
 * the next delta then asks for a whole netmap. */
static char *manager_merge_delta_text(Manager *m, const char *delta, size_t delta_len, size_t *ret_len) {
        _cleanup_free_ char *error = NULL;
        char *text = NULL;
        int r;

        r = m->netmap_json ? netmap_delta_merge(m->netmap_json, m->netmap_json_len, delta, delta_len, &text,
                                                ret_len, &error)
                           : -ESTALE;
        if (r < 0)
                log_debug_errno(r, "Failed to merge the text of a netmap delta: %s", strna(error));
        return r < 0 ? NULL : text;
}

/* Keeps the applied netmap and its text (the base of the next delta),
 * caches it (cache: it came from the control server and reached the
 * device) and publishes its names. Takes nm. json is a delta when delta. */
static void manager_keep_netmap(Manager *m, Netmap *nm, const char *json, size_t len, bool cache, bool delta) {
        char *text = delta ? manager_merge_delta_text(m, json, len, &len) : strndup(json, len);
        int r;

        netmap_free(m->netmap);
        m->netmap = nm;
        free(m->netmap_json);
        m->netmap_json = text;
        m->netmap_json_len = text ? len : 0;
        if (delta) /* the merged text is what is cached */
                json = text;
        cache = cache && json;
        manager_feed_cert_names(m);

        if (cache) {
                r = state_save_netmap(m->state_dir, json, len);
                if (r < 0)
                        log_warning_errno(r, "Failed to cache netmap: %m");
        }
        r = manager_write_hosts(m);
        if (r < 0)
                log_warning_errno(r, "Failed to write %s/" MESHD_HOSTS_NAME ": %m", m->runtime_dir);
        manager_dns_update(m);
}

/* New peers (and a new hub) are probed now, not at the next tick. */
static void manager_probe_new_peers(Manager *m) {
        uint64_t now = manager_now(m);

        manager_device_batch_begin(m);
        for (size_t i = 0; i < m->n_peers; i++)
                if (m->peers[i]->last_probe_usec == 0)
                        peer_tick(m->peers[i], now);
        if (m->hub && m->hub->last_probe_usec == 0)
                peer_tick(m->hub, now);
        manager_device_batch_flush(m);
}

/* The timing of the netmap just applied (or refused by the device): in
 * Status and, for whoever profiles, in the journal. */
static void manager_apply_stats_done(Manager *m, uint64_t received_usec) {
        NetmapApplyStats *s = &m->apply_stats;

        s->total_usec = clock_usec(CLOCK_MONOTONIC) - received_usec;
        log_debug("Netmap version %llu: entries ready %.3f ms after it arrived, device updated after "
                  "%.3f ms (%zu entries written), everything else done after %.3f ms.",
                  (unsigned long long) s->version, (double) s->prepare_usec / USEC_PER_MSEC,
                  (double) s->device_usec / USEC_PER_MSEC, s->device_peers,
                  (double) s->total_usec / USEC_PER_MSEC);
}

/* Applies a validated netmap as a difference to what we have: only peers
 * that were added, removed or changed reach the device. Takes nm. json is
 * its text or, when delta, the delta it was made from with
 * netmap_delta_apply(). */
static int manager_apply(Manager *m, Netmap *nm, const char *json, size_t len, bool from_cache, bool delta) {
        _cleanup_(netmap_freep) Netmap *new = nm;
        _cleanup_(netmap_apply_done) NetmapApply a = { .netmap = nm, .first = !m->device_configured };
        int r;

        /* the arrival the caller noted (the join's reply: now), used once */
        a.received_usec = m->apply_stats.received_usec ?: clock_usec(CLOCK_MONOTONIC);
        m->apply_stats.received_usec = 0;
        if (!key_equal(&new->self.public_key, &m->public_key))
                return log_error_errno(-EBADMSG, "Netmap version %llu is for another node (key %s…), ignoring.",
                                       (unsigned long long) new->version, m->public_key_b64);

        r = netmap_diff(a.first ? NULL : m->netmap, new, &a.diff);
        if (r < 0)
                return log_error_errno(r, "Failed to compare netmaps: %m");

        if (a.first || a.diff.self_changed) {
                r = manager_setup_device(m, new);
                if (r < 0)
                        return r;
        }

        a.device = calloc(1, sizeof(WgDevice));
        if (!a.device)
                return log_oom();
        r = manager_update_peers(m, &a);
        if (r < 0)
                return r;
        /* the devices' addresses live on the hub entry */
        r = manager_update_hub(m, new, a.first, a.diff.hub_changed || a.relay_changed || a.diff.devices_changed,
                               a.device);
        if (r < 0)
                return log_error_errno(r, "Failed to prepare the hub peer: %m");

        r = manager_write_device(m, &a);
        if (a.diff.devices_changed)
                manager_log_devices(m->netmap, new);
        manager_keep_netmap(m, TAKE_PTR(new), json, len, !from_cache && r >= 0, delta);
        manager_exit_update(m);
        manager_firewall_update(m);
        manager_probe_new_peers(m);
        manager_sync_routes(m);

        if (m->state == MANAGER_NEEDS_LOGIN || m->state == MANAGER_STOPPED)
                manager_set_state(m, MANAGER_STARTING);
        manager_check_online(m);
        /* Parsing and applying a large netmap leaves megabytes of freed
         * heap that glibc keeps: the next tick, when the caller has freed
         * the text too, gives them back (manager.c). */
        m->trim_pending |= m->n_peers >= MANAGER_TRIM_PEERS;
        manager_apply_stats_done(m, a.received_usec);
        return 0;
}

int manager_apply_netmap(Manager *m, Netmap *nm, const char *json, size_t len, bool from_cache) {
        return manager_apply(m, nm, json, len, from_cache, false);
}

int manager_load_cached_netmap(Manager *m) {
        _cleanup_free_ char *json = NULL, *error = NULL;
        _cleanup_(netmap_freep) Netmap *nm = NULL;
        uint64_t received = clock_usec(CLOCK_MONOTONIC);
        size_t len;
        int r;

        r = state_load_netmap(m->state_dir, &json, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_warning_errno(r, "Failed to read cached netmap: %m");
        r = netmap_parse(json, len, &nm, &error);
        if (r < 0)
                return log_warning_errno(r, "Ignoring cached netmap: %s", strna(error));
        if (!manager_netmap_trusted(m, nm, "the cached netmap"))
                return -EBADMSG;

        log_info("Applying cached netmap version %llu (%zu peers).", (unsigned long long) nm->version,
                 nm->n_peers);
        m->apply_stats.received_usec = received;
        return manager_apply_netmap(m, TAKE_PTR(nm), json, len, true);
}

/* ---- names for nss-mesh --------------------------------------------------------------------- */

int manager_write_hosts(Manager *m) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size = 0;
        char a[INET6_ADDRSTRLEN];
        const char *domain;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        fputs("# Mesh names, written by meshd; read by nss-mesh(8). Do not edit.\n", f);
        /* Without a netmap (logged out, removed, down) the table is emptied
         * rather than deleted, so stale names stop resolving at once. */
        if (!m->netmap)
                goto write;
        domain = m->netmap->domain;
        /* Lets nss-mesh answer "not found" for every other name from the
         * header alone; older readers skip it as a comment. */
        fprintf(f, "# domain: %s\n", domain);
#define HOSTS_LINE(family, addr, name) \
        fprintf(f, "%s\t%s %s.%s\n", in_addr_format(family, addr, a, sizeof(a)), name, name, domain)
        HOSTS_LINE(AF_INET, &m->netmap->self.ipv4, m->netmap->self.name);
        if (m->netmap->self.has_ipv6)
                HOSTS_LINE(AF_INET6, &m->netmap->self.ipv6, m->netmap->self.name);
        /* devices resolve like nodes: one namespace */
        for (size_t i = 0; i < m->netmap->n_peers + m->netmap->n_devices; i++) {
                const NetmapNode *n = i < m->netmap->n_peers ? &m->netmap->peers[i]
                                                             : &m->netmap->devices[i - m->netmap->n_peers];
                HOSTS_LINE(AF_INET, &n->ipv4, n->name);
                if (n->has_ipv6)
                        HOSTS_LINE(AF_INET6, &n->ipv6, n->name);
        }
#undef HOSTS_LINE
write:
        if (fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;
        if (asprintf(&path, "%s/" MESHD_HOSTS_NAME, m->runtime_dir) < 0)
                return -ENOMEM;
        return write_file_atomic(path, text, size, 0644);
}

/* ---- the control server --------------------------------------------------------------------- */

/* Only what endpoint_is_announceable() allows, the same predicate the
 * control server applies: an address inside the mesh ranges (another
 * tunnel on this host, a hub running beside us) is reachable only through
 * the mesh, and the server would refuse the whole list for it. */
void manager_drop_mesh_candidates(Manager *m, char **candidates) {
        InAddrPrefix mesh[2] = {};
        size_t j = 0, n_mesh = 0;

        if (!candidates)
                return;
        if (m->netmap) {
                mesh[n_mesh++] = (InAddrPrefix) { .family = AF_INET,
                                                  .address = m->netmap->ipv4_range,
                                                  .prefixlen = m->netmap->ipv4_prefixlen };
                if (m->netmap->has_ipv6_range)
                        mesh[n_mesh++] = (InAddrPrefix) { .family = AF_INET6,
                                                          .address = m->netmap->ipv6_range,
                                                          .prefixlen = m->netmap->ipv6_prefixlen };
        }
        for (size_t i = 0; candidates[i]; i++) {
                union sockaddr_union sa;

                if (endpoint_parse(candidates[i], &sa) < 0 || !endpoint_is_announceable(&sa, mesh, n_mesh))
                        free(candidates[i]);
                else
                        candidates[j++] = candidates[i];
        }
        candidates[j] = NULL;
}

void manager_post_endpoints(Manager *m) {
        _cleanup_strv_free_ char **candidates = NULL;
        int r;

        if (!m->control || !m->wg)
                return;
        r = link_list_endpoint_candidates(wg_backend_get_ifindex(m->wg), m->listen_port, &candidates);
        if (r < 0) {
                log_debug_errno(r, "Failed to list endpoint candidates: %m");
                return;
        }
        manager_drop_mesh_candidates(m, candidates);
        /* Compared with what we announced last, not with the netmap's list:
         * there the server puts the endpoint the hub observed in front, so
         * behind NAT they never match and every netmap would cause a POST. */
        if (m->announced_endpoints && strv_equal(candidates, m->announced_endpoints))
                return;
        r = control_client_post_endpoints(m->control, candidates);
        if (r < 0) {
                log_debug_errno(r, "Failed to announce endpoints: %m");
                return;
        }
        strv_free(m->announced_endpoints);
        m->announced_endpoints = TAKE_PTR(candidates);
}

static void manager_take_netmap(Manager *m, ControlClient *c, int error, const char *message, const char *body,
                                size_t len) {
        _cleanup_free_ char *parse_error = NULL, *merged = NULL;
        _cleanup_(netmap_freep) Netmap *nm = NULL;
        uint64_t received = clock_usec(CLOCK_MONOTONIC);
        int r;

        if (error == -EPERM || error == -EACCES) {
                log_full_errno_fields(LOG_WARNING, 0, &((LogFields) { .message_id = MESSAGE_NODE_REMOVED }),
                                      "Control server no longer accepts this node (%s); leaving the mesh.",
                                      strna(message));
                manager_forget_membership(m, "Removed from the mesh; run meshctl up to join again.");
                return;
        }
        if (error < 0) {
                log_full_errno(control_client_is_connected(c) ? LOG_WARNING : LOG_DEBUG, error,
                               "Control server %s: %s", control_client_get_url(c), strna(message));
                return;
        }

        bool delta = netmap_json_is_delta(body, len);
        /* the common delta onto the parsed netmap: its text is merged
         * after the device has it (manager_keep_netmap()) */
        if (delta && m->netmap && m->netmap_json && netmap_delta_apply(m->netmap, body, len, &nm) >= 0)
                /* the text path's line: tests and admins look for it */
                log_debug("Merged a netmap delta onto version %llu.", (unsigned long long) m->netmap->version);
        else if (delta) {
                delta = false;
                log_debug("Merging the text of a netmap delta that cannot be applied in place.");
                r = m->netmap_json ? netmap_delta_merge(m->netmap_json, m->netmap_json_len, body, len, &merged,
                                                        &len, &parse_error)
                                   : -ESTALE;
                if (r < 0) {
                        if (r != -ESTALE)
                                log_warning("Ignoring invalid netmap delta from control server: %s",
                                            strna(parse_error));
                        /* ask for the whole netmap */
                        control_client_set_netmap_version(c, 0);
                        return;
                }
                log_debug("Merged a netmap delta onto version %llu.",
                          (unsigned long long) (m->netmap ? m->netmap->version : 0));
                body = merged;
        }
        r = nm ? 0 : netmap_parse(body, len, &nm, &parse_error);
        if (r < 0) {
                /* refused whole, like an untrusted one: a server that keeps
                 * sending it (every poll) is one journal line */
                manager_log_refusal(m, "an invalid netmap", parse_error ?: "cannot parse it");
                return;
        }
        uint64_t version = nm->version;
        /* another replica's first netmap counts at our version too: its hub
         * is another (docs/replicas.md); below it, it is a moment behind */
        bool other_replica = control_client_replica_changed(c);
        if (m->netmap && other_replica && version < m->netmap->version)
                return; /* the version stays: the poll backs off and asks again */
        if (m->netmap && (version < m->netmap->version || (version == m->netmap->version && !other_replica))) {
                control_client_set_netmap_version(c, m->netmap->version);
                return;
        }
        char what[64];
        snprintf(what, sizeof(what), "netmap version %llu", (unsigned long long) version);
        /* not applied, not cached; the version stays, so the poll backs off */
        if (!manager_netmap_trusted(m, nm, what))
                return;
        m->apply_stats.received_usec = received;
        (void) manager_apply(m, TAKE_PTR(nm), body, len, false, delta);
        control_client_set_netmap_version(c, version);
        manager_post_endpoints(m);
        manager_post_routes(m);
}

static void on_netmap(ControlClient *c, int error, const char *message, const char *body, size_t len,
                      void *userdata) {
        Manager *m = userdata;

        manager_take_netmap(m, c, error, message, body, len);
        /* a join whose register reply had no peers (manager_joined()) is
         * answered by the first poll, whatever it brought */
        if (m->up_call)
                manager_finish_up(m, m->joined ? NULL : "io.meshd.AuthFailed",
                                  m->joined ? NULL : "removed from the mesh right after joining");
}

int manager_start_polling(Manager *m) {
        int r;

        if (!m->control) {
                r = control_client_new(m->event, m->credentials.control_url, m->credentials.control_pin,
                                       &m->control);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up control client: %m");
                control_client_set_fwmark(m->control, m->config.exit_fwmark);
        }
        r = control_client_start_polling(m->control, m->credentials.token, m->netmap ? m->netmap->version : 0,
                                         on_netmap, m);
        if (r < 0)
                return log_error_errno(r, "Failed to start polling the control server: %m");
        return 0;
}
