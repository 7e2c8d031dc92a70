/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Calls libnss_mesh's entry points the way glibc does, against hosts tables
 * written here (MESHD_HOSTS_FILE). Run under ASan + UBSan: the buffer tests
 * hand in buffers of every size up to the one needed, each allocated to
 * exactly that size, so one byte written past the end is caught. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nss-mesh.h"
#include "test-util.h"

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define FIXTURE                                                               \
        "# Mesh names, written by meshd; read by nss-mesh(8). Do not edit.\n" \
        "100.64.0.2\talpha alpha.mesh.internal\n"                             \
        "fd7a:115c:a1e0::2\talpha alpha.mesh.internal\n"                      \
        "100.64.0.3\tnas nas.mesh.internal\n"                                 \
        "fd7a:115c:a1e0::3\tnas nas.mesh.internal\n"                          \
        "100.64.0.4\tv4only v4only.mesh.internal\n"

static char *dir;
static char hosts_path[64];

static void write_hosts_len(const char *text, size_t len) {
        char tmp[80];
        FILE *f;

        /* Replaced atomically, as meshd does. */
        snprintf(tmp, sizeof(tmp), "%s.tmp", hosts_path);
        f = fopen(tmp, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(text, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(rename(tmp, hosts_path), 0);
}

static void write_hosts(const char *text) {
        write_hosts_len(text, strlen(text));
}

static int setup(void **state) {
        write_hosts(FIXTURE);
        assert_int_equal(setenv("MESHD_HOSTS_FILE", hosts_path, 1), 0);
        return 0;
}

static void in4(const char *s, void *ret) {
        assert_int_equal(inet_pton(AF_INET, s, ret), 1);
}

static void in6(const char *s, void *ret) {
        assert_int_equal(inet_pton(AF_INET6, s, ret), 1);
}

static size_t count_strv(char **l) {
        size_t n = 0;

        while (l[n])
                n++;
        return n;
}

/* ---- gethostbyname4_r (getaddrinfo with AF_UNSPEC) ------------------------------------------- */

static void check_nas_tuples(const struct gaih_addrtuple *t) {
        unsigned char a4[4], a6[16];

        in4("100.64.0.3", a4);
        in6("fd7a:115c:a1e0::3", a6);
        assert_non_null(t);
        assert_string_equal(t->name, "nas.mesh.internal");
        assert_int_equal(t->family, AF_INET);
        assert_memory_equal(t->addr, a4, 4);
        assert_int_equal(t->scopeid, 0);
        assert_non_null(t->next);
        t = t->next;
        assert_string_equal(t->name, "nas.mesh.internal");
        assert_int_equal(t->family, AF_INET6);
        assert_memory_equal(t->addr, a6, 16);
        assert_null(t->next);
}

static void test_byname4_both_families(void **state) {
        struct gaih_addrtuple *pat = NULL;
        char buffer[1024];
        int e = 0, h = 0;
        int32_t ttl = -1;

        assert_int_equal(_nss_mesh_gethostbyname4_r("nas", &pat, buffer, sizeof(buffer), &e, &h, &ttl),
                         NSS_STATUS_SUCCESS);
        check_nas_tuples(pat);
        assert_int_equal(ttl, 0);
        assert_true((char *) pat >= buffer && (char *) pat < buffer + sizeof(buffer));
}

static void test_byname4_caller_tuple(void **state) {
        /* nscd passes a tuple of its own for the first record. */
        struct gaih_addrtuple mine = {}, *pat = &mine;
        char buffer[1024];
        int e = 0, h = 0;

        assert_int_equal(_nss_mesh_gethostbyname4_r("nas.mesh.internal", &pat, buffer, sizeof(buffer), &e, &h,
                                                    NULL),
                         NSS_STATUS_SUCCESS);
        assert_ptr_equal(pat, &mine);
        check_nas_tuples(&mine);
}

static void test_names_and_case(void **state) {
        static const char *const good[] = {
                "nas", "NAS", "Nas", "nas.mesh.internal", "NAS.MESH.INTERNAL", "nas.Mesh.Internal.", "nas.",
        };
        static const char *const bad[] = {
                "",
                ".",
                "nas..",
                "nas.mesh",
                "mesh.internal",
                "na",
                "nas.mesh.internal.x",
                "nas ",
                " nas",
                "nas\tx",
                "nas.mesh.internal..",
        };
        char buffer[1024];

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                struct gaih_addrtuple *pat = NULL;
                int e = 0, h = 0;

                assert_int_equal(_nss_mesh_gethostbyname4_r(good[i], &pat, buffer, sizeof(buffer), &e, &h,
                                                            NULL),
                                 NSS_STATUS_SUCCESS);
                check_nas_tuples(pat);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct gaih_addrtuple *pat = NULL;
                int e = 0, h = 0;

                assert_int_equal(_nss_mesh_gethostbyname4_r(bad[i], &pat, buffer, sizeof(buffer), &e, &h, NULL),
                                 NSS_STATUS_NOTFOUND);
                assert_int_equal(h, HOST_NOT_FOUND);
                assert_null(pat);
        }
}

static void test_unknown_name(void **state) {
        struct gaih_addrtuple *pat = NULL;
        struct hostent he;
        char buffer[1024];
        int e = 0, h = 0;

        errno = 4242;
        assert_int_equal(_nss_mesh_gethostbyname4_r("ghost", &pat, buffer, sizeof(buffer), &e, &h, NULL),
                         NSS_STATUS_NOTFOUND);
        assert_int_equal(e, ENOENT);
        assert_int_equal(h, HOST_NOT_FOUND);
        assert_null(pat);
        assert_int_equal(errno, 4242); /* left as the caller had it */

        e = h = 0;
        assert_int_equal(_nss_mesh_gethostbyname2_r("ghost.mesh.internal", AF_INET, &he, buffer, sizeof(buffer),
                                                    &e, &h),
                         NSS_STATUS_NOTFOUND);
        assert_int_equal(e, ENOENT);
        assert_int_equal(h, HOST_NOT_FOUND);
        assert_int_equal(errno, 4242);
}

/* ---- hostent lookups ------------------------------------------------------------------------- */

static void check_nas_hostent(const struct hostent *he, int family) {
        unsigned char a[16];

        if (family == AF_INET)
                in4("100.64.0.3", a);
        else
                in6("fd7a:115c:a1e0::3", a);
        assert_string_equal(he->h_name, "nas.mesh.internal");
        assert_int_equal(count_strv(he->h_aliases), 1);
        assert_string_equal(he->h_aliases[0], "nas");
        assert_int_equal(he->h_addrtype, family);
        assert_int_equal(he->h_length, family == AF_INET ? 4 : 16);
        assert_int_equal(count_strv(he->h_addr_list), 1);
        assert_memory_equal(he->h_addr_list[0], a, (size_t) he->h_length);
}

static void test_byname3_families(void **state) {
        struct hostent he;
        char buffer[1024], *canon = NULL;
        int e = 0, h = 0;
        int32_t ttl = -1;

        assert_int_equal(_nss_mesh_gethostbyname3_r("NAS", AF_INET, &he, buffer, sizeof(buffer), &e, &h, &ttl,
                                                    &canon),
                         NSS_STATUS_SUCCESS);
        check_nas_hostent(&he, AF_INET);
        assert_ptr_equal(canon, he.h_name);
        assert_int_equal(ttl, 0);

        assert_int_equal(_nss_mesh_gethostbyname3_r("nas.mesh.internal.", AF_INET6, &he, buffer, sizeof(buffer),
                                                    &e, &h, NULL, NULL),
                         NSS_STATUS_SUCCESS);
        check_nas_hostent(&he, AF_INET6);

        assert_int_equal(_nss_mesh_gethostbyname2_r("nas", AF_INET6, &he, buffer, sizeof(buffer), &e, &h),
                         NSS_STATUS_SUCCESS);
        check_nas_hostent(&he, AF_INET6);

        assert_int_equal(_nss_mesh_gethostbyname_r("nas", &he, buffer, sizeof(buffer), &e, &h),
                         NSS_STATUS_SUCCESS);
        check_nas_hostent(&he, AF_INET);
}

static void test_byname_other_family_only(void **state) {
        struct gaih_addrtuple *pat = NULL;
        struct hostent he;
        char buffer[1024];
        int e = 0, h = 0;

        /* Known name, no address of that family: NO_DATA, and dns may still try. */
        assert_int_equal(_nss_mesh_gethostbyname2_r("v4only", AF_INET6, &he, buffer, sizeof(buffer), &e, &h),
                         NSS_STATUS_NOTFOUND);
        assert_int_equal(h, NO_DATA);

        assert_int_equal(_nss_mesh_gethostbyname4_r("v4only", &pat, buffer, sizeof(buffer), &e, &h, NULL),
                         NSS_STATUS_SUCCESS);
        assert_int_equal(pat->family, AF_INET);
        assert_null(pat->next);

        assert_int_equal(_nss_mesh_gethostbyname2_r("nas", AF_PACKET, &he, buffer, sizeof(buffer), &e, &h),
                         NSS_STATUS_UNAVAIL);
        assert_int_equal(e, EAFNOSUPPORT);
}

static void test_byaddr(void **state) {
        unsigned char a4[4], a6[16];
        struct hostent he;
        char buffer[1024];
        int e = 0, h = 0;
        int32_t ttl = -1;

        in4("100.64.0.3", a4);
        assert_int_equal(_nss_mesh_gethostbyaddr2_r(a4, 4, AF_INET, &he, buffer, sizeof(buffer), &e, &h, &ttl),
                         NSS_STATUS_SUCCESS);
        check_nas_hostent(&he, AF_INET);
        assert_int_equal(ttl, 0);

        in6("fd7a:115c:a1e0::3", a6);
        assert_int_equal(_nss_mesh_gethostbyaddr_r(a6, 16, AF_INET6, &he, buffer, sizeof(buffer), &e, &h),
                         NSS_STATUS_SUCCESS);
        check_nas_hostent(&he, AF_INET6);

        in4("100.64.0.99", a4);
        assert_int_equal(_nss_mesh_gethostbyaddr_r(a4, 4, AF_INET, &he, buffer, sizeof(buffer), &e, &h),
                         NSS_STATUS_NOTFOUND);
        assert_int_equal(e, ENOENT);
        assert_int_equal(h, HOST_NOT_FOUND);

        /* An IPv4 address asked for as IPv6 (wrong length) is not ours. */
        assert_int_equal(_nss_mesh_gethostbyaddr_r(a4, 4, AF_INET6, &he, buffer, sizeof(buffer), &e, &h),
                         NSS_STATUS_UNAVAIL);
        assert_int_equal(e, EAFNOSUPPORT);
}

/* ---- buffers: every size up to the one needed ------------------------------------------------ */

typedef enum Call {
        CALL_BYNAME4,
        CALL_BYNAME3_V4,
        CALL_BYNAME3_V6,
        CALL_BYADDR_V4,
        CALL_BYADDR_V6,
        _CALL_MAX,
} Call;

static enum nss_status call(Call c, const char *name, char *buffer, size_t size, int *e, int *h,
                            struct hostent *he, struct gaih_addrtuple **pat) {
        unsigned char a[16];

        switch (c) {
        case CALL_BYNAME4:
                return _nss_mesh_gethostbyname4_r(name, pat, buffer, size, e, h, NULL);
        case CALL_BYNAME3_V4:
                return _nss_mesh_gethostbyname3_r(name, AF_INET, he, buffer, size, e, h, NULL, NULL);
        case CALL_BYNAME3_V6:
                return _nss_mesh_gethostbyname3_r(name, AF_INET6, he, buffer, size, e, h, NULL, NULL);
        case CALL_BYADDR_V4:
                in4("100.64.0.3", a);
                return _nss_mesh_gethostbyaddr2_r(a, 4, AF_INET, he, buffer, size, e, h, NULL);
        case CALL_BYADDR_V6:
                in6("fd7a:115c:a1e0::3", a);
                return _nss_mesh_gethostbyaddr2_r(a, 16, AF_INET6, he, buffer, size, e, h, NULL);
        default:
                fail();
        }
        return NSS_STATUS_UNAVAIL;
}

/* Returns the size that first worked. offset: misalign the buffer. */
static size_t check_sizes(Call c, size_t offset) {
        for (size_t size = 0; size <= 4096; size++) {
                struct hostent he = { .h_name = (char *) "untouched" };
                struct gaih_addrtuple *pat = NULL;
                char *block = malloc(size + offset);
                int e = 0, h = 0;
                enum nss_status s;

                assert_non_null(block);
                s = call(c, "nas", size == 0 && offset == 0 ? NULL : block + offset, size, &e, &h, &he, &pat);
                if (s == NSS_STATUS_SUCCESS) {
                        if (c == CALL_BYNAME4)
                                check_nas_tuples(pat);
                        else
                                check_nas_hostent(&he, c == CALL_BYNAME3_V6 || c == CALL_BYADDR_V6 ? AF_INET6
                                                                                                   : AF_INET);
                        free(block);
                        return size;
                }
                assert_int_equal(s, NSS_STATUS_TRYAGAIN);
                assert_int_equal(e, ERANGE);
                assert_int_equal(h, NETDB_INTERNAL);
                /* Nothing handed out on failure. */
                assert_null(pat);
                assert_string_equal(he.h_name, "untouched");
                free(block);
        }
        fail_msg("call %d never succeeded with up to 4096 bytes", (int) c);
        return 0;
}

static void test_buffer_sizes(void **state) {
        for (Call c = 0; c < _CALL_MAX; c++) {
                size_t needed = check_sizes(c, 0);

                assert_true(needed > 0);
                /* Misaligned buffers must work too, with at most alignment more. */
                for (size_t offset = 1; offset < 8; offset++)
                        assert_true(check_sizes(c, offset) <= needed + 8);
        }
}

/* ---- the table missing or broken ------------------------------------------------------------- */

static void check_all_not_found(const char *name) {
        struct gaih_addrtuple *pat = NULL;
        unsigned char a4[4];
        struct hostent he;
        char buffer[1024];
        int e = 0, h = 0;

        assert_int_equal(_nss_mesh_gethostbyname4_r(name, &pat, buffer, sizeof(buffer), &e, &h, NULL),
                         NSS_STATUS_NOTFOUND);
        assert_int_equal(h, HOST_NOT_FOUND);
        e = h = 0;
        assert_int_equal(_nss_mesh_gethostbyname2_r(name, AF_INET, &he, buffer, sizeof(buffer), &e, &h),
                         NSS_STATUS_NOTFOUND);
        assert_int_equal(h, HOST_NOT_FOUND);
        in4("100.64.0.3", a4);
        e = h = 0;
        assert_int_equal(_nss_mesh_gethostbyaddr_r(a4, 4, AF_INET, &he, buffer, sizeof(buffer), &e, &h),
                         NSS_STATUS_NOTFOUND);
        assert_int_equal(h, HOST_NOT_FOUND);
}

static void test_missing_file(void **state) {
        char p[128];

        /* meshd not running: NOTFOUND at once, so "dns" after us still runs. */
        snprintf(p, sizeof(p), "%s/does-not-exist", dir);
        assert_int_equal(setenv("MESHD_HOSTS_FILE", p, 1), 0);
        check_all_not_found("nas");
        snprintf(p, sizeof(p), "%s/hosts/below-a-file", dir);
        assert_int_equal(setenv("MESHD_HOSTS_FILE", p, 1), 0);
        check_all_not_found("nas");
}

static void test_not_a_file(void **state) {
        struct gaih_addrtuple *pat = NULL;
        char p[128], buffer[1024];
        int e = 0, h = 0;

        /* A real error: UNAVAIL. A FIFO must not hang the caller either. */
        snprintf(p, sizeof(p), "%s/fifo", dir);
        assert_int_equal(mkfifo(p, 0600), 0);
        assert_int_equal(setenv("MESHD_HOSTS_FILE", p, 1), 0);
        assert_int_equal(_nss_mesh_gethostbyname4_r("nas", &pat, buffer, sizeof(buffer), &e, &h, NULL),
                         NSS_STATUS_UNAVAIL);
        assert_int_equal(h, NO_RECOVERY);
        assert_int_equal(unlink(p), 0);

        assert_int_equal(setenv("MESHD_HOSTS_FILE", dir, 1), 0);
        assert_int_equal(_nss_mesh_gethostbyname4_r("nas", &pat, buffer, sizeof(buffer), &e, &h, NULL),
                         NSS_STATUS_UNAVAIL);
        assert_null(pat);
}

static void check_resolves(const char *name, const char *address) {
        struct gaih_addrtuple *pat = NULL;
        unsigned char a[16];
        char buffer[1024];
        int e = 0, h = 0;
        int family = strchr(address, ':') ? AF_INET6 : AF_INET;

        assert_int_equal(inet_pton(family, address, a), 1);
        assert_int_equal(_nss_mesh_gethostbyname4_r(name, &pat, buffer, sizeof(buffer), &e, &h, NULL),
                         NSS_STATUS_SUCCESS);
        assert_int_equal(pat->family, family);
        assert_memory_equal(pat->addr, a, family == AF_INET ? 4 : 16);
}

static void check_unknown(const char *name) {
        struct gaih_addrtuple *pat = NULL;
        char buffer[1024];
        int e = 0, h = 0;

        assert_int_equal(_nss_mesh_gethostbyname4_r(name, &pat, buffer, sizeof(buffer), &e, &h, NULL),
                         NSS_STATUS_NOTFOUND);
        assert_null(pat);
}

static void test_corrupt_file(void **state) {
        size_t size = 256 * 1024, n = 0;
        char *text = malloc(size);
        uint32_t x = 12345;

        assert_non_null(text);
#define ADD(s)                                      \
        do {                                        \
                memcpy(text + n, s, sizeof(s) - 1); \
                n += sizeof(s) - 1;                 \
        } while (0)
        ADD("100.64.0.2\tfirst first.mesh.internal\n");
        ADD("garbage without any address\n");
        ADD("300.1.2.3\tbadv4\n");
        ADD("100.64.0.010\tleadingzero\n");
        ADD("fd7a::zz\tbadv6\n");
        ADD("fd7a::5%eth0\tscoped\n");
        ADD("100.64.0.6\n"); /* no name */
        ADD("\tonlyname\n");
        ADD("100.64.0.7\tbad\x01name\n"); /* control character */
        ADD("100.64.0.8\tnul\0byte nul.mesh.internal\n");
        ADD("\n\n   \t \r\n#\n");
        ADD("100.64.0.9\tcrlf crlf.mesh.internal\r\n");
        ADD("100.64.0.10\tcommented # 100.64.0.11 hidden\n");
        /* A 10 kB line that starts like a good one. */
        ADD("100.64.0.12\tlong ");
        memset(text + n, 'a', 10240);
        n += 10240;
        ADD("\n");
        /* An over-long name. */
        ADD("100.64.0.13\t");
        memset(text + n, 'b', 300);
        n += 300;
        ADD(" toolong\n");
        ADD("100.64.0.14\tmiddle\n");
        /* Random bytes, newlines among them. */
        for (size_t i = 0; i < 64 * 1024; i++) {
                x = x * 1103515245 + 12345;
                text[n++] = (char) (x >> 16);
        }
        ADD("\n100.64.0.15\tlast last.mesh.internal\n");
        ADD("100.64.0.16\ttruncated trunc"); /* no newline: cut off */
#undef ADD
        assert_true(n < size);
        write_hosts_len(text, n);

        check_resolves("first", "100.64.0.2");
        check_resolves("first.mesh.internal", "100.64.0.2");
        check_resolves("crlf.mesh.internal", "100.64.0.9");
        check_resolves("commented", "100.64.0.10");
        check_resolves("middle", "100.64.0.14");
        check_resolves("last.mesh.internal", "100.64.0.15");
        check_unknown("badv4");
        check_unknown("leadingzero");
        check_unknown("badv6");
        check_unknown("scoped");
        check_unknown("onlyname");
        check_unknown("name");
        check_unknown("nul");
        check_unknown("hidden");
        check_unknown("long");
        check_unknown("toolong");
        check_unknown("truncated");
        check_unknown("garbage");
        free(text);
}

static void test_only_garbage(void **state) {
        static const char nul_only[4096] = {};
        char buf[8192];

        write_hosts_len(nul_only, sizeof(nul_only));
        check_unknown("nas");
        memset(buf, '\n', sizeof(buf));
        write_hosts_len(buf, sizeof(buf));
        check_unknown("nas");
        memset(buf, 'x', sizeof(buf));
        write_hosts_len(buf, sizeof(buf));
        check_unknown("nas");
        write_hosts("");
        check_unknown("nas");
}

static void test_canonical_name(void **state) {
        struct hostent he;
        char buffer[1024];
        int e = 0, h = 0;

        write_hosts("10.0.0.1 a.example a other\n"
                    "10.0.0.2 single\n"
                    "10.0.0.3 short two.example three.example\n"
                    "10.0.0.4 dup\n"
                    "10.0.0.4 dup\n"
                    "10.0.0.5 dup\n");
        assert_int_equal(_nss_mesh_gethostbyname2_r("A", AF_INET, &he, buffer, sizeof(buffer), &e, &h),
                         NSS_STATUS_SUCCESS);
        assert_string_equal(he.h_name, "a.example");
        assert_int_equal(count_strv(he.h_aliases), 2);
        assert_string_equal(he.h_aliases[0], "a");
        assert_string_equal(he.h_aliases[1], "other");

        assert_int_equal(_nss_mesh_gethostbyname2_r("single", AF_INET, &he, buffer, sizeof(buffer), &e, &h),
                         NSS_STATUS_SUCCESS);
        assert_string_equal(he.h_name, "single");
        assert_int_equal(count_strv(he.h_aliases), 0);

        assert_int_equal(_nss_mesh_gethostbyname2_r("three.example", AF_INET, &he, buffer, sizeof(buffer), &e,
                                                    &h),
                         NSS_STATUS_SUCCESS);
        assert_string_equal(he.h_name, "two.example");
        assert_string_equal(he.h_aliases[0], "short");
        assert_string_equal(he.h_aliases[1], "three.example");

        /* Several lines for one name: each address once, in table order. */
        assert_int_equal(_nss_mesh_gethostbyname2_r("dup", AF_INET, &he, buffer, sizeof(buffer), &e, &h),
                         NSS_STATUS_SUCCESS);
        assert_int_equal(count_strv(he.h_addr_list), 2);
        assert_int_equal((unsigned char) he.h_addr_list[0][3], 4);
        assert_int_equal((unsigned char) he.h_addr_list[1][3], 5);
}

static size_t count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        size_t n = 0;

        assert_non_null(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

static void test_no_fd_left_open(void **state) {
        size_t before = count_fds();

        for (int i = 0; i < 200; i++) {
                check_resolves("nas", "100.64.0.3");
                check_unknown("ghost");
        }
        assert_int_equal(count_fds(), before);
}

/* ---- threads --------------------------------------------------------------------------------- */

#define THREADS 8
#define ROUNDS 500

static atomic_int thread_failures;
static atomic_bool writer_stop;

static void *resolver_thread(void *userdata) {
        unsigned char want[4];
        intptr_t id = (intptr_t) userdata;

        inet_pton(AF_INET, "100.64.0.3", want);
        for (int i = 0; i < ROUNDS; i++) {
                struct gaih_addrtuple *pat = NULL;
                struct hostent he;
                char buffer[512];
                int e = 0, h = 0;

                if (_nss_mesh_gethostbyname4_r((i + id) % 2 ? "nas" : "NAS.mesh.internal", &pat, buffer,
                                               sizeof(buffer), &e, &h, NULL) != NSS_STATUS_SUCCESS ||
                    pat->family != AF_INET || memcmp(pat->addr, want, 4) != 0 || !pat->next)
                        thread_failures++;
                if (_nss_mesh_gethostbyaddr_r(want, 4, AF_INET, &he, buffer, sizeof(buffer), &e, &h) !=
                            NSS_STATUS_SUCCESS ||
                    strcmp(he.h_name, "nas.mesh.internal") != 0)
                        thread_failures++;
                if (_nss_mesh_gethostbyname2_r("ghost", AF_INET, &he, buffer, sizeof(buffer), &e, &h) !=
                    NSS_STATUS_NOTFOUND)
                        thread_failures++;
        }
        return NULL;
}

/* meshd replacing the table all the while: each reader sees one whole version. */
static void *writer_thread(void *userdata) {
        static const char *const versions[] = {
                FIXTURE,
                FIXTURE "100.64.0.20\tnew new.mesh.internal\nfd7a:115c:a1e0::20\tnew new.mesh.internal\n",
        };
        char tmp[80];

        for (unsigned i = 0; !atomic_load(&writer_stop); i++) {
                FILE *f;

                snprintf(tmp, sizeof(tmp), "%s.w", hosts_path);
                f = fopen(tmp, "we");
                if (!f || fputs(versions[i % 2], f) < 0 || fclose(f) != 0 || rename(tmp, hosts_path) < 0)
                        thread_failures++;
        }
        return NULL;
}

static void test_threads(void **state) {
        pthread_t threads[THREADS], writer;

        assert_int_equal(pthread_create(&writer, NULL, writer_thread, NULL), 0);
        for (intptr_t i = 0; i < THREADS; i++)
                assert_int_equal(pthread_create(&threads[i], NULL, resolver_thread, (void *) i), 0);
        for (size_t i = 0; i < THREADS; i++)
                assert_int_equal(pthread_join(threads[i], NULL), 0);
        atomic_store(&writer_stop, true);
        assert_int_equal(pthread_join(writer, NULL), 0);
        assert_int_equal(atomic_load(&thread_failures), 0);
}

/* ---- what is a mesh name ----------------------------------------------------------------------- */

#define HEADER                                                                \
        "# Mesh names, written by meshd; read by nss-mesh(8). Do not edit.\n" \
        "# domain: mesh.internal\n"

static enum nss_status lookup4(const char *name, int *ret_errno) {
        struct gaih_addrtuple *pat = NULL;
        char buffer[1024];
        int e = 0, h = 0;
        enum nss_status st = _nss_mesh_gethostbyname4_r(name, &pat, buffer, sizeof(buffer), &e, &h, NULL);

        if (ret_errno)
                *ret_errno = e;
        return st;
}

static void test_only_mesh_names(void **state) {
        static const char *const foreign[] = {
                /* in the table, but not the mesh's: a control server or a
                 * damaged table cannot make them resolve */
                "example.com",
                "google.com",
                "www.example.org",
                "nas.example.org",
                "x.nas.mesh.internal",
                /* reserved, whatever the table says */
                "localhost",
                "LocalHost",
                "localhost.localdomain",
                "foo.localhost",
                "wpad",
                "WPAD",
                "isatap",
                "wpad.mesh.internal",
                "isatap.mesh.internal",
                "localhost.mesh.internal",
        };
        struct hostent he;
        unsigned char a4[4];
        char buffer[1024];
        int e = 0, h = 0;

        write_hosts(HEADER "100.64.0.3\tnas nas.mesh.internal\n"
                           "fd7a:115c:a1e0::3\tnas nas.mesh.internal\n"
                           "8.8.8.8\texample.com google.com\n"
                           "100.64.0.9\twww www.example.org\n"
                           "100.64.0.10\tnas.example.org x.nas.mesh.internal\n"
                           "127.0.0.2\tlocalhost localhost.localdomain foo.localhost\n"
                           "100.64.0.11\twpad wpad.mesh.internal isatap isatap.mesh.internal\n"
                           "100.64.0.12\tlocalhost.mesh.internal\n");

        assert_int_equal(lookup4("nas", NULL), NSS_STATUS_SUCCESS);
        assert_int_equal(lookup4("NAS.mesh.internal.", NULL), NSS_STATUS_SUCCESS);
        for (size_t i = 0; i < ELEMENTSOF(foreign); i++) {
                e = 0;
                if (lookup4(foreign[i], &e) != NSS_STATUS_NOTFOUND)
                        fail_msg("%s resolved", foreign[i]);
                assert_int_equal(e, ENOENT);
        }

        /* A single label is a mesh name; the foreign alias is not answered. */
        assert_int_equal(_nss_mesh_gethostbyname2_r("www", AF_INET, &he, buffer, sizeof(buffer), &e, &h),
                         NSS_STATUS_SUCCESS);
        assert_string_equal(he.h_name, "www");
        assert_int_equal(count_strv(he.h_aliases), 0);

        /* Reverse lookups never name a foreign or reserved name either. */
        for (size_t i = 0; i < 4; i++) {
                static const char *const addrs[] = { "8.8.8.8", "100.64.0.10", "127.0.0.2", "100.64.0.11" };

                in4(addrs[i], a4);
                assert_int_equal(_nss_mesh_gethostbyaddr_r(a4, 4, AF_INET, &he, buffer, sizeof(buffer), &e, &h),
                                 NSS_STATUS_NOTFOUND);
        }

        /* A table from before the header: reserved names are still refused. */
        write_hosts(FIXTURE "127.0.0.2\tlocalhost wpad\n");
        assert_int_equal(lookup4("localhost", NULL), NSS_STATUS_NOTFOUND);
        assert_int_equal(lookup4("wpad", NULL), NSS_STATUS_NOTFOUND);
        assert_int_equal(lookup4("nas.mesh.internal", NULL), NSS_STATUS_SUCCESS);
}

/* A table past the size cap (sparse: no disk used) behind a valid header. */
static void write_oversized(void) {
        char tmp[80];
        FILE *f;

        snprintf(tmp, sizeof(tmp), "%s.tmp", hosts_path);
        f = fopen(tmp, "we");
        assert_non_null(f);
        assert_true(fputs(HEADER "100.64.0.3\tnas nas.mesh.internal\n", f) >= 0);
        assert_int_equal(fflush(f), 0);
        assert_int_equal(ftruncate(fileno(f), 65 * 1024 * 1024), 0);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(rename(tmp, hosts_path), 0);
}

static void test_non_mesh_name_reads_only_the_header(void **state) {
        struct hostent he;
        unsigned char a4[4];
        char buffer[1024];
        int e = 0, h = 0;

        write_oversized();

        /* Names that cannot be the mesh's: "not found" from the header
         * alone, even though the table behind it is too large to read. */
        assert_int_equal(lookup4("example.com", &e), NSS_STATUS_NOTFOUND);
        assert_int_equal(e, ENOENT);
        assert_int_equal(lookup4("localhost", &e), NSS_STATUS_NOTFOUND);
        assert_int_equal(lookup4("nas.other.domain", &e), NSS_STATUS_NOTFOUND);

        /* A mesh name would need the table: refused, no crash, no hang;
         * "dns" after us is not asked in its place. */
        assert_int_equal(lookup4("nas", &e), NSS_STATUS_UNAVAIL);
        assert_int_equal(e, EFBIG);
        assert_int_equal(_nss_mesh_gethostbyname2_r("nas.mesh.internal", AF_INET, &he, buffer, sizeof(buffer),
                                                    &e, &h),
                         NSS_STATUS_UNAVAIL);
        in4("100.64.0.3", a4);
        assert_int_equal(_nss_mesh_gethostbyaddr_r(a4, 4, AF_INET, &he, buffer, sizeof(buffer), &e, &h),
                         NSS_STATUS_UNAVAIL);
        assert_int_equal(e, EFBIG);
}

static void test_stops_after_the_node(void **state) {
        struct gaih_addrtuple *pat = NULL;
        char buffer[1024];
        int e = 0, h = 0;

        /* meshd writes a node's lines together: a line for the name further
         * down is never reached (the scan ended with the node's lines). */
        write_hosts(HEADER "100.64.0.3\tnas nas.mesh.internal\n"
                           "fd7a:115c:a1e0::3\tnas nas.mesh.internal\n"
                           "100.64.0.4\tbackup backup.mesh.internal\n"
                           "100.64.0.99\tnas nas.mesh.internal\n");
        assert_int_equal(_nss_mesh_gethostbyname4_r("nas", &pat, buffer, sizeof(buffer), &e, &h, NULL),
                         NSS_STATUS_SUCCESS);
        check_nas_tuples(pat);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_byname4_both_families, setup),
                cmocka_unit_test_setup(test_byname4_caller_tuple, setup),
                cmocka_unit_test_setup(test_names_and_case, setup),
                cmocka_unit_test_setup(test_unknown_name, setup),
                cmocka_unit_test_setup(test_byname3_families, setup),
                cmocka_unit_test_setup(test_byname_other_family_only, setup),
                cmocka_unit_test_setup(test_byaddr, setup),
                cmocka_unit_test_setup(test_buffer_sizes, setup),
                cmocka_unit_test_setup(test_missing_file, setup),
                cmocka_unit_test_setup(test_not_a_file, setup),
                cmocka_unit_test_setup(test_corrupt_file, setup),
                cmocka_unit_test_setup(test_only_garbage, setup),
                cmocka_unit_test_setup(test_canonical_name, setup),
                cmocka_unit_test_setup(test_no_fd_left_open, setup),
                cmocka_unit_test_setup(test_threads, setup),
                cmocka_unit_test_setup(test_only_mesh_names, setup),
                cmocka_unit_test_setup(test_non_mesh_name_reads_only_the_header, setup),
                cmocka_unit_test_setup(test_stops_after_the_node, setup),
        };
        int r;

        dir = test_tmpdir_new("test-nss-mesh");
        snprintf(hosts_path, sizeof(hosts_path), "%s/hosts", dir);
        r = cmocka_run_group_tests(tests, NULL, NULL);
        test_tmpdir_free(dir);
        return r;
}
