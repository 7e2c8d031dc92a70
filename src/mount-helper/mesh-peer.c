/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <strings.h>

#include "macro.h"
#include "mesh-peer.h"

/* WireGuard re-handshakes every 2 minutes while traffic flows; older than
 * this means there is no session. */
#define HANDSHAKE_STALE_USEC (180 * USEC_PER_SEC)

static const char *node_string(const cJSON *node, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(node, key);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool name_equal(const char *a, const char *b) {
        size_t la, lb;

        if (!a || !b)
                return false;
        la = strlen(a);
        lb = strlen(b);
        if (la > 0 && a[la - 1] == '.')
                la--;
        if (lb > 0 && b[lb - 1] == '.')
                lb--;
        return la == lb && la > 0 && strncasecmp(a, b, la) == 0;
}

bool mesh_node_matches(const cJSON *node, const char *name_or_address) {
        if (!cJSON_IsObject(node) || !name_or_address)
                return false;
        return name_equal(node_string(node, "name"), name_or_address) ||
               name_equal(node_string(node, "fqdn"), name_or_address) ||
               streq_ptr(node_string(node, "ipv4"), name_or_address) ||
               (node_string(node, "ipv6") && strcasecmp(node_string(node, "ipv6"), name_or_address) == 0);
}

const cJSON *mesh_peer_find(const cJSON *reply, const char *name_or_address) {
        const cJSON *peers = cJSON_GetObjectItemCaseSensitive(reply, "peers"), *p;

        if (!cJSON_IsArray(peers))
                return NULL;
        cJSON_ArrayForEach(p, peers)
                if (mesh_node_matches(p, name_or_address))
                        return p;
        return NULL;
}

const char *mesh_node_address(const cJSON *node, bool want_ipv6) {
        const char *a6 = node_string(node, "ipv6"), *a4 = node_string(node, "ipv4");

        if (want_ipv6 && a6 && *a6)
                return a6;
        return a4 && *a4 ? a4 : NULL;
}

const char *mesh_peer_unreachable_reason(const cJSON *peer, uint64_t now_usec) {
        const cJSON *hs = cJSON_GetObjectItemCaseSensitive(peer, "last_handshake_usec");
        uint64_t t;

        if (!cJSON_IsNumber(hs) || hs->valuedouble <= 0)
                return "no handshake";
        t = (uint64_t) hs->valuedouble;
        if (t + HANDSHAKE_STALE_USEC < now_usec)
                return "no handshake";
        return "no probe reply";
}

void format_timeout(uint64_t usec, char *buf, size_t size) {
        if (usec % USEC_PER_SEC == 0 || usec > 10 * USEC_PER_SEC)
                snprintf(buf, size, "%llus", (unsigned long long) ((usec + USEC_PER_SEC / 2) / USEC_PER_SEC));
        else
                snprintf(buf, size, "%llums", (unsigned long long) (usec / USEC_PER_MSEC));
}
