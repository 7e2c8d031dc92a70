/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the listing verbs (nodes, devices, routes list) share: their --json
 * output as one array of objects, and times as UTC in ISO 8601. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "verbs.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

void format_utc_time(int64_t t, char buf[static 32]) {
        time_t tt = (time_t) t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, 32, "%" PRIi64, t);
}

int json_add_strv(cJSON *o, const char *key, char *const *l) {
        cJSON *a = cJSON_AddArrayToObject(o, key);

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; l && l[i]; i++)
                if (!cJSON_AddItemToArray(a, cJSON_CreateString(l[i])))
                        return -ENOMEM;
        return 0;
}

int print_json_list(const void *items, size_t n, JsonFillFunc fill) {
        _cleanup_(cJSON_Deletep) cJSON *a = cJSON_CreateArray();
        _cleanup_free_ char *text = NULL;

        if (!a)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                cJSON *o = cJSON_CreateObject();

                if (!o || !cJSON_AddItemToArray(a, o)) {
                        cJSON_Delete(o);
                        return log_oom();
                }
                if (fill(o, items, i) < 0)
                        return log_oom();
        }
        text = cJSON_Print(a);
        if (!text)
                return log_oom();
        puts(text);
        return 0;
}
