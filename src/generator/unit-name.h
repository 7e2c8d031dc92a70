/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* systemd unit names for paths and instances, byte for byte what
 * `systemd-escape` (v252) produces. One implementation, used for every name
 * the generator writes, so a drop-in always lands on the unit systemd made. */

#define UNIT_NAME_MAX 256

/* "nas-2" → "nas\x2d2": what `systemd-escape STRING` prints. */
int unit_name_escape(const char *s, char **ret);

/* In place: collapse "//", drop "." components and trailing slashes; ".."
 * stays. "/" stays "/". Like systemd's path_simplify(). */
char *path_simplify(char *path);

/* "/mnt/my dir/" → "mnt-my\x20dir": what `systemd-escape --path` prints.
 * -EINVAL for a path with ".." components, an empty path or a component
 * longer than NAME_MAX. */
int unit_name_path_escape(const char *path, char **ret);

/* unit_name_path_escape() + suffix (".mount"): `systemd-escape --path
 * --suffix=mount`. -ENAMETOOLONG when the name would not be a valid unit
 * name (systemd then hashes it; we do not write such units). */
int unit_name_from_path(const char *path, const char *suffix, char **ret);

/* "meshd-wait-online@" + escaped instance + ".service". */
int unit_name_build_instance(const char *prefix, const char *instance, const char *suffix, char **ret);
