/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <libmount.h>

#include "macro.h"
#include "mount-options.h"

/* Locates the host inside spec: [*ret_start, *ret_end) without brackets. */
static int spec_find_host(const char *spec, const char **ret_start, const char **ret_end, bool *ret_bracketed) {
        const char *s, *e;
        bool bracketed = false;

        if (!spec)
                return -EINVAL;

        if (spec[0] == '/' && spec[1] == '/') {
                /* UNC: //host/share */
                s = spec + 2;
                if (*s == '[') {
                        e = strchr(++s, ']');
                        if (!e || (e[1] != '/' && e[1] != '\0'))
                                return -EINVAL;
                        bracketed = true;
                } else
                        e = s + strcspn(s, "/");
                if (e == s)
                        return -EINVAL;
        } else if (spec[0] == '/' || !strchr(spec, ':'))
                return 0; /* a path, a tag (UUID=…), or a pseudo fs ("tmpfs") */
        else {
                /* host:path; sshfs also has user@host:path */
                const char *colon;

                s = spec;
                if (*s == '[') {
                        e = strchr(++s, ']');
                        if (!e || e[1] != ':')
                                return -EINVAL;
                        bracketed = true;
                } else {
                        const char *at;

                        colon = strchr(s, ':');
                        /* "foo/bar:baz" is a path with a colon, not host:path */
                        if (memchr(s, '/', (size_t) (colon - s)))
                                return 0;
                        at = memchr(s, '@', (size_t) (colon - s));
                        if (at) {
                                s = at + 1;
                                if (*s == '[') {
                                        e = strchr(++s, ']');
                                        if (!e || e[1] != ':')
                                                return -EINVAL;
                                        bracketed = true;
                                        goto done;
                                }
                        }
                        e = colon;
                }
                if (e == s)
                        return -EINVAL;
        }
done:
        *ret_start = s;
        *ret_end = e;
        if (ret_bracketed)
                *ret_bracketed = bracketed;
        return 1;
}

int mount_spec_get_host(const char *spec, char **ret_host) {
        const char *s, *e;
        char *h;
        int r;

        r = spec_find_host(spec, &s, &e, NULL);
        if (r <= 0)
                return r;
        if (ret_host) {
                h = strndup(s, (size_t) (e - s));
                if (!h)
                        return -ENOMEM;
                *ret_host = h;
        }
        return 1;
}

int mount_spec_replace_host(const char *spec, const char *host, char **ret) {
        const char *s, *e;
        struct in6_addr a6;
        bool bracketed, v6;
        char *n;
        int r;

        if (!host || !*host || !ret)
                return -EINVAL;
        r = spec_find_host(spec, &s, &e, &bracketed);
        if (r < 0)
                return r;
        if (r == 0)
                return -EINVAL;

        /* Brackets: the original ones are outside [s, e) and get replaced too. */
        if (bracketed) {
                s--;
                e++;
        }
        v6 = inet_pton(AF_INET6, host, &a6) == 1;
        if (asprintf(&n, "%.*s%s%s%s%s", (int) (s - spec), spec, v6 ? "[" : "", host, v6 ? "]" : "", e) < 0)
                return -ENOMEM;
        *ret = n;
        return 0;
}

int mount_options_get(const char *options, const char *name, char **ret_value) {
        char *value = NULL;
        size_t valuesz = 0;
        int r;

        if (!options || !name)
                return 0;
        r = mnt_optstr_get_option(options, name, &value, &valuesz);
        if (r == 1)
                return 0;
        if (r < 0)
                return -EINVAL;
        if (ret_value) {
                char *v = strndup(value ? value : "", value ? valuesz : 0);
                if (!v)
                        return -ENOMEM;
                *ret_value = v;
        }
        return 1;
}

bool mount_options_has(const char *options, const char *name) {
        return mount_options_get(options, name, NULL) > 0;
}

int mount_options_strip_meshd(const char *options, bool drop_defaults, char **ret) {
        _cleanup_free_ char *out = NULL, *copy = NULL;
        char *p, *name, *value;
        size_t namesz, valuesz;
        int r;

        if (!ret)
                return -EINVAL;

        copy = strdup(options ?: "");
        if (!copy)
                return -ENOMEM;
        p = copy;
        while ((r = mnt_optstr_next_option(&p, &name, &namesz, &value, &valuesz)) == 0) {
                _cleanup_free_ char *n = NULL, *v = NULL;

                if (namesz >= strlen(MESHD_OPTION_PREFIX) &&
                    strncmp(name, MESHD_OPTION_PREFIX, strlen(MESHD_OPTION_PREFIX)) == 0)
                        continue;
                if (drop_defaults && namesz == 8 && strncmp(name, "defaults", 8) == 0 && !value)
                        continue;
                n = strndup(name, namesz);
                if (!n)
                        return -ENOMEM;
                if (value) {
                        v = strndup(value, valuesz);
                        if (!v)
                                return -ENOMEM;
                }
                /* mnt_optstr_append_option() skips an empty value: keep "name=". */
                if (v && !*v) {
                        char *t;
                        if (asprintf(&t, "%s%s%s=", out ?: "", out && *out ? "," : "", n) < 0)
                                return -ENOMEM;
                        free(out);
                        out = t;
                        continue;
                }
                if (mnt_optstr_append_option(&out, n, v) < 0)
                        return -ENOMEM;
        }
        if (r < 0)
                return -EINVAL;

        if (!out) {
                out = strdup("");
                if (!out)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

int mount_timeout_parse(const char *s, uint64_t *ret_usec) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "", USEC_PER_SEC },         { "s", USEC_PER_SEC },        { "sec", USEC_PER_SEC },
                { "ms", USEC_PER_MSEC },      { "min", 60 * USEC_PER_SEC }, { "m", 60 * USEC_PER_SEC },
                { "h", 3600 * USEC_PER_SEC },
        };
        unsigned long long v;
        char *end;

        if (!s || !ret_usec)
                return -EINVAL;
        if (streq(s, "infinity")) {
                *ret_usec = MOUNT_MESH_TIMEOUT_INFINITY;
                return 0;
        }
        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(end, units[i].suffix)) {
                        if (v > 24ULL * 3600 * USEC_PER_SEC / units[i].usec)
                                return -ERANGE;
                        *ret_usec = v * units[i].usec;
                        return 0;
                }
        return -EINVAL;
}

/* One file system type as mount(8) and the kernel name them ("nfs4",
 * "fuse.sshfs", "ext4"): lower-case letters, digits, '_' and '.', starting
 * with a letter or digit. Nothing that mount(8) could read as more than a
 * type: no ',' (a list of types), no '-', no '/', no blank. */
bool mount_type_is_valid(const char *t) {
        size_t n = 0;

        if (!t || !((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9')))
                return false;
        for (; *t; t++, n++)
                if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') || *t == '_' || *t == '.'))
                        return false;
        return n <= MOUNT_TYPE_MAX;
}

int mount_real_type(const char *argv0, const char *type, char **ret) {
        const char *t = NULL, *base;
        char *n;

        if (!ret)
                return -EINVAL;

        if (type && *type) {
                /* mount(8) hands plain mount.mesh the whole type: mesh.TYPE. */
                if (strncmp(type, "mesh.", 5) != 0)
                        return -EINVAL;
                t = type + 5;
        } else if (argv0) {
                base = strrchr(argv0, '/');
                base = base ? base + 1 : argv0;
                if (strncmp(base, "mount.mesh.", 11) == 0)
                        t = base + 11;
        }
        if (!mount_type_is_valid(t) || streq(t, "mesh") || strncmp(t, "mesh.", 5) == 0)
                return -EINVAL;
        n = strdup(t);
        if (!n)
                return -ENOMEM;
        *ret = n;
        return 0;
}
