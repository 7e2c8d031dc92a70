/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "call.h"
#include "log.h"
#include "meshctl.h"
#include "show.h"

static uint64_t now_monotonic_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static void sleep_until_monotonic_usec(uint64_t t) {
        struct timespec ts = {
                .tv_sec = (time_t) (t / USEC_PER_SEC),
                .tv_nsec = (long) ((t % USEC_PER_SEC) * NSEC_PER_USEC),
        };

        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

typedef struct PingStats {
        unsigned sent, received;
        uint64_t rtt_min, rtt_max, rtt_sum;
} PingStats;

static void ping_stats_add(PingStats *s, uint64_t rtt) {
        s->rtt_min = s->received == 0 ? rtt : MIN(s->rtt_min, rtt);
        s->rtt_max = MAX(s->rtt_max, rtt);
        s->rtt_sum += rtt;
        s->received++;
}

static void ping_show_reply(const cJSON *reply, const char *name) {
        char rtt[32];

        format_rtt(rtt, sizeof(rtt), reply_uint(reply, "rtt_usec"));
        printf("pong from %s (%s) via %s: time=%s\n", reply_string(reply, "peer") ?: name,
               strna(reply_string(reply, "address")), strna(reply_string(reply, "path")), rtt);
}

static void ping_show_summary(const PingStats *s, const char *name) {
        printf("%s: %u sent, %u received, %u%% loss", name, s->sent, s->received,
               (s->sent - s->received) * 100 / s->sent);
        if (s->received > 0)
                printf(", rtt min/avg/max = %.2f/%.2f/%.2f ms", (double) s->rtt_min / USEC_PER_MSEC,
                       (double) s->rtt_sum / s->received / USEC_PER_MSEC, (double) s->rtt_max / USEC_PER_MSEC);
        printf("\n");
}

int verb_ping(const Arguments *a, char **argv) {
        _cleanup_json_ cJSON *params = NULL;
        _cleanup_free_ char *last_message = NULL;
        const char *name = argv[0];
        PingStats stats = {};
        uint64_t start;
        int r;

        params = cJSON_CreateObject();
        if (!params || !cJSON_AddStringToObject(params, "peer", name) ||
            !cJSON_AddNumberToObject(params, "timeout_usec", (double) a->timeout_usec))
                return log_oom();

        /* One probe per interval from the first, like ping(8); a probe that
         * timed out is followed by the next one at once. */
        start = now_monotonic_usec();
        for (unsigned i = 0; i < a->count; i++) {
                _cleanup_json_ cJSON *reply = NULL;
                _cleanup_free_ char *error = NULL;

                if (i > 0)
                        sleep_until_monotonic_usec(start + i * PING_INTERVAL_USEC);

                r = call_method(a, "io.meshd.Ping", params, a->timeout_usec + CALL_TIMEOUT_SLACK_USEC, &reply,
                                &error);
                if (r < 0)
                        return r;
                stats.sent++;

                if (r == 0) {
                        ping_stats_add(&stats, reply_uint(reply, "rtt_usec"));
                        if (a->json) {
                                /* One object per line, so a script can read replies as they come. */
                                _cleanup_free_ char *text = cJSON_PrintUnformatted(reply);
                                if (!text)
                                        return log_oom();
                                printf("%s\n", text);
                        } else
                                ping_show_reply(reply, name);
                        fflush(stdout);
                        continue;
                }

                if (streq(error, "io.meshd.PeerNotFound"))
                        return log_error_errno(-ENXIO, "unknown peer '%s'", name);
                if (!streq(error, "io.meshd.Timeout"))
                        return call_log_error(a, "io.meshd.Ping", error, reply);

                free(last_message);
                last_message = strdup(reply_string(reply, "message") ?: "timed out");
                if (!last_message)
                        return log_oom();
        }

        if (!a->json && a->count > 1)
                ping_show_summary(&stats, name);
        if (stats.received == 0)
                return log_error_errno(-EHOSTUNREACH, "no reply from %s: %s", name, last_message);
        return 0;
}
