/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "conf.h"
#include "dns-label.h"
#include "macro.h"

/* meshd.conf [Routes]: which peer is this node's exit node, and the mark
 * and table the exit route uses (meshd.conf(5), exit-route.c). */

static int routes_exit_node(MeshdConfig *c, const char *value, const char **ret_reason) {
        char *s = NULL;

        /* empty: no exit node, all traffic but the mesh's goes as before */
        if (value[0] != '\0') {
                if (!dns_label_is_valid(value)) {
                        *ret_reason = "a peer's name (a DNS label), or empty";
                        return -EINVAL;
                }
                s = strdup(value);
                if (!s)
                        return -ENOMEM;
        }
        free(c->exit_node);
        c->exit_node = s;
        return 0;
}

static int routes_exit_fwmark(MeshdConfig *c, const char *value, const char **ret_reason) {
        unsigned long long v;
        char *end = NULL;

        if (value[0] == '\0') {
                c->exit_fwmark = MESHD_DEFAULT_EXIT_FWMARK;
                return 0;
        }
        errno = 0;
        v = isdigit((unsigned char) value[0]) ? strtoull(value, &end, 0) : 0;
        /* table 0 is "unspecified", 253-255 are the kernel's own */
        if (!end || errno != 0 || *end != '\0' || v == 0 || v > UINT32_MAX || (v >= 253 && v <= 255)) {
                *ret_reason = "a number 1 … 4294967295 (0x… allowed), not 253, 254 or 255";
                return -EINVAL;
        }
        c->exit_fwmark = (uint32_t) v;
        return 0;
}

int conf_parse_routes_key(MeshdConfig *c, const char *name, const char *value, const char **ret_reason) {
        if (streq(name, "ExitNode"))
                return routes_exit_node(c, value, ret_reason);
        if (streq(name, "ExitFwmark"))
                return routes_exit_fwmark(c, value, ret_reason);
        return -ENOENT;
}
