/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>

#include "control-urls.h"
#include "link.h"
#include "log.h"
#include "manager-private.h"
#include "messages.h"
#include "netmap-trust.h"

/* Which netmaps this node accepts from the control server (the checks
 * themselves are in netmap-trust.c): the bounds at join, which must stay
 * clear of the underlay, and the pinned domain and ranges afterwards. */

/* The host of an https://HOST[:PORT] URL when it is an address literal. */
static bool url_host_address(const char *url, InAddrPrefix *ret) {
        char host[INET6_ADDRSTRLEN + 1];
        const char *h = url && strncmp(url, "https://", 8) == 0 ? url + 8 : NULL;
        size_t n;

        if (!h)
                return false;
        if (*h == '[')
                n = strcspn(++h, "]");
        else
                n = strcspn(h, ":/");
        if (n == 0 || n >= sizeof(host))
                return false;
        memcpy(host, h, n);
        host[n] = 0;
        if (in_addr_parse(host, &ret->family, &ret->address) < 0)
                return false;
        ret->prefixlen = ret->family == AF_INET ? 32 : 128;
        return true;
}

/* What a mesh range must stay clear of: the underlay (not the mesh
 * interface itself), and the control server's address, from the URL and
 * as the hub's endpoint. */
static int manager_avoid_prefixes(Manager *m, const Netmap *nm, const char *url, InAddrPrefix **ret,
                                  size_t *ret_n) {
        _cleanup_free_ InAddrPrefix *l = NULL;
        size_t n = 0;
        int ifindex, r;

        ifindex = m->wg ? wg_backend_get_ifindex(m->wg) : link_get_ifindex(m->config.interface);
        r = link_list_underlay_prefixes(MAX(ifindex, 0), &l, &n);
        if (r < 0)
                return log_warning_errno(r, "Failed to list this host's addresses and routes: %m");
        /* every replica's URL (docs/replicas.md) */
        _cleanup_strv_free_ char **urls = NULL;
        if (url && control_urls_parse(url, &urls, NULL, NULL) == -ENOMEM)
                return log_oom();
        InAddrPrefix *nl = reallocarray(l, n + 1 + strv_length(urls) + 1, sizeof(InAddrPrefix));
        if (!nl)
                return log_oom();
        l = nl;
        for (char **u = urls; u && *u; u++)
                if (url_host_address(*u, &l[n]))
                        n++;
        if (nm->has_hub && nm->hub.endpoints && nm->hub.endpoints[0]) {
                union sockaddr_union sa;

                if (endpoint_parse(nm->hub.endpoints[0], &sa) >= 0) {
                        l[n].family = sa.sa.sa_family;
                        if (sa.sa.sa_family == AF_INET)
                                memcpy(l[n].address.bytes, &sa.in.sin_addr, 4);
                        else
                                memcpy(l[n].address.bytes, &sa.in6.sin6_addr, 16);
                        l[n].prefixlen = sa.sa.sa_family == AF_INET ? 32 : 128;
                        n++;
                }
        }
        *ret = TAKE_PTR(l);
        *ret_n = n;
        return 0;
}

/* A netmap offered at join: sane bounds, including the underlay. */
int manager_check_join_netmap(Manager *m, const Netmap *nm, const char *url, char **ret_error) {
        _cleanup_free_ InAddrPrefix *avoid = NULL;
        size_t n = 0;
        int r;

        r = manager_avoid_prefixes(m, nm, url, &avoid, &n);
        if (r < 0)
                return r;
        return netmap_check_bounds(nm, avoid, n, ret_error);
}

void manager_log_refusal(Manager *m, const char *what, const char *error) {
        /* a control server that keeps sending it is one line, not one per poll */
        if (streq_ptr(m->last_refusal, error)) {
                log_debug("Still refusing what the control server sends (%s): same reason.", what);
                return;
        }
        log_full_errno_fields(LOG_WARNING, 0, &((LogFields) { .message_id = MESSAGE_NETMAP_REFUSED }),
                              "Refusing %s from the control server: %s; keeping netmap version %llu.", what,
                              strna(error), (unsigned long long) (m->netmap ? m->netmap->version : 0));
        free(m->last_refusal);
        m->last_refusal = error ? strdup(error) : NULL;
}

/* A node.json from before pins takes them from the first netmap applied
 * after the upgrade, once that passed the join-time bounds. */
static int manager_adopt_pins(Manager *m, const Netmap *nm, char **ret_error) {
        int r;

        r = manager_check_join_netmap(m, nm, m->credentials.control_url, ret_error);
        if (r < 0)
                return r;
        r = credentials_pin_netmap(&m->credentials, nm);
        if (r >= 0)
                r = state_save_credentials(m->state_dir, &m->credentials);
        if (r < 0)
                return log_error_errno(r, "Failed to pin the mesh's domain and ranges in %s/node.json: %m",
                                       m->state_dir);
        if (m->cert_keeper)
                (void) cert_keeper_set_pins(m->cert_keeper, m->credentials.domain, m->credentials.ipv4_range,
                                            m->credentials.ipv6_range, m->credentials.ca_sha256);
        log_full_errno_fields(
                LOG_NOTICE, 0, &((LogFields) { .message_id = MESSAGE_PINS_ADOPTED }),
                "Pinned domain %s, ranges %s%s%s from netmap version %llu (node.json had no pins).",
                m->credentials.domain, m->credentials.ipv4_range, m->credentials.ipv6_range ? " and " : "",
                m->credentials.ipv6_range ?: "", (unsigned long long) nm->version);
        return 0;
}

/* Whether nm may be applied; logs the refusal (what: "netmap version N"). */
bool manager_netmap_trusted(Manager *m, const Netmap *nm, const char *what) {
        _cleanup_free_ char *error = NULL;
        int r;

        if (credentials_have_pins(&m->credentials)) {
                r = netmap_check_pins(nm, &m->credentials, &error);
                /* the underlay was checked when the ranges were pinned, and the netmap cannot move them */
                if (r >= 0)
                        r = netmap_check_bounds(nm, NULL, 0, &error);
        } else
                r = manager_adopt_pins(m, nm, &error);
        if (r < 0) {
                manager_log_refusal(m, what, error ?: "cannot check it");
                return false;
        }
        m->last_refusal = mfree(m->last_refusal);
        return true;
}
