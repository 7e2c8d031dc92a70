/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "relay-admit.h"
#include "relay-frame.h"
#include "request.h"

void relay_admission_done(RelayAdmission *a) {
        free(a->name);
        *a = (RelayAdmission) {};
}

_printf_(3, 4) static int refuse(RelayAdmission *a, unsigned status, const char *format, ...) {
        va_list ap;

        a->status = status;
        va_start(ap, format);
        (void) vsnprintf(a->error, sizeof(a->error), format, ap);
        va_end(ap);
        return 0;
}

int relay_admit(Store *store, const RelayServer *rs, bool disabled, const char *authorization,
                const char *upgrade, RelayAdmission *ret) {
        _cleanup_(store_node_done) StoreNode node = {};
        const char *token = request_bearer_token(authorization);
        int r;

        *ret = (RelayAdmission) { .id = -1 };
        if (!token)
                return refuse(ret, 401, "missing node token");
        r = store_node_by_token(store, token, &node);
        if (r == -ENOENT)
                return refuse(ret, 401, "unknown node token");
        if (r < 0 && !store_is_available(store))
                return refuse(ret, 503, "database unavailable");
        if (r < 0)
                return refuse(ret, 500, "internal error, see the server log");
        if (node.removed)
                return refuse(ret, 403, "node removed");
        if (node.expired)
                return refuse(ret, 403, "node %s expired, join again", node.name);
        if (!upgrade || !streq(upgrade, RELAY_UPGRADE_TOKEN))
                return refuse(ret, 400, "Upgrade: expected %s", RELAY_UPGRADE_TOKEN);
        if (disabled)
                return refuse(ret, 503, "relay disabled");
        if (!rs)
                return refuse(ret, 503, "no hub, no relay");
        if (!relay_server_has_room(rs, node.id))
                return refuse(ret, 503, "too many relay streams");
        if (key_from_base64(node.public_key, &ret->key) < 0)
                return refuse(ret, 500, "internal error, see the server log");
        ret->name = strdup(node.name);
        if (!ret->name)
                return -ENOMEM;
        ret->id = node.id;
        return 0;
}
