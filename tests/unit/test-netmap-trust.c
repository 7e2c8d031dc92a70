/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* netmap-trust.c (bounds and pins of what the control server sends),
 * state.c (the pins in node.json, a corrupt node.json) and ca-check.c (the
 * mesh CA's name constraints), with CAs made here by GnuTLS. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca-check.h"
#include "ca.h"
#include "fileio.h"
#include "gnutls-util.h"
#include "netmap-trust.h"
#include "state.h"
#include "test-util.h"

#define KEY_SELF "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
#define KEY_PEER "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
#define KEY_HUB "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM="

/* A netmap: self .2, peer .3 at peer_endpoint, hub .1 at 192.0.2.1:41641. */
static Netmap *make(const char *domain, const char *v4range, const char *v4net, const char *v6range,
                    const char *v6net, const char *peer_endpoint) {
        char json[2048], v6self[96] = "", v6peer[96] = "", v6r[96] = "";
        Netmap *nm = NULL;
        _cleanup_free_ char *error = NULL;

        if (v6range) {
                snprintf(v6r, sizeof(v6r), "\"ipv6_range\": \"%s\",", v6range);
                snprintf(v6self, sizeof(v6self), "\"ipv6\": \"%s2\",", v6net);
                snprintf(v6peer, sizeof(v6peer), "\"ipv6\": \"%s3\",", v6net);
        }
        snprintf(json, sizeof(json),
                 "{\"version\": 7, \"domain\": \"%s\", \"ipv4_range\": \"%s\", %s"
                 "\"self\": {\"name\": \"nas\", \"public_key\": \"" KEY_SELF "\", \"ipv4\": \"%s2\", %s"
                 "\"endpoints\": [\"192.0.2.10:41641\"]},"
                 "\"peers\": [{\"name\": \"laptop\", \"public_key\": \"" KEY_PEER "\", \"ipv4\": \"%s3\", %s"
                 "\"endpoints\": [\"%s\"]}],"
                 "\"hub\": {\"public_key\": \"" KEY_HUB
                 "\", \"ipv4\": \"%s1\", \"endpoints\": [\"192.0.2.1:41641\"]}}",
                 domain, v4range, v6r, v4net, v6self, v4net, v6peer, peer_endpoint, v4net);
        if (netmap_parse(json, strlen(json), &nm, &error) < 0)
                fail_msg("netmap_parse: %s\n%s", error, json);
        return nm;
}

static Netmap *good(void) {
        return make("mesh.internal", "100.64.0.0/10", "100.64.0.", "fd7a:115c:a1e0::/48",
                    "fd7a:115c:a1e0::", "192.0.2.11:41641");
}

static void test_domain(void **state) {
        _cleanup_free_ char *e = NULL;

        assert_int_equal(mesh_domain_check("mesh.internal", &e), 0);
        assert_int_equal(mesh_domain_check("mesh.example.test", &e), 0);
        assert_int_equal(mesh_domain_check("corp.example.com", &e), 0);
        assert_int_equal(mesh_domain_check("home.arpa.mesh", &e), 0);
        assert_int_equal(mesh_domain_check("com", &e), -EBADMSG);
        assert_non_null(strstr(e, "single label"));
        assert_int_equal(mesh_domain_check("internal", &e), -EBADMSG);
        assert_int_equal(mesh_domain_check("co.uk", &e), -EBADMSG);
        assert_string_equal(e, "domain 'co.uk' is a public suffix");
        assert_int_equal(mesh_domain_check("github.io", &e), -EBADMSG);
        assert_int_equal(mesh_domain_check("CO.UK", &e), -EBADMSG);
        assert_int_equal(mesh_domain_check(NULL, &e), -EBADMSG);
}

static void expect_bounds(Netmap *nm, const InAddrPrefix *avoid, size_t n, const char *error_part) {
        _cleanup_free_ char *e = NULL;
        int r = netmap_check_bounds(nm, avoid, n, &e);

        if (!error_part)
                assert_int_equal(r, 0);
        else {
                assert_int_equal(r, -EBADMSG);
                if (!strstr(e, error_part))
                        fail_msg("'%s' does not mention '%s'", e, error_part);
        }
        netmap_free(nm);
}

static void test_bounds_ranges(void **state) {
        expect_bounds(good(), NULL, 0, NULL);
        expect_bounds(make("mesh.internal", "10.20.0.0/16", "10.20.0.", NULL, NULL, "192.0.2.11:1"), NULL, 0,
                      NULL);
        expect_bounds(make("mesh.internal", "192.168.77.0/24", "192.168.77.", NULL, NULL, "192.0.2.11:1"), NULL,
                      0, NULL);
        expect_bounds(make("com", "100.64.0.0/10", "100.64.0.", NULL, NULL, "192.0.2.11:1"), NULL, 0,
                      "single label");
        expect_bounds(make("github.io", "100.64.0.0/10", "100.64.0.", NULL, NULL, "192.0.2.11:1"), NULL, 0,
                      "public suffix");
        expect_bounds(make("mesh.internal", "0.0.0.0/1", "8.8.8.", NULL, NULL, "192.0.2.11:1"), NULL, 0,
                      "ipv4_range 0.0.0.0/1 is not inside");
        expect_bounds(make("mesh.internal", "8.8.8.0/24", "8.8.8.", NULL, NULL, "192.0.2.11:1"), NULL, 0,
                      "ipv4_range 8.8.8.0/24");
        /* wider than any private block, though it starts in one */
        expect_bounds(make("mesh.internal", "100.0.0.0/8", "100.64.0.", NULL, NULL, "192.0.2.11:1"), NULL, 0,
                      "not inside");
        expect_bounds(make("mesh.internal", "100.64.0.0/10", "100.64.0.", "2000::/3",
                           "2001:4860::", "192.0.2.11:1"),
                      NULL, 0, "ipv6_range 2000::/3");
        expect_bounds(make("mesh.internal", "100.64.0.0/10", "100.64.0.", "fc00::/7", "fd00::", "192.0.2.11:1"),
                      NULL, 0, "ipv6_range fc00::/7");
}

static void test_bounds_underlay(void **state) {
        InAddrPrefix avoid[3] = {};
        int f;

        assert_int_equal(in_addr_prefix_parse("192.0.2.0/24", &f, &avoid[0].address, &avoid[0].prefixlen), 0);
        avoid[0].family = f;
        assert_int_equal(in_addr_prefix_parse("fe80::/64", &f, &avoid[1].address, &avoid[1].prefixlen), 0);
        avoid[1].family = f;
        expect_bounds(good(), avoid, 2, NULL);

        /* a LAN route inside the mesh range */
        assert_int_equal(in_addr_prefix_parse("100.100.0.0/16", &f, &avoid[2].address, &avoid[2].prefixlen), 0);
        avoid[2].family = f;
        expect_bounds(good(), avoid, 3, "overlaps 100.100.0.0/16");
        /* the control server's own address (CGNAT uplink) */
        assert_int_equal(in_addr_prefix_parse("100.70.1.1/32", &f, &avoid[2].address, &avoid[2].prefixlen), 0);
        expect_bounds(good(), avoid, 3, "overlaps 100.70.1.1/32");
        /* a ULA network the host has */
        assert_int_equal(in_addr_prefix_parse("fd7a:115c:a1e0:5::/64", &f, &avoid[2].address,
                                              &avoid[2].prefixlen),
                         0);
        avoid[2].family = f;
        expect_bounds(good(), avoid, 3, "ipv6_range fd7a:115c:a1e0::/48 overlaps");
}

static void test_bounds_endpoints(void **state) {
        static const char *const junk[] = {
                "127.0.0.1:22",          "0.0.0.0:41641",
                "224.0.0.1:41641",       "255.255.255.255:41641",
                "169.254.1.1:41641",     "100.64.0.9:41641",
                "[::1]:41641",           "[fe80::1]:41641",
                "[ff02::1]:41641",       "[fd7a:115c:a1e0::9]:41641",
                "[::ffff:127.0.0.1]:22",
        };

        for (size_t i = 0; i < ELEMENTSOF(junk); i++)
                expect_bounds(make("mesh.internal", "100.64.0.0/10", "100.64.0.", "fd7a:115c:a1e0::/48",
                                   "fd7a:115c:a1e0::", junk[i]),
                              NULL, 0, "laptop endpoint");
        expect_bounds(make("mesh.internal", "100.64.0.0/10", "100.64.0.", "fd7a:115c:a1e0::/48",
                           "fd7a:115c:a1e0::", "[2001:db8::5]:41641"),
                      NULL, 0, NULL);
}

static void test_pins(void **state) {
        _cleanup_(credentials_done) Credentials c = {};
        _cleanup_(netmap_freep) Netmap *nm = good();
        _cleanup_free_ char *e = NULL;
        Netmap *other;

        assert_false(credentials_have_pins(&c));
        assert_int_equal(netmap_check_pins(nm, &c, &e), -EBADMSG);
        assert_int_equal(credentials_pin_netmap(&c, nm), 0);
        assert_true(credentials_have_pins(&c));
        assert_string_equal(c.domain, "mesh.internal");
        assert_string_equal(c.ipv4_range, "100.64.0.0/10");
        assert_string_equal(c.ipv6_range, "fd7a:115c:a1e0::/48");
        assert_int_equal(netmap_check_pins(nm, &c, &e), 0);

        other = make("evil.example", "100.64.0.0/10", "100.64.0.", "fd7a:115c:a1e0::/48",
                     "fd7a:115c:a1e0::", "192.0.2.11:1");
        assert_int_equal(netmap_check_pins(other, &c, &e), -EBADMSG);
        assert_string_equal(e, "domain 'evil.example' differs from 'mesh.internal' pinned at join");
        netmap_free(other);

        /* domains compare case-insensitively */
        free(c.domain);
        c.domain = strdup("MESH.Internal");
        assert_int_equal(netmap_check_pins(nm, &c, &e), 0);

        /* a wider range, with a peer outside the pinned one */
        other = make("mesh.internal", "100.0.0.0/8", "100.200.0.", "fd7a:115c:a1e0::/48",
                     "fd7a:115c:a1e0::", "192.0.2.11:1");
        assert_int_equal(netmap_check_pins(other, &c, &e), -EBADMSG);
        assert_string_equal(e, "ipv4_range 100.0.0.0/8 differs from 100.64.0.0/10 pinned at join");
        netmap_free(other);

        other = make("mesh.internal", "100.64.0.0/10", "100.64.0.", "fd7a:115c:a1e1::/48",
                     "fd7a:115c:a1e1::", "192.0.2.11:1");
        assert_int_equal(netmap_check_pins(other, &c, &e), -EBADMSG);
        assert_non_null(strstr(e, "ipv6_range fd7a:115c:a1e1::/48 differs"));
        netmap_free(other);

        other = make("mesh.internal", "100.64.0.0/10", "100.64.0.", NULL, NULL, "192.0.2.11:1");
        assert_int_equal(netmap_check_pins(other, &c, &e), -EBADMSG);
        assert_non_null(strstr(e, "ipv6_range (none) differs"));
        netmap_free(other);
}

/* A device's addresses go on the hub entry: outside the pinned ranges they
 * would route foreign traffic into the tunnel. netmap_parse() keeps them
 * inside the netmap's ranges; the pins are checked on their own anyway. */
static void test_pins_devices(void **state) {
        _cleanup_(credentials_done) Credentials c = {};
        _cleanup_(netmap_freep) Netmap *nm = good();
        _cleanup_free_ char *e = NULL;
        int family;

        assert_int_equal(credentials_pin_netmap(&c, nm), 0);
        nm->devices = calloc(1, sizeof(NetmapNode));
        assert_non_null(nm->devices);
        nm->n_devices = 1;
        nm->devices[0].name = strdup("cam1");
        assert_int_equal(in_addr_parse("100.64.0.9", &family, &nm->devices[0].ipv4), 0);
        assert_int_equal(in_addr_parse("fd7a:115c:a1e0::9", &family, &nm->devices[0].ipv6), 0);
        nm->devices[0].has_ipv6 = true;
        assert_int_equal(netmap_check_pins(nm, &c, &e), 0);

        assert_int_equal(in_addr_parse("8.8.8.8", &family, &nm->devices[0].ipv4), 0);
        assert_int_equal(netmap_check_pins(nm, &c, &e), -EBADMSG);
        assert_string_equal(e, "device cam1: address outside the pinned ranges");
        e = mfree(e);

        assert_int_equal(in_addr_parse("100.64.0.9", &family, &nm->devices[0].ipv4), 0);
        assert_int_equal(in_addr_parse("2001:db8::9", &family, &nm->devices[0].ipv6), 0);
        assert_int_equal(netmap_check_pins(nm, &c, &e), -EBADMSG);
        assert_string_equal(e, "device cam1: address outside the pinned ranges");
}

/* ---- node.json ---- */

static void write_text(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        assert_int_equal(write_file_atomic(p, text, strlen(text), 0600), 0);
}

static bool exists(const char *dir, const char *name) {
        _cleanup_free_ char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        return access(p, F_OK) == 0;
}

static void test_state(void **state) {
        _cleanup_(test_tmpdir_freep) char *dir = test_tmpdir_new("test-netmap-trust");
        _cleanup_(credentials_done) Credentials c = {}, back = {}, old = {};
        _cleanup_(netmap_freep) Netmap *nm = good();

        c.control_url = strdup("https://192.0.2.1:8443");
        c.control_pin = strdup("sha256//x");
        c.node_id = 3;
        c.name = strdup("nas");
        c.token = strdup("secret");
        c.ca_sha256 = strdup("ab01");
        assert_int_equal(credentials_pin_netmap(&c, nm), 0);
        assert_int_equal(state_save_credentials(dir, &c), 0);
        assert_int_equal(state_load_credentials(dir, &back), 0);
        assert_string_equal(back.domain, "mesh.internal");
        assert_string_equal(back.ipv4_range, "100.64.0.0/10");
        assert_string_equal(back.ipv6_range, "fd7a:115c:a1e0::/48");
        assert_string_equal(back.ca_sha256, "ab01");

        /* from before pins: loads, without them */
        write_text(dir, "node.json",
                   "{\"control_url\": \"https://x\", \"control_pin\": \"p\", \"node_id\": 1, \"name\": \"n\", "
                   "\"token\": \"t\"}");
        assert_int_equal(state_load_credentials(dir, &old), 0);
        assert_false(credentials_have_pins(&old));

        /* half the pins: damage */
        credentials_done(&old);
        write_text(dir, "node.json",
                   "{\"control_url\": \"https://x\", \"control_pin\": \"p\", \"node_id\": 1, \"name\": \"n\", "
                   "\"token\": \"t\", \"domain\": \"mesh.internal\"}");
        assert_int_equal(state_load_credentials(dir, &old), -EBADMSG);

        /* not JSON at all, then set aside with the netmap; the key stays */
        write_text(dir, "node.json", "{\"control_url\": \"https://x\", \"contr");
        write_text(dir, "netmap.json", "{}");
        write_text(dir, "private.key", "key");
        assert_int_equal(state_load_credentials(dir, &old), -EBADMSG);
        assert_int_equal(state_set_aside_credentials(dir), 0);
        assert_false(exists(dir, "node.json"));
        assert_false(exists(dir, "netmap.json"));
        assert_true(exists(dir, "node.json.corrupt"));
        assert_true(exists(dir, "private.key"));
        assert_int_equal(state_load_credentials(dir, &old), -ENOENT);

        write_text(dir, "node.json", "");
        assert_int_equal(state_load_credentials(dir, &old), -EBADMSG);
}

/* ---- the mesh CA ---- */

/* A self-signed certificate; nc may be NULL. */
static char *make_ca(bool ca, gnutls_x509_name_constraints_t nc, bool critical) {
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t key = NULL;
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t crt = NULL;
        _cleanup_datum_ gnutls_datum_t pem = {};
        time_t now = time(NULL);
        unsigned char serial[] = { 1, 2, 3 };

        assert_int_equal(gnutls_x509_privkey_init(&key), 0);
        assert_int_equal(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                                      GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                         0);
        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
        assert_int_equal(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), 0);
        assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now - 60), 0);
        assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, now + 3600), 0);
        assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
        assert_int_equal(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "test", 4), 0);
        assert_int_equal(gnutls_x509_crt_set_basic_constraints(crt, ca, -1), 0);
        if (nc)
                assert_int_equal(gnutls_x509_crt_set_name_constraints(crt, nc, critical), 0);
        assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
        assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem), 0);
        return strndup((const char *) pem.data, pem.size);
}

static void add_dns(gnutls_x509_name_constraints_t nc, const char *name) {
        assert_int_equal(gnutls_x509_name_constraints_add_permitted(nc, GNUTLS_SAN_DNSNAME,
                                                                    &(gnutls_datum_t) { (unsigned char *) name,
                                                                                        strlen(name) }),
                         0);
}

static void add_ip4(gnutls_x509_name_constraints_t nc, uint8_t a, uint8_t b, uint8_t m0, uint8_t m1) {
        unsigned char buf[8] = { a, b, 0, 0, m0, m1, 0, 0 };
        assert_int_equal(gnutls_x509_name_constraints_add_permitted(nc, GNUTLS_SAN_IPADDRESS,
                                                                    &(gnutls_datum_t) { buf, 8 }),
                         0);
}

static void expect_ca(const char *pem, const char *ipv6_range, const char *error_part) {
        _cleanup_free_ char *e = NULL;
        int r = ca_check_constraints(pem, "mesh.internal", "100.64.0.0/10", ipv6_range, &e);

        if (!error_part)
                assert_int_equal(r, 0);
        else {
                assert_int_equal(r, -EBADMSG);
                if (!strstr(e, error_part))
                        fail_msg("'%s' does not mention '%s'", e, error_part);
        }
}

static void test_ca_constraints(void **state) {
        char sha[CA_SHA256_HEX_LEN + 1], sha2[CA_SHA256_HEX_LEN + 1];
        _cleanup_free_ char *mesh = NULL, *plain = NULL, *leaf = NULL, *wide = NULL, *noncrit = NULL,
                            *narrow = NULL;
        gnutls_x509_name_constraints_t nc;

        /* the control server's own CA (ca_generate()) passes */
        _cleanup_free_ char *ca_pem = NULL;
        const char *crt;
        size_t key_len;

        assert_int_equal(ca_generate("mesh.internal", "100.64.0.0/10", "fd7a:115c:a1e0::/48", &ca_pem), 0);
        assert_int_equal(ca_pem_split(ca_pem, &key_len, &crt), 0);
        mesh = strdup(crt);
        assert_non_null(mesh);
        expect_ca(mesh, "fd7a:115c:a1e0::/48", NULL);
        /* ... but not for another mesh */
        assert_int_equal(ca_check_constraints(mesh, "other.internal", "100.64.0.0/10", "fd7a:115c:a1e0::/48",
                                              NULL),
                         -EBADMSG);
        expect_ca(mesh, "fd7a:115c:a1e1::/48", "permits names outside");
        expect_ca(mesh, NULL, "permits names outside");

        assert_int_equal(ca_fingerprint_sha256(mesh, sha), 0);
        assert_int_equal(strlen(sha), CA_SHA256_HEX_LEN);
        assert_int_equal(strspn(sha, "0123456789abcdef"), CA_SHA256_HEX_LEN);
        assert_int_equal(ca_fingerprint_sha256(mesh, sha2), 0);
        assert_string_equal(sha, sha2);
        assert_int_equal(ca_fingerprint_sha256("junk", sha2), -EBADMSG);

        plain = make_ca(true, NULL, false);
        expect_ca(plain, NULL, "no name constraints");
        leaf = make_ca(false, NULL, false);
        expect_ca(leaf, NULL, "not a CA");
        expect_ca("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", NULL, "not a PEM");

        assert_int_equal(gnutls_x509_name_constraints_init(&nc), 0);
        add_dns(nc, "mesh.internal");
        add_ip4(nc, 100, 64, 0xff, 0xc0);
        noncrit = make_ca(true, nc, false);
        narrow = make_ca(true, nc, true);
        add_dns(nc, "com");
        wide = make_ca(true, nc, true);
        gnutls_x509_name_constraints_deinit(nc);
        expect_ca(noncrit, NULL, "not critical");
        expect_ca(narrow, NULL, NULL);
        /* the mesh has IPv6: a CA without the IPv6 subtree does not match */
        expect_ca(narrow, "fd7a:115c:a1e0::/48", "do not confine it");
        expect_ca(wide, NULL, "permits names outside");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_domain),
                cmocka_unit_test(test_bounds_ranges),
                cmocka_unit_test(test_bounds_underlay),
                cmocka_unit_test(test_bounds_endpoints),
                cmocka_unit_test(test_pins),
                cmocka_unit_test(test_pins_devices),
                cmocka_unit_test(test_state),
                cmocka_unit_test(test_ca_constraints),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
