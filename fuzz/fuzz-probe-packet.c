/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Probe datagrams (docs/api.md, "Probes") arrive from the tunnel, and at
 * the hub from any node. The input is one datagram: what decodes must
 * encode back to the same bytes, and any decoded packet's fields, encoded,
 * must decode to themselves. */

#include "fuzz.h"
#include "probe-packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t buf[PROBE_PACKET_SIZE];
        ProbePacket p, q;
        int r;

        r = probe_packet_decode(data, size, &p);
        fuzz_check(r == 0 || r == -EBADMSG);
        if (r == 0) {
                fuzz_check(size == PROBE_PACKET_SIZE);
                fuzz_check(p.type == PROBE_REQUEST || p.type == PROBE_REPLY);
                probe_packet_encode(&p, buf);
                fuzz_check(memcmp(buf, data, PROBE_PACKET_SIZE) == 0);
        }

        /* The answer a node sends: the same packet as a reply. */
        if (size >= 5) {
                p = (ProbePacket) {
                        .type = (data[0] & 1) ? PROBE_REPLY : PROBE_REQUEST,
                        .seq = (uint32_t) data[1] << 24 | (uint32_t) data[2] << 16 | (uint32_t) data[3] << 8 |
                               data[4],
                };
                probe_packet_encode(&p, buf);
                fuzz_check(probe_packet_decode(buf, sizeof(buf), &q) == 0);
                fuzz_check(q.type == p.type && q.seq == p.seq);
        }
        return 0;
}
