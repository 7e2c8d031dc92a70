/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <stdbool.h>

#include "macro.h"
#include "unit-name.h"

/* Characters that stand for themselves in a unit name; everything else,
 * byte by byte (so UTF-8 too), becomes \xNN. '-' is the path separator in
 * escaped names, hence escaped itself. */
static bool char_is_plain(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == ':' ||
               c == '_' || c == '.';
}

static char *escape_char(unsigned char c, char *t) {
        static const char hex[] = "0123456789abcdef";

        *t++ = '\\';
        *t++ = 'x';
        *t++ = hex[c >> 4];
        *t++ = hex[c & 15];
        return t;
}

int unit_name_escape(const char *s, char **ret) {
        char *buf, *t;

        if (!s || !ret)
                return -EINVAL;

        buf = malloc(strlen(s) * 4 + 1);
        if (!buf)
                return -ENOMEM;
        t = buf;

        /* A leading '.' would make a hidden unit file ("/.snapshots"). */
        if (*s == '.')
                t = escape_char((unsigned char) *s++, t);
        for (; *s; s++) {
                if (*s == '/')
                        *t++ = '-';
                else if (char_is_plain(*s))
                        *t++ = *s;
                else
                        t = escape_char((unsigned char) *s, t);
        }
        *t = '\0';
        *ret = buf;
        return 0;
}

char *path_simplify(char *path) {
        char *f = path, *t = path;
        bool absolute;

        if (!path || !*path)
                return path;

        absolute = *f == '/';
        if (absolute)
                *t++ = *f++;

        for (;;) {
                size_t n;

                while (*f == '/')
                        f++;
                if (!*f)
                        break;
                n = strcspn(f, "/");
                if (n == 1 && f[0] == '.') {
                        f += n;
                        continue;
                }
                if (t > path && t[-1] != '/')
                        *t++ = '/';
                memmove(t, f, n);
                t += n;
                f += n;
        }

        if (t == path) /* "." or "./" */
                *t++ = '.';
        *t = '\0';
        return path;
}

static bool path_is_normalized(const char *p) {
        size_t n;

        if (!*p || strlen(p) >= PATH_MAX)
                return false;
        for (const char *c = p; *c; c += n) {
                c += strspn(c, "/");
                n = strcspn(c, "/");
                if (n > NAME_MAX)
                        return false;
                if (n == 2 && c[0] == '.' && c[1] == '.')
                        return false;
        }
        return true;
}

int unit_name_path_escape(const char *path, char **ret) {
        _cleanup_free_ char *p = NULL;
        char *s, *e;

        if (!path || !ret)
                return -EINVAL;

        p = strdup(path);
        if (!p)
                return -ENOMEM;
        path_simplify(p);

        if (streq(p, "/") || streq(p, "")) {
                s = strdup("-");
                if (!s)
                        return -ENOMEM;
                *ret = s;
                return 0;
        }
        if (!path_is_normalized(p) || streq(p, "."))
                return -EINVAL;

        e = p + strlen(p);
        while (e > p && e[-1] == '/')
                *--e = '\0';
        return unit_name_escape(p + strspn(p, "/"), ret);
}

int unit_name_from_path(const char *path, const char *suffix, char **ret) {
        _cleanup_free_ char *escaped = NULL;
        char *name;
        int r;

        if (!suffix || !ret)
                return -EINVAL;

        r = unit_name_path_escape(path, &escaped);
        if (r < 0)
                return r;
        if (asprintf(&name, "%s%s", escaped, suffix) < 0)
                return -ENOMEM;
        if (strlen(name) >= UNIT_NAME_MAX) {
                free(name);
                return -ENAMETOOLONG;
        }
        *ret = name;
        return 0;
}

int unit_name_build_instance(const char *prefix, const char *instance, const char *suffix, char **ret) {
        _cleanup_free_ char *escaped = NULL;
        char *name;
        int r;

        if (!prefix || !instance || !*instance || !suffix || !ret)
                return -EINVAL;

        r = unit_name_escape(instance, &escaped);
        if (r < 0)
                return r;
        if (asprintf(&name, "%s%s%s", prefix, escaped, suffix) < 0)
                return -ENOMEM;
        if (strlen(name) >= UNIT_NAME_MAX) {
                free(name);
                return -ENAMETOOLONG;
        }
        *ret = name;
        return 0;
}
