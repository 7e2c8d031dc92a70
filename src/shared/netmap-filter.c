/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The netmap's "filter": freeing and copying it, and the one grammar of its port items,
 * shared by the policy parser (control server) and the netmap parser (node). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netmap-filter.h"

static const char *const proto_names[_NETMAP_FILTER_PROTO_MAX] = {
        [NETMAP_FILTER_TCP] = "tcp",
        [NETMAP_FILTER_UDP] = "udp",
        [NETMAP_FILTER_ICMP] = "icmp",
};

NetmapFilter *netmap_filter_free(NetmapFilter *f) {
        if (!f)
                return NULL;

        for (size_t i = 0; i < f->n_entries; i++) {
                free(f->entries[i].src);
                free(f->entries[i].dst);
                free(f->entries[i].ports);
        }
        free(f->entries);
        free(f);
        return NULL;
}

static int copy_array(const void *src, size_t n, size_t size, void **ret) {
        *ret = NULL;
        if (n == 0)
                return 0;
        *ret = malloc(n * size);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, src, n * size);
        return 0;
}

int netmap_filter_copy(const NetmapFilter *f, NetmapFilter **ret) {
        _cleanup_(netmap_filter_freep) NetmapFilter *c = calloc(1, sizeof(NetmapFilter));

        if (!c)
                return -ENOMEM;
        if (f->n_entries > 0) {
                c->entries = calloc(f->n_entries, sizeof(NetmapFilterEntry));
                if (!c->entries)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < f->n_entries; i++) {
                const NetmapFilterEntry *s = &f->entries[i];
                NetmapFilterEntry *d = &c->entries[c->n_entries++];

                if (copy_array(s->src, s->n_src, sizeof(*s->src), (void **) &d->src) < 0 ||
                    copy_array(s->dst, s->n_dst, sizeof(*s->dst), (void **) &d->dst) < 0 ||
                    copy_array(s->ports, s->n_ports, sizeof(*s->ports), (void **) &d->ports) < 0)
                        return -ENOMEM;
                d->n_src = s->n_src;
                d->n_dst = s->n_dst;
                d->n_ports = s->n_ports;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

const char *netmap_filter_proto_to_string(NetmapFilterProto p) {
        if ((unsigned) p >= _NETMAP_FILTER_PROTO_MAX)
                return NULL;
        return proto_names[p];
}

static int proto_from_string(const char *s, size_t len, NetmapFilterProto *ret) {
        for (NetmapFilterProto p = 0; p < _NETMAP_FILTER_PROTO_MAX; p++)
                if (strlen(proto_names[p]) == len && strncmp(s, proto_names[p], len) == 0) {
                        *ret = p;
                        return 0;
                }
        return -EINVAL;
}

/* Decimal 1..65535, no sign, no leading zeros, exactly len characters. */
static int port_number(const char *s, size_t len, uint16_t *ret) {
        unsigned v = 0;

        if (len == 0 || len > 5 || s[0] == '0')
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        if (v > 65535)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

int netmap_filter_port_parse(const char *s, NetmapFilterPort *ret) {
        NetmapFilterPort p = {};
        const char *slash, *dash;

        if (!s || !ret)
                return -EINVAL;

        slash = strchr(s, '/');
        if (!slash) {
                if (proto_from_string(s, strlen(s), &p.proto) < 0)
                        return -EINVAL;
                p.port_last = p.proto == NETMAP_FILTER_ICMP ? 0 : 65535;
                *ret = p;
                return 0;
        }

        if (proto_from_string(slash + 1, strlen(slash + 1), &p.proto) < 0 || p.proto == NETMAP_FILTER_ICMP)
                return -EINVAL;

        dash = memchr(s, '-', (size_t) (slash - s));
        if (dash) {
                if (port_number(s, (size_t) (dash - s), &p.port_first) < 0 ||
                    port_number(dash + 1, (size_t) (slash - dash - 1), &p.port_last) < 0 ||
                    p.port_first > p.port_last)
                        return -EINVAL;
        } else {
                if (port_number(s, (size_t) (slash - s), &p.port_first) < 0)
                        return -EINVAL;
                p.port_last = p.port_first;
        }

        *ret = p;
        return 0;
}

const char *netmap_filter_port_format(const NetmapFilterPort *p, char *buf, size_t len) {
        const char *proto = netmap_filter_proto_to_string(p->proto);

        if (!proto)
                return NULL;
        if (p->proto == NETMAP_FILTER_ICMP || (p->port_first == 0 && p->port_last == 65535))
                snprintf(buf, len, "%s", proto);
        else if (p->port_first == p->port_last)
                snprintf(buf, len, "%u/%s", p->port_first, proto);
        else
                snprintf(buf, len, "%u-%u/%s", p->port_first, p->port_last, proto);
        return buf;
}
