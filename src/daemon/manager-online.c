/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <systemd/sd-daemon.h>

#include "log.h"
#include "manager-private.h"
#include "messages.h"
#include "online.h"
#include "peer.h"
#include "strv.h"
#include "varlink.h"

/* When the mesh counts as online: the configured policy, READY=1 (on time
 * or degraded at the timeout), STATUS=, and the WaitOnline calls waiting
 * for peers. */

/* ---- WaitOnline requests -------------------------------------------------------------------- */

struct WaitOnlineRequest {
        WaitOnlineRequest *next;
        Manager *manager;
        ApiCall *call;
        char **peers; /* NULL: the configured policy */
        bool any;
        sd_event_source *timeout;
};

static void wait_online_request_free(WaitOnlineRequest *w) {
        if (!w)
                return;
        sd_event_source_disable_unref(w->timeout);
        api_call_unref(w->call);
        strv_free(w->peers);
        free(w);
}

static void manager_unlink_wait_online(Manager *m, WaitOnlineRequest *w) {
        for (WaitOnlineRequest **i = &m->wait_online_requests; *i; i = &(*i)->next)
                if (*i == w) {
                        *i = w->next;
                        return;
                }
}

void manager_free_wait_online(Manager *m) {
        while (m->wait_online_requests) {
                WaitOnlineRequest *w = m->wait_online_requests;
                m->wait_online_requests = w->next;
                wait_online_request_free(w);
        }
}

/* ---- online policy and readiness ------------------------------------------------------------ */

/* A device (a plain WireGuard peer of the hub) answers no probe and its
 * handshakes are the hub's: it counts as reachable while it is in the
 * netmap and the hub is, which is all a node can set up for it
 * (meshctl ping NAME asks the device itself). */
static bool manager_device_reachable(const Manager *m) {
        return m->hub && m->hub->reachable;
}

/* The peers, then the devices: *ret_n counts both. */
static int manager_peer_views(Manager *m, OnlinePeerView **ret, size_t *ret_n) {
        size_t n_devices = m->netmap ? m->netmap->n_devices : 0;
        OnlinePeerView *v = calloc(m->n_peers + n_devices + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_peers; i++)
                v[i] = (OnlinePeerView) { .name = m->peers[i]->name, .reachable = m->peers[i]->reachable };
        for (size_t i = 0; i < n_devices; i++)
                v[m->n_peers + i] = (OnlinePeerView) { .name = m->netmap->devices[i].name,
                                                       .reachable = manager_device_reachable(m) };
        *ret = v;
        *ret_n = m->n_peers + n_devices;
        return 0;
}

/* Policy any/all: the nodes (a phone asleep must not hold the boot);
 * RequiredPeers= and named waits may name devices too. */
static size_t manager_policy_views(const Manager *m, size_t n_views) {
        return m->config.online_policy == ONLINE_POLICY_REQUIRED ? n_views : m->n_peers;
}

static void manager_check_wait_online(Manager *m, const OnlinePeerView *views, size_t n_views) {
        WaitOnlineRequest *w, *next;

        for (w = m->wait_online_requests; w; w = next) {
                int r;
                next = w->next;
                if (w->peers)
                        r = online_evaluate_names(w->peers, w->any, views, n_views, NULL);
                else
                        r = online_evaluate_policy(m->config.online_policy, m->config.required_peers, views,
                                                   manager_policy_views(m, n_views), NULL);
                if (r == 0)
                        continue;
                if (r > 0)
                        (void) api_call_reply(w->call, cJSON_CreateObject());
                else
                        (void) api_call_reply_errorf(w->call, "org.varlink.service.InternalError",
                                                     "failed to evaluate online state: %s", strerror(-r));
                manager_unlink_wait_online(m, w);
                wait_online_request_free(w);
        }
}

void manager_check_online(Manager *m) {
        _cleanup_free_ OnlinePeerView *views = NULL;
        _cleanup_free_ char *missing = NULL, *text = NULL;
        size_t reachable = 0, n_views = 0;
        int r;

        if (!m->joined || m->state == MANAGER_STOPPED || !m->device_configured)
                return;

        r = manager_peer_views(m, &views, &n_views);
        if (r < 0) {
                log_oom();
                return;
        }
        for (size_t i = 0; i < m->n_peers; i++)
                reachable += m->peers[i]->reachable;

        manager_check_wait_online(m, views, n_views);

        r = online_evaluate_policy(m->config.online_policy, m->config.required_peers, views,
                                   manager_policy_views(m, n_views), &missing);
        if (r < 0) {
                log_error_errno(r, "Failed to evaluate online policy: %m");
                return;
        }

        if (r > 0) {
                if (asprintf(&text, "Online: %zu of %zu peers reachable.", reachable, m->n_peers) < 0)
                        text = NULL;
                if (manager_set_state(m, MANAGER_ONLINE))
                        log_full_errno_fields(LOG_NOTICE, 0,
                                              &((LogFields) { .message_id = MESSAGE_MESH_ONLINE }),
                                              "Mesh online (policy %s): %zu of %zu peers reachable.",
                                              online_policy_to_string(m->config.online_policy), reachable,
                                              m->n_peers);
                manager_set_status(m, text);
                if (!m->ready_sent) {
                        m->ready_sent = true;
                        m->online_timeout_source = sd_event_source_disable_unref(m->online_timeout_source);
                        (void) sd_notify(false, "READY=1");
                }
                return;
        }

        if (m->ready_sent) {
                manager_set_state(m, MANAGER_DEGRADED);
                if (asprintf(&text, "degraded: %s unreachable", strna(missing)) < 0)
                        text = NULL;
        } else {
                manager_set_state(m, MANAGER_STARTING);
                if (asprintf(&text, "Waiting for %s%s.",
                             m->config.online_policy == ONLINE_POLICY_ANY ? "any of " : "", strna(missing)) < 0)
                        text = NULL;
        }
        manager_set_status(m, text);
}

static int on_online_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ OnlinePeerView *views = NULL;
        _cleanup_free_ char *missing = NULL, *text = NULL;
        size_t n_views = 0;

        m->online_timeout_source = sd_event_source_disable_unref(m->online_timeout_source);
        if (m->ready_sent)
                return 0;

        if (manager_peer_views(m, &views, &n_views) >= 0)
                (void) online_evaluate_policy(m->config.online_policy, m->config.required_peers, views,
                                              manager_policy_views(m, n_views), &missing);
        if (!m->joined)
                missing = strdup("control server (not joined yet)");
        else if (!m->device_configured)
                missing = strdup("control server (no netmap yet)");

        log_full_errno_fields(LOG_WARNING, 0, &((LogFields) { .message_id = MESSAGE_ONLINE_TIMEOUT }),
                              "Online policy %s not met after %llus: %s unreachable. Continuing degraded.",
                              online_policy_to_string(m->config.online_policy),
                              (unsigned long long) (m->config.online_timeout_usec / USEC_PER_SEC),
                              strna(missing));
        if (asprintf(&text, "degraded: %s unreachable", strna(missing)) < 0)
                text = NULL;
        manager_set_state(m, MANAGER_DEGRADED);
        m->ready_sent = true;
        free(m->status_text);
        m->status_text = text ? strdup(text) : NULL;
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", strna(text));
        return 0;
}

int manager_arm_online_timeout(Manager *m) {
        if (m->ready_sent || m->online_timeout_source || m->config.online_timeout_usec == 0)
                return 0;
        /* Tell systemd the start may take longer than its default, so our own
         * timeout, which ends in a degraded READY=1, always wins. */
        (void) sd_notifyf(false, "EXTEND_TIMEOUT_USEC=%llu",
                          (unsigned long long) (m->config.online_timeout_usec + 10 * USEC_PER_SEC));
        return sd_event_add_time(m->event, &m->online_timeout_source, CLOCK_MONOTONIC,
                                 m->started_usec + m->config.online_timeout_usec, 0, on_online_timeout, m);
}

/* ---- WaitOnline ----------------------------------------------------------------------------- */

/* Why a peer is not reachable, in the words mount.mesh and meshd-wait-online print. */
static const char *peer_unreachable_reason(const Peer *p) {
        if (!p)
                return "unknown peer";
        if (p->last_handshake_realtime_usec == 0)
                return "no handshake";
        return "no probe reply";
}

static int on_wait_online_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        WaitOnlineRequest *w = userdata;
        Manager *m = w->manager;
        _cleanup_json_ cJSON *params = cJSON_CreateObject();
        _cleanup_free_ char *message = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size = 0, n = 0;
        cJSON *list;

        (void) manager_refresh_device_stats(m);
        list = params ? cJSON_AddArrayToObject(params, "unreachable") : NULL;
        f = open_memstream(&message, &size);
        if (!list || !f)
                return log_oom();

        /* One peer: just the reason ("no handshake"); several: "nas: no handshake, backup: …". */
        if (w->peers) {
                for (char **name = w->peers; *name; name++) {
                        Peer *p = manager_find_peer(m, *name);
                        bool device = !p && netmap_resolve_device(m->netmap, *name);
                        if (p ? p->reachable : device && manager_device_reachable(m))
                                continue;
                        cJSON_AddItemToArray(list, cJSON_CreateString(*name));
                        fprintf(f, "%s%s: %s", n++ > 0 ? ", " : "", *name,
                                device ? "a device, and the hub is unreachable" : peer_unreachable_reason(p));
                }
        } else
                for (size_t i = 0; i < m->n_peers; i++) {
                        Peer *p = m->peers[i];
                        if (p->reachable)
                                continue;
                        cJSON_AddItemToArray(list, cJSON_CreateString(p->name));
                        fprintf(f, "%s%s: %s", n++ > 0 ? ", " : "", p->name, peer_unreachable_reason(p));
                }
        if (fclose(TAKE_PTR(f)) != 0)
                return log_oom();

        const char *text = message;
        if (n == 1 && strchr(text, ':'))
                text = strchr(text, ':') + 2;
        cJSON_AddStringToObject(params, "message", n > 0 ? text : "online policy not met");
        (void) api_call_reply_error(w->call, "io.meshd.Timeout", TAKE_PTR(params));
        manager_unlink_wait_online(m, w);
        wait_online_request_free(w);
        return 0;
}

int manager_wait_online(Manager *m, ApiCall *call, char **peers, bool any, uint64_t timeout_usec) {
        _cleanup_strv_free_ char **owned = peers;
        WaitOnlineRequest *w;
        int r;

        if (!m->joined)
                return api_call_reply_errorf(call, "io.meshd.NotJoined", "this node has not joined a mesh");
        /* Once a netmap is there, a name that is not in it will not become
         * reachable by waiting: say so at once instead of at the timeout. */
        if (owned && m->netmap)
                for (char **name = owned; *name; name++)
                        if (!manager_find_peer(m, *name) && !netmap_resolve_device(m->netmap, *name)) {
                                cJSON *p = cJSON_CreateObject();
                                _cleanup_free_ char *text = NULL;
                                if (asprintf(&text, "no peer named '%s' in the mesh", *name) < 0)
                                        text = NULL;
                                cJSON_AddStringToObject(p, "message", text ? text : "unknown peer");
                                cJSON_AddStringToObject(p, "peer", *name);
                                return api_call_reply_error(call, "io.meshd.PeerNotFound", p);
                        }

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->manager = m;
        w->call = api_call_ref(call);
        w->peers = TAKE_PTR(owned);
        w->any = any;
        if (timeout_usec > 0) {
                r = sd_event_add_time_relative(m->event, &w->timeout, CLOCK_MONOTONIC, timeout_usec, 0,
                                               on_wait_online_timeout, w);
                if (r < 0) {
                        wait_online_request_free(w);
                        return r;
                }
        }
        w->next = m->wait_online_requests;
        m->wait_online_requests = w;

        if (m->device_configured) {
                _cleanup_free_ OnlinePeerView *views = NULL;
                size_t n_views = 0;
                r = manager_peer_views(m, &views, &n_views);
                if (r < 0)
                        return r;
                manager_check_wait_online(m, views, n_views);
        }
        return 0;
}
