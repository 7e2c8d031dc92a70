/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Tags of auth keys, nodes and devices as the store keeps them: one text
 * column, comma-separated, sorted, so equal sets compare equal as text. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dns-label.h"
#include "store.h"
#include "strv.h"

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int store_tags_parse(const char *text, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *copy = NULL;
        size_t n = 0, k = 0;
        char *item, *save = NULL;

        copy = strdup(text ?: "");
        if (!copy)
                return -ENOMEM;
        l = calloc(strlen(copy) / 2 + 2, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
                const char *t = strncmp(item, "tag:", 4) == 0 ? item + 4 : item;

                if (!dns_label_is_valid(t))
                        return -EINVAL;
                l[n] = strdup(t);
                if (!l[n++])
                        return -ENOMEM;
        }
        qsort(l, n, sizeof(char *), strcmp_ptr);
        for (size_t i = 0; i < n; i++) {
                if (k > 0 && streq(l[k - 1], l[i])) {
                        free(l[i]);
                        l[i] = NULL;
                        continue;
                }
                l[k++] = l[i];
                if (k - 1 != i)
                        l[i] = NULL;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

char *store_tags_format(char *const *tags) {
        size_t len = 1;
        char *s, *p;

        for (size_t i = 0; tags && tags[i]; i++)
                len += strlen(tags[i]) + 1;
        s = p = malloc(len);
        if (!s)
                return NULL;
        *p = 0;
        for (size_t i = 0; tags && tags[i]; i++)
                p = stpcpy(stpcpy(p, i > 0 ? "," : ""), tags[i]);
        return s;
}
