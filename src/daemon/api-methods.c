/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The io.meshd interface (docs/api.md): parameter checking and replies; the
 * work itself is the Manager's. */

#include <errno.h>
#include <string.h>

#include "cert.h"
#include "device-ping.h"
#include "log.h"
#include "manager.h"
#include "peer.h"
#include "varlink.h"

#define PING_DEFAULT_TIMEOUT_USEC (5 * USEC_PER_SEC)

const char manager_api_description[] =
        "# Local control of the meshd mesh VPN daemon.\n"
        "interface io.meshd\n"
        "\n"
        "type Status (state: string, status_text: ?string, name: ?string, fqdn: ?string,\n"
        "  ipv4: ?string, ipv6: ?string, public_key: string, interface: string, backend: ?string,\n"
        "  listen_port: int, control_url: ?string, control_url_active: ?string, control_connected: bool,\n"
        "  netmap_version: int,\n"
        "  peers_total: int, peers_reachable: int, exit_node: ?ExitNode,\n"
        "  accepted_routes: []AcceptedRoute, netmap_apply: ?NetmapApply)\n"
        "# ExitNode= of meshd.conf: whether it is in use, and if not why.\n"
        "type ExitNode (name: string, in_use: bool, problem: ?string)\n"
        "type AcceptedRoute (prefix: string, peer: string)\n"
        "type NetmapApply (version: int, prepare_usec: int, device_usec: int, total_usec: int,\n"
        "  device_peers: int)\n"
        "type Peer (name: string, fqdn: string, ipv4: string, ipv6: ?string, public_key: string,\n"
        "  endpoint: ?string, path: string, reachable: bool, last_handshake_usec: int,\n"
        "  last_probe_reply_usec: int, rtt_usec: int, rx_bytes: int, tx_bytes: int, kind: string)\n"
        "\n"
        "method GetStatus() -> (status: Status)\n"
        "method ListPeers() -> (peers: []Peer)\n"
        "method Ping(peer: string, timeout_usec: ?int) -> (peer: string, address: string, rtt_usec: int, path: string)\n"
        "method WaitOnline(peers: ?[]string, any: ?bool, timeout_usec: ?int) -> (online: bool)\n"
        "# Joins (server, authkey, pin), comes back after Down, and/or sets the\n"
        "# route settings, kept across restarts over meshd.conf's [Routes]:\n"
        "# prefixes as text, accept_routes also \"all\" or \"none\", exit_node \"\": none.\n"
        "method Up(server: ?string, authkey: ?string, pin: ?string, advertise_routes: ?[]string,\n"
        "  advertise_exit_node: ?bool, accept_routes: ?[]string, exit_node: ?string) -> (status: Status)\n"
        "method Down() -> ()\n"
        "method Logout() -> ()\n"
        "# This node's TLS certificate (root only: the reply carries the private key,\n"
        "# PKCS#8 PEM, unencrypted). Times: REALTIME.\n"
        "method GetCertificate(renew: ?bool) -> (certificate: string, key: string, ca: string,\n"
        "  not_before_usec: int, not_after_usec: int, directory: string, names: []string)\n"
        "method GetCertificateAuthority() -> (ca: string, domain: string, ipv4_range: ?string,\n"
        "  ipv6_range: ?string)\n"
        "\n"
        "error PeerNotFound (message: string)\n"
        "error Timeout (message: string, unreachable: ?[]string)\n"
        "error NotJoined (message: string)\n"
        "error AlreadyJoined (message: string)\n"
        "error AuthFailed (message: string)\n"
        "error PinMismatch (message: string)\n"
        "error ControlUnreachable (message: string)\n"
        "error ProtocolError (message: string)\n"
        "error PermissionDenied (message: string)\n"
        "error InvalidParameter (message: string, parameter: string)\n"
        "error CertificateRefused (message: string)\n";

static int reply_invalid_parameter(ApiCall *call, const char *parameter, const char *why) {
        cJSON *p = cJSON_CreateObject();
        char *message = NULL;

        if (asprintf(&message, "%s: %s", parameter, why) < 0)
                message = NULL;
        cJSON_AddStringToObject(p, "message", message ? message : why);
        cJSON_AddStringToObject(p, "parameter", parameter);
        free(message);
        return api_call_reply_error(call, "io.meshd.InvalidParameter", p);
}

/* Optional string parameter: absent and null are the same; anything else is an error. */
static int get_string(ApiCall *call, const cJSON *params, const char *name, const char **ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, name);

        *ret = NULL;
        if (!v || cJSON_IsNull(v))
                return 0;
        if (!cJSON_IsString(v)) {
                (void) reply_invalid_parameter(call, name, "must be a string");
                return -EINVAL;
        }
        *ret = v->valuestring;
        return 0;
}

static int get_usec(ApiCall *call, const cJSON *params, const char *name, uint64_t def, uint64_t *ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, name);

        *ret = def;
        if (!v || cJSON_IsNull(v))
                return 0;
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e15) {
                (void) reply_invalid_parameter(call, name, "must be a non-negative number of microseconds");
                return -EINVAL;
        }
        *ret = (uint64_t) v->valuedouble;
        return 0;
}

static int method_get_status(ApiCall *call, const cJSON *params, void *userdata) {
        Manager *m = userdata;
        cJSON *status = manager_status_json(m);
        if (!status)
                return -ENOMEM;
        return api_call_reply(call, status);
}

/* A device of the netmap as a Peer: no endpoint of its own, always
 * reached through the hub, never probed (it runs no meshd), so nothing
 * is known of its reachability or traffic here. */
static cJSON *device_to_json(const NetmapNode *n, const char *domain) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        _cleanup_free_ char *fqdn = NULL;
        char a4[INET6_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];
        char key[WG_KEY_B64_LEN + 1];

        if (!o || asprintf(&fqdn, "%s.%s", n->name, domain) < 0)
                return NULL;
        in_addr_format(AF_INET, &n->ipv4, a4, sizeof(a4));
        if (n->has_ipv6)
                in_addr_format(AF_INET6, &n->ipv6, a6, sizeof(a6));
        key_to_base64(&n->public_key, key);

        if (!cJSON_AddStringToObject(o, "name", n->name) || !cJSON_AddStringToObject(o, "fqdn", fqdn) ||
            !cJSON_AddStringToObject(o, "ipv4", a4) ||
            !(n->has_ipv6 ? cJSON_AddStringToObject(o, "ipv6", a6) : cJSON_AddNullToObject(o, "ipv6")) ||
            !cJSON_AddStringToObject(o, "public_key", key) || !cJSON_AddNullToObject(o, "endpoint") ||
            !cJSON_AddStringToObject(o, "path", "hub") ||
            !cJSON_AddStringToObject(o, "path_reason", "a device, reached through the hub") ||
            !cJSON_AddNumberToObject(o, "path_since_usec", 0) ||
            !cJSON_AddBoolToObject(o, "reachable", false) ||
            !cJSON_AddNumberToObject(o, "last_handshake_usec", 0) ||
            !cJSON_AddNumberToObject(o, "last_probe_reply_usec", 0) ||
            !cJSON_AddNumberToObject(o, "rtt_usec", 0) || !cJSON_AddNumberToObject(o, "rx_bytes", 0) ||
            !cJSON_AddNumberToObject(o, "tx_bytes", 0) || !cJSON_AddStringToObject(o, "kind", "device"))
                return NULL;
        return TAKE_PTR(o);
}

static int method_list_peers(ApiCall *call, const cJSON *params, void *userdata) {
        Manager *m = userdata;
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        cJSON *list;
        int r;

        r = manager_refresh_device_stats(m);
        if (r < 0)
                log_debug_errno(r, "Failed to read device statistics: %m");
        if (!o || !(list = cJSON_AddArrayToObject(o, "peers")))
                return -ENOMEM;
        for (size_t i = 0; i < m->n_peers; i++) {
                cJSON *p = peer_to_json(m->peers[i]);
                if (!p)
                        return -ENOMEM;
                cJSON_AddItemToArray(list, p);
        }
        for (size_t i = 0; m->netmap && i < m->netmap->n_devices; i++) {
                cJSON *p = device_to_json(&m->netmap->devices[i], m->netmap->domain);
                if (!p)
                        return -ENOMEM;
                cJSON_AddItemToArray(list, p);
        }
        return api_call_reply(call, TAKE_PTR(o));
}

static int method_ping(ApiCall *call, const cJSON *params, void *userdata) {
        Manager *m = userdata;
        const char *name;
        uint64_t timeout;
        Peer *p;

        if (get_string(call, params, "peer", &name) < 0 ||
            get_usec(call, params, "timeout_usec", PING_DEFAULT_TIMEOUT_USEC, &timeout) < 0)
                return 0;
        if (!name)
                return reply_invalid_parameter(call, "peer", "missing");
        if (!m->joined)
                return api_call_reply_errorf(call, "io.meshd.NotJoined", "this node has not joined a mesh");
        p = manager_find_peer(m, name);
        if (!p) {
                /* a device answers no probe: an ICMP echo through the hub */
                const NetmapNode *d = netmap_resolve_device(m->netmap, name);
                if (d)
                        return device_ping(m->event, d, call,
                                           timeout > 0 ? timeout : PING_DEFAULT_TIMEOUT_USEC);
                return api_call_reply_errorf(call, "io.meshd.PeerNotFound", "no peer named '%s' in the mesh",
                                             name);
        }
        (void) manager_refresh_device_stats(m);
        return peer_ping(p, call, timeout > 0 ? timeout : PING_DEFAULT_TIMEOUT_USEC);
}

static int method_wait_online(ApiCall *call, const cJSON *params, void *userdata) {
        Manager *m = userdata;
        const cJSON *peers = cJSON_GetObjectItemCaseSensitive(params, "peers");
        const cJSON *any = cJSON_GetObjectItemCaseSensitive(params, "any");
        _cleanup_strv_free_ char **names = NULL;
        uint64_t timeout;

        if (get_usec(call, params, "timeout_usec", 0, &timeout) < 0)
                return 0;
        if (any && !cJSON_IsNull(any) && !cJSON_IsBool(any))
                return reply_invalid_parameter(call, "any", "must be a boolean");
        if (peers && !cJSON_IsNull(peers)) {
                size_t n = 0;
                const cJSON *e;

                if (!cJSON_IsArray(peers))
                        return reply_invalid_parameter(call, "peers", "must be an array of names");
                names = calloc((size_t) cJSON_GetArraySize(peers) + 1, sizeof(char *));
                if (!names)
                        return -ENOMEM;
                cJSON_ArrayForEach(e, peers) {
                        if (!cJSON_IsString(e) || !e->valuestring[0])
                                return reply_invalid_parameter(call, "peers", "must be an array of names");
                        names[n] = strdup(e->valuestring);
                        if (!names[n++])
                                return -ENOMEM;
                }
                if (n == 0)
                        names = strv_free(names);
        }
        return manager_wait_online(m, call, TAKE_PTR(names), cJSON_IsTrue(any), timeout);
}

static int method_up(ApiCall *call, const cJSON *params, void *userdata) {
        Manager *m = userdata;
        const char *server, *authkey, *pin;

        _cleanup_(route_prefs_done) RoutePrefs prefs = {};
        char error[160];
        int r;

        if (get_string(call, params, "server", &server) < 0 ||
            get_string(call, params, "authkey", &authkey) < 0 || get_string(call, params, "pin", &pin) < 0)
                return 0;
        r = route_prefs_from_json(params, &prefs, error, sizeof(error));
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return api_call_reply_errorf(call, "io.meshd.InvalidParameter", "%s", error);
        error[0] = 0;
        r = manager_set_route_prefs(m, &prefs, error, sizeof(error));
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return api_call_reply_errorf(call, "io.meshd.InvalidParameter", "%s",
                                             error[0] ? error : strerror(-r));
        /* only settings, before joining: kept for the join */
        if (!m->joined && !server && !authkey &&
            (prefs.has_advertise || prefs.has_advertise_exit_node || prefs.has_accept || prefs.has_exit_node))
                return api_call_reply(call, manager_status_json(m));
        return manager_up(m, server, pin, authkey, call);
}

static int method_down(ApiCall *call, const cJSON *params, void *userdata) {
        Manager *m = userdata;
        int r = manager_down(m);
        if (r < 0)
                return r;
        return api_call_reply(call, NULL);
}

static int method_logout(ApiCall *call, const cJSON *params, void *userdata) {
        Manager *m = userdata;
        int r = manager_logout(m);
        if (r < 0)
                return r;
        return api_call_reply(call, NULL);
}

static int method_get_certificate(ApiCall *call, const cJSON *params, void *userdata) {
        Manager *m = userdata;
        const cJSON *renew = cJSON_GetObjectItemCaseSensitive(params, "renew");

        if (renew && !cJSON_IsNull(renew) && !cJSON_IsBool(renew))
                return reply_invalid_parameter(call, "renew", "must be a boolean");
        if (!m->cert_keeper)
                return api_call_reply_errorf(call, "io.meshd.NotJoined", "this node has not joined a mesh");
        return cert_keeper_get_certificate(m->cert_keeper, cJSON_IsTrue(renew), call);
}

static int method_get_certificate_authority(ApiCall *call, const cJSON *params, void *userdata) {
        Manager *m = userdata;

        if (!m->cert_keeper)
                return api_call_reply_errorf(call, "io.meshd.NotJoined", "this node has not joined a mesh");
        return cert_keeper_get_ca(m->cert_keeper, call);
}

const ApiMethod manager_api_methods[] = {
        { "io.meshd.GetStatus", method_get_status, false },
        { "io.meshd.ListPeers", method_list_peers, false },
        { "io.meshd.Ping", method_ping, false },
        { "io.meshd.WaitOnline", method_wait_online, false },
        { "io.meshd.Up", method_up, true },
        { "io.meshd.Down", method_down, true },
        { "io.meshd.Logout", method_logout, true },
        { "io.meshd.GetCertificate", method_get_certificate, true },
        { "io.meshd.GetCertificateAuthority", method_get_certificate_authority, false },
};
const size_t manager_api_methods_count = ELEMENTSOF(manager_api_methods);
