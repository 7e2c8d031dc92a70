/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "device-ping.h"
#include "log.h"
#include "varlink.h"

typedef struct DevicePing {
        ApiCall *call;
        char name[NETMAP_NAME_MAX + 1];
        char address[INET6_ADDRSTRLEN];
        uint16_t seq;
        uint64_t sent_usec;
        sd_event_source *io, *timeout;
} DevicePing;

/* Both sources are floating (the event loop holds them), so that a ping
 * still pending at exit goes with the loop; the ping goes with the last of
 * them. */
static void device_ping_maybe_free(DevicePing *dp) {
        if (dp->io || dp->timeout)
                return;
        api_call_unref(dp->call);
        free(dp);
}

static void on_io_destroy(void *userdata) {
        DevicePing *dp = userdata;

        dp->io = NULL;
        device_ping_maybe_free(dp);
}

static void on_timeout_destroy(void *userdata) {
        DevicePing *dp = userdata;

        dp->timeout = NULL;
        device_ping_maybe_free(dp);
}

static void source_drop(sd_event_source *s) {
        if (!s)
                return;
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        /* the loop's reference becomes ours, and goes */
        (void) sd_event_source_set_floating(s, false);
        sd_event_source_unref(s);
}

/* Frees dp: nothing may touch it after this. */
static void device_ping_end(DevicePing *dp) {
        source_drop(dp->timeout);
        source_drop(dp->io);
}

static int on_echo_reply(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        DevicePing *dp = userdata;
        struct icmphdr h;
        uint8_t buf[128];
        uint64_t now = 0;
        ssize_t n;
        cJSON *o;

        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < (ssize_t) sizeof(h))
                return 0; /* an error (ICMP unreachable) or junk: the timeout answers */
        memcpy(&h, buf, sizeof(h));
        /* the kernel matched the identifier; the sequence tells ours */
        if (h.type != ICMP_ECHOREPLY || ntohs(h.un.echo.sequence) != dp->seq)
                return 0;

        (void) sd_event_now(sd_event_source_get_event(source), CLOCK_MONOTONIC, &now);
        o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "peer", dp->name) ||
            !cJSON_AddStringToObject(o, "address", dp->address) ||
            !cJSON_AddNumberToObject(o, "rtt_usec", (double) (now - dp->sent_usec)) ||
            !cJSON_AddStringToObject(o, "path", "hub")) {
                cJSON_Delete(o);
                device_ping_end(dp);
                return log_oom();
        }
        (void) api_call_reply(dp->call, o);
        device_ping_end(dp);
        return 0;
}

static int on_echo_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        DevicePing *dp = userdata;

        (void) api_call_reply_errorf(dp->call, "io.meshd.Timeout",
                                     "no ICMP echo reply from device %s within %llu ms (through the hub; a "
                                     "device answers only while its WireGuard tunnel is up)",
                                     dp->name, (unsigned long long) ((usec - dp->sent_usec) / USEC_PER_MSEC));
        device_ping_end(dp);
        return 0;
}

static int echo_socket(const struct in_addr *to, uint16_t seq) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_ICMP);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = *to };
        struct icmphdr h = { .type = ICMP_ECHO, .un.echo.sequence = htons(seq) };

        if (fd < 0)
                return -errno;
        /* connected: only the device's replies come in */
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || send(fd, &h, sizeof(h), 0) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int device_ping(sd_event *event, const NetmapNode *device, ApiCall *call, uint64_t timeout_usec) {
        _cleanup_close_ int fd = -EBADF;
        DevicePing *dp;
        uint16_t seq;
        int r;

        randombytes_buf(&seq, sizeof(seq));
        fd = echo_socket(&device->ipv4.in, seq);
        if (fd == -EACCES)
                return api_call_reply_errorf(call, "io.meshd.Timeout",
                                             "meshd may not send ICMP echo requests: its group is outside "
                                             "net.ipv4.ping_group_range");
        if (fd < 0)
                return api_call_reply_errorf(call, "io.meshd.Timeout",
                                             "cannot send an ICMP echo request to %s: %s", device->name,
                                             strerror(-fd));

        dp = calloc(1, sizeof(*dp));
        if (!dp)
                return -ENOMEM;
        dp->call = api_call_ref(call);
        dp->seq = seq;
        (void) snprintf(dp->name, sizeof(dp->name), "%s", device->name);
        in_addr_format(AF_INET, &device->ipv4, dp->address, sizeof(dp->address));
        (void) sd_event_now(event, CLOCK_MONOTONIC, &dp->sent_usec);

        r = sd_event_add_io(event, &dp->io, fd, EPOLLIN, on_echo_reply, dp);
        if (r < 0) {
                api_call_unref(dp->call);
                free(dp);
                return r;
        }
        (void) sd_event_source_set_io_fd_own(dp->io, true);
        TAKE_FD(fd);
        (void) sd_event_source_set_destroy_callback(dp->io, on_io_destroy);
        (void) sd_event_source_set_floating(dp->io, true);
        r = sd_event_add_time(event, &dp->timeout, CLOCK_MONOTONIC, dp->sent_usec + timeout_usec, 0,
                              on_echo_timeout, dp);
        if (r < 0) {
                device_ping_end(dp);
                return r;
        }
        (void) sd_event_source_set_destroy_callback(dp->timeout, on_timeout_destroy);
        (void) sd_event_source_set_floating(dp->timeout, true);
        return 0;
}
