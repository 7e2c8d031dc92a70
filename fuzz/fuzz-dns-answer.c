/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Mesh DNS queries arrive from any program on a node, and at the hub from
 * every device: the input is one query datagram (UDP, or one TCP message).
 * Whatever it is, dns_answer() gives a verdict; a reply parses, answers the
 * query's ID, has QR set and fits the size it was given; an upstream reply
 * truncated or a SERVFAIL made for it parse too. */

#include <ldns/ldns.h>

#include "dns-answer.h"
#include "fuzz.h"

static DnsNameTable *fuzz_table(void) {
        DnsNameTable *t = NULL;
        struct in_addr r4 = { htonl(0x64400000) }, a4 = { htonl(0x64400002) }, b4 = { htonl(0x64400003) };
        struct in6_addr r6 = { { { 0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0 } } }, a6 = r6;

        a6.s6_addr[15] = 2;
        fuzz_check(dns_name_table_new("mesh.internal", &r4, 10, &r6, 48, &t) == 0);
        fuzz_check(dns_name_table_add(t, "alpha", &a4, &a6) == 0);
        fuzz_check(dns_name_table_add(t, "beta", &b4, NULL) == 0);
        fuzz_check(dns_name_table_seal(t) == 0);
        return t;
}

static void check_reply(const uint8_t *query, const uint8_t *reply, size_t size, size_t max_size) {
        ldns_pkt *p = NULL;

        fuzz_check(reply && size >= DNS_HEADER_SIZE && size <= MAX(max_size, DNS_HEADER_SIZE));
        fuzz_check(ldns_wire2pkt(&p, reply, size) == LDNS_STATUS_OK);
        fuzz_check(ldns_pkt_qr(p));
        fuzz_check(ldns_pkt_id(p) == (uint16_t) (query[0] << 8 | query[1]));
        ldns_pkt_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static DnsNameTable *t = NULL;
        uint8_t *reply = NULL, *other = NULL;
        size_t reply_size = 0, other_size = 0, max_size;
        int r;

        fuzz_quiet_logs();
        if (!t)
                t = fuzz_table(); /* one table for the whole run: building it is not under test */

        max_size = dns_query_max_udp_size(data, size);
        fuzz_check(max_size >= DNS_UDP_PAYLOAD_MIN && max_size <= DNS_UDP_PAYLOAD_MAX);

        r = dns_answer(t, data, size, max_size, &reply, &reply_size);
        fuzz_check(r == DNS_VERDICT_REPLY || r == DNS_VERDICT_FORWARD || r == DNS_VERDICT_DROP);
        if (r == DNS_VERDICT_REPLY)
                check_reply(data, reply, reply_size, max_size);
        else
                fuzz_check(!reply);
        free(reply);

        /* no table yet: never answers a name, only errors */
        r = dns_answer(NULL, data, size, 65535, &reply, &reply_size);
        fuzz_check(r >= 0);
        free(reply);

        /* the input as an upstream's reply, and as the query of a SERVFAIL */
        r = dns_reply_truncate(data, size, DNS_UDP_PAYLOAD_MIN, &other, &other_size);
        fuzz_check(r == 0 || r == -EBADMSG);
        if (r == 0)
                check_reply(data, other, other_size, SIZE_MAX);
        free(other);
        other = NULL;
        r = dns_answer_error(data, size, LDNS_RCODE_SERVFAIL, &other, &other_size);
        fuzz_check(r == 0 || r == -EBADMSG);
        if (r == 0)
                check_reply(data, other, other_size, SIZE_MAX);
        free(other);
        return 0;
}
