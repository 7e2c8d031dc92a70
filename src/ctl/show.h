/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Printing API objects for people (aligned text) and scripts (JSON). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* "12s ago", "5m ago", "3h ago", "2d ago", "never" for 0. */
void format_age(char *buf, size_t size, uint64_t timestamp_usec, uint64_t now_usec);
/* "1.23 ms", "-" for 0. */
void format_rtt(char *buf, size_t size, uint64_t rtt_usec);

/* Pretty-printed JSON and a newline on stdout. */
int show_json(const cJSON *json);

/* The header of `meshctl status`, from a Status object. */
void show_status(const cJSON *status, bool color);
/* The peers table, from the "peers" array of ListPeers. */
void show_peers(const cJSON *peers, bool color);

/* Whether stdout is a terminal that wants colour (NO_COLOR, TERM=dumb). */
bool stdout_wants_color(void);
