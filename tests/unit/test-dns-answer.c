/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dns-answer.h"
#include "macro.h"

/* Queries are built with ldns, replies read back with it: the test checks
 * the verdicts and rcodes, not our own reading of the wire format. */

static DnsNameTable *table(void) {
        DnsNameTable *t = NULL;
        struct in_addr r4, a4, b4;
        struct in6_addr r6, a6;

        assert_int_equal(inet_pton(AF_INET, "100.64.0.0", &r4), 1);
        assert_int_equal(inet_pton(AF_INET6, "fd7a:115c:a1e0::", &r6), 1);
        assert_int_equal(inet_pton(AF_INET, "100.64.0.2", &a4), 1);
        assert_int_equal(inet_pton(AF_INET6, "fd7a:115c:a1e0::2", &a6), 1);
        assert_int_equal(inet_pton(AF_INET, "100.64.0.3", &b4), 1);
        assert_int_equal(dns_name_table_new("mesh.internal", &r4, 10, &r6, 48, &t), 0);
        assert_int_equal(dns_name_table_add(t, "alpha", &a4, &a6), 0);
        assert_int_equal(dns_name_table_add(t, "beta", &b4, NULL), 0);
        assert_int_equal(dns_name_table_add(t, "Not a label", &b4, NULL), -EINVAL);
        assert_int_equal(dns_name_table_seal(t), 0);
        return t;
}

static void query_wire(const char *name, ldns_rr_type type, bool edns, uint8_t **ret, size_t *ret_size) {
        ldns_pkt *q = NULL;

        assert_int_equal(ldns_pkt_query_new_frm_str(&q, name, type, LDNS_RR_CLASS_IN, LDNS_RD), LDNS_STATUS_OK);
        ldns_pkt_set_id(q, 0x4242);
        if (edns)
                ldns_pkt_set_edns_udp_size(q, 4096);
        assert_int_equal(ldns_pkt2wire(ret, q, ret_size), LDNS_STATUS_OK);
        ldns_pkt_free(q);
}

/* Answers wire with t; returns the parsed reply (NULL for forward/drop). */
static ldns_pkt *answer_wire(const DnsNameTable *t, const uint8_t *wire, size_t size, int expected_verdict) {
        _cleanup_free_ uint8_t *reply = NULL;
        size_t reply_size = 0;
        ldns_pkt *p = NULL;

        assert_int_equal(dns_answer(t, wire, size, 512, &reply, &reply_size), expected_verdict);
        if (expected_verdict != DNS_VERDICT_REPLY) {
                assert_null(reply);
                return NULL;
        }
        assert_non_null(reply);
        assert_true(reply_size <= 512);
        assert_int_equal(ldns_wire2pkt(&p, reply, reply_size), LDNS_STATUS_OK);
        assert_true(ldns_pkt_qr(p));
        return p;
}

static ldns_pkt *ask(const DnsNameTable *t, const char *name, ldns_rr_type type, int expected_verdict) {
        _cleanup_free_ uint8_t *wire = NULL;
        size_t size;
        ldns_pkt *p;

        query_wire(name, type, false, &wire, &size);
        p = answer_wire(t, wire, size, expected_verdict);
        if (p) {
                assert_int_equal(ldns_pkt_id(p), 0x4242);
                assert_true(ldns_pkt_rd(p));
                assert_int_equal(ldns_pkt_qdcount(p), 1);
        }
        return p;
}

static void check_rcode(const DnsNameTable *t, const char *name, ldns_rr_type type, ldns_pkt_rcode rcode,
                        size_t ancount) {
        ldns_pkt *p = ask(t, name, type, DNS_VERDICT_REPLY);

        assert_int_equal(ldns_pkt_get_rcode(p), rcode);
        assert_int_equal(ldns_pkt_ancount(p), ancount);
        ldns_pkt_free(p);
}

static void check_answer(const DnsNameTable *t, const char *name, ldns_rr_type type, const char *rdata) {
        ldns_pkt *p = ask(t, name, type, DNS_VERDICT_REPLY);
        _cleanup_free_ char *s = NULL;

        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
        assert_true(ldns_pkt_aa(p));
        assert_int_equal(ldns_pkt_ancount(p), 1);
        ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(p), 0);
        assert_int_equal(ldns_rr_get_type(rr), type);
        assert_int_equal(ldns_rr_ttl(rr), DNS_ANSWER_TTL);
        s = ldns_rdf2str(ldns_rr_rdf(rr, 0));
        assert_string_equal(s, rdata);
        ldns_pkt_free(p);
}

static void test_addresses(void **state) {
        _cleanup_(dns_name_table_freep) DnsNameTable *t = table();

        check_answer(t, "alpha.mesh.internal", LDNS_RR_TYPE_A, "100.64.0.2");
        check_answer(t, "ALPHA.Mesh.Internal.", LDNS_RR_TYPE_A, "100.64.0.2");
        check_answer(t, "alpha.mesh.internal", LDNS_RR_TYPE_AAAA, "fd7a:115c:a1e0::2");
        check_answer(t, "beta.mesh.internal", LDNS_RR_TYPE_A, "100.64.0.3");
        check_rcode(t, "alpha.mesh.internal", LDNS_RR_TYPE_ANY, LDNS_RCODE_NOERROR, 2);
}

static void test_nodata(void **state) {
        _cleanup_(dns_name_table_freep) DnsNameTable *t = table();
        ldns_pkt *p;

        /* beta has no IPv6; alpha has no MX: NOERROR, empty answer, the SOA */
        check_rcode(t, "beta.mesh.internal", LDNS_RR_TYPE_AAAA, LDNS_RCODE_NOERROR, 0);
        p = ask(t, "alpha.mesh.internal", LDNS_RR_TYPE_MX, DNS_VERDICT_REPLY);
        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
        assert_int_equal(ldns_pkt_ancount(p), 0);
        assert_int_equal(ldns_pkt_nscount(p), 1);
        assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_authority(p), 0)), LDNS_RR_TYPE_SOA);
        ldns_pkt_free(p);

        check_rcode(t, "mesh.internal", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, 0);
        check_rcode(t, "mesh.internal", LDNS_RR_TYPE_SOA, LDNS_RCODE_NOERROR, 1);
}

static void test_nxdomain(void **state) {
        _cleanup_(dns_name_table_freep) DnsNameTable *t = table();
        ldns_pkt *p;

        p = ask(t, "nobody.mesh.internal", LDNS_RR_TYPE_A, DNS_VERDICT_REPLY);
        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
        assert_true(ldns_pkt_aa(p));
        assert_int_equal(ldns_pkt_nscount(p), 1);
        ldns_pkt_free(p);

        check_rcode(t, "a.alpha.mesh.internal", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, 0);
        check_rcode(t, "alph.mesh.internal", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, 0);
        check_rcode(t, "alpha\\000.mesh.internal", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, 0);
        check_rcode(t, "\\195\\164.mesh.internal", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, 0);
        /* a dot inside a label is not a subdomain */
        ldns_pkt_free(ask(t, "x\\.mesh.internal", LDNS_RR_TYPE_A, DNS_VERDICT_FORWARD));
}

static void test_reverse(void **state) {
        _cleanup_(dns_name_table_freep) DnsNameTable *t = table();

        check_answer(t, "2.0.64.100.in-addr.arpa", LDNS_RR_TYPE_PTR, "alpha.mesh.internal.");
        check_answer(t, "3.0.64.100.IN-ADDR.ARPA.", LDNS_RR_TYPE_PTR, "beta.mesh.internal.");
        check_answer(t, "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa",
                     LDNS_RR_TYPE_PTR, "alpha.mesh.internal.");
        check_rcode(t, "9.0.64.100.in-addr.arpa", LDNS_RR_TYPE_PTR, LDNS_RCODE_NXDOMAIN, 0);
        check_rcode(t, "x.2.0.64.100.in-addr.arpa", LDNS_RR_TYPE_PTR, LDNS_RCODE_NXDOMAIN, 0);
        check_rcode(t, "02.0.64.100.in-addr.arpa", LDNS_RR_TYPE_PTR, LDNS_RCODE_NXDOMAIN, 0);
        check_rcode(t, "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa",
                    LDNS_RR_TYPE_PTR, LDNS_RCODE_NXDOMAIN, 0);
        /* above a known address: an empty non-terminal, NODATA */
        check_rcode(t, "0.64.100.in-addr.arpa", LDNS_RR_TYPE_PTR, LDNS_RCODE_NOERROR, 0);
        check_rcode(t, "2.0.64.100.in-addr.arpa", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, 0);
        /* outside the ranges, or above them: the upstream's */
        ldns_pkt_free(ask(t, "1.1.168.192.in-addr.arpa", LDNS_RR_TYPE_PTR, DNS_VERDICT_FORWARD));
        ldns_pkt_free(ask(t, "100.in-addr.arpa", LDNS_RR_TYPE_PTR, DNS_VERDICT_FORWARD));
        ldns_pkt_free(ask(t, "2.0.128.100.in-addr.arpa", LDNS_RR_TYPE_PTR, DNS_VERDICT_FORWARD));
}

static void test_forward(void **state) {
        _cleanup_(dns_name_table_freep) DnsNameTable *t = table();

        assert_null(ask(t, "example.test", LDNS_RR_TYPE_A, DNS_VERDICT_FORWARD));
        assert_null(ask(t, "internal", LDNS_RR_TYPE_A, DNS_VERDICT_FORWARD));
        assert_null(ask(t, ".", LDNS_RR_TYPE_NS, DNS_VERDICT_FORWARD));
        assert_null(ask(t, "mesh.internal.example", LDNS_RR_TYPE_A, DNS_VERDICT_FORWARD));
        /* no table yet: everything is forwarded */
        assert_null(ask(NULL, "alpha.mesh.internal", LDNS_RR_TYPE_A, DNS_VERDICT_FORWARD));
}

static void test_refused(void **state) {
        _cleanup_(dns_name_table_freep) DnsNameTable *t = table();

        check_rcode(t, "mesh.internal", LDNS_RR_TYPE_AXFR, LDNS_RCODE_REFUSED, 0);
}

static void test_malformed(void **state) {
        _cleanup_(dns_name_table_freep) DnsNameTable *t = table();
        _cleanup_free_ uint8_t *wire = NULL;
        uint8_t buf[600];
        size_t size;
        ldns_pkt *p;

        query_wire("alpha.mesh.internal", LDNS_RR_TYPE_A, false, &wire, &size);

        /* shorter than a header, or a reply: nothing */
        answer_wire(t, wire, 5, DNS_VERDICT_DROP);
        memcpy(buf, wire, size);
        buf[2] |= 0x80;
        answer_wire(t, buf, size, DNS_VERDICT_DROP);

        /* truncated question */
        p = answer_wire(t, wire, size - 3, DNS_VERDICT_REPLY);
        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_FORMERR);
        assert_int_equal(ldns_pkt_id(p), 0x4242);
        ldns_pkt_free(p);

        /* two questions (QDCOUNT 2, the question twice) */
        memcpy(buf, wire, size);
        memcpy(buf + size, wire + DNS_HEADER_SIZE, size - DNS_HEADER_SIZE);
        buf[5] = 2;
        p = answer_wire(t, buf, 2 * size - DNS_HEADER_SIZE, DNS_VERDICT_REPLY);
        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_FORMERR);
        ldns_pkt_free(p);

        /* no question */
        memcpy(buf, wire, DNS_HEADER_SIZE);
        buf[5] = 0;
        p = answer_wire(t, buf, DNS_HEADER_SIZE, DNS_VERDICT_REPLY);
        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_FORMERR);
        ldns_pkt_free(p);

        /* a label of 64 bytes (its length byte reads as a pointer-like 0x40) */
        memcpy(buf, wire, DNS_HEADER_SIZE);
        buf[5] = 1;
        buf[DNS_HEADER_SIZE] = 64;
        memset(buf + DNS_HEADER_SIZE + 1, 'a', 64);
        memcpy(buf + DNS_HEADER_SIZE + 65, "\0\0\1\0\1", 5);
        p = answer_wire(t, buf, DNS_HEADER_SIZE + 70, DNS_VERDICT_REPLY);
        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_FORMERR);
        ldns_pkt_free(p);

        /* a name of more than 255 bytes: five labels of 63 */
        size = DNS_HEADER_SIZE;
        for (int i = 0; i < 5; i++) {
                buf[size] = 63;
                memset(buf + size + 1, 'a', 63);
                size += 64;
        }
        memcpy(buf + size, "\0\0\1\0\1", 5);
        p = answer_wire(t, buf, size + 5, DNS_VERDICT_REPLY);
        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_FORMERR);
        ldns_pkt_free(p);

        /* opcode STATUS (2): not implemented */
        memcpy(buf, wire, DNS_HEADER_SIZE);
        buf[2] = (uint8_t) (2 << 3);
        p = answer_wire(t, buf, DNS_HEADER_SIZE, DNS_VERDICT_REPLY);
        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOTIMPL);
        ldns_pkt_free(p);
}

static void test_edns_and_sizes(void **state) {
        _cleanup_(dns_name_table_freep) DnsNameTable *t = table();
        _cleanup_free_ uint8_t *wire = NULL, *plain = NULL, *reply = NULL, *cut = NULL;
        size_t size, plain_size, reply_size, cut_size;
        ldns_pkt *p;

        query_wire("alpha.mesh.internal", LDNS_RR_TYPE_A, true, &wire, &size);
        assert_int_equal(dns_query_max_udp_size(wire, size), DNS_UDP_PAYLOAD_MAX);
        query_wire("alpha.mesh.internal", LDNS_RR_TYPE_A, false, &plain, &plain_size);
        assert_int_equal(dns_query_max_udp_size(plain, plain_size), DNS_UDP_PAYLOAD_MIN);

        p = answer_wire(t, wire, size, DNS_VERDICT_REPLY);
        assert_true(ldns_pkt_edns(p));
        ldns_pkt_free(p);

        /* a reply that does not fit: header and question, TC */
        assert_int_equal(dns_answer(t, plain, plain_size, 40, &reply, &reply_size), DNS_VERDICT_REPLY);
        assert_int_equal(ldns_wire2pkt(&p, reply, reply_size), LDNS_STATUS_OK);
        assert_true(ldns_pkt_tc(p));
        assert_int_equal(ldns_pkt_ancount(p), 0);
        ldns_pkt_free(p);
        free(reply);
        reply = NULL;

        /* the same for an upstream's reply, and SERVFAIL for a lost one */
        assert_int_equal(dns_answer(t, plain, plain_size, 512, &reply, &reply_size), DNS_VERDICT_REPLY);
        assert_int_equal(dns_reply_truncate(reply, reply_size, 20, &cut, &cut_size), 0);
        assert_int_equal(ldns_wire2pkt(&p, cut, cut_size), LDNS_STATUS_OK);
        assert_true(ldns_pkt_tc(p));
        assert_int_equal(ldns_pkt_id(p), 0x4242);
        ldns_pkt_free(p);
        free(cut);
        cut = NULL;
        assert_int_equal(dns_reply_truncate(reply, 5, 20, &cut, &cut_size), -EBADMSG);

        assert_int_equal(dns_answer_error(plain, plain_size, LDNS_RCODE_SERVFAIL, &cut, &cut_size), 0);
        assert_int_equal(ldns_wire2pkt(&p, cut, cut_size), LDNS_STATUS_OK);
        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_SERVFAIL);
        assert_int_equal(ldns_pkt_qdcount(p), 1);
        ldns_pkt_free(p);
}

static void test_badvers(void **state) {
        _cleanup_(dns_name_table_freep) DnsNameTable *t = table();
        _cleanup_free_ uint8_t *wire = NULL;
        ldns_pkt *q = NULL, *p;
        size_t size;

        assert_int_equal(ldns_pkt_query_new_frm_str(&q, "example.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
                                                    LDNS_RD),
                         LDNS_STATUS_OK);
        ldns_pkt_set_edns_udp_size(q, 1232);
        ldns_pkt_set_edns_version(q, 1);
        assert_int_equal(ldns_pkt2wire(&wire, q, &size), LDNS_STATUS_OK);
        ldns_pkt_free(q);

        p = answer_wire(t, wire, size, DNS_VERDICT_REPLY);
        assert_true(ldns_pkt_edns(p));
        assert_int_equal(ldns_pkt_edns_extended_rcode(p), 1);
        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
        assert_int_equal(ldns_pkt_ancount(p), 0);
        ldns_pkt_free(p);
}

static void test_table(void **state) {
        _cleanup_(dns_name_table_freep) DnsNameTable *t = NULL;
        struct in_addr r4 = {}, a4 = {};

        assert_int_equal(dns_name_table_new("mesh.internal", &r4, 10, NULL, 0, &t), 0);
        assert_int_equal(dns_name_table_add(t, "a", &a4, NULL), 0);
        assert_int_equal(dns_name_table_add(t, "a", &a4, NULL), 0);
        assert_int_equal(dns_name_table_seal(t), -EEXIST);
        t = dns_name_table_free(t);

        assert_int_equal(dns_name_table_new(".", &r4, 10, NULL, 0, &t), 0);
        assert_int_equal(dns_name_table_seal(t), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_addresses), cmocka_unit_test(test_nodata),
                cmocka_unit_test(test_nxdomain),  cmocka_unit_test(test_reverse),
                cmocka_unit_test(test_forward),   cmocka_unit_test(test_refused),
                cmocka_unit_test(test_malformed), cmocka_unit_test(test_edns_and_sizes),
                cmocka_unit_test(test_badvers),   cmocka_unit_test(test_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
