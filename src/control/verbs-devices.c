/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd-control devices add|list|remove: plain WireGuard devices (phones,
 * cameras, routers) as peers of the hub, and the configuration they
 * import (device-config.c), as text or QR code (qr.c). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "device-config.h"
#include "dns-label.h"
#include "fileio.h"
#include "ipam.h"
#include "log.h"
#include "qr.h"
#include "verbs.h"

/* What every device's configuration names: the hub and the mesh. */
typedef struct DeviceMesh {
        char *hub_public_key, *hub_endpoint, *ipv4_range, *ipv6_range;
        char hub_ipv4[INET6_ADDRSTRLEN], hub_ipv6[INET6_ADDRSTRLEN];
} DeviceMesh;

static void device_mesh_done(DeviceMesh *m) {
        free(m->hub_public_key);
        free(m->hub_endpoint);
        free(m->ipv4_range);
        free(m->ipv6_range);
}

/* Before anything is stored: a mesh without a hub cannot carry devices. */
static int device_mesh_load(Store *store, DeviceMesh *ret) {
        IpamRange range;
        int r;

        r = store_get_setting(store, "hub_public_key", &ret->hub_public_key);
        if (r < 0)
                return log_error_errno(r, "The mesh has no hub key yet: run 'meshd-control serve' once.");
        r = store_get_setting(store, "hub_endpoint", &ret->hub_endpoint);
        if (r < 0)
                return log_error_errno(r, "The mesh has no hub endpoint: set --hub-endpoint=IP:PORT on "
                                          "'meshd-control serve' once.");
        r = store_get_setting(store, "ipv4_range", &ret->ipv4_range);
        if (r >= 0)
                r = store_get_setting(store, "ipv6_range", &ret->ipv6_range);
        if (r >= 0)
                r = ipam_range_parse(ret->ipv4_range, ret->ipv6_range, &range);
        if (r >= 0)
                r = ipam_host_format(&range, IPAM_HOST_HUB, ret->hub_ipv4, ret->hub_ipv6);
        if (r < 0)
                return log_error_errno(r, "The database has no usable address ranges: %m");
        return 0;
}

static int device_check_name(const char *name) {
        if (!dns_label_is_valid(name))
                return log_error_errno(-EINVAL,
                                       "Invalid device name '%s': expected a DNS label (a-z, 0-9 and '-', "
                                       "at most 63 characters).",
                                       name);
        if (dns_label_is_reserved(name))
                return log_error_errno(-EINVAL, "Device name '%s' is reserved.", name);
        return 0;
}

/* --public-key, checked; or a new pair whose private half is only printed. */
static int device_key(const char *arg, char public_b64[static WG_KEY_B64_LEN + 1],
                      char private_b64[static WG_KEY_B64_LEN + 1], bool *ret_has_private) {
        WgKey private_key, public_key;
        int r;

        if (arg) {
                if (key_from_base64(arg, &public_key) < 0)
                        return log_error_errno(-EINVAL,
                                               "Invalid --public-key '%s': expected the base64 of a 32-byte "
                                               "WireGuard key.",
                                               arg);
                if (key_is_zero(&public_key))
                        return log_error_errno(-EINVAL, "Invalid --public-key: the all-zero key.");
                key_to_base64(&public_key, public_b64);
                *ret_has_private = false;
                return 0;
        }
        r = key_generate_private(&private_key);
        if (r >= 0)
                r = key_public_from_private(&private_key, &public_key);
        if (r < 0)
                return log_error_errno(r, "Failed to generate a key pair: %m");
        key_to_base64(&private_key, private_b64);
        key_to_base64(&public_key, public_b64);
        *ret_has_private = true;
        return 0;
}

static int device_add_error(int r, const char *name) {
        switch (r) {
        case -EEXIST:
                return log_error_errno(r, "Name '%s' is taken in the mesh (nodes and devices share names).",
                                       name);
        case -ENOTUNIQ:
                return log_error_errno(r, "The public key is a member's already (a node or device).");
        case -EKEYREJECTED:
                return log_error_errno(r, "The public key is the hub's.");
        case -ENOSPC:
                return log_error_errno(r, "The mesh's address range is full: no address left for '%s'.", name);
        default:
                return log_error_errno(r, "Failed to add device '%s': %m", name);
        }
}

/* The text on stdout, or with --qr its QR code; --out=FILE.png a QR code,
 * any other --out the text (0600: it may hold the private key). */
static int device_output(const ControlArgs *a, const char *text) {
        int r;

        if (a->out) {
                size_t n = strlen(a->out);

                if (n > 4 && strcasecmp(a->out + n - 4, ".png") == 0)
                        r = qr_write_png(text, a->out);
                else {
                        r = write_file_atomic(a->out, text, strlen(text), 0600);
                        if (r < 0)
                                return log_error_errno(r, "Failed to write %s: %m", a->out);
                }
                if (r < 0)
                        return r;
        }
        if (a->qr)
                return qr_print_terminal(text, stdout);
        if (fputs(text, stdout) < 0 || fflush(stdout) != 0)
                return log_error_errno(-EIO, "Failed to write the configuration to standard output.");
        return 0;
}

/* The hub's last start recorded whether it relays IPv6 (hub.c): when not,
 * the device's IPv6 address reaches the hub only; IPv4 is unaffected. */
static void device_warn_ipv6(Store *store, const char *name, const char *ipv6) {
        _cleanup_free_ char *relay = NULL;

        if (store_get_setting(store, "hub_ipv6_relay", &relay) < 0 || !streq(relay, "0"))
                return;
        log_warning("Device %s: the hub does not relay IPv6 (its kernel has no per-interface IPv6 "
                    "forwarding, or it runs without its firewall), so %s reaches only the hub; "
                    "IPv4 works. Restart 'meshd-control serve' with --hub-ipv6-forwarding to relay IPv6.",
                    name, ipv6);
}

int verb_devices_add(const ControlArgs *a, const char *name) {
        _cleanup_(store_freep) Store *store = NULL;
        _cleanup_(device_mesh_done) DeviceMesh mesh = {};
        _cleanup_(store_node_done) StoreNode dev = {};
        _cleanup_free_ char *text = NULL;
        char public_b64[WG_KEY_B64_LEN + 1], private_b64[WG_KEY_B64_LEN + 1];
        int64_t now = (int64_t) time(NULL);
        bool has_private = false;
        int r;

        r = device_check_name(name);
        if (r < 0)
                return r;
        r = device_key(a->public_key, public_b64, private_b64, &has_private);
        if (r < 0)
                return r;
        r = open_store(a, &store);
        if (r < 0)
                return r;
        r = device_mesh_load(store, &mesh);
        if (r < 0)
                return r;

        r = store_add_device(store,
                             &(StoreDevice) { .name = name,
                                              .public_key = public_b64,
                                              .expires =
                                                      a->expires_sec > 0 ? now + (int64_t) a->expires_sec : 0,
                                              .tags = a->tags },
                             now, &dev);
        if (r < 0)
                return device_add_error(r, name);

        r = device_config_render(&(DeviceConfig) { .private_key = has_private ? private_b64 : NULL,
                                                   .public_key = public_b64,
                                                   .ipv4 = dev.ipv4,
                                                   .ipv6 = dev.ipv6,
                                                   .dns4 = mesh.hub_ipv4,
                                                   .dns6 = mesh.hub_ipv6,
                                                   .hub_public_key = mesh.hub_public_key,
                                                   .hub_endpoint = mesh.hub_endpoint,
                                                   .ipv4_range = mesh.ipv4_range,
                                                   .ipv6_range = mesh.ipv6_range,
                                                   .mtu = DEVICE_CONFIG_MTU },
                                 &text);
        explicit_bzero(private_b64, sizeof(private_b64));
        if (r < 0)
                return log_oom();
        log_info("Added device %s: %s, %s.", dev.name, dev.ipv4, dev.ipv6);
        device_warn_ipv6(store, dev.name, dev.ipv6);
        r = device_output(a, text);
        explicit_bzero(text, strlen(text));
        return r;
}

static int fill_device_json(cJSON *o, const void *items, size_t i) {
        const StoreNode *dev = (const StoreNode *) items + i;
        char created[32], expires[32];

        format_utc_time(dev->created, created);
        format_utc_time(dev->expires, expires);
        if (!cJSON_AddNumberToObject(o, "id", (double) dev->id) ||
            !cJSON_AddStringToObject(o, "name", dev->name) || !cJSON_AddStringToObject(o, "ipv4", dev->ipv4) ||
            !cJSON_AddStringToObject(o, "ipv6", dev->ipv6) ||
            !cJSON_AddStringToObject(o, "public_key", dev->public_key) ||
            !cJSON_AddStringToObject(o, "created", created) ||
            !(dev->expires > 0 ? cJSON_AddStringToObject(o, "expires", expires)
                               : cJSON_AddNullToObject(o, "expires")) ||
            !cJSON_AddBoolToObject(o, "expired", dev->expired))
                return -ENOMEM;
        return 0;
}

static void print_devices_table(const StoreNode *devices, size_t n) {
        int w_name = 4, w_ipv4 = 4, w_ipv6 = 4, w_key = 10;

        for (size_t i = 0; i < n; i++) {
                w_name = MAX(w_name, (int) strlen(devices[i].name));
                w_ipv4 = MAX(w_ipv4, (int) strlen(devices[i].ipv4));
                w_ipv6 = MAX(w_ipv6, (int) strlen(devices[i].ipv6));
                w_key = MAX(w_key, (int) strlen(devices[i].public_key));
        }
        printf("%-*s  %-*s  %-*s  %-*s  %-20s  %s\n", w_name, "NAME", w_ipv4, "IPV4", w_ipv6, "IPV6", w_key,
               "PUBLIC KEY", "CREATED", "EXPIRES");
        for (size_t i = 0; i < n; i++) {
                char created[32], expires[32] = "never";

                format_utc_time(devices[i].created, created);
                if (devices[i].expires > 0)
                        format_utc_time(devices[i].expires, expires);
                printf("%-*s  %-*s  %-*s  %-*s  %-20s  %s%s\n", w_name, devices[i].name, w_ipv4,
                       devices[i].ipv4, w_ipv6, devices[i].ipv6, w_key, devices[i].public_key, created, expires,
                       devices[i].expired ? "  expired" : "");
        }
        if (isatty(STDOUT_FILENO))
                printf("\n%zu device%s.\n", n, n == 1 ? "" : "s");
}

int verb_devices_list(const ControlArgs *a) {
        _cleanup_(store_freep) Store *store = NULL;
        StoreNode *devices = NULL;
        size_t n = 0;
        int r;

        r = open_store(a, &store);
        if (r < 0)
                return r;
        r = store_list_devices(store, true, &devices, &n);
        if (r < 0)
                return r;
        if (a->json)
                r = print_json_list(devices, n, fill_device_json);
        else
                print_devices_table(devices, n);
        store_nodes_free(devices, n);
        return r;
}

int verb_devices_remove(const ControlArgs *a, const char *name) {
        _cleanup_(store_freep) Store *store = NULL;
        int r;

        r = open_store(a, &store);
        if (r < 0)
                return r;
        r = store_remove_device(store, name);
        if (r == -ENOENT)
                return log_error_errno(r, "No device named '%s' in the mesh.", name);
        if (r < 0)
                return log_error_errno(r, "Failed to remove device '%s': %m", name);
        log_info("Removed device %s.", name);
        return 0;
}
