/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "policy.h"

/* The error of policy_parse(text), which must fail. */
static char *parse_error(const char *text) {
        Policy *p = NULL;
        char *error = NULL;

        assert_int_equal(policy_parse(text, strlen(text), &p, &error), -EINVAL);
        assert_null(p);
        assert_non_null(error);
        return error;
}

static void assert_parse_error(const char *text, const char *expected) {
        _cleanup_free_ char *error = parse_error(text);

        if (!strstr(error, expected))
                fail_msg("error '%s' does not contain '%s'", error, expected);
}

static void test_parse_errors(void **state) {
        (void) state;
        assert_parse_error("{\n\"rules\": [\n\"allow alpha -> beta\",\n]\n}", "line 4: not valid JSON");
        assert_parse_error("{\n  \"rules\": [],\n  \"rulez\": []\n}", "line 3: unknown key 'rulez'");
        assert_parse_error("{\"rules\": [\n\"allow alpha -> beta\",\n\"allow group:nope -> beta\"]}",
                           "line 3: unknown group 'group:nope'");
        assert_parse_error("{\"groups\": {\n\"a\": [\"group:b\"],\n\"b\": [\"group:a\"]\n}}", "cycle");
        assert_parse_error("{\"groups\": {\n\"a\": [\"group:a\"]}}", "line 2: group 'a': cycle");
        assert_parse_error("{\"rules\": [\"allow alpha -> beta:22/sctp\"]}", "line 1: bad port '22/sctp'");
        assert_parse_error("{\"rules\": [\"allow alpha -> beta:0/tcp\"]}", "bad port '0/tcp'");
        assert_parse_error("{\"rules\": [\"allow alpha -> beta:5-4/tcp\"]}", "bad port '5-4/tcp'");
        assert_parse_error("{\"rules\": [\"allow alpha -> beta:65536/tcp\"]}", "bad port");
        assert_parse_error("{\"rules\": [\"allow alpha -> beta:22/tcp,,80/tcp\"]}", "empty item");
        assert_parse_error("{\"rules\": [\n\n\"allow Al_pha -> beta\"]}", "line 3: bad selector 'Al_pha'");
        assert_parse_error("{\"rules\": [\"allow 10.0.0.0/8 -> beta\"]}", "bad selector '10.0.0.0/8'");
        assert_parse_error("{\"rules\": [\"allow alpha -> 10.0.0.1/8\"]}", "bad selector '10.0.0.1/8'");
        assert_parse_error("{\"rules\": [\"deny alpha -> beta\"]}", "bad rule");
        assert_parse_error("{\"rules\": [\"allow alpha, gamma -> beta\"]}", "bad rule");
        assert_parse_error("{\"rules\": [\"allow alpha -> [fd00::/64\"]}", "unbalanced");
        assert_parse_error("{\"rules\": [42]}", "rules: not a string");
        assert_parse_error("{\"rules\": {}}", "rules: not an array");
        assert_parse_error("[]", "line 1: the policy is not a JSON object");
        assert_parse_error("", "not valid JSON");
        assert_parse_error("{} x", "text after");
        assert_parse_error("{\n\"rules\": []\x0f}", "line 2: a control character (0x0f)");
        assert_parse_error("{\"rules\": [], \"rules\": []}", "given twice");
        assert_parse_error("{\"groups\": {\"a\": [\"*\"]}}", "'*' is not allowed");
        assert_parse_error("{\"tests\": [\"alpha may reach beta\"]}", "bad test");
        assert_parse_error("{\"tests\": [\"alpha can reach beta:1-2/tcp\"]}", "bad test port");
        assert_parse_error("{\n\"auto_approve\": {\n\"192.168.1.1/24\": [\"gw\"]}}",
                           "line 3: auto_approve: '192.168.1.1/24'");
        assert_parse_error("{\"auto_approve\": {\"10.0.0.0/8\": [\"group:x\"]}}", "unknown group");
}

static void test_parse_valid(void **state) {
        static const char text[] =
                "{\"groups\": {\"admins\": [\"alpha\", \"tag:laptop\"], \"all\": [\"group:admins\", \"nas\"]},\n"
                " \"rules\": [\"allow group:admins -> nas:22/tcp,2049/tcp,icmp\",\n"
                "            \"allow * -> [fd00:1::/64]:80/tcp\",\n"
                "            \"allow tag:cam -> 192.168.50.0/24\",\n"
                "            \"allow alpha -> fd00:2::/64\",\n"
                "            \"allow tag:x -> tag:y:1000-2000/udp\"],\n"
                " \"tests\": [\"alpha can reach nas:22/tcp\", \"cam1 cannot reach [fd00::1]:80/tcp\"],\n"
                " \"auto_approve\": {\"0.0.0.0/0\": [\"tag:exit\"], \"::/0\": [\"*\"]}}";
        _cleanup_(policy_freep) Policy *p = NULL;
        char *error = NULL;

        (void) state;
        assert_int_equal(policy_parse(text, strlen(text), &p, &error), 0);
        assert_null(error);
        assert_int_equal(p->n_groups, 2);
        assert_int_equal(p->n_rules, 5);
        assert_int_equal(p->rules[0].n_ports, 3);
        assert_int_equal(p->rules[0].line, 2);
        assert_int_equal(p->rules[1].dst.kind, POLICY_SELECT_PREFIX);
        assert_int_equal(p->rules[1].dst.prefix.prefixlen, 64);
        assert_int_equal(p->rules[3].dst.kind, POLICY_SELECT_PREFIX);
        assert_int_equal(p->rules[4].dst.kind, POLICY_SELECT_TAG);
        assert_string_equal(p->rules[4].dst.name, "y");
        assert_int_equal(p->rules[4].ports[0].port_first, 1000);
        assert_int_equal(p->n_tests, 2);
        assert_int_equal(p->tests[1].line, 7);
        assert_string_equal(p->tests[1].dst, "fd00::1");
        assert_false(p->tests[1].can);
        assert_int_equal(p->n_auto_approve, 2);
}

/* alpha (admins), beta, nas (tag:server, routes 192.168.50.0/24), cam1 (device, tag:cam) */
typedef struct Mesh {
        PolicyMember m[4];
        InAddrPrefix routes[1];
} Mesh;

static void member(PolicyMember *m, const char *name, char *const *tags, const char *v4, const char *v6) {
        *m = (PolicyMember) { .name = name, .tags = tags, .has_ipv4 = true, .has_ipv6 = v6 != NULL };
        assert_int_equal(inet_pton(AF_INET, v4, &m->ipv4.in), 1);
        if (v6)
                assert_int_equal(inet_pton(AF_INET6, v6, &m->ipv6.in6), 1);
}

static void mesh_init(Mesh *mesh) {
        static char *const server[] = { "server", NULL }, *const cam[] = { "cam", NULL };
        int f;

        member(&mesh->m[0], "alpha", NULL, "100.64.0.2", "fd7a::2");
        member(&mesh->m[1], "beta", NULL, "100.64.0.3", "fd7a::3");
        member(&mesh->m[2], "nas", server, "100.64.0.4", "fd7a::4");
        member(&mesh->m[3], "cam1", cam, "100.64.0.5", NULL);
        mesh->m[3].device = true;
        assert_int_equal(in_addr_prefix_parse("192.168.50.0/24", &f, &mesh->routes[0].address,
                                              &mesh->routes[0].prefixlen),
                         0);
        mesh->routes[0].family = f;
        mesh->m[2].routes = mesh->routes;
        mesh->m[2].n_routes = 1;
}

static Policy *parse(const char *text) {
        Policy *p = NULL;
        _cleanup_free_ char *error = NULL;

        if (policy_parse(text, strlen(text), &p, &error) < 0)
                fail_msg("%s", error);
        return p;
}

static int allows(const Policy *p, const Mesh *mesh, const char *src, const char *dst, const char *port) {
        NetmapFilterPort pt;

        if (port)
                assert_int_equal(netmap_filter_port_parse(port, &pt), 0);
        return policy_allows(p, mesh->m, ELEMENTSOF(mesh->m), src, dst, port ? &pt : NULL);
}

static const char policy_text[] = "{\"groups\": {\"admins\": [\"alpha\"]},\n"
                                  " \"rules\": [\"allow group:admins -> tag:server:22/tcp,icmp\",\n"
                                  "            \"allow tag:cam -> nas:8000-8100/tcp\",\n"
                                  "            \"allow beta -> 192.168.50.128/25:80/tcp\"]}";

static void test_evaluator(void **state) {
        _cleanup_(policy_freep) Policy *p = parse(policy_text);
        Mesh mesh;

        (void) state;
        mesh_init(&mesh);
        assert_int_equal(allows(NULL, &mesh, "alpha", "beta", "22/tcp"), 1);
        assert_int_equal(allows(p, &mesh, "alpha", "nas", "22/tcp"), 1);
        assert_int_equal(allows(p, &mesh, "alpha", "100.64.0.4", "22/tcp"), 1);
        assert_int_equal(allows(p, &mesh, "alpha", "fd7a::4", "icmp"), 1);
        assert_int_equal(allows(p, &mesh, "alpha", "nas", "80/tcp"), 0);
        assert_int_equal(allows(p, &mesh, "alpha", "nas", "22/udp"), 0);
        assert_int_equal(allows(p, &mesh, "nas", "alpha", NULL), 0); /* one way */
        assert_int_equal(allows(p, &mesh, "alpha", "beta", NULL), 0);
        assert_int_equal(allows(p, &mesh, "cam1", "nas", "8050/tcp"), 1);
        assert_int_equal(allows(p, &mesh, "cam1", "nas", "8101/tcp"), 0);
        assert_int_equal(allows(p, &mesh, "beta", "192.168.50.200", "80/tcp"), 1);
        assert_int_equal(allows(p, &mesh, "beta", "192.168.50.2", "80/tcp"), 0);
        assert_int_equal(allows(p, &mesh, "beta", "192.168.51.200", "80/tcp"), 0); /* routed by nobody */
        assert_int_equal(allows(p, &mesh, "beta", "nas", NULL), 0); /* a route is not its router */
        assert_int_equal(allows(p, &mesh, "ghost", "nas", NULL), -ENOENT);
        assert_int_equal(allows(p, &mesh, "alpha", "ghost", NULL), -ENOENT);

        assert_true(policy_peers(p, &mesh.m[0], &mesh.m[2]));
        assert_true(policy_peers(p, &mesh.m[2], &mesh.m[0]));
        assert_true(policy_peers(p, &mesh.m[1], &mesh.m[2])); /* through the route */
        assert_false(policy_peers(p, &mesh.m[0], &mesh.m[1]));
        assert_false(policy_peers(p, &mesh.m[0], &mesh.m[3]));
        assert_true(policy_peers(NULL, &mesh.m[0], &mesh.m[1]));
        assert_true(policy_route_usable(p, &mesh.m[1], &mesh.routes[0]));
        assert_false(policy_route_usable(p, &mesh.m[0], &mesh.routes[0]));
}

static void test_compile(void **state) {
        _cleanup_(policy_freep) Policy *p = parse(policy_text);
        NetmapFilter *f = NULL;
        char buf[64];
        Mesh mesh;

        (void) state;
        mesh_init(&mesh);
        assert_int_equal(policy_compile_filter(p, mesh.m, ELEMENTSOF(mesh.m), 2, &f), 0);
        assert_int_equal(f->n_entries, 3);
        /* alpha -> nas (both families) on 22/tcp, icmp */
        assert_int_equal(f->entries[0].n_src, 2);
        assert_int_equal(f->entries[0].n_dst, 2);
        assert_int_equal(f->entries[0].n_ports, 2);
        assert_string_equal(in_addr_format(AF_INET, &f->entries[0].src[0].address, buf, sizeof(buf)),
                            "100.64.0.2");
        assert_string_equal(in_addr_format(AF_INET6, &f->entries[0].dst[1].address, buf, sizeof(buf)),
                            "fd7a::4");
        /* cam1 (no IPv6) */
        assert_int_equal(f->entries[1].n_src, 1);
        /* beta -> the half of the route the rule names */
        assert_int_equal(f->entries[2].n_dst, 1);
        assert_int_equal(f->entries[2].dst[0].prefixlen, 25);
        netmap_filter_free(f);

        /* nothing reaches alpha: an empty filter, not none */
        assert_int_equal(policy_compile_filter(p, mesh.m, ELEMENTSOF(mesh.m), 0, &f), 0);
        assert_int_equal(f->n_entries, 0);
        netmap_filter_free(f);
}

static void test_auto_approve_and_tests(void **state) {
        _cleanup_(policy_freep) Policy *p =
                parse("{\"rules\": [\"allow alpha -> nas\"],\n"
                      " \"tests\": [\"alpha can reach nas\", \"alpha can reach nas:22/tcp\",\n"
                      "           \"nas cannot reach alpha\"],\n"
                      " \"auto_approve\": {\"192.168.0.0/16\": [\"tag:server\"]}}");
        _cleanup_(policy_freep) Policy *bad =
                parse("{\"rules\": [],\n\"tests\": [\"alpha cannot reach beta\",\n"
                      "\"alpha can reach beta:22/tcp\"]}");
        _cleanup_free_ char *error = NULL;
        InAddrPrefix pre;
        Mesh mesh;

        (void) state;
        mesh_init(&mesh);
        assert_int_equal(policy_run_tests(p, mesh.m, ELEMENTSOF(mesh.m), &error), 0);
        assert_int_equal(policy_run_tests(bad, mesh.m, ELEMENTSOF(mesh.m), &error), -EPERM);
        assert_string_equal(error, "line 3: test 'alpha can reach beta:22/tcp' fails");

        pre = mesh.routes[0];
        assert_true(policy_auto_approves(p, &mesh.m[2], &pre));
        assert_false(policy_auto_approves(p, &mesh.m[0], &pre));
        pre.prefixlen = 8;
        assert_false(policy_auto_approves(p, &mesh.m[2], &pre)); /* wider than the listed prefix */
        assert_false(policy_auto_approves(NULL, &mesh.m[2], &mesh.routes[0]));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_parse_valid),
                cmocka_unit_test(test_evaluator),
                cmocka_unit_test(test_compile),
                cmocka_unit_test(test_auto_approve_and_tests),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
