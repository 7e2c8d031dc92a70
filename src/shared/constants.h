/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The paths and ports that more than one binary must agree on: meshd,
 * meshctl, mount.mesh, meshd-wait-online, meshd-fstab-generator,
 * libnss_mesh.so.2 and meshd-control. These are defaults only: each stays
 * overridable where it is used (--state-dir, $RUNTIME_DIRECTORY,
 * $MESHD_SOCKET, $MESHD_HOSTS_FILE, $MESHD_STATE_DIR, ListenPort=, ...).
 * Header-only and libc-free, because libnss_mesh includes it without
 * linking src/shared/. */

/* meshd's RuntimeDirectory= and StateDirectory= (units/meshd.service.in) */
#define MESHD_RUNTIME_DIR_DEFAULT "/run/meshd"
#define MESHD_STATE_DIR_DEFAULT "/var/lib/meshd"

/* In the runtime directory: the Varlink API socket (docs/api.md) and the
 * hosts table that meshd writes and libnss_mesh reads. */
#define MESHD_SOCKET_NAME "io.meshd.sock"
#define MESHD_HOSTS_NAME "hosts"
#define MESHD_SOCKET_DEFAULT MESHD_RUNTIME_DIR_DEFAULT "/" MESHD_SOCKET_NAME
#define MESHD_HOSTS_FILE_DEFAULT MESHD_RUNTIME_DIR_DEFAULT "/" MESHD_HOSTS_NAME

/* In the state directory: the last netmap meshd accepted, which
 * meshd-fstab-generator reads at boot. */
#define MESHD_NETMAP_CACHE_NAME "netmap.json"

/* meshd's WireGuard port (ListenPort=) */
#define MESHD_DEFAULT_LISTEN_PORT 41641
/* The UDP probe echo of docs/api.md, answered by nodes and by the hub */
#define PROBE_PORT 41642
/* meshd-control's hub (--hub-port=) and TLS relay (--relay-port=) */
#define HUB_PORT_DEFAULT 41640
#define RELAY_PORT_DEFAULT 443
/* meshd-control's HTTPS API; a string, as it is pasted into URLs and
 * listen addresses. */
#define CONTROL_PORT_DEFAULT "8443"
