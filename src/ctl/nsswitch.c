/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>
#include <stdio.h>

#include "macro.h"
#include "nsswitch.h"

#define TOKENS_MAX 64

/* One item of a service list: a service name or an action list "[...]",
 * which belongs to the service before it. */
typedef struct Token {
        const char *start, *end;
        bool action;
} Token;

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static const char *skip_blanks(const char *p, const char *end) {
        while (p < end && is_blank(*p))
                p++;
        return p;
}

static bool ascii_equal_n(const char *a, const char *b, size_t n) {
        for (size_t i = 0; i < n; i++) {
                char x = a[i] >= 'A' && a[i] <= 'Z' ? (char) (a[i] - 'A' + 'a') : a[i];
                if (x != b[i])
                        return false;
        }
        return true;
}

/* glibc's reading of nsswitch.conf: leading blanks, the database name, ':'
 * and the services, '#' to the end of the line a comment. Returns where the
 * services start, or NULL for any line that is not "hosts:". */
static const char *hosts_line_services(const char *line, const char *end) {
        const char *p = skip_blanks(line, end);

        if ((size_t) (end - p) < 5 || !ascii_equal_n(p, "hosts", 5))
                return NULL;
        p = skip_blanks(p + 5, end);
        if (p >= end || *p != ':')
                return NULL;
        return p + 1;
}

static size_t tokenize(const char *p, const char *end, Token tokens[static TOKENS_MAX]) {
        size_t n = 0;

        for (;;) {
                const char *start;
                bool action;

                p = skip_blanks(p, end);
                if (p >= end || n >= TOKENS_MAX)
                        return n;
                start = p;
                action = *p == '[';
                if (action) {
                        /* Blanks are allowed inside the brackets. */
                        while (p < end && *p != ']')
                                p++;
                        if (p < end)
                                p++;
                } else
                        while (p < end && !is_blank(*p) && *p != '[')
                                p++;
                tokens[n++] = (Token) { start, p, action };
        }
}

static bool token_is(const Token *t, const char *word) {
        size_t n = strlen(word);

        return !t->action && (size_t) (t->end - t->start) == n && memcmp(t->start, word, n) == 0;
}

/* Index just past service i and the action lists that belong to it. */
static size_t service_group_end(const Token *tokens, size_t n, size_t i) {
        for (i++; i < n && tokens[i].action; i++)
                ;
        return i;
}

static void write_range(FILE *f, const char *start, const char *end) {
        fwrite(start, 1, (size_t) (end - start), f);
}

/* Adds mesh to the services part [p, end) of a hosts: line that lacks it:
 * right after "files", else first. list_end is where a comment starts. */
static void services_add_mesh(FILE *f, const char *p, const char *end, const char *list_end,
                              const Token *tokens, size_t n, size_t n_services, size_t files) {
        const char *at;

        if (n_services == 0) {
                /* "hosts:" alone means glibc's built-in default; spell ours out. */
                at = skip_blanks(p, list_end);
                write_range(f, p, at);
                if (at == p)
                        fputc(' ', f);
                fputs(NSSWITCH_HOSTS_DEFAULT, f);
                if (at < end)
                        fputc(' ', f);
                write_range(f, at, end);
                return;
        }
        if (files == SIZE_MAX) {
                at = tokens[0].start;
                write_range(f, p, at);
                fputs(NSSWITCH_SERVICE " ", f);
        } else {
                at = tokens[service_group_end(tokens, n, files) - 1].end;
                write_range(f, p, at);
                fputs(" " NSSWITCH_SERVICE, f);
        }
        write_range(f, at, end);
}

/* Removes every mesh, with its action lists, from the services part
 * [p, end) of a hosts: line that has it. */
static void services_remove_mesh(FILE *f, const char *p, const char *end, const Token *tokens, size_t n,
                                 size_t n_services) {
        if (n_services == 1) {
                /* Removing the only service would leave glibc's default; say what it is. */
                size_t last = service_group_end(tokens, n, 0) - 1;

                write_range(f, p, tokens[0].start);
                fputs("files dns", f);
                write_range(f, tokens[last].end, end);
                return;
        }
        /* Each "mesh [ACTION]..." goes with the blanks before it; a first
         * one with the blanks after it. */
        const char *from = p;
        for (size_t i = 0; i < n; i++) {
                size_t next;

                if (!token_is(&tokens[i], NSSWITCH_SERVICE))
                        continue;
                next = service_group_end(tokens, n, i);
                if (i == 0) {
                        write_range(f, from, tokens[0].start);
                        from = next < n ? tokens[next].start : tokens[next - 1].end;
                } else {
                        write_range(f, from, tokens[i - 1].end);
                        from = tokens[next - 1].end;
                }
                i = next - 1;
        }
        write_range(f, from, end);
}

/* Writes the services part [p, end) of one hosts: line, edited. Returns
 * whether it changed. */
static bool edit_services(FILE *f, const char *p, const char *end, bool enable) {
        const char *comment = memchr(p, '#', (size_t) (end - p));
        const char *list_end = comment ?: end;
        Token tokens[TOKENS_MAX];
        size_t n = tokenize(p, list_end, tokens), n_services = 0, files = SIZE_MAX;
        bool has_mesh = false;

        for (size_t i = 0; i < n; i++) {
                if (tokens[i].action)
                        continue;
                n_services++;
                if (token_is(&tokens[i], NSSWITCH_SERVICE))
                        has_mesh = true;
                else if (files == SIZE_MAX && token_is(&tokens[i], "files"))
                        files = i;
        }

        if (enable == has_mesh) {
                write_range(f, p, end);
                return false;
        }
        if (enable)
                services_add_mesh(f, p, end, list_end, tokens, n, n_services, files);
        else
                services_remove_mesh(f, p, end, tokens, n, n_services);
        return true;
}

int nsswitch_edit(const char *text, bool enable, char **ret) {
        _cleanup_free_ char *out = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        bool changed = false, seen_hosts = false;
        const char *p = text;
        size_t size = 0;

        f = open_memstream(&out, &size);
        if (!f)
                return -ENOMEM;

        while (*p) {
                const char *nl = strchr(p, '\n'), *end = nl ?: p + strlen(p), *services;

                services = hosts_line_services(p, end);
                if (services) {
                        seen_hosts = true;
                        write_range(f, p, services);
                        if (edit_services(f, services, end, enable))
                                changed = true;
                } else
                        write_range(f, p, end);
                if (nl)
                        fputc('\n', f);
                p = nl ? nl + 1 : end;
        }

        if (enable && !seen_hosts) {
                if (p > text && p[-1] != '\n')
                        fputc('\n', f);
                fputs("hosts: " NSSWITCH_HOSTS_DEFAULT "\n", f);
                changed = true;
        }

        if (fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(out);
        return changed;
}
