/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Several control server URLs (replicas of one mesh, docs/replicas.md):
 * ControlURL=, `meshctl up --server=` and node.json hold them as one text,
 * space- or comma-separated, the first the preferred one. The choice among
 * them is pure, so its rules are unit-tested without sockets. */

#include <stdbool.h>
#include <stddef.h>

#define CONTROL_URLS_MAX 16

/* text → strv of https://HOST[:PORT][/…] URLs (at least one, no
 * duplicates, at most CONTROL_URLS_MAX). -EINVAL with a one-line reason
 * (static, naming no input) when one is not an https:// URL, repeats one,
 * or there are none or too many; *ret_bad then points at the offending
 * word's start in text (NULL: the list as a whole). */
int control_urls_parse(const char *text, char ***ret, const char **ret_reason, const char **ret_bad);
/* Whether text is a valid list (meshd.conf, the Varlink API). */
bool control_urls_valid(const char *text);

/* Which URL is in use, and how the failures went. */
typedef struct ControlUrlChoice {
        size_t n;       /* URLs in the list, ≥ 1 */
        size_t current; /* the one requests go to */
        size_t failed;  /* URLs that failed in a row since the last answer */
} ControlUrlChoice;

/* A request to current failed as a dead or broken server does (no
 * connection, no answer in time, a 5xx, a cut-off reply, another key):
 * current moves on to the next URL. Returns true when that one should be
 * tried at once, false when every URL has failed in a row (then the caller
 * backs off before the next try, as with a single URL). */
bool control_url_failed(ControlUrlChoice *c);
/* current answered: the round of failures is over. */
void control_url_answered(ControlUrlChoice *c);
/* Fail back: while current is not the first (preferred) URL, the caller
 * tries the first again now and then; this makes it current. Returns
 * false when current is the first already. */
bool control_url_fail_back(ControlUrlChoice *c);
