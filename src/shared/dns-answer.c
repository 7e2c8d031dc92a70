/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <ldns/ldns.h>

#include "dns-answer.h"
#include "dns-label.h"

/* ---- the name table ------------------------------------------------------------------------- */

int dns_name_table_new(const char *domain, const struct in_addr *ipv4_range, uint8_t ipv4_prefixlen,
                       const struct in6_addr *ipv6_range, uint8_t ipv6_prefixlen, DnsNameTable **ret) {
        _cleanup_(dns_name_table_freep) DnsNameTable *t = NULL;

        if (!domain || !ipv4_range || ipv4_prefixlen > 32 || ipv6_prefixlen > 128 || !ret)
                return -EINVAL;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->domain = strdup(domain);
        if (!t->domain)
                return -ENOMEM;
        for (char *s = t->domain; *s; s++)
                *s = (char) tolower((unsigned char) *s);
        t->ipv4_range = *ipv4_range;
        t->ipv4_prefixlen = ipv4_prefixlen;
        if (ipv6_range) {
                t->ipv6_range = *ipv6_range;
                t->ipv6_prefixlen = ipv6_prefixlen;
                t->has_ipv6_range = true;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

int dns_name_table_add(DnsNameTable *t, const char *name, const struct in_addr *ipv4,
                       const struct in6_addr *ipv6) {
        DnsName *names;

        if (!t || !name || !ipv4 || t->domain_dname)
                return -EINVAL;
        if (!dns_label_is_valid(name))
                return -EINVAL;

        names = reallocarray(t->names, t->n_names + 1, sizeof(DnsName));
        if (!names)
                return -ENOMEM;
        t->names = names;
        names[t->n_names] = (DnsName) {
                .name = strdup(name),
                .ipv4 = *ipv4,
                .ipv6 = ipv6 ? *ipv6 : in6addr_any,
                .has_ipv6 = !!ipv6,
        };
        if (!names[t->n_names].name)
                return -ENOMEM;
        t->n_names++;
        return 0;
}

static int dns_name_compare(const void *a, const void *b) {
        return strcmp(((const DnsName *) a)->name, ((const DnsName *) b)->name);
}

int dns_name_table_seal(DnsNameTable *t) {
        if (!t)
                return -EINVAL;
        if (t->domain_dname)
                return 0;

        if (t->n_names > 0)
                qsort(t->names, t->n_names, sizeof(DnsName), dns_name_compare);
        for (size_t i = 1; i < t->n_names; i++)
                if (streq(t->names[i - 1].name, t->names[i].name))
                        return -EEXIST;

        /* The root is no mesh domain: everything would be ours. */
        if (t->domain[0] == '\0' || streq(t->domain, "."))
                return -EINVAL;
        t->domain_dname = ldns_dname_new_frm_str(t->domain);
        if (!t->domain_dname)
                return -EINVAL;
        return 0;
}

DnsNameTable *dns_name_table_free(DnsNameTable *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_names; i++)
                free(t->names[i].name);
        free(t->names);
        free(t->domain);
        ldns_rdf_deep_free(t->domain_dname);
        return mfree(t);
}

static const DnsName *dns_name_table_find(const DnsNameTable *t, const char *label) {
        DnsName key = { .name = (char *) label };

        if (t->n_names == 0)
                return NULL;
        return bsearch(&key, t->names, t->n_names, sizeof(DnsName), dns_name_compare);
}

/* ---- reverse names -------------------------------------------------------------------------- */

/* What a name below in-addr.arpa or ip6.arpa says about an address: its
 * first nbits (from the labels that are octets or nibbles, read from the
 * right), and how many labels stand left of those (extra: never an
 * address). */
typedef struct ReverseName {
        int family;
        uint8_t bytes[16];
        unsigned nbits;
        unsigned extra;
} ReverseName;

#define DNAME_LABELS_MAX 128 /* a 255-byte name has at most 127 labels and the root */

/* The labels of a wire-format name, left to right, root excluded. */
static size_t dname_labels(const ldns_rdf *d, const uint8_t **label, uint8_t *len) {
        const uint8_t *p = ldns_rdf_data(d);
        size_t size = ldns_rdf_size(d), n = 0;

        for (size_t i = 0; i < size && p[i] != 0 && n < DNAME_LABELS_MAX; i += 1 + p[i]) {
                if (i + 1 + p[i] > size)
                        break;
                label[n] = p + i + 1;
                len[n] = p[i];
                n++;
        }
        return n;
}

static bool label_equal(const uint8_t *label, uint8_t len, const char *s) {
        return strlen(s) == len && strncasecmp((const char *) label, s, len) == 0;
}

static bool octet_parse(const uint8_t *label, uint8_t len, uint8_t *ret) {
        unsigned v = 0;

        /* "1", "10", "100", never "010": one name per address */
        if (len == 0 || len > 3 || (len > 1 && label[0] == '0'))
                return false;
        for (uint8_t i = 0; i < len; i++) {
                if (!isdigit(label[i]))
                        return false;
                v = v * 10 + (label[i] - '0');
        }
        if (v > 255)
                return false;
        *ret = (uint8_t) v;
        return true;
}

static bool nibble_parse(const uint8_t *label, uint8_t len, uint8_t *ret) {
        if (len != 1 || !isxdigit(label[0]))
                return false;
        *ret = (uint8_t) (isdigit(label[0]) ? label[0] - '0' : tolower(label[0]) - 'a' + 10);
        return true;
}

/* false: not below in-addr.arpa or ip6.arpa. */
static bool reverse_name_parse(const ldns_rdf *qname, ReverseName *ret) {
        const uint8_t *label[DNAME_LABELS_MAX];
        uint8_t len[DNAME_LABELS_MAX];
        size_t n = dname_labels(qname, label, len);
        ReverseName r = {};

        if (n < 2 || !label_equal(label[n - 1], len[n - 1], "arpa"))
                return false;
        if (label_equal(label[n - 2], len[n - 2], "in-addr"))
                r.family = AF_INET;
        else if (label_equal(label[n - 2], len[n - 2], "ip6"))
                r.family = AF_INET6;
        else
                return false;

        unsigned step = r.family == AF_INET ? 8 : 4, max = r.family == AF_INET ? 32 : 128;
        size_t i = n - 2;
        for (; i > 0 && r.nbits < max; i--) {
                uint8_t v;

                if (!(r.family == AF_INET ? octet_parse(label[i - 1], len[i - 1], &v)
                                          : nibble_parse(label[i - 1], len[i - 1], &v)))
                        break;
                if (r.family == AF_INET)
                        r.bytes[r.nbits / 8] = v;
                else
                        r.bytes[r.nbits / 8] |= (uint8_t) (r.nbits % 8 == 0 ? v << 4 : v);
                r.nbits += step;
        }
        r.extra = (unsigned) i;
        *ret = r;
        return true;
}

/* Whether the first bits of a and b are equal. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits) {
        unsigned whole = bits / 8, rest = bits % 8;

        if (memcmp(a, b, whole) != 0)
                return false;
        if (rest == 0)
                return true;
        uint8_t mask = (uint8_t) (0xff << (8 - rest));
        return ((a[whole] ^ b[whole]) & mask) == 0;
}

static const uint8_t *dns_name_address(const DnsName *n, int family) {
        return family == AF_INET ? (const uint8_t *) &n->ipv4 : (const uint8_t *) &n->ipv6;
}

/* ---- building replies ----------------------------------------------------------------------- */

static ldns_pkt *reply_new(const ldns_pkt *q, ldns_pkt_rcode rcode) {
        ldns_pkt *a = ldns_pkt_new();

        if (!a)
                return NULL;
        ldns_pkt_set_id(a, ldns_pkt_id(q));
        ldns_pkt_set_qr(a, true);
        ldns_pkt_set_opcode(a, ldns_pkt_get_opcode(q));
        ldns_pkt_set_rd(a, ldns_pkt_rd(q));
        ldns_pkt_set_cd(a, ldns_pkt_cd(q));
        /* we forward what is not ours: recursion is available */
        ldns_pkt_set_ra(a, true);
        ldns_pkt_set_rcode(a, rcode);

        ldns_rr_list *question = ldns_pkt_question(q);
        for (size_t i = 0; question && i < ldns_rr_list_rr_count(question); i++) {
                ldns_rr *rr = ldns_rr_clone(ldns_rr_list_rr(question, i));
                if (!rr || !ldns_pkt_push_rr(a, LDNS_SECTION_QUESTION, rr)) {
                        ldns_rr_free(rr);
                        ldns_pkt_free(a);
                        return NULL;
                }
        }
        /* RFC 6891 7: a reply to an EDNS0 query carries OPT too */
        if (ldns_pkt_edns(q))
                ldns_pkt_set_edns_udp_size(a, DNS_UDP_PAYLOAD_MAX);
        return a;
}

static int rr_push(ldns_pkt *a, ldns_pkt_section section, const ldns_rdf *owner, ldns_rr_type type,
                   ldns_rdf *rdata) {
        ldns_rr *rr = ldns_rr_new();
        ldns_rdf *o = ldns_rdf_clone(owner);

        if (!rr || !o || !rdata) {
                ldns_rr_free(rr);
                ldns_rdf_deep_free(o);
                ldns_rdf_deep_free(rdata);
                return -ENOMEM;
        }
        ldns_rr_set_owner(rr, o);
        ldns_rr_set_type(rr, type);
        ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
        ldns_rr_set_ttl(rr, DNS_ANSWER_TTL);
        if (!ldns_rr_push_rdf(rr, rdata)) {
                ldns_rdf_deep_free(rdata);
                ldns_rr_free(rr);
                return -ENOMEM;
        }
        if (!ldns_pkt_push_rr(a, section, rr)) {
                ldns_rr_free(rr);
                return -ENOMEM;
        }
        return 0;
}

/* The synthetic SOA of the mesh domain, in the authority section of
 * NXDOMAIN and NODATA replies: without it a resolver does not cache the
 * negative answer at all (RFC 2308 5), and asks again for every lookup. */
static int soa_push(ldns_pkt *a, ldns_pkt_section section, const DnsNameTable *t) {
        _cleanup_free_ char *text = NULL;
        ldns_rr *rr = NULL;

        if (asprintf(&text, "%s. %u IN SOA hub.%s. hostmaster.%s. 1 3600 600 86400 %u", t->domain,
                     DNS_ANSWER_TTL, t->domain, t->domain, DNS_ANSWER_TTL) < 0)
                return -ENOMEM;
        if (ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK)
                return -ENOMEM; /* the domain was checked by dns_name_table_seal() */
        if (!ldns_pkt_push_rr(a, section, rr)) {
                ldns_rr_free(rr);
                return -ENOMEM;
        }
        return 0;
}

static int pkt_to_wire(const ldns_pkt *a, const ldns_pkt *q, size_t max_size, uint8_t **ret, size_t *ret_size) {
        uint8_t *wire = NULL;
        size_t size = 0;

        if (ldns_pkt2wire(&wire, a, &size) != LDNS_STATUS_OK)
                return -ENOMEM;
        if (size > max_size) {
                /* header and question only, TC set: the client asks again over TCP */
                ldns_pkt *cut = reply_new(q, ldns_pkt_get_rcode(a));

                free(wire);
                wire = NULL;
                if (!cut)
                        return -ENOMEM;
                ldns_pkt_set_aa(cut, ldns_pkt_aa(a));
                ldns_pkt_set_tc(cut, true);
                ldns_status s = ldns_pkt2wire(&wire, cut, &size);
                ldns_pkt_free(cut);
                if (s != LDNS_STATUS_OK)
                        return -ENOMEM;
        }
        *ret = wire;
        *ret_size = size;
        return 0;
}

/* A reply to what could not be parsed: the header's ID, opcode and RD
 * only (there is no question to copy). */
static int header_reply(const uint8_t *query, ldns_pkt_rcode rcode, uint8_t **ret, size_t *ret_size) {
        ldns_pkt *a = ldns_pkt_new();
        int r;

        if (!a)
                return -ENOMEM;
        ldns_pkt_set_id(a, (uint16_t) (query[0] << 8 | query[1]));
        ldns_pkt_set_qr(a, true);
        ldns_pkt_set_opcode(a, (ldns_pkt_opcode) ((query[2] >> 3) & 0xf));
        ldns_pkt_set_rd(a, query[2] & 1);
        ldns_pkt_set_ra(a, true);
        ldns_pkt_set_rcode(a, rcode);
        r = ldns_pkt2wire(ret, a, ret_size) == LDNS_STATUS_OK ? 0 : -ENOMEM;
        ldns_pkt_free(a);
        return r;
}

/* ---- answering ------------------------------------------------------------------------------ */

typedef struct Query {
        const DnsNameTable *t;
        const ldns_pkt *pkt;
        const ldns_rdf *qname;
        ldns_rr_type qtype;
        ldns_pkt *reply;
} Query;

static int answer_address(Query *q, const DnsName *n) {
        bool any = q->qtype == LDNS_RR_TYPE_ANY;
        int r = 0;

        if (q->qtype == LDNS_RR_TYPE_A || any)
                r = rr_push(q->reply, LDNS_SECTION_ANSWER, q->qname, LDNS_RR_TYPE_A,
                            ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, sizeof(n->ipv4), &n->ipv4));
        if (r >= 0 && n->has_ipv6 && (q->qtype == LDNS_RR_TYPE_AAAA || any))
                r = rr_push(q->reply, LDNS_SECTION_ANSWER, q->qname, LDNS_RR_TYPE_AAAA,
                            ldns_rdf_new_frm_data(LDNS_RDF_TYPE_AAAA, sizeof(n->ipv6), &n->ipv6));
        return r;
}

/* A name inside the mesh domain. */
static int answer_forward_name(Query *q) {
        const DnsNameTable *t = q->t;
        const uint8_t *label = ldns_rdf_data(q->qname);
        char buf[64];

        if (ldns_dname_compare(q->qname, t->domain_dname) == 0) {
                if (q->qtype == LDNS_RR_TYPE_SOA)
                        return soa_push(q->reply, LDNS_SECTION_ANSWER, t);
                return soa_push(q->reply, LDNS_SECTION_AUTHORITY, t); /* NODATA */
        }

        /* NAME.DOMAIN: one label more than the domain, and one we gave out */
        const DnsName *n = NULL;
        if (ldns_dname_label_count(q->qname) == ldns_dname_label_count(t->domain_dname) + 1 &&
            label[0] < sizeof(buf) && !memchr(label + 1, 0, label[0])) {
                for (uint8_t i = 0; i < label[0]; i++)
                        buf[i] = (char) tolower(label[1 + i]);
                buf[label[0]] = '\0';
                n = dns_name_table_find(t, buf);
        }
        if (!n) {
                ldns_pkt_set_rcode(q->reply, LDNS_RCODE_NXDOMAIN);
                return soa_push(q->reply, LDNS_SECTION_AUTHORITY, t);
        }

        int r = answer_address(q, n);
        if (r >= 0 && ldns_pkt_ancount(q->reply) == 0)
                r = soa_push(q->reply, LDNS_SECTION_AUTHORITY, t); /* NODATA */
        return r;
}

static int answer_ptr(Query *q, const DnsName *n) {
        _cleanup_free_ char *fqdn = NULL;

        if (q->qtype != LDNS_RR_TYPE_PTR && q->qtype != LDNS_RR_TYPE_ANY)
                return 0; /* NODATA */
        if (asprintf(&fqdn, "%s.%s.", n->name, q->t->domain) < 0)
                return -ENOMEM;
        return rr_push(q->reply, LDNS_SECTION_ANSWER, q->qname, LDNS_RR_TYPE_PTR, ldns_dname_new_frm_str(fqdn));
}

/* A reverse name inside one of the mesh ranges: 1 answered, 0 not ours. */
static int answer_reverse_name(Query *q, const ReverseName *rn) {
        const DnsNameTable *t = q->t;
        const uint8_t *range =
                rn->family == AF_INET ? (const uint8_t *) &t->ipv4_range : (const uint8_t *) &t->ipv6_range;
        unsigned prefixlen = rn->family == AF_INET ? t->ipv4_prefixlen : t->ipv6_prefixlen;
        unsigned max = rn->family == AF_INET ? 32 : 128;
        bool below = false;

        if (rn->family == AF_INET6 && !t->has_ipv6_range)
                return 0;
        /* above the range (e.g. 100.in-addr.arpa), or outside it: the upstream's */
        if (rn->nbits < prefixlen || !prefix_equal(rn->bytes, range, prefixlen))
                return 0;

        for (size_t i = 0; rn->extra == 0 && i < t->n_names; i++) {
                const DnsName *n = &t->names[i];

                if (rn->family == AF_INET6 && !n->has_ipv6)
                        continue;
                if (!prefix_equal(rn->bytes, dns_name_address(n, rn->family), rn->nbits))
                        continue;
                if (rn->nbits == max)
                        return answer_ptr(q, n) < 0 ? -ENOMEM : 1;
                below = true; /* an empty non-terminal: NODATA, not NXDOMAIN (RFC 8020) */
        }
        if (!below)
                ldns_pkt_set_rcode(q->reply, LDNS_RCODE_NXDOMAIN);
        return 1;
}

/* 1: answered into q->reply, 0: forward. */
static int answer_question(Query *q) {
        const ldns_rr *question = ldns_rr_list_rr(ldns_pkt_question(q->pkt), 0);
        ReverseName rn;
        int r;

        q->qname = ldns_rr_owner(question);
        q->qtype = ldns_rr_get_type(question);
        if (!q->t || ldns_rdf_get_type(q->qname) != LDNS_RDF_TYPE_DNAME)
                return 0;

        bool forward_name = ldns_dname_compare(q->qname, q->t->domain_dname) == 0 ||
                            ldns_dname_is_subdomain(q->qname, q->t->domain_dname);
        bool reverse_name = !forward_name && reverse_name_parse(q->qname, &rn);
        if (!forward_name && !reverse_name)
                return 0;

        if (reverse_name) {
                r = answer_reverse_name(q, &rn);
                if (r <= 0)
                        return r;
        } else if (ldns_rr_get_class(question) != LDNS_RR_CLASS_IN || q->qtype == LDNS_RR_TYPE_AXFR ||
                   q->qtype == LDNS_RR_TYPE_IXFR) {
                /* no zone transfers, no other classes of our names */
                ldns_pkt_set_rcode(q->reply, LDNS_RCODE_REFUSED);
                return 1;
        } else {
                r = answer_forward_name(q);
                if (r < 0)
                        return r;
        }
        ldns_pkt_set_aa(q->reply, true);
        return 1;
}

/* EDNS versions above 0 do not exist yet: BADVERS, extended rcode 1 (RFC
 * 6891 6.1.3), for ours and for those we would forward alike. */
static int answer_question_or_badvers(Query *q) {
        if (ldns_pkt_edns(q->pkt) && ldns_pkt_edns_version(q->pkt) > 0) {
                ldns_pkt_set_edns_extended_rcode(q->reply, 1);
                return 1;
        }
        return answer_question(q);
}

/* The header check that needs no parser: -EAGAIN to go on parsing. */
static int answer_header(const uint8_t *query, size_t size, uint8_t **ret_reply, size_t *ret_size) {
        if (size < DNS_HEADER_SIZE || query[2] & 0x80)
                return DNS_VERDICT_DROP;
        if (((query[2] >> 3) & 0xf) != LDNS_PACKET_QUERY) {
                if (header_reply(query, LDNS_RCODE_NOTIMPL, ret_reply, ret_size) < 0)
                        return -ENOMEM;
                return DNS_VERDICT_REPLY;
        }
        return -EAGAIN;
}

int dns_answer(const DnsNameTable *t, const uint8_t *query, size_t size, size_t max_size, uint8_t **ret_reply,
               size_t *ret_size) {
        ldns_pkt *pkt = NULL;
        int r;

        if (!query || !ret_reply || !ret_size)
                return -EINVAL;
        if (t && !t->domain_dname)
                return -EINVAL; /* not sealed */
        *ret_reply = NULL;
        *ret_size = 0;

        r = answer_header(query, size, ret_reply, ret_size);
        if (r != -EAGAIN)
                return r;

        if (ldns_wire2pkt(&pkt, query, size) != LDNS_STATUS_OK || ldns_pkt_qdcount(pkt) != 1 ||
            ldns_pkt_tc(pkt)) {
                ldns_pkt_free(pkt);
                if (header_reply(query, LDNS_RCODE_FORMERR, ret_reply, ret_size) < 0)
                        return -ENOMEM;
                return DNS_VERDICT_REPLY;
        }

        Query q = { .t = t, .pkt = pkt, .reply = reply_new(pkt, LDNS_RCODE_NOERROR) };
        DnsVerdict verdict = DNS_VERDICT_FORWARD;
        r = q.reply ? answer_question_or_badvers(&q) : -ENOMEM;
        if (r > 0) {
                r = pkt_to_wire(q.reply, pkt, MAX(max_size, DNS_HEADER_SIZE), ret_reply, ret_size);
                verdict = DNS_VERDICT_REPLY;
        }
        ldns_pkt_free(q.reply);
        ldns_pkt_free(pkt);
        return r < 0 ? r : (int) verdict;
}

/* ---- for the server: payload sizes, errors, truncation -------------------------------------- */

size_t dns_query_max_udp_size(const uint8_t *query, size_t size) {
        ldns_pkt *pkt = NULL;
        size_t max = DNS_UDP_PAYLOAD_MIN;

        if (ldns_wire2pkt(&pkt, query, size) != LDNS_STATUS_OK)
                return max;
        if (ldns_pkt_edns(pkt))
                max = MIN(MAX(ldns_pkt_edns_udp_size(pkt), DNS_UDP_PAYLOAD_MIN), DNS_UDP_PAYLOAD_MAX);
        ldns_pkt_free(pkt);
        return max;
}

int dns_answer_error(const uint8_t *query, size_t size, int rcode, uint8_t **ret_reply, size_t *ret_size) {
        ldns_pkt *pkt = NULL, *a;
        int r;

        if (!query || !ret_reply || !ret_size)
                return -EINVAL;
        if (ldns_wire2pkt(&pkt, query, size) != LDNS_STATUS_OK)
                return -EBADMSG;
        a = reply_new(pkt, (ldns_pkt_rcode) rcode);
        r = a ? pkt_to_wire(a, pkt, SIZE_MAX, ret_reply, ret_size) : -ENOMEM;
        ldns_pkt_free(a);
        ldns_pkt_free(pkt);
        return r;
}

int dns_reply_truncate(const uint8_t *reply, size_t size, size_t max_size, uint8_t **ret_reply,
                       size_t *ret_size) {
        ldns_pkt *pkt = NULL, *a;
        int r;

        if (!reply || !ret_reply || !ret_size)
                return -EINVAL;
        if (ldns_wire2pkt(&pkt, reply, size) != LDNS_STATUS_OK)
                return -EBADMSG;
        a = reply_new(pkt, ldns_pkt_get_rcode(pkt));
        if (a) {
                ldns_pkt_set_aa(a, ldns_pkt_aa(pkt));
                ldns_pkt_set_ra(a, ldns_pkt_ra(pkt));
                ldns_pkt_set_tc(a, true);
        }
        r = a ? pkt_to_wire(a, pkt, SIZE_MAX, ret_reply, ret_size) : -ENOMEM;
        ldns_pkt_free(a);
        ldns_pkt_free(pkt);
        return r;
}
