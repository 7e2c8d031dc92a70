/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "link.h"
#include "log.h"
#include "wg-internal.h"
#include "wg.h"

WgDevice *wg_device_free(WgDevice *d) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n_peers; i++) {
                free(d->peers[i].allowed_ips);
                explicit_bzero(&d->peers[i].preshared_key, sizeof(d->peers[i].preshared_key));
        }
        free(d->peers);
        explicit_bzero(&d->private_key, sizeof(d->private_key));
        free(d);
        return NULL;
}

/* Arrays grow by one: callers may build WgDevice by hand, so no capacity may be
 * assumed beyond n; glibc's realloc() makes the growth cheap (mremap for large
 * arrays). */
/* Room for one more of size in *array (holding n, *allocated): doubled when
 * full, so that adding the 10,000 peers of a netmap, or their addresses to
 * the hub entry, is not 10,000 reallocations. */
static int grow(void **array, size_t n, size_t *allocated, size_t size) {
        size_t want;
        void *a;

        if (n < *allocated)
                return 0;
        want = MAX(n * 2, (size_t) 4);
        a = reallocarray(*array, want, size);
        if (!a)
                return -ENOMEM;
        *array = a;
        *allocated = want;
        return 0;
}

int wg_device_add_peer(WgDevice *d, WgPeer **ret) {
        WgPeer *n;

        if (!d)
                return -EINVAL;
        if (grow((void **) &d->peers, d->n_peers, &d->peers_allocated, sizeof(WgPeer)) < 0)
                return -ENOMEM;
        n = &d->peers[d->n_peers++];
        *n = (WgPeer) {};
        if (ret)
                *ret = n;
        return 0;
}

int wg_peer_add_allowed_ip(WgPeer *p, int family, const union in_addr_union *addr, uint8_t cidr) {
        WgAllowedIp *n;

        if (!p || !addr)
                return -EINVAL;
        if (!((family == AF_INET && cidr <= 32) || (family == AF_INET6 && cidr <= 128)))
                return -EINVAL;

        if (grow((void **) &p->allowed_ips, p->n_allowed_ips, &p->allowed_ips_allocated, sizeof(WgAllowedIp)) <
            0)
                return -ENOMEM;
        n = &p->allowed_ips[p->n_allowed_ips++];
        *n = (WgAllowedIp) { .family = family, .cidr = cidr };
        memcpy(&n->addr, addr, family == AF_INET ? sizeof(struct in_addr) : sizeof(struct in6_addr));
        return 0;
}

static int peer_compare_key(const void *a, const void *b) {
        return memcmp(((const WgPeer *) a)->public_key.data, ((const WgPeer *) b)->public_key.data, WG_KEY_LEN);
}

void wg_device_sort_peers(WgDevice *d) {
        if (d && d->n_peers > 1)
                qsort(d->peers, d->n_peers, sizeof(WgPeer), peer_compare_key);
}

WgPeer *wg_device_find_peer_sorted(const WgDevice *d, const WgKey *public_key) {
        WgPeer probe;

        if (!d || !public_key || d->n_peers == 0)
                return NULL;
        probe.public_key = *public_key;
        return bsearch(&probe, d->peers, d->n_peers, sizeof(WgPeer), peer_compare_key);
}

WgPeer *wg_device_find_peer(const WgDevice *d, const WgKey *public_key) {
        if (!d || !public_key)
                return NULL;
        /* Public keys are not secret: a plain compare is fine. */
        for (size_t i = 0; i < d->n_peers; i++)
                if (memcmp(d->peers[i].public_key.data, public_key->data, WG_KEY_LEN) == 0)
                        return &d->peers[i];
        return NULL;
}

static const char *const wg_backend_type_table[_WG_BACKEND_MAX] = {
        [WG_BACKEND_AUTO] = "auto",
        [WG_BACKEND_KERNEL] = "kernel",
        [WG_BACKEND_USERSPACE] = "userspace",
};

const char *wg_backend_type_to_string(WgBackendType t) {
        if (t < 0 || t >= _WG_BACKEND_MAX)
                return NULL;
        return wg_backend_type_table[t];
}

WgBackendType wg_backend_type_from_string(const char *s) {
        if (!s)
                return _WG_BACKEND_INVALID;
        for (int i = 0; i < _WG_BACKEND_MAX; i++)
                if (streq(s, wg_backend_type_table[i]))
                        return (WgBackendType) i;
        return _WG_BACKEND_INVALID;
}

static WgBackend *wg_backend_new(const char *ifname) {
        WgBackend *b = calloc(1, sizeof(WgBackend));
        if (!b)
                return NULL;
        b->type = WG_BACKEND_AUTO;
        snprintf(b->ifname, sizeof(b->ifname), "%s", ifname);
        return b;
}

static int backend_open_kernel(WgBackend *b, bool *ret_created) {
        bool created = false;
        int r;

        r = link_get_ifindex(b->ifname);
        if (r == -ENODEV) {
                r = link_create_wireguard(b->ifname);
                if (r < 0)
                        return log_debug_errno(r, "Failed to create wireguard link %s: %m", b->ifname);
                created = true;
                r = link_get_ifindex(b->ifname);
        }
        if (r < 0)
                return log_debug_errno(r, "Failed to look up link %s: %m", b->ifname);
        b->ifindex = r;

        r = wg_kernel_open(b);
        if (r < 0)
                goto fail;

        if (!created) {
                _cleanup_(wg_device_freep) WgDevice *d = NULL;

                /* Adopting a link: make sure it is a wireguard link, not a
                 * tun or an unrelated interface that happens to have the name. */
                r = wg_kernel_get_device(b, &d);
                if (r < 0) {
                        log_debug_errno(r, "Link %s exists but is not a kernel wireguard device: %m",
                                        b->ifname);
                        goto fail;
                }
        }

        b->type = WG_BACKEND_KERNEL;
        if (ret_created)
                *ret_created = created;
        return 0;

fail:
        if (created)
                (void) link_delete(b->ifindex);
        return r;
}

int wg_backend_open(const WgBackendOptions *opts, WgBackend **ret, bool *ret_created) {
        _cleanup_(wg_backend_freep) WgBackend *b = NULL;
        bool created = false;
        int r;

        if (!opts || !ret || !opts->ifname)
                return -EINVAL;
        if (strlen(opts->ifname) == 0 || strlen(opts->ifname) >= IF_NAMESIZE || strchr(opts->ifname, '/') ||
            opts->ifname[0] == '.')
                return log_debug_errno(-EINVAL, "Invalid interface name: %s", opts->ifname);
        if (opts->type < 0 || opts->type >= _WG_BACKEND_MAX)
                return -EINVAL;

        b = wg_backend_new(opts->ifname);
        if (!b)
                return -ENOMEM;

        switch (opts->type) {
        case WG_BACKEND_KERNEL:
                r = backend_open_kernel(b, &created);
                break;
        case WG_BACKEND_USERSPACE:
                r = wg_uapi_open(b, opts, &created);
                break;
        case WG_BACKEND_AUTO:
                /* Kernel when the link is (or can become) a kernel wireguard
                 * device; anything else (no module, or an existing tun of a
                 * running wireguard-go) means userspace. */
                r = backend_open_kernel(b, &created);
                if (r < 0) {
                        log_debug_errno(r, "Kernel WireGuard not usable for %s (%m), using userspace.",
                                        b->ifname);
                        r = wg_uapi_open(b, opts, &created);
                }
                break;
        default:
                r = -EINVAL;
        }
        if (r < 0)
                return r;

        log_debug("Opened %s WireGuard backend for %s (ifindex %i, %s).", wg_backend_type_to_string(b->type),
                  b->ifname, b->ifindex, created ? "created" : "adopted");
        if (ret_created)
                *ret_created = created;
        *ret = TAKE_PTR(b);
        return 0;
}

WgBackendType wg_backend_get_type(const WgBackend *b) {
        return b ? b->type : _WG_BACKEND_INVALID;
}

const char *wg_backend_get_ifname(const WgBackend *b) {
        return b ? b->ifname : NULL;
}

int wg_backend_get_ifindex(const WgBackend *b) {
        return b ? b->ifindex : -EINVAL;
}

pid_t wg_backend_get_child_pid(const WgBackend *b) {
        return b ? b->child_pid : 0;
}

int wg_get_device(WgBackend *b, WgDevice **ret) {
        if (!b || !ret)
                return -EINVAL;
        switch (b->type) {
        case WG_BACKEND_KERNEL:
                return wg_kernel_get_device(b, ret);
        case WG_BACKEND_USERSPACE:
                return wg_uapi_get_device(b, ret);
        default:
                return -EINVAL;
        }
}

int wg_set_device(WgBackend *b, const WgDevice *d) {
        if (!b || !d)
                return -EINVAL;
        switch (b->type) {
        case WG_BACKEND_KERNEL:
                return wg_kernel_set_device(b, d);
        case WG_BACKEND_USERSPACE:
                return wg_uapi_set_device(b, d);
        default:
                return -EINVAL;
        }
}

int wg_backend_destroy(WgBackend *b) {
        int r;

        if (!b)
                return -EINVAL;
        switch (b->type) {
        case WG_BACKEND_KERNEL:
                r = link_delete(b->ifindex);
                if (r == -ENODEV)
                        r = 0;
                if (r < 0)
                        return log_debug_errno(r, "Failed to delete link %s: %m", b->ifname);
                return 0;
        case WG_BACKEND_USERSPACE:
                return wg_uapi_destroy(b);
        default:
                return -EINVAL;
        }
}

WgBackend *wg_backend_free(WgBackend *b) {
        if (!b)
                return NULL;
        wg_uapi_close(b);
        free(b);
        return NULL;
}
