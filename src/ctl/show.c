/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "call.h"
#include "log.h"
#include "show.h"
#include "time-util.h"

#define ANSI_GREEN "\x1B[0;32m"
#define ANSI_YELLOW "\x1B[0;33m"
#define ANSI_RED "\x1B[0;31m"
#define ANSI_NORMAL "\x1B[0m"

bool stdout_wants_color(void) {
        const char *term = getenv("TERM");

        if (getenv("NO_COLOR"))
                return false;
        if (!term || streq(term, "dumb"))
                return false;
        return isatty(STDOUT_FILENO);
}

void format_age(char *buf, size_t size, uint64_t timestamp_usec, uint64_t now_usec) {
        uint64_t s;

        if (timestamp_usec == 0) {
                snprintf(buf, size, "never");
                return;
        }
        /* A timestamp from the future (clock stepped) is "just now". */
        s = now_usec > timestamp_usec ? (now_usec - timestamp_usec) / USEC_PER_SEC : 0;
        if (s < 60)
                snprintf(buf, size, "%" PRIu64 "s ago", s);
        else if (s < 60 * 60)
                snprintf(buf, size, "%" PRIu64 "m ago", s / 60);
        else if (s < 24 * 60 * 60)
                snprintf(buf, size, "%" PRIu64 "h ago", s / (60 * 60));
        else
                snprintf(buf, size, "%" PRIu64 "d ago", s / (24 * 60 * 60));
}

void format_rtt(char *buf, size_t size, uint64_t rtt_usec) {
        if (rtt_usec == 0)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%.2f ms", (double) rtt_usec / (double) USEC_PER_MSEC);
}

int show_json(const cJSON *json) {
        _cleanup_free_ char *text = NULL;

        text = cJSON_Print(json);
        if (!text)
                return log_oom();
        printf("%s\n", text);
        return 0;
}

static const char *state_color(const char *state) {
        if (streq_ptr(state, "online"))
                return ANSI_GREEN;
        if (streq_ptr(state, "degraded") || streq_ptr(state, "starting"))
                return ANSI_YELLOW;
        return ANSI_RED;
}

/* ExitNode= and the peers' routes this node accepted; nothing from a meshd
 * that sends neither, nor without ExitNode= and accepted routes. */
static void show_status_routes(const cJSON *status) {
        const cJSON *exit = cJSON_GetObjectItemCaseSensitive(status, "exit_node");
        const cJSON *routes = cJSON_GetObjectItemCaseSensitive(status, "accepted_routes"), *r;
        bool first = true;

        if (cJSON_IsObject(exit)) {
                const char *problem = reply_string(exit, "problem");

                if (reply_bool(exit, "in_use"))
                        printf("     Exit node: %s (in use: all other traffic goes through it)\n",
                               strna(reply_string(exit, "name")));
                else
                        printf("     Exit node: %s (not used%s%s)\n", strna(reply_string(exit, "name")),
                               problem ? ": " : "", problem ?: "");
        }
        if (!cJSON_IsArray(routes))
                return;
        cJSON_ArrayForEach(r, routes) {
                printf("%s%s via %s\n", first ? "        Routes: " : "                ",
                       strna(reply_string(r, "prefix")), strna(reply_string(r, "peer")));
                first = false;
        }
}

void show_status(const cJSON *status, bool color) {
        const char *state = reply_string(status, "state");
        const char *text = reply_string(status, "status_text");
        const char *ipv4 = reply_string(status, "ipv4"), *ipv6 = reply_string(status, "ipv6");
        /* with replicas, the one in use (control_url lists them all) */
        const char *control = reply_string(status, "control_url_active") ?: reply_string(status, "control_url");
        const char *interface = reply_string(status, "interface");

        /* Labels right-aligned to the longest, like networkctl status. */
        printf("          Name: %s\n", strna(reply_string(status, "name")));
        printf("          FQDN: %s\n", strna(reply_string(status, "fqdn")));
        if (ipv4 || ipv6) {
                printf("     Addresses: %s\n", ipv4 ?: ipv6);
                if (ipv4 && ipv6)
                        printf("                %s\n", ipv6);
        } else
                printf("     Addresses: none\n");
        printf("         State: %s%s%s\n", color ? state_color(state) : "", strna(state),
               color ? ANSI_NORMAL : "");
        if (text && *text)
                printf("        Status: %s\n", text);
        printf("         Peers: %" PRIu64 " of %" PRIu64 " reachable\n", reply_uint(status, "peers_reachable"),
               reply_uint(status, "peers_total"));
        if (control)
                printf("Control server: %s (%s)\n", control,
                       reply_bool(status, "control_connected") ? "connected" : "not connected");
        else
                printf("Control server: none\n");
        const cJSON *hub = cJSON_GetObjectItemCaseSensitive(status, "hub");
        if (cJSON_IsObject(hub))
                printf("           Hub: %s (%s)\n", strna(reply_string(hub, "endpoint")),
                       reply_bool(hub, "reachable") ? "reachable, relays when needed" : "not reachable");
        if (interface)
                printf("     Interface: %s (%s backend, port %" PRIu64 ")\n", interface,
                       strna(reply_string(status, "backend")), reply_uint(status, "listen_port"));
        if (reply_string(status, "public_key"))
                printf("    Public key: %s\n", reply_string(status, "public_key"));
        show_status_routes(status);
}

enum {
        COLUMN_NAME,
        COLUMN_IPV4,
        COLUMN_PATH,
        COLUMN_ENDPOINT,
        COLUMN_REACHABLE,
        COLUMN_HANDSHAKE,
        COLUMN_RTT,
        COLUMN_WHY,
        COLUMN_KIND, /* only when a device is listed: the table of a mesh of nodes stays as it was */
        _COLUMN_MAX,
};

/* clang-format off */
static const char *const column_title[_COLUMN_MAX] = {
        [COLUMN_NAME] = "NAME",
        [COLUMN_IPV4] = "MESH IPV4",
        [COLUMN_PATH] = "PATH",
        [COLUMN_ENDPOINT] = "ENDPOINT",
        [COLUMN_REACHABLE] = "REACHABLE",
        [COLUMN_HANDSHAKE] = "HANDSHAKE",
        [COLUMN_RTT] = "RTT",
        [COLUMN_WHY] = "WHY (PATH)",
        [COLUMN_KIND] = "KIND",
};
/* clang-format on */

typedef struct PeerRow {
        const char *cell[_COLUMN_MAX];
        char handshake[32];
        char rtt[32];
        bool reachable;
        bool is_device;
} PeerRow;

static void peer_row_fill(PeerRow *row, const cJSON *peer, uint64_t now) {
        const char *s;

        format_age(row->handshake, sizeof(row->handshake), reply_uint(peer, "last_handshake_usec"), now);
        format_rtt(row->rtt, sizeof(row->rtt), reply_uint(peer, "rtt_usec"));
        row->reachable = reply_bool(peer, "reachable");

        s = reply_string(peer, "name");
        row->cell[COLUMN_NAME] = s ? s : "-";
        s = reply_string(peer, "ipv4");
        row->cell[COLUMN_IPV4] = s ? s : "-";
        s = reply_string(peer, "path");
        row->cell[COLUMN_PATH] = s ? s : "-";
        s = reply_string(peer, "endpoint");
        row->cell[COLUMN_ENDPOINT] = s ? s : "-";
        row->cell[COLUMN_REACHABLE] = row->reachable ? "yes" : "no";
        row->cell[COLUMN_HANDSHAKE] = row->handshake;
        row->cell[COLUMN_RTT] = row->rtt;
        s = reply_string(peer, "path_reason");
        row->cell[COLUMN_WHY] = s ? s : "-";
        /* meshd before devices sends no kind: all its peers are nodes */
        s = reply_string(peer, "kind");
        row->cell[COLUMN_KIND] = s ? s : "node";
        row->is_device = streq_ptr(s, "device");
        /* a device is never probed: neither reachable nor unreachable */
        if (row->is_device) {
                row->cell[COLUMN_REACHABLE] = "-";
                row->cell[COLUMN_HANDSHAKE] = "-";
        }
}

void show_peers(const cJSON *peers, bool color) {
        _cleanup_free_ PeerRow *rows = NULL;
        size_t width[_COLUMN_MAX], n = 0, n_columns = COLUMN_KIND;
        uint64_t now = clock_usec(CLOCK_REALTIME);
        const cJSON *peer;

        if (cJSON_GetArraySize(peers) <= 0) {
                printf("No peers.\n");
                return;
        }

        rows = calloc((size_t) cJSON_GetArraySize(peers), sizeof(PeerRow));
        if (!rows) {
                (void) log_oom();
                return;
        }

        cJSON_ArrayForEach(peer, peers)
                if (cJSON_IsObject(peer))
                        peer_row_fill(&rows[n++], peer, now);

        for (size_t i = 0; i < n; i++)
                if (rows[i].is_device)
                        n_columns = _COLUMN_MAX;

        for (size_t c = 0; c < n_columns; c++) {
                width[c] = strlen(column_title[c]);
                for (size_t i = 0; i < n; i++)
                        width[c] = MAX(width[c], strlen(rows[i].cell[c]));
        }

        for (size_t c = 0; c < n_columns; c++)
                printf("%-*s%s", c + 1 < n_columns ? (int) width[c] : 0, column_title[c],
                       c + 1 < n_columns ? "  " : "\n");

        for (size_t i = 0; i < n; i++)
                for (size_t c = 0; c < n_columns; c++) {
                        const char *on = "", *off = "";

                        if (color && c == COLUMN_REACHABLE && !rows[i].is_device) {
                                on = rows[i].reachable ? ANSI_GREEN : ANSI_RED;
                                off = ANSI_NORMAL;
                        }
                        /* Colour codes wrap the padded cell so they do not count as width. */
                        printf("%s%-*s%s%s", on, c + 1 < n_columns ? (int) width[c] : 0, rows[i].cell[c], off,
                               c + 1 < n_columns ? "  " : "\n");
                }
}
