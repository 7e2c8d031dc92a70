/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "probe-packet.h"

static const uint8_t probe_magic[4] = { 'M', 'S', 'H', 'P' };

void probe_packet_encode(const ProbePacket *p, uint8_t buf[static PROBE_PACKET_SIZE]) {
        uint32_t seq = htonl(p->seq);
        memcpy(buf, probe_magic, 4);
        buf[4] = p->type;
        buf[5] = buf[6] = buf[7] = 0;
        memcpy(buf + 8, &seq, 4);
}

int probe_packet_decode(const uint8_t *buf, size_t len, ProbePacket *ret) {
        uint32_t seq;

        if (len != PROBE_PACKET_SIZE || memcmp(buf, probe_magic, 4) != 0)
                return -EBADMSG;
        if (buf[4] != PROBE_REQUEST && buf[4] != PROBE_REPLY)
                return -EBADMSG;
        if (buf[5] || buf[6] || buf[7])
                return -EBADMSG;
        memcpy(&seq, buf + 8, 4);
        *ret = (ProbePacket) { .type = buf[4], .seq = ntohl(seq) };
        return 0;
}
