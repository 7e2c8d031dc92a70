/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* meshd-fstab-generator's logic: which fstab entries need the mesh, and the
 * unit files that make systemd mount them only once their peer answers. */

#include <stdbool.h>
#include <stdint.h>

#include "constants.h"
#include "endpoint.h"
#include "macro.h"
#include "netmap.h"

#define MESH_DEFAULT_DOMAIN "mesh.internal"
#define MESH_DEFAULT_IPV4_RANGE "100.64.0.0/10"
#define MESHD_WAIT_ONLINE_PREFIX "meshd-wait-online@"
#define MESH_ONLINE_TARGET "mesh-online.target"
#define MESHD_DROPIN_NAME "50-meshd.conf"

/* What the generator knows about the mesh at boot: the cached netmap when
 * there is one (STATE_DIR/netmap.json; /var may not be mounted yet), else
 * the defaults of docs/protocol.md. */
typedef struct MeshContext {
        char *domain;
        union in_addr_union ipv4_range;
        uint8_t ipv4_prefixlen;
        union in_addr_union ipv6_range;
        uint8_t ipv6_prefixlen;
        bool has_ipv6_range;
        Netmap *netmap; /* NULL without a usable cache */
} MeshContext;

MeshContext *mesh_context_free(MeshContext *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(MeshContext *, mesh_context_free);

/* state_dir NULL: defaults only. A missing or broken cache is not an error
 * (logged), only -ENOMEM is. */
int mesh_context_load(const char *state_dir, MeshContext **ret);

typedef enum MeshHost {
        MESH_HOST_NONE,    /* not a mesh name or address */
        MESH_HOST_PEER,    /* a peer: name returned */
        MESH_HOST_UNNAMED, /* a mesh name/address whose peer we cannot tell (or this node) */
} MeshHost;

/* host: a name, NAME.<domain> (any case, trailing '.') or an address. */
int mesh_context_classify_host(const MeshContext *c, const char *host, MeshHost *ret_kind, char **ret_peer);

typedef struct MeshMount {
        char *what;
        char *where; /* simplified, symlinks resolved like systemd does */
        char *fstype;
        char *options; /* as in fstab, may be NULL */
        char *peer;    /* NULL: order after mesh-online.target only */
        char *trigger; /* why this entry is ours, for the log */
        bool network;  /* systemd's fstab generator makes it a remote mount */
        bool automount, nofail, noauto;
} MeshMount;

void mesh_mount_done(MeshMount *m);

/* Returns 1 and fills ret for an entry that needs the mesh, 0 for one that
 * does not, -EINVAL (with a warning logged) for one we do not understand. */
int mesh_mount_from_fstab(const MeshContext *c, const char *source, const char *target, const char *fstype,
                          const char *options, MeshMount *ret);

/* Whether systemd counts fstype as a network file system (its
 * fstype_is_network()); "fuse.sshfs" counts as "sshfs". */
bool fstype_is_network(const char *fstype);

/* Writes the drop-in (normal_dir) or, for an entry systemd would make a
 * local mount, the whole unit (early_dir). source_path is the fstab. */
int mesh_mount_write_units(const MeshMount *m, const char *source_path, const char *normal_dir,
                           const char *early_dir);

/* The whole run: every entry of fstab_path; bad lines are skipped with a
 * warning. Returns <0 only when nothing could be done at all. */
int fstab_mesh_generate(const char *fstab_path, const char *state_dir, const char *normal_dir,
                        const char *early_dir);
