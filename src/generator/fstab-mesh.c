/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <libmount.h>
#include <limits.h>
#include <sys/stat.h>

#include "dns-label.h"
#include "fileio.h"
#include "fstab-mesh.h"
#include "log.h"
#include "mount-options.h"
#include "unit-name.h"

#define NETMAP_CACHE_MAX (64U * 1024U * 1024U)

MeshContext *mesh_context_free(MeshContext *c) {
        if (!c)
                return NULL;
        free(c->domain);
        netmap_free(c->netmap);
        free(c);
        return NULL;
}

static int mesh_context_load_cache(MeshContext *c, const char *state_dir) {
        _cleanup_(netmap_freep) Netmap *nm = NULL;
        _cleanup_free_ char *path = NULL, *json = NULL, *error = NULL;
        size_t len;
        int r;

        if (asprintf(&path, "%s/" MESHD_NETMAP_CACHE_NAME, state_dir) < 0)
                return -ENOMEM;
        r = read_full_file(path, NETMAP_CACHE_MAX, &json, &len);
        if (r == -ENOMEM)
                return r;
        if (r == -ENOENT) {
                log_debug("No cached netmap at %s, using the default mesh domain and ranges.", path);
                return 0;
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to read %s, using the default mesh domain and ranges: %m", path);
                return 0;
        }
        r = netmap_parse(json, len, &nm, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_warning("Ignoring cached netmap %s: %s", path, strna(error));
                return 0;
        }

        if (nm->domain) {
                char *d = strdup(nm->domain);
                if (!d)
                        return -ENOMEM;
                free(c->domain);
                c->domain = d;
        }
        c->ipv4_range = nm->ipv4_range;
        c->ipv4_prefixlen = nm->ipv4_prefixlen;
        c->ipv6_range = nm->ipv6_range;
        c->ipv6_prefixlen = nm->ipv6_prefixlen;
        c->has_ipv6_range = nm->has_ipv6_range;
        c->netmap = TAKE_PTR(nm);
        return 0;
}

int mesh_context_load(const char *state_dir, MeshContext **ret) {
        _cleanup_(mesh_context_freep) MeshContext *c = NULL;
        int family, r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->domain = strdup(MESH_DEFAULT_DOMAIN);
        if (!c->domain)
                return -ENOMEM;
        r = in_addr_prefix_parse(MESH_DEFAULT_IPV4_RANGE, &family, &c->ipv4_range, &c->ipv4_prefixlen);
        if (r < 0)
                return r;

        if (state_dir) {
                r = mesh_context_load_cache(c, state_dir);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

static int return_peer(const char *name, MeshHost kind, MeshHost *ret_kind, char **ret_peer) {
        if (ret_peer) {
                *ret_peer = NULL;
                if (kind == MESH_HOST_PEER) {
                        *ret_peer = strdup(name);
                        if (!*ret_peer)
                                return -ENOMEM;
                }
        }
        if (ret_kind)
                *ret_kind = kind;
        return 0;
}

static bool is_self(const MeshContext *c, const char *name) {
        return c->netmap && c->netmap->self.name && strcasecmp(c->netmap->self.name, name) == 0;
}

int mesh_context_classify_host(const MeshContext *c, const char *host, MeshHost *ret_kind, char **ret_peer) {
        _cleanup_free_ char *h = NULL;
        union in_addr_union a;
        const NetmapNode *n;
        size_t l, dl;
        int family;

        if (!c || !host)
                return -EINVAL;

        h = strdup(host);
        if (!h)
                return -ENOMEM;
        for (char *p = h; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        l = strlen(h);
        if (l > 1 && h[l - 1] == '.')
                h[--l] = '\0';

        if (in_addr_parse(h, &family, &a) >= 0) {
                bool inside = family == AF_INET
                                      ? in_addr_prefix_contains(AF_INET, &c->ipv4_range, c->ipv4_prefixlen, &a)
                                      : c->has_ipv6_range && in_addr_prefix_contains(AF_INET6, &c->ipv6_range,
                                                                                     c->ipv6_prefixlen, &a);
                if (!inside)
                        return return_peer(NULL, MESH_HOST_NONE, ret_kind, ret_peer);
                n = netmap_resolve_peer(c->netmap, h);
                return n ? return_peer(n->name, MESH_HOST_PEER, ret_kind, ret_peer)
                         : return_peer(NULL, MESH_HOST_UNNAMED, ret_kind, ret_peer);
        }

        dl = strlen(c->domain);
        if (l > dl + 1 && h[l - dl - 1] == '.' && strcasecmp(h + l - dl, c->domain) == 0) {
                h[l - dl - 1] = '\0';
                if (!dns_label_is_valid(h) || is_self(c, h))
                        return return_peer(NULL, MESH_HOST_UNNAMED, ret_kind, ret_peer);
                return return_peer(h, MESH_HOST_PEER, ret_kind, ret_peer);
        }

        if (!strchr(h, '.')) {
                if (netmap_find_peer_by_name(c->netmap, h))
                        return return_peer(h, MESH_HOST_PEER, ret_kind, ret_peer);
                if (is_self(c, h))
                        return return_peer(NULL, MESH_HOST_UNNAMED, ret_kind, ret_peer);
        }
        return return_peer(NULL, MESH_HOST_NONE, ret_kind, ret_peer);
}

bool fstype_is_network(const char *fstype) {
        static const char *const network[] = {
                "afs",  "ceph", "cifs", "smb3",      "smbfs",   "sshfs", "ncpfs", "ncp",    "nfs",
                "nfs4", "gfs",  "gfs2", "glusterfs", "gluster", "pvfs2", "ocfs2", "lustre", "davfs",
        };

        if (!fstype)
                return false;
        if (strncmp(fstype, "fuse.", 5) == 0)
                fstype += 5;
        for (size_t i = 0; i < ELEMENTSOF(network); i++)
                if (streq(fstype, network[i]))
                        return true;
        return false;
}

void mesh_mount_done(MeshMount *m) {
        free(m->what);
        free(m->where);
        free(m->fstype);
        free(m->options);
        free(m->peer);
        free(m->trigger);
        *m = (MeshMount) {};
}

/* Lexically appends "rest" (which names nothing that exists, so holds no
 * symlinks) to the resolved prefix, handling "." and ".." on the way. */
static int path_append_lexically(char *buf, size_t size, const char *rest) {
        size_t n;

        for (const char *c = rest; *c; c += n) {
                c += strspn(c, "/");
                n = strcspn(c, "/");
                if (n == 0 || (n == 1 && c[0] == '.'))
                        continue;
                if (n == 2 && c[0] == '.' && c[1] == '.') {
                        char *slash = strrchr(buf, '/');
                        if (slash)
                                *(slash == buf ? slash + 1 : slash) = '\0';
                        continue;
                }
                if (strlen(buf) + 1 + n + 1 > size)
                        return -ENAMETOOLONG;
                if (!streq(buf, "/"))
                        strcat(buf, "/");
                strncat(buf, c, n);
        }
        return 0;
}

/* systemd's fstab generator resolves symlinks in the mount point (the unit
 * is named after where the mount really lands, "/mnt/../x" → x.mount), also
 * for a mount point that does not exist yet: resolve the longest existing
 * prefix, then go on lexically. */
static int canonicalize_where(const char *where, char **ret) {
        _cleanup_free_ char *copy = NULL;
        char resolved[PATH_MAX];
        size_t len;
        int r;

        copy = strdup(where);
        if (!copy)
                return -ENOMEM;
        path_simplify(copy);
        len = strlen(copy);

        for (;;) {
                char saved = copy[len];

                copy[len] = '\0';
                if (realpath(len > 0 ? copy : "/", resolved)) {
                        copy[len] = saved;
                        break;
                }
                copy[len] = saved;
                if (len == 0) {
                        strcpy(resolved, "/");
                        break;
                }
                /* one component up */
                while (len > 0 && copy[len - 1] != '/')
                        len--;
                while (len > 1 && copy[len - 1] == '/')
                        len--;
                if (len == 1)
                        len = 0;
        }

        r = path_append_lexically(resolved, sizeof(resolved), copy + len);
        if (r < 0)
                return r;
        *ret = strdup(resolved);
        return *ret ? 0 : -ENOMEM;
}

static bool value_fits_unit_file(const char *s) {
        size_t l = s ? strlen(s) : 0;
        /* A newline ends the setting, a trailing backslash continues the line. */
        return !s || (!strchr(s, '\n') && (l == 0 || s[l - 1] != '\\'));
}

/* x-meshd.peer=NAME: the entry waits for that peer. 0, or a negative errno
 * logged (the entry is ignored). */
static int mount_peer_option(const char *target, const char *options, MeshMount *m) {
        _cleanup_free_ char *peer = NULL;
        int r;

        r = mount_options_get(options, MESHD_OPTION_PREFIX "peer", &peer);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_warning_errno(r, "%s: cannot parse options \"%s\", ignoring the entry.", target,
                                         options);
        if (r == 0)
                return 0;
        for (char *p = peer; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        if (!dns_label_is_valid(peer))
                return log_warning_errno(-EINVAL, "%s: x-meshd.peer=%s is not a peer name, ignoring the entry.",
                                         target, peer);
        if (asprintf(&m->trigger, "x-meshd.peer=%s", peer) < 0)
                return log_oom();
        m->peer = TAKE_PTR(peer);
        return 0;
}

/* The host of SOURCE: a mesh host makes the entry a mesh mount, and names
 * the peer unless x-meshd.peer= did. */
static int mount_host(const MeshContext *c, const char *source, const char *target, bool mesh_type,
                      MeshMount *m, MeshHost *ret_kind) {
        _cleanup_free_ char *host = NULL, *peer = NULL;
        int r;

        r = source ? mount_spec_get_host(source, &host) : 0;
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0 && (m->trigger || mesh_type))
                return log_warning_errno(r, "%s: cannot find the host in \"%s\", ignoring the entry.", target,
                                         source);
        if (r <= 0)
                return 0;

        r = mesh_context_classify_host(c, host, ret_kind, &peer);
        if (r < 0)
                return log_oom();
        if (*ret_kind != MESH_HOST_NONE && !m->trigger && asprintf(&m->trigger, "mesh host %s", host) < 0)
                return log_oom();
        /* For mesh.* the host is the peer by definition (mount.mesh
         * asks meshd for it), cached netmap or not. */
        if (!peer && *ret_kind == MESH_HOST_NONE && mesh_type && !strchr(host, '.') && !strchr(host, ':')) {
                for (char *p = host; *p; p++)
                        *p = (char) tolower((unsigned char) *p);
                if (dns_label_is_valid(host))
                        peer = TAKE_PTR(host);
        }
        if (!m->peer)
                m->peer = TAKE_PTR(peer);
        return 0;
}

/* What goes into the unit files must fit them; m->where is the canonical
 * mount point. */
static int mount_where(const char *source, const char *target, const char *fstype, const char *options,
                       MeshMount *m) {
        int r;

        if (target[0] != '/')
                return log_warning_errno(-EINVAL,
                                         "%s: mount point is not an absolute path, ignoring the entry.",
                                         target);
        if (!value_fits_unit_file(target) || !value_fits_unit_file(source) || !value_fits_unit_file(fstype) ||
            !value_fits_unit_file(options))
                return log_warning_errno(-EINVAL,
                                         "%s: newline or trailing backslash in the entry, ignoring it.",
                                         target);
        r = canonicalize_where(target, &m->where);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_warning_errno(r, "%s: invalid mount point, ignoring the entry: %m", target);
        /* "/mnt/x\/y/.." fits, the "/mnt/x\" it stands for does not. */
        if (!value_fits_unit_file(m->where))
                return log_warning_errno(-EINVAL,
                                         "%s: newline or trailing backslash in the entry, ignoring it.",
                                         target);
        return 0;
}

static int mount_fill(const char *source, const char *target, const char *fstype, const char *options,
                      MeshMount *m) {
        _cleanup_free_ char *timeout = NULL;

        if (mount_options_get(options, MESHD_OPTION_PREFIX "timeout", &timeout) > 0) {
                uint64_t usec;
                if (mount_timeout_parse(timeout, &usec) < 0)
                        log_warning("%s: x-meshd.timeout=%s is not a time span; mount.mesh will refuse it.",
                                    target, timeout);
        }

        m->what = strdup(source ?: "none");
        m->fstype = strdup(fstype ?: "auto");
        if (!m->what || !m->fstype)
                return log_oom();
        if (options) {
                m->options = strdup(options);
                if (!m->options)
                        return log_oom();
        }
        m->network = mount_options_has(options, "_netdev") || fstype_is_network(fstype);
        m->automount = mount_options_has(options, "x-systemd.automount");
        m->nofail = mount_options_has(options, "nofail");
        m->noauto = mount_options_has(options, "noauto");
        return 0;
}

int mesh_mount_from_fstab(const MeshContext *c, const char *source, const char *target, const char *fstype,
                          const char *options, MeshMount *ret) {
        _cleanup_(mesh_mount_done) MeshMount m = {};
        MeshHost kind = MESH_HOST_NONE;
        bool mesh_type;
        int r;

        if (!c || !ret)
                return -EINVAL;
        if (!target || streq_ptr(fstype, "swap"))
                return 0;

        r = mount_peer_option(target, options, &m);
        if (r < 0)
                return r;

        mesh_type = fstype && strncmp(fstype, "mesh.", 5) == 0;
        if (mesh_type && !m.trigger && asprintf(&m.trigger, "type %s", fstype) < 0)
                return log_oom();

        r = mount_host(c, source, target, mesh_type, &m, &kind);
        if (r < 0)
                return r;
        if (!m.trigger)
                return 0;

        if (!m.peer)
                log_warning("%s: %s, but cannot tell which peer it needs (%s); ordering it after %s only. "
                            "Add x-meshd.peer=NAME to wait for the peer.",
                            target, m.trigger,
                            kind == MESH_HOST_UNNAMED ? "not in the cached netmap" : "not a mesh host",
                            MESH_ONLINE_TARGET);

        r = mount_where(source, target, fstype, options, &m);
        if (r < 0)
                return r;
        r = mount_fill(source, target, fstype, options, &m);
        if (r < 0)
                return r;

        *ret = m;
        m = (MeshMount) {};
        return 1;
}

/* '%' starts a specifier in unit files. */
static void fputs_unit_value(const char *s, FILE *f) {
        for (; *s; s++) {
                if (*s == '%')
                        fputc('%', f);
                fputc(*s, f);
        }
}

static int mkdir_one(const char *path) {
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int write_unit_file(const char *path, const char *text) {
        _cleanup_fclose_ FILE *f = NULL;

        /* "x": a second fstab line for the same mount point must not
         * overwrite the first one's unit, like systemd-fstab-generator. */
        f = fopen(path, "wxe");
        if (!f)
                return -errno;
        if (fputs(text, f) < 0 || fflush(f) != 0 || ferror(f))
                return errno > 0 ? -errno : -EIO;
        return 0;
}

static int add_symlink(const char *dir, const char *wants_dir, const char *name, const char *target) {
        _cleanup_free_ char *d = NULL, *p = NULL;
        int r;

        if (asprintf(&d, "%s/%s", dir, wants_dir) < 0 || asprintf(&p, "%s/%s", d, name) < 0)
                return -ENOMEM;
        r = mkdir_one(d);
        if (r < 0)
                return r;
        if (symlink(target, p) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static void write_mesh_dependencies(const MeshMount *m, const char *wait_unit, FILE *f) {
        if (wait_unit)
                fprintf(f, "Requires=%1$s\nAfter=%1$s\n", wait_unit);
        fprintf(f, "Wants=%1$s\nAfter=%1$s\n", MESH_ONLINE_TARGET);
}

typedef enum SystemdOption {
        OPTION_REQUIRES, /* unit: After= + Requires=; path: RequiresMountsFor= */
        OPTION_WANTS,    /* unit: After= + Wants=;    path: RequiresMountsFor= */
        OPTION_AFTER,    /* unit, or the mount unit of a path */
        OPTION_BEFORE,
        OPTION_MOUNTS_FOR,    /* path */
        OPTION_MOUNT_TIMEOUT, /* TimeoutSec= */
} SystemdOption;

static int write_systemd_option(const MeshMount *m, SystemdOption o, const char *option, const char *v,
                                FILE *f) {
        _cleanup_free_ char *unit = NULL;
        bool path = v[0] == '/';

        /* The options as a whole fit (mesh_mount_from_fstab()), but one
         * value ending in a backslash would continue its own line. */
        if (!value_fits_unit_file(v)) {
                log_warning("%s: ignoring %s=%s: ends in a backslash.", m->where, option, v);
                return 0;
        }
        if (o == OPTION_MOUNT_TIMEOUT) {
                fputs("TimeoutSec=", f);
                fputs_unit_value(v, f);
                fputc('\n', f);
                return 0;
        }
        if (path && o != OPTION_AFTER && o != OPTION_BEFORE) {
                fputs("RequiresMountsFor=", f);
                fputs_unit_value(v, f);
                fputc('\n', f);
                return 0;
        }
        if (!path && o == OPTION_MOUNTS_FOR) {
                log_warning("%s: ignoring %s=%s: needs an absolute path.", m->where, option, v);
                return 0;
        }
        if (path) {
                int r = unit_name_from_path(v, ".mount", &unit);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        log_warning("%s: ignoring %s=%s: not a valid path.", m->where, option, v);
                        return 0;
                }
                v = unit;
        }

        fputs(o == OPTION_BEFORE ? "Before=" : "After=", f);
        fputs_unit_value(v, f);
        fputc('\n', f);
        if (o == OPTION_REQUIRES || o == OPTION_WANTS) {
                fputs(o == OPTION_REQUIRES ? "Requires=" : "Wants=", f);
                fputs_unit_value(v, f);
                fputc('\n', f);
        }
        return 0;
}

/* The x-systemd.* options that systemd-fstab-generator turns into lines of
 * the unit we replace. */
static int write_systemd_options(const MeshMount *m, FILE *f) {
        static const struct {
                const char *name;
                SystemdOption option;
        } map[] = {
                { "x-systemd.requires", OPTION_REQUIRES },
                { "x-systemd.wants", OPTION_WANTS },
                { "x-systemd.after", OPTION_AFTER },
                { "x-systemd.before", OPTION_BEFORE },
                { "x-systemd.requires-mounts-for", OPTION_MOUNTS_FOR },
                { "x-systemd.mount-timeout", OPTION_MOUNT_TIMEOUT },
        };
        _cleanup_free_ char *copy = NULL;
        char *p, *name, *value;
        size_t namesz, valuesz;
        int r;

        copy = strdup(m->options ?: "");
        if (!copy)
                return -ENOMEM;
        p = copy;
        while ((r = mnt_optstr_next_option(&p, &name, &namesz, &value, &valuesz)) == 0) {
                if (!value || valuesz == 0)
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(map); i++) {
                        _cleanup_free_ char *v = NULL;

                        if (strlen(map[i].name) != namesz || strncmp(name, map[i].name, namesz) != 0)
                                continue;
                        v = strndup(value, valuesz);
                        if (!v)
                                return -ENOMEM;
                        r = write_systemd_option(m, map[i].option, map[i].name, v, f);
                        if (r < 0)
                                return r;
                        break;
                }
        }
        return r < 0 ? -EINVAL : 0;
}

static int write_dropin(const MeshMount *m, const char *unit, const char *wait_unit, const char *dir) {
        _cleanup_free_ char *d = NULL, *path = NULL, *text = NULL;
        size_t size;
        FILE *f;
        int r;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f, "# Automatically generated by meshd-fstab-generator (%s)\n\n[Unit]\n", m->trigger);
        write_mesh_dependencies(m, wait_unit, f);
        if (fclose(f) != 0)
                return -ENOMEM;

        if (asprintf(&d, "%s/%s.d", dir, unit) < 0 || asprintf(&path, "%s/" MESHD_DROPIN_NAME, d) < 0)
                return -ENOMEM;
        r = mkdir_one(d);
        if (r < 0)
                return r;
        return write_unit_file(path, text);
}

/* systemd-fstab-generator makes an entry of a type it does not know as a
 * network file system (mesh.nfs4, or any non-network type without _netdev)
 * a local mount: Before=local-fs.target in the unit it writes, plus the
 * same from the default dependencies. With our After=meshd-wait-online@
 * (→ meshd.service → basic.target → local-fs.target) that is an ordering
 * cycle, and a drop-in cannot remove a dependency. So we write the whole
 * unit into the early directory, which shadows the normal one: a remote
 * mount (_netdev makes systemd's default dependencies remote ones too). */
static int write_remote_unit(const MeshMount *m, const char *unit, const char *wait_unit,
                             const char *source_path, const char *dir) {
        _cleanup_free_ char *path = NULL, *text = NULL, *options = NULL, *with_netdev = NULL;
        size_t size;
        FILE *f;
        int r;

        r = mount_options_strip_meshd(m->options, true, &options);
        if (r < 0)
                return r;
        if (!mount_options_has(options, "_netdev") &&
            asprintf(&with_netdev, "_netdev%s%s", *options ? "," : "", options) < 0)
                return -ENOMEM;
        /* Stripping drops empty options too: "a=x\," becomes "a=x\". */
        if (!value_fits_unit_file(with_netdev ?: options))
                return -EINVAL;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "# Automatically generated by meshd-fstab-generator (%s)\n"
                "\n"
                "[Unit]\n"
                "Documentation=man:fstab(5) man:meshd-fstab-generator(8)\n"
                "SourcePath=",
                m->trigger);
        fputs_unit_value(source_path, f);
        fputc('\n', f);
        write_mesh_dependencies(m, wait_unit, f);
        fputs("Wants=network-online.target\n"
              "After=network-online.target remote-fs-pre.target\n",
              f);
        if (!m->nofail)
                fputs("Before=remote-fs.target\n", f);
        r = write_systemd_options(m, f);
        if (r < 0) {
                fclose(f);
                return r;
        }
        fputs("\n[Mount]\nWhat=", f);
        fputs_unit_value(m->what, f);
        fputs("\nWhere=", f);
        fputs_unit_value(m->where, f);
        fputs("\nType=", f);
        fputs_unit_value(m->fstype, f);
        fputs("\nOptions=", f);
        fputs_unit_value(with_netdev ?: options, f);
        fputc('\n', f);
        if (fclose(f) != 0)
                return -ENOMEM;

        if (asprintf(&path, "%s/%s", dir, unit) < 0)
                return -ENOMEM;
        r = write_unit_file(path, text);
        if (r < 0)
                return r;

        if (m->noauto || m->automount)
                return 0; /* nothing pulls the mount in; the automount unit is systemd's */

        _cleanup_free_ char *relative = NULL;
        if (asprintf(&relative, "../%s", unit) < 0)
                return -ENOMEM;
        r = add_symlink(dir, m->nofail ? "remote-fs.target.wants" : "remote-fs.target.requires", unit,
                        relative);
        if (r < 0)
                return r;
        /* systemd-fstab-generator's local-fs.target.requires/UNIT link (no
         * ordering, but it ties local-fs.target's transaction to the mesh);
         * an entry of the same name pointing to /dev/null in the early dir
         * masks it, see systemd.unit(5), "dependency masked". */
        return add_symlink(dir, m->nofail ? "local-fs.target.wants" : "local-fs.target.requires", unit,
                           "/dev/null");
}

int mesh_mount_write_units(const MeshMount *m, const char *source_path, const char *normal_dir,
                           const char *early_dir) {
        _cleanup_free_ char *unit = NULL, *wait_unit = NULL;
        int r;

        if (!m || !normal_dir)
                return -EINVAL;

        r = unit_name_from_path(m->where, ".mount", &unit);
        if (r < 0)
                return log_warning_errno(
                        r, "%s: cannot make a unit name of the mount point, ignoring the entry: %m", m->where);
        if (m->peer) {
                r = unit_name_build_instance(MESHD_WAIT_ONLINE_PREFIX, m->peer, ".service", &wait_unit);
                if (r < 0)
                        return log_warning_errno(r, "%s: bad peer name %s: %m", m->where, m->peer);
        }

        if (m->network)
                r = write_dropin(m, unit, wait_unit, normal_dir);
        else
                r = write_remote_unit(m, unit, wait_unit, source_path ?: "/etc/fstab", early_dir ?: normal_dir);
        if (r == -EEXIST)
                return log_warning_errno(r,
                                         "%s: mount point listed twice in the fstab, ignoring the later entry.",
                                         m->where);
        if (r < 0)
                return log_warning_errno(r, "%s: failed to write units for %s: %m", m->where, unit);

        log_debug("%s: %s, %s %s (%s).", m->where, m->trigger, m->network ? "drop-in for" : "remote mount unit",
                  unit, wait_unit ?: MESH_ONLINE_TARGET);
        return 0;
}

static int on_parse_error(struct libmnt_table *tb, const char *filename, int line) {
        log_warning("%s:%i: cannot parse the line, ignoring it.", strna(filename), line);
        return 1; /* skip the line, go on */
}

int fstab_mesh_generate(const char *fstab_path, const char *state_dir, const char *normal_dir,
                        const char *early_dir) {
        _cleanup_(mesh_context_freep) MeshContext *c = NULL;
        struct libmnt_table *tb = NULL;
        struct libmnt_iter *it = NULL;
        struct libmnt_fs *fs;
        unsigned n = 0;
        int r;

        if (!fstab_path || !normal_dir)
                return -EINVAL;

        if (access(fstab_path, F_OK) < 0) {
                if (errno == ENOENT) {
                        log_debug("No %s, nothing to do.", fstab_path);
                        return 0;
                }
                return log_error_errno(-errno, "Cannot access %s: %m", fstab_path);
        }

        r = mesh_context_load(state_dir, &c);
        if (r < 0)
                return log_oom();

        tb = mnt_new_table();
        it = mnt_new_iter(MNT_ITER_FORWARD);
        if (!tb || !it) {
                mnt_unref_table(tb);
                mnt_free_iter(it);
                return log_oom();
        }
        (void) mnt_table_set_parser_errcb(tb, on_parse_error);
        r = mnt_table_parse_fstab(tb, fstab_path);
        if (r < 0)
                /* What parsed before the trouble is in tb; use it. */
                log_warning_errno(r, "Failed to parse %s completely: %m", fstab_path);

        while (mnt_table_next_fs(tb, it, &fs) == 0) {
                _cleanup_(mesh_mount_done) MeshMount m = {};

                r = mesh_mount_from_fstab(c, mnt_fs_get_source(fs), mnt_fs_get_target(fs),
                                          mnt_fs_get_fstype(fs), mnt_fs_get_options(fs), &m);
                if (r <= 0)
                        continue;
                if (mesh_mount_write_units(&m, fstab_path, normal_dir, early_dir) >= 0)
                        n++;
        }
        log_debug("%u fstab entries need the mesh.", n);

        mnt_free_iter(it);
        mnt_unref_table(tb);
        return 0;
}
