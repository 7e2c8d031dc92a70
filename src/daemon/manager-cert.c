/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>

#include "log.h"
#include "manager-private.h"

/* The certificate keeper (cert.h) as the manager runs it: started once
 * joined, fed this node's names from each netmap, and the mesh CA it pins
 * kept in node.json. */

static void on_ca_pinned(const char *sha256_hex, void *userdata) {
        Manager *m = userdata;
        char *copy = strdup(sha256_hex);
        int r;

        if (!copy) {
                log_oom();
                return;
        }
        free(m->credentials.ca_sha256);
        m->credentials.ca_sha256 = copy;
        r = state_save_credentials(m->state_dir, &m->credentials);
        if (r < 0)
                log_warning_errno(r, "Failed to pin the mesh CA in %s/node.json: %m", m->state_dir);
        else
                log_info("Pinned the mesh CA, SHA-256 %s.", sha256_hex);
}

/* Only once joined: the certificate keeper asks with the node token. */
void manager_start_cert_keeper(Manager *m) {
        _cleanup_free_ char *directory = NULL;
        int r;

        if (m->cert_keeper || !m->credentials.token)
                return;
        if (asprintf(&directory, "%s/certs", m->state_dir) < 0) {
                log_oom();
                return;
        }
        r = cert_keeper_new(m->event,
                            &(CertKeeperOptions) {
                                    .directory = directory,
                                    .control_url = m->credentials.control_url,
                                    .control_pin = m->credentials.control_pin,
                                    .token = m->credentials.token,
                                    .reload_command = m->config.cert_reload_command,
                                    .fwmark = m->config.exit_fwmark,
                                    .ca_pinned = on_ca_pinned,
                                    .userdata = m,
                            },
                            &m->cert_keeper);
        if (r >= 0)
                r = cert_keeper_set_pins(m->cert_keeper, m->credentials.domain, m->credentials.ipv4_range,
                                         m->credentials.ipv6_range, m->credentials.ca_sha256);
        if (r < 0)
                log_warning_errno(r, "Failed to set up TLS certificates, GetCertificate will not work: %m");
}

void manager_feed_cert_names(Manager *m) {
        char a4[INET6_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];
        const NetmapNode *self;
        int r;

        if (!m->cert_keeper || !m->netmap)
                return;
        self = &m->netmap->self;
        in_addr_format(AF_INET, &self->ipv4, a4, sizeof(a4));
        if (self->has_ipv6)
                in_addr_format(AF_INET6, &self->ipv6, a6, sizeof(a6));
        r = cert_keeper_set_names(m->cert_keeper, self->name, m->netmap->domain, a4,
                                  self->has_ipv6 ? a6 : NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to pass this node's names to the certificate keeper: %m");
}
