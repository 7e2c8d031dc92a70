/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meshd-control serve: the HTTPS API (http.c) with the hub and the CA. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "ca.h"
#include "endpoint.h"
#include "http.h"
#include "log.h"
#include "mesh-secrets.h"
#include "verbs.h"

static void hub_options_erase(HubOptions *o) {
        explicit_bzero(&o->private_key, sizeof(o->private_key));
}

/* The hub endpoint of this replica: its own --hub-endpoint, else the
 * mesh's default that init recorded, else (a mesh older than the hub)
 * derived from the URL. Only the first replica to name one makes it the
 * default: devices are configured with it (docs/replicas.md). */
static int serve_hub_endpoint(const ControlArgs *a, Store *store, char **ret) {
        _cleanup_free_ char *stored = NULL, *url = NULL, *endpoint = NULL;
        int r;

        r = store_get_setting(store, "hub_endpoint", &stored);
        if (r < 0 && r != -ENOENT)
                return r;
        if (stored && !a->hub_endpoint) {
                *ret = TAKE_PTR(stored);
                return 0;
        }
        r = store_get_setting(store, "url", &url);
        if (r < 0)
                return log_error_errno(r, "Database has no server URL: %m");
        r = hub_endpoint_from_args(a, url, &endpoint);
        if (r < 0)
                return r;
        if (!stored) {
                r = store_set_setting_once(store, "hub_endpoint", endpoint);
                if (r < 0 && r != -EEXIST)
                        return r;
        }
        *ret = TAKE_PTR(endpoint);
        return 0;
}

/* The mesh's secrets from the database; the first serve of an older state
 * directory moves its files there. */
static int serve_load_ca(const ControlArgs *a, Store *store, CertAuthority **ret, char **ret_domain) {
        _cleanup_free_ char *domain = NULL;
        int r;

        r = store_get_setting(store, "domain", &domain);
        if (r < 0)
                return log_error_errno(r, "Database lacks the mesh's domain: %m");
        r = mesh_secrets_import(store, a->state_dir);
        if (r >= 0)
                r = mesh_ca_load(store, ret);
        if (r < 0)
                return r;
        *ret_domain = TAKE_PTR(domain);
        return 0;
}

int verb_serve(const ControlArgs *a) {
        _cleanup_(server_freep) Server *server = NULL;
        _cleanup_(ca_freep) CertAuthority *ca = NULL;
        _cleanup_free_ char *hub_endpoint = NULL, *domain = NULL, *database = NULL;
        char hub_public[WG_KEY_B64_LEN + 1];
        _cleanup_(hub_options_erase) HubOptions hub = {
                .ifname = a->hub_interface,
                .backend = a->hub_backend,
                .keep_interface = a->keep_hub,
                .ipv6_forwarding = a->hub_ipv6_forwarding,
                .no_firewall = !a->hub_firewall,
                .allow = a->hub_allow,
                .n_allow = a->n_hub_allow,
        };
        Store *store = NULL;
        int r;

        r = open_store(a, &store);
        if (r < 0)
                return r;
        /* a damaged file fails the start, not every request after READY */
        r = store_check_integrity(store);
        if (r >= 0)
                r = serve_load_ca(a, store, &ca, &domain);
        if (r < 0) {
                store_free(store);
                return r;
        }
        if (a->hub) {
                union sockaddr_union sa;

                r = serve_hub_endpoint(a, store, &hub_endpoint);
                if (r >= 0)
                        r = mesh_hub_key_load(store, &hub.private_key, hub_public);
                if (r < 0) {
                        store_free(store);
                        return r;
                }
                if (endpoint_parse(hub_endpoint, &sa) < 0) {
                        store_free(store);
                        return log_error_errno(-EINVAL, "Invalid hub endpoint '%s' in the database.",
                                               hub_endpoint);
                }
                hub.listen_port =
                        a->hub_port ?: ntohs(sa.sa.sa_family == AF_INET ? sa.in.sin_port : sa.in6.sin6_port);
                /* devices add commits there: the hub's peers follow at once */
                if (database_location(a, &database) >= 0 && !db_is_url(database))
                        hub.database = database; /* PostgreSQL: the server's wake-up syncs it */
        }
        r = server_new(store, a->state_dir, a->listen, &server);
        if (r < 0)
                return r;
        r = server_set_ca(server, TAKE_PTR(ca), domain, a->cert_lifetime_sec);
        if (r < 0)
                return r;
        if (a->cert_issuer_acme) {
                r = server_set_acme(server, &a->acme);
                if (r < 0)
                        return r;
        }
        server_set_expired_needs_admin(server, a->expired_needs_admin);
        server_set_relay(server, a->relay, a->relay_max_streams, a->udp_echo);
        server_set_relay_port(server, a->relay_port);
        server_set_dns(server, a->dns_port, a->resolv_conf);
        if (a->hub) {
                r = server_set_hub(server, &hub, hub_public, hub_endpoint);
                if (r < 0)
                        return r;
        } else
                log_info("Running without a hub (--no-hub): no relay, no observed endpoints.");
        return server_run(server);
}
