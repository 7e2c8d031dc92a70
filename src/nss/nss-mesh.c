/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libnss_mesh: "hosts: files mesh dns" answers NAME and NAME.DOMAIN from the
 * table meshd writes to /run/meshd/hosts (see nss-mesh(8)).
 *
 * This code runs inside every program that resolves a host name, so it keeps
 * to what such a guest may do: libc only, no logging, no IPC, no threads, no
 * signals, no mutable static state (thread-safe by construction), no file
 * descriptor left open, errno as the caller had it. The table is read afresh
 * on every call: meshd replaces it atomically (rename), so every call sees
 * one whole version, and a node removed from the mesh stops resolving at
 * once. Anything odd in the file is skipped line by line, never trusted.
 *
 * Most lookups in a process are not for the mesh, so a name that cannot be
 * a mesh name (not one label, not LABEL.DOMAIN with the domain the table's
 * header names, or a reserved name) is answered "not found" from the name
 * and the header alone; a mesh name stops reading at the node's lines. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <nss.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nss-mesh.h"

/* A valid line is at most an IPv6 address (45), a label (63) and a name
 * (253) with separators; anything longer is not ours and is skipped. */
#define LINE_SIZE 1024
#define NAME_SIZE 254    /* 253 + NUL: the longest DNS name in text form */
#define NAMES_MAX 8      /* per line; more are ignored */
#define ADDRESSES_MAX 16 /* per answer; meshd writes one per family */
/* A table this large is not meshd's (about 100 bytes a node): refuse it
 * rather than make every lookup of a mesh name read it. */
#define TABLE_SIZE_MAX (64U * 1024U * 1024U)
/* The header line meshd writes with the mesh's domain (manager.c). */
#define DOMAIN_HEADER "# domain: "

/* Like systemd's PROTECT_ERRNO: our callers see errno as they left it;
 * *errnop is how NSS modules report errors. */
static void errno_restore(const int *saved) {
        errno = *saved;
}
#define PROTECT_ERRNO __attribute__((cleanup(errno_restore), unused)) const int saved_errno_ = errno

typedef struct HostsAddress {
        int family;
        unsigned char bytes[16];
} HostsAddress;

/* What one scan of the table found: the names of the first matching line
 * (the canonical one and its aliases) and every matching address. */
typedef struct HostsAnswer {
        char names_storage[LINE_SIZE];
        const char *names[NAMES_MAX];
        size_t n_names;
        size_t canonical; /* index into names */
        HostsAddress addresses[ADDRESSES_MAX];
        size_t n_addresses;
        bool name_known; /* the name is in the table, maybe only for the other family */
} HostsAnswer;

/* Either a name (with the family wanted, AF_UNSPEC for both) or an address. */
typedef struct HostsQuery {
        const char *name;
        int family;
        const HostsAddress *address;
} HostsQuery;

typedef struct HostsLine {
        const char *address_text;
        HostsAddress address; /* after line_parse_address() */
        char *names[NAMES_MAX];
        size_t n_names;
} HostsLine;

static size_t family_address_size(int family) {
        return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

static char ascii_tolower(char c) {
        return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

/* Host names compare case-insensitively in ASCII only (RFC 4343); the
 * locale's strcasecmp() would fold differently, e.g. in Turkish. */
static bool name_equal(const char *a, const char *b) {
        for (; *a && *b; a++, b++)
                if (ascii_tolower(*a) != ascii_tolower(*b))
                        return false;
        return *a == *b;
}

/* name_equal() on the first n characters; b has at least n. */
static bool name_prefix_equal(const char *a, const char *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (ascii_tolower(a[i]) != ascii_tolower(b[i]))
                        return false;
        return true;
}

static bool name_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n >= NAME_SIZE)
                return false;
        for (; *s; s++)
                if ((unsigned char) *s <= ' ' || (unsigned char) *s >= 0x7f)
                        return false;
        return true;
}

/* "nas.mesh.internal." → "nas.mesh.internal" into buf; false for names that
 * cannot be in the table (empty, too long, control characters). */
static bool name_normalize(const char *name, char buf[static NAME_SIZE]) {
        size_t n;

        if (!name)
                return false;
        n = strnlen(name, NAME_SIZE + 1);
        if (n > 0 && name[n - 1] == '.')
                n--;
        if (n == 0 || n >= NAME_SIZE)
                return false;
        memcpy(buf, name, n);
        buf[n] = 0;
        return name_is_valid(buf);
}

/* Names no mesh node may answer, whatever the table says: the local host
 * (RFC 6761), and the names programs look up to find a proxy or tunnel
 * (WPAD, ISATAP), in any domain: a node named so would be asked first. */
static bool name_is_reserved(const char *name) {
        static const char *const first_labels[] = { "localhost", "wpad", "isatap" };
        size_t n = strlen(name), l = strcspn(name, ".");

        if (name_equal(name, "localhost.localdomain"))
                return true;
        if (n >= strlen(".localhost") && name_equal(name + n - strlen(".localhost"), ".localhost"))
                return true;
        for (size_t i = 0; i < sizeof(first_labels) / sizeof(first_labels[0]); i++)
                if (l == strlen(first_labels[i]) && name_prefix_equal(name, first_labels[i], l))
                        return true;
        return false;
}

/* Whether name can be a mesh name: one label, or LABEL.DOMAIN once the
 * domain is known (an old table without the header: any name). */
static bool name_in_scope(const char *name, const char *domain) {
        const char *dot = strchr(name, '.');

        if (name_is_reserved(name))
                return false;
        if (!dot || !*domain)
                return true;
        return name_equal(dot + 1, domain);
}

/* "# domain: mesh.internal" in the header → domain; other comments are
 * left alone. */
static void header_parse_domain(const char *line, char domain[static NAME_SIZE]) {
        if (strncmp(line, DOMAIN_HEADER, strlen(DOMAIN_HEADER)) != 0)
                return;
        if (!name_normalize(line + strlen(DOMAIN_HEADER), domain))
                domain[0] = 0;
}

/* Reads one line into buf without its newline, taking from *budget the
 * bytes it reads. Returns 1 for a line to parse, 0 for one to skip (too
 * long, holds a NUL byte, or is a last line without newline, i.e. a
 * truncated file), -1 at the end, -EFBIG past the budget, -errno on a read
 * error. */
static int read_line(FILE *f, char buf[static LINE_SIZE], size_t *budget) {
        size_t n = 0;
        bool skip = false;
        int c;

        while ((c = getc_unlocked(f)) != EOF) {
                if (*budget == 0)
                        return -EFBIG;
                (*budget)--;
                if (c == '\n') {
                        buf[n] = 0;
                        return skip ? 0 : 1;
                }
                if (c == 0 || n + 1 >= LINE_SIZE)
                        skip = true;
                else
                        buf[n++] = (char) c;
        }
        if (ferror(f))
                return errno > 0 ? -errno : -EIO;
        return n > 0 || skip ? 0 : -1;
}

/* "ADDRESS NAME..." with blanks between, '#' to the end of the line a
 * comment, like hosts(5). False for anything else. The address is only
 * split off here and the names are not checked: line_parse_address() and
 * line_names_valid() do that once the line matches, as most lines of a
 * big table never do. */
static bool parse_line(char *line, HostsLine *ret) {
        char *hash, *token, *save = NULL;

        hash = strchr(line, '#');
        if (hash)
                *hash = 0;

        token = strtok_r(line, " \t\r", &save);
        if (!token)
                return false;
        *ret = (HostsLine) { .address_text = token };
        while ((token = strtok_r(NULL, " \t\r", &save)) && ret->n_names < NAMES_MAX)
                ret->names[ret->n_names++] = token;
        return ret->n_names > 0;
}

/* A line with one bad name is not used at all. */
static bool line_names_valid(const HostsLine *l) {
        for (size_t i = 0; i < l->n_names; i++)
                if (!name_is_valid(l->names[i]))
                        return false;
        return true;
}

static bool line_parse_address(HostsLine *l) {
        /* inet_pton() takes neither "%scope" nor leading zeros in IPv4. */
        if (inet_pton(AF_INET, l->address_text, l->address.bytes) == 1)
                l->address.family = AF_INET;
        else if (inet_pton(AF_INET6, l->address_text, l->address.bytes) == 1)
                l->address.family = AF_INET6;
        else
                return false;
        return true;
}

/* Drops the names that are not the mesh's (see name_in_scope()): a table
 * that lists them anyway does not make them resolve. */
static void line_filter_names(HostsLine *l, const char *domain) {
        size_t k = 0;

        for (size_t i = 0; i < l->n_names; i++)
                if (name_in_scope(l->names[i], domain))
                        l->names[k++] = l->names[i];
        l->n_names = k;
}

static bool line_has_name(const HostsLine *l, const char *name) {
        for (size_t i = 0; i < l->n_names; i++)
                if (name_equal(l->names[i], name))
                        return true;
        return false;
}

static void answer_add_address(HostsAnswer *a, const HostsAddress *address) {
        for (size_t i = 0; i < a->n_addresses; i++)
                if (a->addresses[i].family == address->family &&
                    memcmp(a->addresses[i].bytes, address->bytes, family_address_size(address->family)) == 0)
                        return;
        if (a->n_addresses < ADDRESSES_MAX)
                a->addresses[a->n_addresses++] = *address;
}

/* The canonical name is the first with a dot (NAME.DOMAIN, as DNS would
 * answer for it), else the first; the others are aliases. */
static void answer_set_names(HostsAnswer *a, const HostsLine *l) {
        char *p = a->names_storage;

        a->n_names = 0;
        a->canonical = 0;
        for (size_t i = 0; i < l->n_names; i++) {
                size_t n = strlen(l->names[i]) + 1;

                /* The names come from one line shorter than LINE_SIZE. */
                memcpy(p, l->names[i], n);
                a->names[a->n_names] = p;
                if (a->canonical == 0 && !strchr(a->names[0], '.') && strchr(p, '.'))
                        a->canonical = a->n_names;
                a->n_names++;
                p += n;
        }
}

static const char *hosts_file_path(void) {
        const char *p = secure_getenv("MESHD_HOSTS_FILE");

        return p && *p ? p : NSS_MESH_HOSTS_FILE;
}

static int hosts_open(FILE **ret, bool *ret_oversized) {
        struct stat st;
        FILE *f;
        int fd, r;

        /* O_NONBLOCK: a FIFO put in its place must not hang the caller. */
        fd = open(hosts_file_path(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return errno == ENOENT || errno == ENOTDIR ? -ENOENT : (errno > 0 ? -errno : -EIO);
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                r = !S_ISREG(st.st_mode) ? -EINVAL : errno > 0 ? -errno : -EIO;
                close(fd);
                return r;
        }
        f = fdopen(fd, "r");
        if (!f) {
                r = errno > 0 ? -errno : -ENOMEM;
                close(fd);
                return r;
        }
        *ret = f;
        *ret_oversized = st.st_size > (off_t) TABLE_SIZE_MAX;
        return 0;
}

/* One table line against q. Returns 1 when the scan is over (the address
 * found, or the lines of the name's node have ended: meshd writes a node's
 * lines together), 0 to go on. */
static int hosts_match_line(const HostsQuery *q, const char *domain, HostsLine *l, HostsAnswer *ret) {
        if (q->address) {
                size_t size = family_address_size(q->address->family);

                if (line_parse_address(l) && l->address.family == q->address->family &&
                    memcmp(l->address.bytes, q->address->bytes, size) == 0 && line_names_valid(l)) {
                        /* Only the mesh's names; none left: not an answer. */
                        line_filter_names(l, domain);
                        if (l->n_names == 0)
                                return 0;
                        answer_set_names(ret, l);
                        answer_add_address(ret, &l->address);
                        return 1;
                }
                return 0;
        }

        if (!line_has_name(l, q->name) || !line_names_valid(l))
                return ret->name_known;
        if (!line_parse_address(l))
                return 0;
        if (!ret->name_known) {
                /* q->name is in scope, so at least it is left. */
                line_filter_names(l, domain);
                answer_set_names(ret, l);
                ret->name_known = true;
        }
        if (q->family == AF_UNSPEC || q->family == l->address.family)
                answer_add_address(ret, &l->address);
        return 0;
}

/* Scans the table for q. Returns 1 when q has an answer, 0 when not,
 * -ENOENT when there is no table (meshd not running), -EFBIG when it is
 * larger than TABLE_SIZE_MAX, other -errno on errors. */
static int hosts_lookup(const HostsQuery *q, HostsAnswer *ret) {
        char line[LINE_SIZE], domain[NAME_SIZE] = "";
        size_t budget = TABLE_SIZE_MAX;
        bool header = true, oversized = false;
        FILE *f = NULL;
        int r;

        *ret = (HostsAnswer) {};

        /* Not even the header is needed for these. */
        if (q->name && name_is_reserved(q->name))
                return 0;

        r = hosts_open(&f, &oversized);
        if (r < 0)
                return r;

        while ((r = read_line(f, line, &budget)) >= 0) {
                HostsLine l;

                if (r == 0)
                        continue;
                if (header) {
                        if (line[0] == '#') {
                                header_parse_domain(line, domain);
                                continue;
                        }
                        /* The header told what can be a mesh name. */
                        header = false;
                        if (q->name && !name_in_scope(q->name, domain)) {
                                r = -1;
                                break;
                        }
                        if (oversized) {
                                r = -EFBIG;
                                break;
                        }
                }
                if (!parse_line(line, &l))
                        continue;
                if (hosts_match_line(q, domain, &l, ret) > 0)
                        break;
        }
        fclose(f);
        if (r < -1)
                return r;
        return ret->n_addresses > 0;
}

/* Carves aligned pieces out of the caller's buffer; NULL when it is too
 * small. Works on integers so that an empty or NULL buffer is no special
 * case and no pointer is ever formed past its end. */
typedef struct Carver {
        uintptr_t start;
        size_t size;
        size_t used;
} Carver;

static void *carve(Carver *c, size_t n, size_t align) {
        uintptr_t at = c->start + c->used;
        size_t pad = (align - at % align) % align;

        if (pad > c->size - c->used || n > c->size - c->used - pad)
                return NULL;
        c->used += pad + n;
        return (void *) (at + pad);
}

static char *carve_string(Carver *c, const char *s) {
        size_t n = strlen(s) + 1;
        char *p = carve(c, n, 1);

        return p ? memcpy(p, s, n) : NULL;
}

static enum nss_status status_not_found(int *errnop, int *h_errnop, bool name_known) {
        *errnop = ENOENT;
        /* NO_DATA: the name exists, only not with an address of that family. */
        *h_errnop = name_known ? NO_DATA : HOST_NOT_FOUND;
        return NSS_STATUS_NOTFOUND;
}

/* ERANGE + TRYAGAIN makes glibc call again with a larger buffer. */
static enum nss_status status_buffer_too_small(int *errnop, int *h_errnop) {
        *errnop = ERANGE;
        *h_errnop = NETDB_INTERNAL;
        return NSS_STATUS_TRYAGAIN;
}

static enum nss_status status_from_lookup(int r, int *errnop, int *h_errnop, const HostsAnswer *a) {
        if (r == -ENOENT) /* no table: meshd is not running; let the next service try */
                return status_not_found(errnop, h_errnop, false);
        if (r < 0) {
                *errnop = -r;
                *h_errnop = NO_RECOVERY;
                return NSS_STATUS_UNAVAIL;
        }
        return status_not_found(errnop, h_errnop, a->name_known);
}

/* Fills a hostent for the addresses of one family in a. Returns false when
 * the buffer is too small; result is then left untouched. */
static bool fill_hostent(const HostsAnswer *a, int family, struct hostent *result, char *buffer,
                         size_t buflen) {
        Carver c = { .start = (uintptr_t) buffer, .size = buffer ? buflen : 0 };
        size_t alen = family_address_size(family), n_aliases = 0, n_addresses = 0, k;
        char *name, **aliases, **addr_list;

        for (size_t i = 0; i < a->n_addresses; i++)
                if (a->addresses[i].family == family)
                        n_addresses++;

        name = carve_string(&c, a->names[a->canonical]);
        if (!name)
                return false;
        aliases = carve(&c, sizeof(char *) * a->n_names, _Alignof(char *)); /* n_names - 1 + NULL */
        if (!aliases)
                return false;
        for (size_t i = 0; i < a->n_names; i++) {
                if (i == a->canonical)
                        continue;
                aliases[n_aliases] = carve_string(&c, a->names[i]);
                if (!aliases[n_aliases])
                        return false;
                n_aliases++;
        }
        aliases[n_aliases] = NULL;

        addr_list = carve(&c, sizeof(char *) * (n_addresses + 1), _Alignof(char *));
        if (!addr_list)
                return false;
        k = 0;
        for (size_t i = 0; i < a->n_addresses; i++) {
                if (a->addresses[i].family != family)
                        continue;
                addr_list[k] = carve(&c, alen, _Alignof(struct in6_addr));
                if (!addr_list[k])
                        return false;
                memcpy(addr_list[k], a->addresses[i].bytes, alen);
                k++;
        }
        addr_list[k] = NULL;

        *result = (struct hostent) {
                .h_name = name,
                .h_aliases = aliases,
                .h_addrtype = family,
                .h_length = (int) alen,
                .h_addr_list = addr_list,
        };
        return true;
}

enum nss_status _nss_mesh_gethostbyname4_r(const char *name, struct gaih_addrtuple **pat, char *buffer,
                                           size_t buflen, int *errnop, int *h_errnop, int32_t *ttlp) {
        PROTECT_ERRNO;
        Carver c = { .start = (uintptr_t) buffer, .size = buffer ? buflen : 0 };
        struct gaih_addrtuple *first = NULL, *prev = NULL;
        char wanted[NAME_SIZE], *canonical;
        HostsAnswer a;
        int r;

        if (!name_normalize(name, wanted))
                return status_not_found(errnop, h_errnop, false);
        r = hosts_lookup(&(HostsQuery) { .name = wanted, .family = AF_UNSPEC }, &a);
        if (r <= 0)
                return status_from_lookup(r, errnop, h_errnop, &a);

        canonical = carve_string(&c, a.names[a.canonical]);
        if (!canonical)
                return status_buffer_too_small(errnop, h_errnop);
        /* In table order: meshd writes IPv4 first; getaddrinfo() sorts by
         * RFC 6724 afterwards anyway. */
        for (size_t i = 0; i < a.n_addresses; i++) {
                struct gaih_addrtuple *t = carve(&c, sizeof(*t), _Alignof(struct gaih_addrtuple));

                if (!t)
                        return status_buffer_too_small(errnop, h_errnop);
                *t = (struct gaih_addrtuple) {
                        .name = canonical,
                        .family = a.addresses[i].family,
                };
                memcpy(t->addr, a.addresses[i].bytes, family_address_size(a.addresses[i].family));
                if (prev)
                        prev->next = t;
                else
                        first = t;
                prev = t;
        }

        if (!first) /* cannot happen: hosts_lookup() found an address */
                return status_not_found(errnop, h_errnop, a.name_known);

        /* nscd hands in a tuple of its own that wants the first record. */
        if (*pat)
                **pat = *first;
        else
                *pat = first;
        if (ttlp)
                *ttlp = 0;
        *errnop = 0;
        *h_errnop = 0;
        return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_mesh_gethostbyname3_r(const char *name, int af, struct hostent *result, char *buffer,
                                           size_t buflen, int *errnop, int *h_errnop, int32_t *ttlp,
                                           char **canonp) {
        PROTECT_ERRNO;
        char wanted[NAME_SIZE];
        HostsAnswer a;
        int r;

        if (af == AF_UNSPEC)
                af = AF_INET;
        if (af != AF_INET && af != AF_INET6) {
                *errnop = EAFNOSUPPORT;
                *h_errnop = NO_DATA;
                return NSS_STATUS_UNAVAIL;
        }
        if (!name_normalize(name, wanted))
                return status_not_found(errnop, h_errnop, false);
        r = hosts_lookup(&(HostsQuery) { .name = wanted, .family = af }, &a);
        if (r <= 0)
                return status_from_lookup(r, errnop, h_errnop, &a);
        if (!fill_hostent(&a, af, result, buffer, buflen))
                return status_buffer_too_small(errnop, h_errnop);
        if (ttlp)
                *ttlp = 0;
        if (canonp)
                *canonp = result->h_name;
        *errnop = 0;
        *h_errnop = 0;
        return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_mesh_gethostbyname2_r(const char *name, int af, struct hostent *result, char *buffer,
                                           size_t buflen, int *errnop, int *h_errnop) {
        return _nss_mesh_gethostbyname3_r(name, af, result, buffer, buflen, errnop, h_errnop, NULL, NULL);
}

enum nss_status _nss_mesh_gethostbyname_r(const char *name, struct hostent *result, char *buffer, size_t buflen,
                                          int *errnop, int *h_errnop) {
        return _nss_mesh_gethostbyname3_r(name, AF_INET, result, buffer, buflen, errnop, h_errnop, NULL, NULL);
}

enum nss_status _nss_mesh_gethostbyaddr2_r(const void *addr, socklen_t len, int af, struct hostent *result,
                                           char *buffer, size_t buflen, int *errnop, int *h_errnop,
                                           int32_t *ttlp) {
        PROTECT_ERRNO;
        HostsAddress wanted = { .family = af };
        HostsAnswer a;
        int r;

        if (family_address_size(af) == 0 || !addr || len != family_address_size(af)) {
                *errnop = EAFNOSUPPORT;
                *h_errnop = NO_DATA;
                return NSS_STATUS_UNAVAIL;
        }
        memcpy(wanted.bytes, addr, len);
        r = hosts_lookup(&(HostsQuery) { .address = &wanted }, &a);
        if (r <= 0)
                return status_from_lookup(r, errnop, h_errnop, &a);
        if (!fill_hostent(&a, af, result, buffer, buflen))
                return status_buffer_too_small(errnop, h_errnop);
        if (ttlp)
                *ttlp = 0;
        *errnop = 0;
        *h_errnop = 0;
        return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_mesh_gethostbyaddr_r(const void *addr, socklen_t len, int af, struct hostent *result,
                                          char *buffer, size_t buflen, int *errnop, int *h_errnop) {
        return _nss_mesh_gethostbyaddr2_r(addr, len, af, result, buffer, buflen, errnop, h_errnop, NULL);
}
