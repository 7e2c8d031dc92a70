/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "api-limits.h"

int api_admission_check(uid_t uid, unsigned n_total, unsigned n_uid) {
        if (n_total >= API_CONNECTIONS_MAX)
                return -EMFILE;
        if (uid == 0)
                return 0;
        if (n_total >= API_CONNECTIONS_MAX - API_CONNECTIONS_ROOT_RESERVED)
                return -EBUSY;
        if (n_uid >= API_CONNECTIONS_PER_USER_MAX)
                return -EUSERS;
        return 0;
}

const char *api_admission_reason(int r) {
        switch (r) {
        case -EUSERS:
                return "too many connections from this user";
        case -EBUSY:
                return "the remaining connection slots are reserved for root";
        case -EMFILE:
                return "too many connections";
        default:
                return "refused";
        }
}

bool api_rate_limit_test(ApiRateLimit *rl, uint64_t now_usec, unsigned *ret_suppressed) {
        if (rl->begin_usec == 0 || now_usec < rl->begin_usec ||
            now_usec - rl->begin_usec >= rl->interval_usec) {
                rl->begin_usec = now_usec;
                rl->n = 0;
        }
        if (rl->n >= rl->burst) {
                rl->suppressed++;
                return false;
        }
        rl->n++;
        if (ret_suppressed)
                *ret_suppressed = rl->suppressed;
        rl->suppressed = 0;
        return true;
}
