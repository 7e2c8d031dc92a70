/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One WireGuard device model, two ways to apply it: the kernel module over
 * generic netlink (wg-kernel.c) and wireguard-go over its UAPI socket
 * (wg-uapi.c). Mirrors wireguard-tools' containers.h: a WgDevice carries
 * only what is to change, flagged, and WG_CMD_SET_DEVICE semantics apply. */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "endpoint.h"
#include "key.h"
#include "macro.h"

typedef struct WgAllowedIp {
        int family; /* AF_INET or AF_INET6 */
        union in_addr_union addr;
        uint8_t cidr;
} WgAllowedIp;

typedef enum WgPeerFlags {
        WG_PEER_REMOVE_ME = 1U << 0,
        WG_PEER_REPLACE_ALLOWED_IPS = 1U << 1,
        WG_PEER_HAS_PRESHARED_KEY = 1U << 2,
        WG_PEER_HAS_PERSISTENT_KEEPALIVE = 1U << 3,
        WG_PEER_HAS_ENDPOINT = 1U << 4,
        /* Only change the peer if it already exists (WGPEER_F_UPDATE_ONLY). */
        WG_PEER_UPDATE_ONLY = 1U << 5,
} WgPeerFlags;

typedef struct WgPeer {
        unsigned flags;
        WgKey public_key;
        WgKey preshared_key;
        union sockaddr_union endpoint; /* sa_family AF_UNSPEC when none */
        uint16_t persistent_keepalive; /* seconds, 0 = off */

        /* read back only */
        struct timespec last_handshake;
        uint64_t rx_bytes, tx_bytes;

        WgAllowedIp *allowed_ips;
        size_t n_allowed_ips;
        size_t allowed_ips_allocated; /* kept by wg_peer_add_allowed_ip() */
} WgPeer;

typedef enum WgDeviceFlags {
        WG_DEVICE_REPLACE_PEERS = 1U << 0,
        WG_DEVICE_HAS_PRIVATE_KEY = 1U << 1,
        WG_DEVICE_HAS_LISTEN_PORT = 1U << 2,
        WG_DEVICE_HAS_FWMARK = 1U << 3,
} WgDeviceFlags;

typedef struct WgDevice {
        char ifname[16];
        int ifindex;
        unsigned flags;
        WgKey private_key;
        WgKey public_key; /* read back only */
        uint16_t listen_port;
        uint32_t fwmark;

        WgPeer *peers;
        size_t n_peers;
        size_t peers_allocated; /* kept by wg_device_add_peer() */
} WgDevice;

WgDevice *wg_device_free(WgDevice *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(WgDevice *, wg_device_free);
/* Appends a zeroed peer and returns it; allowed IPs are added with wg_peer_add_allowed_ip(). */
int wg_device_add_peer(WgDevice *d, WgPeer **ret);
int wg_peer_add_allowed_ip(WgPeer *p, int family, const union in_addr_union *addr, uint8_t cidr);
WgPeer *wg_device_find_peer(const WgDevice *d, const WgKey *public_key);
/* For a device read back with many peers: sorted by key once,
 * wg_device_find_peer_sorted() is O(log n) where wg_device_find_peer() is O(n). */
void wg_device_sort_peers(WgDevice *d);
WgPeer *wg_device_find_peer_sorted(const WgDevice *d, const WgKey *public_key);

typedef enum WgBackendType {
        WG_BACKEND_AUTO,
        WG_BACKEND_KERNEL,
        WG_BACKEND_USERSPACE,
        _WG_BACKEND_MAX,
        _WG_BACKEND_INVALID = -EINVAL,
} WgBackendType;

const char *wg_backend_type_to_string(WgBackendType t);
WgBackendType wg_backend_type_from_string(const char *s);

typedef struct WgBackend WgBackend;

typedef struct WgBackendOptions {
        WgBackendType type;
        const char *ifname;
        /* userspace only: the wireguard-go binary (default "wireguard-go" in
         * $PATH) and the UAPI socket directory (default /var/run/wireguard,
         * which wireguard-go hard-codes). */
        const char *userspace_command;
        const char *uapi_dir;
} WgBackendOptions;

/* Opens the backend for an interface, creating the interface if it does not
 * exist yet. AUTO resolves to KERNEL when a wireguard link can be created (or
 * one exists), else USERSPACE. An existing, working interface is adopted as
 * it is: nothing is reset, so a restarted daemon loses no packet. For the
 * userspace backend, a missing or stale socket means wireguard-go is started
 * (in the foreground, as our child) and waited for. ret_created tells
 * whether the interface was new. */
int wg_backend_open(const WgBackendOptions *opts, WgBackend **ret, bool *ret_created);
WgBackendType wg_backend_get_type(const WgBackend *b);
const char *wg_backend_get_ifname(const WgBackend *b);
int wg_backend_get_ifindex(const WgBackend *b);
/* pid of our wireguard-go child, 0 if none (kernel, or adopted). */
pid_t wg_backend_get_child_pid(const WgBackend *b);

int wg_get_device(WgBackend *b, WgDevice **ret);
/* Applies d; large peer lists are split over several messages. */
int wg_set_device(WgBackend *b, const WgDevice *d);

/* Deletes the interface (and stops our wireguard-go child). */
int wg_backend_destroy(WgBackend *b);
/* Frees our handle; leaves the interface and child running (KeepInterface=yes). */
WgBackend *wg_backend_free(WgBackend *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(WgBackend *, wg_backend_free);
