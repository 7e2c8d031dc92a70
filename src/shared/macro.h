/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cppcheck knows no cleanup attribute and would call every _cleanup_
 * variable a leak: tools/lint defines _cleanup_(f) as `static`, a kind
 * of variable it does not check for leaks (all others it still does). */
#ifndef _cleanup_
#define _cleanup_(f) __attribute__((cleanup(f)))
#endif
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _pure_ __attribute__((pure))
#define _noreturn_ __attribute__((noreturn))
#define _sentinel_ __attribute__((sentinel))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Hand ownership of a pointer (or fd) to someone else: returns the value and
 * resets the variable, so its _cleanup_ handler becomes a no-op. */
#define TAKE_PTR(p)                     \
        ({                              \
                __typeof__(p) _p = (p); \
                (p) = NULL;             \
                _p;                     \
        })
#define TAKE_FD(fd)             \
        ({                      \
                int _fd = (fd); \
                (fd) = -EBADF;  \
                _fd;            \
        })

/* NOLINTBEGIN(bugprone-macro-parentheses): type is a type, not an expression */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
        static inline void func##p(type *p) {   \
                if (*p)                         \
                        func(*p);               \
        }
/* NOLINTEND(bugprone-macro-parentheses) */

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}
static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* strv: NULL-terminated arrays of owned strings. */
static inline char **strv_free(char **l) {
        if (!l)
                return NULL;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
        return NULL;
}
static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

static inline size_t strv_length(char *const *l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

static inline const char *strna(const char *s) {
        return s ? s : "n/a";
}

static inline int streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
#define streq(a, b) (strcmp((a), (b)) == 0)

/* Overwrite secrets before they are freed; the compiler may not elide it. */
static inline void erase_and_free(void *p, size_t n) {
        if (!p)
                return;
        explicit_bzero(p, n);
        free(p);
}

#define USEC_PER_SEC ((uint64_t) 1000000ULL)
#define USEC_PER_MSEC ((uint64_t) 1000ULL)
#define NSEC_PER_USEC ((uint64_t) 1000ULL)
