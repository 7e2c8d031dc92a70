/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Mount sources and option strings as fstab(5) and mount(8) write them.
 * Used by mount.mesh and by meshd-fstab-generator (both link the
 * mount-options library of src/shared/meson.build), so both read an fstab
 * line the same way. */

#include <stdbool.h>
#include <stdint.h>

#define MESHD_OPTION_PREFIX "x-meshd."
#define MOUNT_MESH_TIMEOUT_DEFAULT_USEC (30 * USEC_PER_SEC)
#define MOUNT_MESH_TIMEOUT_INFINITY UINT64_MAX

/* The host of a network file system source: "host:/path", "[v6]:/path",
 * "user@host:path" (sshfs), "//host/share" (cifs; also "//[v6]/share").
 * Returns 1 and the host without brackets, 0 when the source has no host
 * part ("/dev/sda1", "UUID=...", "tmpfs"), -EINVAL for a malformed one
 * ("[::1/x", "//"). */
int mount_spec_get_host(const char *spec, char **ret_host);

/* The same source with the host replaced; an IPv6 address gets brackets.
 * -EINVAL when spec has no host part. */
int mount_spec_replace_host(const char *spec, const char *host, char **ret);

/* Value of the first option called name ("x-meshd.peer"). Returns 1 and the
 * value ("" for a bare "name"; ret_value may be NULL), 0 when absent. */
int mount_options_get(const char *options, const char *name, char **ret_value);
/* Whether name appears at all (with or without a value). */
bool mount_options_has(const char *options, const char *name);

/* options without any x-meshd.* option (and without "defaults" when
 * drop_defaults); *ret is "" when nothing is left. options may be NULL. */
int mount_options_strip_meshd(const char *options, bool drop_defaults, char **ret);

/* "30", "30s", "2min", "500ms", "infinity" → microseconds. -EINVAL for
 * anything else, -ERANGE above a day. */
int mount_timeout_parse(const char *s, uint64_t *ret_usec);

/* Longest file system type mount.mesh takes (the kernel's are far shorter). */
#define MOUNT_TYPE_MAX 64

/* Whether t is one file system type name: [a-z0-9][a-z0-9_.]*, at most
 * MOUNT_TYPE_MAX characters. */
bool mount_type_is_valid(const char *t);

/* The file system to mount for real: "mesh.nfs4" → "nfs4". type comes from
 * -t (mount(8) passes it when it fell back to plain mount.mesh) and wins
 * over the program name ("/sbin/mount.mesh.cifs" → "cifs"). -EINVAL when
 * neither names one, when -t is not "mesh." and one valid type name
 * (mount_type_is_valid(): "mesh.nfs4,bind" is refused), or when the result
 * is mesh.* again (no recursion). */
int mount_real_type(const char *argv0, const char *type, char **ret);
