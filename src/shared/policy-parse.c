/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The policy file (docs/policy.md) from its text: JSON with "groups",
 * "rules", "tests" and "auto_approve". Every error names the line of the
 * string (or key) at fault, found by policy-lines.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error-message.h"
#include "policy-internal.h"

#define POLICY_TEXT_MAX (1024 * 1024)

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

typedef struct Parse {
        const PolicyLines *lines;
        Policy *policy;
        char **ret_error;
} Parse;

Policy *policy_free(Policy *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_groups; i++) {
                free(p->groups[i].name);
                for (size_t j = 0; j < p->groups[i].n_members; j++)
                        policy_selector_done(&p->groups[i].members[j]);
                free(p->groups[i].members);
        }
        free(p->groups);
        for (size_t i = 0; i < p->n_rules; i++) {
                policy_selector_done(&p->rules[i].src);
                policy_selector_done(&p->rules[i].dst);
                free(p->rules[i].ports);
        }
        free(p->rules);
        for (size_t i = 0; i < p->n_tests; i++) {
                free(p->tests[i].src);
                free(p->tests[i].dst);
        }
        free(p->tests);
        for (size_t i = 0; i < p->n_auto_approve; i++) {
                for (size_t j = 0; j < p->auto_approve[i].n_selectors; j++)
                        policy_selector_done(&p->auto_approve[i].selectors[j]);
                free(p->auto_approve[i].selectors);
        }
        free(p->auto_approve);
        free(p);
        return NULL;
}

/* "line N: " + the message (a sub-parser's, when it made one). */
_printf_(3, 4) static int failf(Parse *ps, unsigned line, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (!msg)
                return -ENOMEM;
        return error_setf(ps->ret_error, -EINVAL, "line %u: %s", line, msg);
}

static int fail_sub(Parse *ps, unsigned line, int r, char **sub) {
        _cleanup_free_ char *m = *sub;

        *sub = NULL;
        if (r == -ENOMEM)
                return r;
        return failf(ps, line, "%s", m ?: "invalid");
}

static const cJSON *array_of_strings(Parse *ps, const cJSON *item, const char *what, int *r) {
        const cJSON *e;

        if (!cJSON_IsArray(item)) {
                *r = failf(ps, policy_line_of(ps->lines, item), "%s: not an array of strings", what);
                return NULL;
        }
        cJSON_ArrayForEach(e, item)
                if (!cJSON_IsString(e) || !e->valuestring) {
                        *r = failf(ps, policy_line_of(ps->lines, e), "%s: not a string", what);
                        return NULL;
                }
        *r = 0;
        return item;
}

static int parse_selectors(Parse *ps, const cJSON *list, const char *what, bool allow_all, PolicySelector **ret,
                           size_t *ret_n) {
        const cJSON *e;
        int r;

        if (!array_of_strings(ps, list, what, &r))
                return r;
        *ret = calloc(MAX((size_t) cJSON_GetArraySize(list), (size_t) 1), sizeof(PolicySelector));
        if (!*ret)
                return -ENOMEM;
        cJSON_ArrayForEach(e, list) {
                _cleanup_free_ char *sub = NULL;
                PolicySelector *sel = &(*ret)[*ret_n];
                unsigned line = policy_line_of(ps->lines, e);

                r = policy_selector_parse(e->valuestring, false, sel, &sub);
                if (r < 0)
                        return fail_sub(ps, line, r, &sub);
                (*ret_n)++;
                if (sel->kind == POLICY_SELECT_ALL && !allow_all)
                        return failf(ps, line, "%s: '*' is not allowed here", what);
        }
        return 0;
}

static int parse_groups(Parse *ps, const cJSON *obj) {
        Policy *p = ps->policy;
        const cJSON *g;
        int r;

        if (!cJSON_IsObject(obj))
                return failf(ps, policy_line_of(ps->lines, obj), "groups: not an object");
        p->groups = calloc(MAX((size_t) cJSON_GetArraySize(obj), (size_t) 1), sizeof(PolicyGroup));
        if (!p->groups)
                return -ENOMEM;
        cJSON_ArrayForEach(g, obj) {
                PolicyGroup *group = &p->groups[p->n_groups];
                unsigned line = policy_key_line_of(ps->lines, g);
                _cleanup_free_ char *what = NULL;

                if (!policy_name_is_valid(g->string))
                        return failf(ps, line, "group '%s': not a valid group name", g->string);
                for (size_t i = 0; i < p->n_groups; i++)
                        if (streq(p->groups[i].name, g->string))
                                return failf(ps, line, "group '%s' defined twice", g->string);
                group->name = strdup(g->string);
                if (!group->name)
                        return -ENOMEM;
                group->line = line;
                p->n_groups++;
                if (asprintf(&what, "group '%s'", g->string) < 0)
                        return -ENOMEM;
                r = parse_selectors(ps, g, what, false, &group->members, &group->n_members);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int resolve_selector(Parse *ps, PolicySelector *sel, unsigned line) {
        const Policy *p = ps->policy;

        if (sel->kind != POLICY_SELECT_GROUP)
                return 0;
        for (size_t i = 0; i < p->n_groups; i++)
                if (streq(p->groups[i].name, sel->name)) {
                        sel->group = i;
                        return 0;
                }
        return failf(ps, line, "unknown group 'group:%s'", sel->name);
}

/* Depth-first with three colours: 0 unseen, 1 on the path, 2 done. */
static int check_cycles(Parse *ps, size_t g, uint8_t *colour) {
        const PolicyGroup *group = &ps->policy->groups[g];
        int r;

        colour[g] = 1;
        for (size_t i = 0; i < group->n_members; i++) {
                const PolicySelector *m = &group->members[i];

                if (m->kind != POLICY_SELECT_GROUP || colour[m->group] == 2)
                        continue;
                if (colour[m->group] == 1)
                        return failf(ps, group->line, "group '%s': cycle through 'group:%s'", group->name,
                                     m->name);
                r = check_cycles(ps, m->group, colour);
                if (r < 0)
                        return r;
        }
        colour[g] = 2;
        return 0;
}

static int resolve_groups(Parse *ps, const cJSON *groups) {
        Policy *p = ps->policy;
        _cleanup_free_ uint8_t *colour = NULL;
        const cJSON *g = groups ? groups->child : NULL;
        int r;

        for (size_t i = 0; i < p->n_groups; i++, g = g->next) {
                const cJSON *e = g->child;
                for (size_t j = 0; j < p->groups[i].n_members; j++, e = e->next) {
                        r = resolve_selector(ps, &p->groups[i].members[j], policy_line_of(ps->lines, e));
                        if (r < 0)
                                return r;
                }
        }
        colour = calloc(MAX(p->n_groups, (size_t) 1), 1);
        if (!colour)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_groups; i++)
                if (colour[i] == 0) {
                        r = check_cycles(ps, i, colour);
                        if (r < 0)
                                return r;
                }
        return 0;
}

static int parse_rules(Parse *ps, const cJSON *list) {
        Policy *p = ps->policy;
        const cJSON *e;
        int r;

        if (!array_of_strings(ps, list, "rules", &r))
                return r;
        p->rules = calloc(MAX((size_t) cJSON_GetArraySize(list), (size_t) 1), sizeof(PolicyRule));
        if (!p->rules)
                return -ENOMEM;
        cJSON_ArrayForEach(e, list) {
                _cleanup_free_ char *sub = NULL;
                PolicyRule *rule = &p->rules[p->n_rules];
                unsigned line = policy_line_of(ps->lines, e);

                r = policy_rule_parse(e->valuestring, rule, &sub);
                if (r < 0)
                        return fail_sub(ps, line, r, &sub);
                rule->line = line;
                p->n_rules++;
                r = resolve_selector(ps, &rule->src, line);
                if (r >= 0)
                        r = resolve_selector(ps, &rule->dst, line);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_tests(Parse *ps, const cJSON *list) {
        Policy *p = ps->policy;
        const cJSON *e;
        int r;

        if (!array_of_strings(ps, list, "tests", &r))
                return r;
        p->tests = calloc(MAX((size_t) cJSON_GetArraySize(list), (size_t) 1), sizeof(PolicyTest));
        if (!p->tests)
                return -ENOMEM;
        cJSON_ArrayForEach(e, list) {
                _cleanup_free_ char *sub = NULL;
                unsigned line = policy_line_of(ps->lines, e);

                r = policy_test_parse(e->valuestring, &p->tests[p->n_tests], &sub);
                if (r < 0)
                        return fail_sub(ps, line, r, &sub);
                p->tests[p->n_tests++].line = line;
        }
        return 0;
}

static int parse_auto_approve(Parse *ps, const cJSON *obj) {
        Policy *p = ps->policy;
        const cJSON *e;
        int r;

        if (!cJSON_IsObject(obj))
                return failf(ps, policy_line_of(ps->lines, obj), "auto_approve: not an object");
        p->auto_approve = calloc(MAX((size_t) cJSON_GetArraySize(obj), (size_t) 1), sizeof(PolicyAutoApprove));
        if (!p->auto_approve)
                return -ENOMEM;
        cJSON_ArrayForEach(e, obj) {
                PolicyAutoApprove *a = &p->auto_approve[p->n_auto_approve];
                unsigned line = policy_key_line_of(ps->lines, e);
                const cJSON *s;
                size_t j = 0;

                if (policy_prefix_parse(e->string, &a->prefix) < 0)
                        return failf(ps, line, "auto_approve: '%s' is not an IP prefix without host bits",
                                     e->string);
                a->line = line;
                p->n_auto_approve++;
                r = parse_selectors(ps, e, "auto_approve", true, &a->selectors, &a->n_selectors);
                if (r < 0)
                        return r;
                s = e->child;
                for (; j < a->n_selectors; j++, s = s->next) {
                        r = resolve_selector(ps, &a->selectors[j], policy_line_of(ps->lines, s));
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int parse_root(Parse *ps, const cJSON *root) {
        static const char *const keys[] = { "groups", "rules", "tests", "auto_approve" };
        const cJSON *e, *found[ELEMENTSOF(keys)] = {};
        int r;

        if (!cJSON_IsObject(root))
                return failf(ps, policy_line_of(ps->lines, root), "the policy is not a JSON object");
        cJSON_ArrayForEach(e, root) {
                size_t i = 0;

                while (i < ELEMENTSOF(keys) && !streq(keys[i], e->string))
                        i++;
                if (i == ELEMENTSOF(keys))
                        return failf(ps, policy_key_line_of(ps->lines, e),
                                     "unknown key '%s' (groups, rules, tests, auto_approve)", e->string);
                if (found[i])
                        return failf(ps, policy_key_line_of(ps->lines, e), "key '%s' given twice", e->string);
                found[i] = e;
        }
        /* groups first: rules and auto_approve name them */
        if (found[0] && (r = parse_groups(ps, found[0])) < 0)
                return r;
        if ((r = resolve_groups(ps, found[0])) < 0)
                return r;
        if (found[1] && (r = parse_rules(ps, found[1])) < 0)
                return r;
        if (found[2] && (r = parse_tests(ps, found[2])) < 0)
                return r;
        if (found[3] && (r = parse_auto_approve(ps, found[3])) < 0)
                return r;
        return 0;
}

int policy_parse(const char *text, size_t len, Policy **ret, char **ret_error) {
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_(cJSON_Deletep) cJSON *root = NULL;
        _cleanup_(policy_lines_done) PolicyLines lines = {};
        const char *end = NULL;
        Parse ps = { .lines = &lines, .ret_error = ret_error };
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (len > POLICY_TEXT_MAX)
                return error_setf(ret_error, -EINVAL, "the policy is larger than %d bytes", POLICY_TEXT_MAX);
        /* control characters: cJSON takes them for white space, a reader
         * of the file would not see them (and a NUL would end it early) */
        for (size_t i = 0; i < len; i++)
                if ((uint8_t) text[i] < 0x20 && !strchr("\t\r\n", text[i] ?: 'x'))
                        return failf(&ps, policy_line_at(text, i), "a control character (0x%02x)",
                                     (unsigned) (uint8_t) text[i]);

        root = cJSON_ParseWithLengthOpts(text, len, &end, false);
        if (!root) {
                size_t off = end && end >= text && end <= text + len ? (size_t) (end - text) : len;
                return failf(&ps, policy_line_at(text, off), "not valid JSON");
        }
        for (size_t i = end - text; i < len; i++)
                if (!strchr(" \t\r\n", text[i]))
                        return failf(&ps, policy_line_at(text, i), "text after the JSON object");

        r = policy_lines_build(text, len, root, &lines);
        if (r == -ENOMEM)
                return r;
        if (r < 0) /* out of step with cJSON: never with the checks above */
                return failf(&ps, 1, "cannot be read");
        p = calloc(1, sizeof(Policy));
        if (!p)
                return -ENOMEM;
        ps.policy = p;
        r = parse_root(&ps, root);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}
