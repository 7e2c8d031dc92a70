/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where each value of a policy file is: cJSON keeps no positions, so the
 * text is walked once more alongside the tree cJSON made of it (same order,
 * same text, so they stay in step) and every item gets its line. Errors in
 * the policy then name the line they are on. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy-internal.h"

typedef struct Scan {
        const char *text;
        size_t len, pos;
        unsigned line;
        PolicyLines *out;
} Scan;

unsigned policy_line_at(const char *text, size_t offset) {
        unsigned line = 1;

        for (size_t i = 0; i < offset; i++)
                if (text[i] == '\n')
                        line++;
        return line;
}

static void skip_ws(Scan *s) {
        /* as cJSON: every byte up to ' ' */
        while (s->pos < s->len && (uint8_t) s->text[s->pos] <= ' ') {
                if (s->text[s->pos] == '\n')
                        s->line++;
                s->pos++;
        }
}

static void skip_string(Scan *s) {
        s->pos++; /* the opening quote */
        while (s->pos < s->len && s->text[s->pos] != '"') {
                if (s->text[s->pos] == '\\')
                        s->pos++;
                s->pos++;
        }
        s->pos++;
}

static int record(Scan *s, const cJSON *item, unsigned key_line) {
        PolicyLines *l = s->out;

        if (l->n == l->allocated) {
                size_t n = MAX(l->allocated * 2, (size_t) 64);
                PolicyLine *v = reallocarray(l->v, n, sizeof(PolicyLine));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->allocated = n;
        }
        l->v[l->n++] = (PolicyLine) { .item = item, .key_line = key_line, .line = s->line };
        return 0;
}

static int scan_value(Scan *s, const cJSON *item, unsigned key_line);

/* Objects and arrays: the children in order, keys first for objects. */
static int scan_children(Scan *s, const cJSON *item, bool object) {
        const cJSON *child = item->child;
        char close = object ? '}' : ']';
        int r;

        s->pos++;
        for (;;) {
                unsigned kl = 0;

                skip_ws(s);
                if (s->pos >= s->len)
                        return -EINVAL;
                if (s->text[s->pos] == close) {
                        s->pos++;
                        return 0;
                }
                if (s->text[s->pos] == ',') {
                        s->pos++;
                        continue;
                }
                if (!child)
                        return -EINVAL; /* out of step: cannot happen with cJSON's own text */
                if (object) {
                        kl = s->line;
                        skip_string(s);
                        skip_ws(s);
                        if (s->pos >= s->len || s->text[s->pos] != ':')
                                return -EINVAL;
                        s->pos++;
                }
                r = scan_value(s, child, kl);
                if (r < 0)
                        return r;
                child = child->next;
        }
}

static int scan_value(Scan *s, const cJSON *item, unsigned key_line) {
        int r;

        skip_ws(s);
        if (s->pos >= s->len)
                return -EINVAL;
        r = record(s, item, key_line);
        if (r < 0)
                return r;

        switch (s->text[s->pos]) {
        case '{':
                return scan_children(s, item, true);
        case '[':
                return scan_children(s, item, false);
        case '"':
                skip_string(s);
                return 0;
        default:
                while (s->pos < s->len && (uint8_t) s->text[s->pos] > ' ' && !strchr(",]}", s->text[s->pos]))
                        s->pos++;
                return 0;
        }
}

static int line_compare(const void *a, const void *b) {
        const PolicyLine *x = a, *y = b;
        return x->item < y->item ? -1 : x->item > y->item ? 1 : 0;
}

int policy_lines_build(const char *text, size_t len, const cJSON *root, PolicyLines *ret) {
        Scan s = { .text = text, .len = len, .line = 1, .out = ret };
        int r;

        r = scan_value(&s, root, 0);
        if (r < 0)
                return r;
        qsort(ret->v, ret->n, sizeof(PolicyLine), line_compare);
        return 0;
}

void policy_lines_done(PolicyLines *l) {
        free(l->v);
        *l = (PolicyLines) {};
}

static const PolicyLine *find(const PolicyLines *l, const cJSON *item) {
        PolicyLine key = { .item = item };

        if (l->n == 0)
                return NULL;
        return bsearch(&key, l->v, l->n, sizeof(PolicyLine), line_compare);
}

unsigned policy_line_of(const PolicyLines *l, const cJSON *item) {
        const PolicyLine *p = find(l, item);
        return p ? p->line : 0;
}

unsigned policy_key_line_of(const PolicyLines *l, const cJSON *item) {
        const PolicyLine *p = find(l, item);
        return p ? p->key_line : 0;
}
