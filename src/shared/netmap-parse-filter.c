/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The netmap's "filter" from JSON (netmap-filter.h), bounded as
 * docs/protocol.md says: what a hostile server sends cannot make the node's
 * firewall table unbounded. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>

#include "error-message.h"
#include "netmap-filter.h"

#define fail(ret_error, ...) error_setf(ret_error, -EBADMSG, __VA_ARGS__)

static bool prefix_has_host_bits(const InAddrPrefix *p) {
        size_t bytes = p->family == AF_INET ? 4 : 16;

        for (size_t i = 0; i < bytes; i++) {
                unsigned bit0 = (unsigned) i * 8;
                uint8_t mask;

                if (bit0 + 8 <= p->prefixlen)
                        continue;
                mask = bit0 >= p->prefixlen ? 0xff : (uint8_t) (0xffu >> (p->prefixlen - bit0));
                if (p->address.bytes[i] & mask)
                        return true;
        }
        return false;
}

static int parse_prefixes(const cJSON *entry, const char *key, const char *path, InAddrPrefix **ret,
                          size_t *ret_n, char **ret_error) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(entry, key), *e;
        size_t n, i = 0;

        if (!cJSON_IsArray(list))
                return fail(ret_error, "%s%s: not an array", path, key);
        n = (size_t) cJSON_GetArraySize(list);
        if (n == 0)
                return fail(ret_error, "%s%s: empty", path, key);
        if (n > NETMAP_FILTER_PREFIXES_MAX)
                return fail(ret_error, "%s%s: more than %d prefixes", path, key, NETMAP_FILTER_PREFIXES_MAX);

        *ret = calloc(n, sizeof(InAddrPrefix));
        if (!*ret)
                return -ENOMEM;
        cJSON_ArrayForEach(e, list) {
                InAddrPrefix *p = &(*ret)[i];

                if (!cJSON_IsString(e) || !e->valuestring)
                        return fail(ret_error, "%s%s[%zu]: not a string", path, key, i);
                if (in_addr_prefix_parse(e->valuestring, &p->family, &p->address, &p->prefixlen) < 0)
                        return fail(ret_error, "%s%s[%zu]: '%s' is not an IP prefix", path, key, i,
                                    e->valuestring);
                if (prefix_has_host_bits(p))
                        return fail(ret_error, "%s%s[%zu]: '%s' has host bits set", path, key, i,
                                    e->valuestring);
                i++;
        }
        *ret_n = n;
        return 0;
}

static int parse_ports(const cJSON *entry, const char *path, NetmapFilterEntry *f, char **ret_error) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(entry, "ports"), *e;
        size_t n, i = 0;

        if (!cJSON_IsArray(list))
                return fail(ret_error, "%sports: not an array", path);
        n = (size_t) cJSON_GetArraySize(list);
        if (n > NETMAP_FILTER_PORTS_MAX)
                return fail(ret_error, "%sports: more than %d items", path, NETMAP_FILTER_PORTS_MAX);
        if (n == 0)
                return 0;

        f->ports = calloc(n, sizeof(NetmapFilterPort));
        if (!f->ports)
                return -ENOMEM;
        cJSON_ArrayForEach(e, list) {
                if (!cJSON_IsString(e) || !e->valuestring)
                        return fail(ret_error, "%sports[%zu]: not a string", path, i);
                if (netmap_filter_port_parse(e->valuestring, &f->ports[i]) < 0)
                        return fail(ret_error,
                                    "%sports[%zu]: '%s' is not PORT/PROTO, FIRST-LAST/PROTO or PROTO", path, i,
                                    e->valuestring);
                i++;
        }
        f->n_ports = n;
        return 0;
}

static int parse_entry(const cJSON *e, const char *path, NetmapFilterEntry *f, char **ret_error) {
        int r;

        if (!cJSON_IsObject(e))
                return fail(ret_error, "%.*s: not an object", (int) strlen(path) - 1, path);
        r = parse_prefixes(e, "src", path, &f->src, &f->n_src, ret_error);
        if (r < 0)
                return r;
        r = parse_prefixes(e, "dst", path, &f->dst, &f->n_dst, ret_error);
        if (r < 0)
                return r;
        return parse_ports(e, path, f, ret_error);
}

int netmap_filter_from_json(const cJSON *item, const char *prefix, NetmapFilter **ret, char **ret_error) {
        NetmapFilter *f;
        const cJSON *e;
        size_t n;
        int r;

        if (!cJSON_IsArray(item))
                return fail(ret_error, "%sfilter: not an array", prefix);
        n = (size_t) cJSON_GetArraySize(item);
        if (n > NETMAP_FILTER_ENTRIES_MAX)
                return fail(ret_error, "%sfilter: more than %d entries", prefix, NETMAP_FILTER_ENTRIES_MAX);

        f = calloc(1, sizeof(NetmapFilter));
        if (!f)
                return -ENOMEM;
        if (n > 0) {
                f->entries = calloc(n, sizeof(NetmapFilterEntry));
                if (!f->entries) {
                        free(f);
                        return -ENOMEM;
                }
        }

        cJSON_ArrayForEach(e, item) {
                char path[64];

                snprintf(path, sizeof(path), "%sfilter[%zu].", prefix, f->n_entries);
                /* Counted before parsing, so a half-parsed entry is freed too. */
                r = parse_entry(e, path, &f->entries[f->n_entries++], ret_error);
                if (r < 0) {
                        netmap_filter_free(f);
                        return r;
                }
        }
        *ret = f;
        return 0;
}
