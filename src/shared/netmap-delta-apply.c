/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A NETMAP DELTA applied to the parsed netmap it is based on. Merging it
 * into the base's text and parsing the result (netmap-delta.c,
 * netmap-parse.c) costs tens of milliseconds for 10,000 peers, for one
 * changed peer; here only the delta is parsed, the changed peers are
 * checked against the others, and the rest is copied. It takes only the
 * common delta; anything else is -EAGAIN, and the caller takes the text
 * path, which then gives the same netmap or the same error. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "netmap.h"
#include "strv.h"

/* More changed peers than this are checked by the text path (sorting all
 * of them), not here against each of the others. */
#define DELTA_APPLY_CHANGED_MAX 64

static inline void cjson_deletep(cJSON **j) {
        if (*j)
                cJSON_Delete(*j);
}

/* The key of a peers_removed entry, only in the canonical text the base's
 * keys have: the text path compares the strings. */
static int removed_key(const cJSON *e, WgKey *ret) {
        char b64[WG_KEY_B64_LEN + 1];

        if (!cJSON_IsString(e) || key_from_base64(e->valuestring, ret) < 0)
                return -EAGAIN;
        key_to_base64(ret, b64);
        return streq(b64, e->valuestring) ? 0 : -EAGAIN;
}

/* The delta as a netmap of its own: header, self, hub and, as "peers", the
 * changed ones, parsed and checked among themselves by netmap_from_json(). */
static int parse_delta(cJSON *d, const Netmap *base, Netmap **ret, cJSON **ret_removed) {
        cJSON *from = cJSON_GetObjectItemCaseSensitive(d, "delta_from"), *changed, *removed;
        _cleanup_(netmap_freep) Netmap *c = NULL;

        if (!cJSON_IsNumber(from) || from->valuedouble != (double) base->version)
                return -EAGAIN;
        /* a delta that carries these is rare, and its merge has its own rules */
        if (cJSON_GetObjectItemCaseSensitive(d, "peers") || cJSON_GetObjectItemCaseSensitive(d, "filter"))
                return -EAGAIN;
        if (cJSON_GetObjectItemCaseSensitive(d, "devices") &&
            !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(d, "devices")))
                return -EAGAIN;
        changed = cJSON_DetachItemFromObjectCaseSensitive(d, "peers_changed");
        if (!cJSON_IsArray(changed) || cJSON_GetArraySize(changed) > DELTA_APPLY_CHANGED_MAX ||
            !cJSON_AddItemToObject(d, "peers", changed)) {
                cJSON_Delete(changed);
                return -EAGAIN;
        }
        removed = cJSON_GetObjectItemCaseSensitive(d, "peers_removed");
        if (!cJSON_IsArray(removed) || cJSON_GetArraySize(removed) > DELTA_APPLY_CHANGED_MAX)
                return -EAGAIN;
        if (netmap_from_json(d, &c, NULL) < 0)
                return -EAGAIN;
        /* the base's peers were checked against its ranges: those must stay */
        if (!streq(c->domain, base->domain) || c->has_ipv6_range != base->has_ipv6_range ||
            c->ipv4_prefixlen != base->ipv4_prefixlen || c->ipv6_prefixlen != base->ipv6_prefixlen ||
            memcmp(&c->ipv4_range, &base->ipv4_range, sizeof(c->ipv4_range)) != 0 ||
            memcmp(&c->ipv6_range, &base->ipv6_range, sizeof(c->ipv6_range)) != 0)
                return -EAGAIN;
        *ret = TAKE_PTR(c);
        *ret_removed = removed;
        return 0;
}

static bool node_clashes(const NetmapNode *a, const NetmapNode *b, bool names) {
        return (names && streq(a->name, b->name)) || key_equal_public(&a->public_key, &b->public_key) ||
               memcmp(&a->ipv4.in, &b->ipv4.in, sizeof(struct in_addr)) == 0 ||
               (a->has_ipv6 && b->has_ipv6 && memcmp(&a->ipv6.in6, &b->ipv6.in6, sizeof(struct in6_addr)) == 0);
}

/* What netmap_parse() checks across nodes, for a node of the base that
 * stays (kept): no name, key or address shared with self, a changed peer,
 * or the hub (no name there). */
static bool kept_node_clashes(const Netmap *c, const NetmapNode *kept) {
        if (node_clashes(kept, &c->self, true) || (c->has_hub && node_clashes(kept, &c->hub, false)))
                return true;
        for (size_t j = 0; j < c->n_peers; j++)
                if (node_clashes(kept, &c->peers[j], true))
                        return true;
        return false;
}

static int node_copy(const NetmapNode *s, NetmapNode *d) {
        *d = *s;
        d->name = NULL;
        d->endpoints = d->routes = NULL;
        d->name = strdup(s->name);
        if (!d->name)
                return -ENOMEM;
        if (s->endpoints && strv_copy(s->endpoints, &d->endpoints) < 0)
                return -ENOMEM;
        if (s->routes && strv_copy(s->routes, &d->routes) < 0)
                return -ENOMEM;
        return 0;
}

static bool key_in(const WgKey *k, const WgKey *keys, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (key_equal_public(k, &keys[i]))
                        return true;
        return false;
}

/* The base's peers that stay (in their order), then the changed ones:
 * the order of the text path. gone: the keys of both changed and removed. */
static int merge_peers(Netmap *c, const Netmap *base, const WgKey *gone, size_t n_gone) {
        _cleanup_free_ NetmapNode *peers = calloc(base->n_peers + c->n_peers + 1, sizeof(NetmapNode));
        size_t n = 0;
        int r = 0;

        if (!peers)
                return -ENOMEM;
        for (size_t i = 0; r >= 0 && i < base->n_peers; i++) {
                const NetmapNode *p = &base->peers[i];

                if (key_in(&p->public_key, gone, n_gone))
                        continue;
                if (kept_node_clashes(c, p))
                        r = -EAGAIN;
                else
                        r = node_copy(p, &peers[n++]); /* counted before: a half copy is freed too */
        }
        if (r < 0) {
                for (size_t i = 0; i < n; i++) {
                        free(peers[i].name);
                        strv_free(peers[i].endpoints);
                        strv_free(peers[i].routes);
                }
                return r;
        }
        /* c's own peers move over: c then holds the whole list */
        if (c->n_peers > 0)
                memcpy(peers + n, c->peers, c->n_peers * sizeof(NetmapNode));
        free(c->peers);
        c->peers = TAKE_PTR(peers);
        c->n_peers += n;
        return 0;
}

/* The base's devices stay (a delta without "devices"): they must not clash
 * with a changed peer, self or the hub. */
static int copy_devices(Netmap *c, const Netmap *base, size_t first_changed) {
        if (base->n_devices == 0)
                return 0;
        c->devices = calloc(base->n_devices, sizeof(NetmapNode));
        if (!c->devices)
                return -ENOMEM;
        for (size_t i = 0; i < base->n_devices; i++) {
                const NetmapNode *dev = &base->devices[i];

                if (node_clashes(dev, &c->self, true) || (c->has_hub && node_clashes(dev, &c->hub, false)))
                        return -EAGAIN;
                for (size_t j = first_changed; j < c->n_peers; j++)
                        if (node_clashes(dev, &c->peers[j], true))
                                return -EAGAIN;
                if (node_copy(dev, &c->devices[c->n_devices++]) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int netmap_delta_apply(const Netmap *base, const char *delta, size_t delta_len, Netmap **ret) {
        __attribute__((cleanup(cjson_deletep))) cJSON *d = NULL;
        _cleanup_(netmap_freep) Netmap *c = NULL;
        WgKey gone[2 * DELTA_APPLY_CHANGED_MAX];
        size_t n_gone = 0, n_changed;
        cJSON *removed = NULL, *e;
        int r;

        if (!base || !delta || !ret)
                return -EINVAL;
        d = cJSON_ParseWithLength(delta, delta_len);
        if (!cJSON_IsObject(d))
                return -EAGAIN;
        r = parse_delta(d, base, &c, &removed);
        if (r < 0)
                return r;
        n_changed = c->n_peers;
        for (size_t i = 0; i < n_changed; i++)
                gone[n_gone++] = c->peers[i].public_key;
        cJSON_ArrayForEach(e, removed) {
                r = removed_key(e, &gone[n_gone++]);
                if (r < 0)
                        return r;
        }

        r = merge_peers(c, base, gone, n_gone);
        if (r < 0)
                return r;
        r = copy_devices(c, base, c->n_peers - n_changed);
        if (r < 0)
                return r;
        if (base->filter) {
                r = netmap_filter_copy(base->filter, &c->filter);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}
