/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "online.h"

#define MISSING_NAMES_MAX 5

static const OnlinePeerView *find_peer(const OnlinePeerView *peers, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcasecmp(peers[i].name, name) == 0)
                        return &peers[i];
        return NULL;
}

typedef struct MissingList {
        FILE *f;
        char *text;
        size_t size;
        size_t count;
} MissingList;

static void missing_add(MissingList *l, const char *name, const char *suffix) {
        l->count++;
        if (l->count > MISSING_NAMES_MAX)
                return;
        fprintf(l->f, "%s%s%s", l->count > 1 ? ", " : "", name, suffix);
}

static int missing_finish(MissingList *l, char **ret) {
        if (l->count > MISSING_NAMES_MAX)
                fprintf(l->f, " and %zu more", l->count - MISSING_NAMES_MAX);
        if (fclose(l->f) != 0) {
                free(l->text);
                return -ENOMEM;
        }
        l->f = NULL;
        if (ret && l->count > 0)
                *ret = l->text;
        else {
                free(l->text);
                if (ret)
                        *ret = NULL;
        }
        return 0;
}

int online_evaluate_names(char *const *names, bool any, const OnlinePeerView *peers, size_t n_peers,
                          char **ret_missing) {
        MissingList missing = {};
        bool holds;
        size_t reachable = 0;
        int r;

        missing.f = open_memstream(&missing.text, &missing.size);
        if (!missing.f)
                return -ENOMEM;

        if (!names) {
                for (size_t i = 0; i < n_peers; i++) {
                        if (peers[i].reachable)
                                reachable++;
                        else
                                missing_add(&missing, peers[i].name, "");
                }
                holds = n_peers == 0 || (any ? reachable > 0 : reachable == n_peers);
        } else {
                size_t wanted = 0;
                for (char *const *n = names; *n; n++) {
                        const OnlinePeerView *p = find_peer(peers, n_peers, *n);
                        wanted++;
                        if (p && p->reachable)
                                reachable++;
                        else
                                missing_add(&missing, *n, p ? "" : " (unknown)");
                }
                holds = wanted == 0 || (any ? reachable > 0 : reachable == wanted);
        }

        r = missing_finish(&missing, holds ? NULL : ret_missing);
        if (r < 0)
                return r;
        if (holds && ret_missing)
                *ret_missing = NULL;
        return holds;
}

int online_evaluate_policy(OnlinePolicy policy, char *const *required_peers, const OnlinePeerView *peers,
                           size_t n_peers, char **ret_missing) {
        switch (policy) {
        case ONLINE_POLICY_NONE:
                if (ret_missing)
                        *ret_missing = NULL;
                return 1;
        case ONLINE_POLICY_ANY:
                return online_evaluate_names(NULL, true, peers, n_peers, ret_missing);
        case ONLINE_POLICY_ALL:
                return online_evaluate_names(NULL, false, peers, n_peers, ret_missing);
        case ONLINE_POLICY_REQUIRED: {
                /* An empty RequiredPeers= is refused by conf_load(); if it still
                 * happens, holding at once beats hanging the boot. */
                char *none[] = { NULL };
                return online_evaluate_names(required_peers ? required_peers : none, false, peers, n_peers,
                                             ret_missing);
        }
        default:
                return -EINVAL;
        }
}
