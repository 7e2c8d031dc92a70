/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "conf.h"
#include "macro.h"

/* meshd.conf [DNS]: the node's mesh DNS server (meshd.conf(5)). */

static int dns_port(MeshdConfig *c, const char *value, const char **ret_reason) {
        unsigned long port;
        char *end = NULL;

        /* "no" (or 0) turns the server off; "yes" or empty: the default port */
        if (!isdigit((unsigned char) value[0])) {
                int b = value[0] ? parse_boolean(value) : 1;
                if (b >= 0) {
                        c->dns_port = b ? MESHD_DEFAULT_DNS_PORT : 0;
                        return 0;
                }
        }
        errno = 0;
        port = isdigit((unsigned char) value[0]) ? strtoul(value, &end, 10) : ULONG_MAX;
        if (!end || errno != 0 || *end != '\0' || port > 65535) {
                *ret_reason = "a port number 1-65535, or no";
                return -EINVAL;
        }
        c->dns_port = (uint16_t) port;
        return 0;
}

static int dns_resolv_conf(MeshdConfig *c, const char *value, const char **ret_reason) {
        char *s = NULL;

        if (value[0] != '\0' && value[0] != '/') {
                *ret_reason = "an absolute path";
                return -EINVAL;
        }
        if (value[0] != '\0') {
                s = strdup(value);
                if (!s)
                        return -ENOMEM;
        }
        free(c->dns_resolv_conf);
        c->dns_resolv_conf = s;
        return 0;
}

static int dns_resolved(MeshdConfig *c, const char *value, const char **ret_reason) {
        /* empty: back to the default, as every key */
        int b = value[0] ? parse_boolean(value) : 1;

        if (b < 0) {
                *ret_reason = "yes or no";
                return -EINVAL;
        }
        c->dns_resolved = b;
        return 0;
}

int conf_parse_dns_key(MeshdConfig *c, const char *name, const char *value, const char **ret_reason) {
        if (streq(name, "Port"))
                return dns_port(c, value, ret_reason);
        if (streq(name, "ResolvConf"))
                return dns_resolv_conf(c, value, ret_reason);
        if (streq(name, "Resolved"))
                return dns_resolved(c, value, ret_reason);
        return -ENOENT;
}
