/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cross-platform userspace API of wireguard-go
 * (https://www.wireguard.com/xplatform/): "key=value\n" lines on a unix
 * socket, a request ends with an empty line, every reply with "errno=N\n\n".
 * Keys travel in hex here, not base64. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "link.h"
#include "log.h"
#include "macro.h"
#include "time-util.h"
#include "wg-internal.h"

#define UAPI_DIR_DEFAULT "/var/run/wireguard"
#define UAPI_COMMAND_DEFAULT "wireguard-go"
/* wireguard-go refuses to start on Linux without it, pointing at the module. */
#define UAPI_ENV_PREFER_USERSPACE "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1"
#define UAPI_START_TIMEOUT_USEC (5 * USEC_PER_SEC)
#define UAPI_EXIT_TIMEOUT_USEC (2 * USEC_PER_SEC)
#define UAPI_POLL_USEC (2 * USEC_PER_MSEC)
#define UAPI_IO_TIMEOUT_SEC 5
/* A get reply for 10,000 peers is a few MiB; anything far beyond is a bug. */
#define UAPI_REPLY_MAX (256U * 1024U * 1024U)

static void key_to_hex(const WgKey *k, char buf[static 2 * WG_KEY_LEN + 1]) {
        sodium_bin2hex(buf, 2 * WG_KEY_LEN + 1, k->data, WG_KEY_LEN);
}

static int key_from_hex(const char *s, WgKey *ret) {
        WgKey k;
        size_t len = 0;
        const char *end = NULL;

        if (strlen(s) != 2 * WG_KEY_LEN)
                return -EINVAL;
        if (sodium_hex2bin(k.data, sizeof(k.data), s, 2 * WG_KEY_LEN, NULL, &len, &end) != 0 ||
            len != WG_KEY_LEN || end != s + 2 * WG_KEY_LEN) {
                sodium_memzero(&k, sizeof(k));
                return -EINVAL;
        }
        *ret = k;
        sodium_memzero(&k, sizeof(k));
        return 0;
}

int wg_uapi_format_set(const WgDevice *d, FILE *f) {
        char hex[2 * WG_KEY_LEN + 1], buf[ENDPOINT_STRLEN];

        if (!d || !f)
                return -EINVAL;

        fputs("set=1\n", f);
        if (d->flags & WG_DEVICE_HAS_PRIVATE_KEY) {
                key_to_hex(&d->private_key, hex);
                fprintf(f, "private_key=%s\n", hex);
                sodium_memzero(hex, sizeof(hex));
        }
        if (d->flags & WG_DEVICE_HAS_LISTEN_PORT)
                fprintf(f, "listen_port=%u\n", d->listen_port);
        if (d->flags & WG_DEVICE_HAS_FWMARK)
                fprintf(f, "fwmark=%" PRIu32 "\n", d->fwmark);
        if (d->flags & WG_DEVICE_REPLACE_PEERS)
                fputs("replace_peers=true\n", f);

        for (size_t i = 0; i < d->n_peers; i++) {
                const WgPeer *p = &d->peers[i];

                key_to_hex(&p->public_key, hex);
                fprintf(f, "public_key=%s\n", hex);
                /* wireguard-go applies lines in order: "remove" and
                 * "update_only" must come before anything else of the peer,
                 * or those settings would land on a peer being created. */
                if (p->flags & WG_PEER_REMOVE_ME) {
                        fputs("remove=true\n", f);
                        continue;
                }
                if (p->flags & WG_PEER_UPDATE_ONLY)
                        fputs("update_only=true\n", f);
                if (p->flags & WG_PEER_HAS_PRESHARED_KEY) {
                        key_to_hex(&p->preshared_key, hex);
                        fprintf(f, "preshared_key=%s\n", hex);
                        sodium_memzero(hex, sizeof(hex));
                }
                if (p->endpoint.sa.sa_family == AF_INET || p->endpoint.sa.sa_family == AF_INET6) {
                        if (!endpoint_format(&p->endpoint, buf, sizeof(buf)))
                                return -EINVAL;
                        fprintf(f, "endpoint=%s\n", buf);
                } else if (p->flags & WG_PEER_HAS_ENDPOINT)
                        return -EINVAL;
                if (p->flags & WG_PEER_HAS_PERSISTENT_KEEPALIVE)
                        fprintf(f, "persistent_keepalive_interval=%u\n", p->persistent_keepalive);
                if (p->flags & WG_PEER_REPLACE_ALLOWED_IPS)
                        fputs("replace_allowed_ips=true\n", f);
                for (size_t j = 0; j < p->n_allowed_ips; j++) {
                        const WgAllowedIp *a = &p->allowed_ips[j];

                        if (!in_addr_format(a->family, &a->addr, buf, sizeof(buf)))
                                return -EINVAL;
                        fprintf(f, "allowed_ip=%s/%u\n", buf, a->cidr);
                }
        }
        fputc('\n', f);

        if (fflush(f) != 0 || ferror(f))
                return -EIO;
        return 0;
}

int wg_uapi_format_set_string(const WgDevice *d, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        if (!d || !ret)
                return -EINVAL;
        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        r = wg_uapi_format_set(d, f);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                /* The text may hold the private key. */
                if (buf)
                        explicit_bzero(buf, len);
                return r;
        }
        if (ret_len)
                *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Decimal digits only, at most max. */
static int parse_uint(const char *s, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                if (v > (UINT64_MAX - (uint64_t) (*s - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*s - '0');
        }
        if (v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

static int parse_errno_value(const char *value, int *ret) {
        uint64_t v;
        int r;

        /* wireguard-go has been seen to send negative codes; normalise. */
        if (value[0] == '-')
                value++;
        r = parse_uint(value, INT32_MAX, &v);
        if (r < 0)
                return r;
        *ret = (int) v;
        return 0;
}

static bool is_device_key(const char *key) {
        return streq(key, "private_key") || streq(key, "listen_port") || streq(key, "fwmark");
}

static bool is_peer_key(const char *key) {
        static const char *const keys[] = {
                "preshared_key", "endpoint", "persistent_keepalive_interval", "allowed_ip",
                "last_handshake_time_sec", "last_handshake_time_nsec", "rx_bytes", "tx_bytes",
                "protocol_version",
        };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (streq(key, keys[i]))
                        return true;
        return false;
}

static int parse_device_line(WgDevice *d, const char *key, const char *value) {
        uint64_t v;
        int r;

        if (streq(key, "private_key")) {
                r = key_from_hex(value, &d->private_key);
                if (r < 0)
                        return r;
                r = key_public_from_private(&d->private_key, &d->public_key);
                if (r < 0)
                        return r;
                d->flags |= WG_DEVICE_HAS_PRIVATE_KEY;
        } else if (streq(key, "listen_port")) {
                r = parse_uint(value, UINT16_MAX, &v);
                if (r < 0)
                        return r;
                d->listen_port = (uint16_t) v;
                d->flags |= WG_DEVICE_HAS_LISTEN_PORT;
        } else if (streq(key, "fwmark")) {
                r = parse_uint(value, UINT32_MAX, &v);
                if (r < 0)
                        return r;
                d->fwmark = (uint32_t) v;
                d->flags |= WG_DEVICE_HAS_FWMARK;
        } else
                return 1; /* not a device key */
        return 0;
}

static int parse_peer_line(WgPeer *p, const char *key, const char *value) {
        uint64_t v;
        int r;

        if (streq(key, "preshared_key")) {
                r = key_from_hex(value, &p->preshared_key);
                if (r < 0)
                        return r;
                if (!key_is_zero(&p->preshared_key))
                        p->flags |= WG_PEER_HAS_PRESHARED_KEY;
        } else if (streq(key, "endpoint")) {
                r = endpoint_parse(value, &p->endpoint);
                if (r < 0)
                        return r;
                p->flags |= WG_PEER_HAS_ENDPOINT;
        } else if (streq(key, "persistent_keepalive_interval")) {
                r = parse_uint(value, UINT16_MAX, &v);
                if (r < 0)
                        return r;
                p->persistent_keepalive = (uint16_t) v;
                p->flags |= WG_PEER_HAS_PERSISTENT_KEEPALIVE;
        } else if (streq(key, "allowed_ip")) {
                union in_addr_union a;
                uint8_t cidr;
                int family;

                r = in_addr_prefix_parse(value, &family, &a, &cidr);
                if (r < 0)
                        return r;
                r = wg_peer_add_allowed_ip(p, family, &a, cidr);
                if (r < 0)
                        return r;
        } else if (streq(key, "last_handshake_time_sec")) {
                r = parse_uint(value, INT64_MAX, &v);
                if (r < 0)
                        return r;
                p->last_handshake.tv_sec = (time_t) v;
        } else if (streq(key, "last_handshake_time_nsec")) {
                r = parse_uint(value, 999999999, &v);
                if (r < 0)
                        return r;
                p->last_handshake.tv_nsec = (long) v;
        } else if (streq(key, "rx_bytes")) {
                r = parse_uint(value, UINT64_MAX, &p->rx_bytes);
                if (r < 0)
                        return r;
        } else if (streq(key, "tx_bytes")) {
                r = parse_uint(value, UINT64_MAX, &p->tx_bytes);
                if (r < 0)
                        return r;
        } else if (streq(key, "protocol_version")) {
                /* Always 1 so far; nothing to keep. */
                r = parse_uint(value, UINT32_MAX, &v);
                if (r < 0)
                        return r;
        } else
                return 1;
        return 0;
}

/* Longer than any line the protocol has: the longest is a hex key (75
 * characters) or an IPv6 endpoint with zone (about 70). */
#define UAPI_LINE_MAX 256

static void uapi_line_erase(char (*line)[UAPI_LINE_MAX]) {
        explicit_bzero(*line, sizeof(*line));
}

/* One key=value line of a get reply other than errno=: public_key= starts
 * a peer (*in_peer), other keys belong to the device before the first
 * peer and to the last peer after it. Returns 0, -ENOMEM or -EBADMSG. */
static int parse_get_line(WgDevice *d, const char *key, const char *value, bool *in_peer) {
        int r;

        if (streq(key, "public_key")) {
                WgPeer *p;

                r = wg_device_add_peer(d, &p);
                if (r < 0)
                        return r;
                r = key_from_hex(value, &p->public_key);
                if (r < 0)
                        return log_debug_errno(-EBADMSG, "Malformed UAPI public key.");
                *in_peer = true;
                return 0;
        }
        if (!*in_peer)
                r = parse_device_line(d, key, value);
        else
                r = parse_peer_line(&d->peers[d->n_peers - 1], key, value);
        if (r == 0 || r == -ENOMEM)
                return r;
        if (r < 0) {
                bool secret = streq(key, "private_key") || streq(key, "preshared_key");
                log_debug_errno(r, "Malformed UAPI value for %s%s%s.", key,
                                secret ? "" : ": ", secret ? "" : value);
                return -EBADMSG;
        }
        /* Unknown keys (newer additions) are skipped, as wg(8) does;
         * but a known key in the wrong section means we misread the
         * structure. */
        if (*in_peer && is_device_key(key))
                return log_debug_errno(-EBADMSG, "UAPI device key %s after a peer.", key);
        if (!*in_peer && is_peer_key(key))
                return log_debug_errno(-EBADMSG, "UAPI peer key %s before any peer.", key);
        log_debug("Ignoring unknown UAPI key %s.", key);
        return 0;
}

int wg_uapi_parse_get(const char *text, size_t len, WgDevice **ret) {
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        /* The reply carries the private key: the copy is erased on every exit. */
        _cleanup_(uapi_line_erase) char line[UAPI_LINE_MAX];
        size_t pos = 0;
        bool in_peer = false, have_errno = false;
        int error = 0, r;

        if (!text || !ret)
                return -EINVAL;

        d = calloc(1, sizeof(WgDevice));
        if (!d)
                return -ENOMEM;

        while (pos < len) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                size_t n;
                char *eq, *key, *value;

                if (!nl)
                        return log_debug_errno(-EBADMSG, "UAPI reply ends without a newline.");
                n = (size_t) (nl - (text + pos));
                if (n == 0) {
                        /* The empty line ends the reply; nothing may follow. */
                        pos++;
                        if (pos != len || !have_errno)
                                return log_debug_errno(-EBADMSG, "UAPI reply is not terminated by errno=.");
                        break;
                }
                if (have_errno)
                        return log_debug_errno(-EBADMSG, "UAPI reply has lines after errno=.");
                if (memchr(text + pos, 0, n))
                        return -EBADMSG;

                if (n >= sizeof(line))
                        return log_debug_errno(-EBADMSG, "UAPI line too long.");
                memcpy(line, text + pos, n);
                line[n] = 0;
                pos += n + 1;

                eq = strchr(line, '=');
                if (!eq || eq == line)
                        return log_debug_errno(-EBADMSG, "Malformed UAPI line.");
                *eq = 0;
                key = line;
                value = eq + 1;

                if (streq(key, "errno")) {
                        r = parse_errno_value(value, &error);
                        if (r < 0)
                                return log_debug_errno(-EBADMSG, "Malformed UAPI errno value: %s", value);
                        have_errno = true;
                        continue;
                }
                r = parse_get_line(d, key, value, &in_peer);
                if (r < 0)
                        return r;
        }

        if (!have_errno)
                return log_debug_errno(-EBADMSG, "UAPI reply lacks errno=.");
        if (error != 0)
                return log_debug_errno(-error, "UAPI get failed: %m");

        *ret = TAKE_PTR(d);
        return 0;
}

int wg_uapi_parse_set_reply(const char *text, size_t len) {
        static const char prefix[] = "errno=";
        char value[16];
        size_t n;
        int error, r;

        if (!text)
                return -EINVAL;
        if (len < sizeof(prefix) - 1 + 3 || memcmp(text, prefix, sizeof(prefix) - 1) != 0 ||
            text[len - 1] != '\n' || text[len - 2] != '\n')
                return -EBADMSG;
        n = len - 2 - (sizeof(prefix) - 1);
        if (n == 0 || n >= sizeof(value))
                return -EBADMSG;
        memcpy(value, text + sizeof(prefix) - 1, n);
        value[n] = 0;
        r = parse_errno_value(value, &error);
        if (r < 0)
                return -EBADMSG;
        return -error;
}

static int uapi_connect(const char *path, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = UAPI_IO_TIMEOUT_SEC };

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A wedged wireguard-go must not wedge the daemon's event loop forever. */
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int uapi_transact(WgBackend *b, const char *req, size_t req_len, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, len = 0;
        int r;

        r = uapi_connect(b->socket_path, &fd);
        if (r < 0)
                return log_debug_errno(r, "Failed to connect to %s: %m", b->socket_path);

        while (req_len > 0) {
                ssize_t k = send(fd, req, req_len, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_debug_errno(errno, "Failed to write to %s: %m", b->socket_path);
                }
                req += k;
                req_len -= (size_t) k;
        }

        /* wireguard-go keeps the connection open for further requests: the
         * reply's end is its empty line, not EOF. */
        for (;;) {
                ssize_t k;

                if (len + 4096 + 1 > size) {
                        size_t nsize = MAX(size * 2, (size_t) 16384);
                        char *p;

                        if (nsize > UAPI_REPLY_MAX)
                                return log_debug_errno(-EMSGSIZE, "UAPI reply from %s too large.", b->socket_path);
                        p = malloc(nsize);
                        if (!p)
                                return -ENOMEM;
                        if (buf) {
                                memcpy(p, buf, len);
                                explicit_bzero(buf, size);
                                free(buf);
                        }
                        buf = p;
                        size = nsize;
                }
                k = recv(fd, buf + len, size - len - 1, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        explicit_bzero(buf, size);
                        return log_debug_errno(r, "Failed to read from %s: %m", b->socket_path);
                }
                if (k == 0) {
                        explicit_bzero(buf, size);
                        return log_debug_errno(-ECONNRESET, "%s closed the connection mid-reply.", b->socket_path);
                }
                len += (size_t) k;
                if ((len >= 2 && buf[len - 1] == '\n' && buf[len - 2] == '\n') || (len == 1 && buf[0] == '\n'))
                        break;
        }
        buf[len] = 0;

        *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int wg_uapi_get_device(WgBackend *b, WgDevice **ret) {
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        char *reply = NULL;
        size_t len = 0;
        int r;

        static const char req[] = "get=1\n\n";
        r = uapi_transact(b, req, sizeof(req) - 1, &reply, &len);
        if (r < 0)
                return r;
        r = wg_uapi_parse_get(reply, len, &d);
        erase_and_free(reply, len);
        if (r < 0)
                return log_debug_errno(r, "Failed to read device %s over UAPI: %m", b->ifname);

        snprintf(d->ifname, sizeof(d->ifname), "%s", b->ifname);
        d->ifindex = b->ifindex;
        *ret = TAKE_PTR(d);
        return 0;
}

int wg_uapi_set_device(WgBackend *b, const WgDevice *d) {
        char *req = NULL, *reply = NULL;
        size_t req_len = 0, reply_len = 0;
        int r;

        r = wg_uapi_format_set_string(d, &req, &req_len);
        if (r < 0)
                return log_debug_errno(r, "Failed to format UAPI request: %m");
        r = uapi_transact(b, req, req_len, &reply, &reply_len);
        erase_and_free(req, req_len);
        if (r < 0)
                return r;
        r = wg_uapi_parse_set_reply(reply, reply_len);
        erase_and_free(reply, reply_len);
        if (r < 0)
                return log_debug_errno(r, "wireguard-go refused configuration of %s: %m", b->ifname);
        return 0;
}

static void sleep_usec(uint64_t usec) {
        struct timespec ts = {
                .tv_sec = (time_t) (usec / USEC_PER_SEC),
                .tv_nsec = (long) ((usec % USEC_PER_SEC) * NSEC_PER_USEC),
        };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Returns 1 if the child exited (and is reaped), 0 if it still runs. */
static int child_reap(pid_t pid, int *ret_status) {
        int status = 0;
        pid_t p;

        do
                p = waitpid(pid, &status, WNOHANG);
        while (p < 0 && errno == EINTR);
        if (p < 0)
                return errno == ECHILD ? 1 : -errno; /* reaped elsewhere */
        if (p == 0)
                return 0;
        if (ret_status)
                *ret_status = status;
        return 1;
}

static int child_wait(pid_t pid, uint64_t timeout_usec) {
        uint64_t deadline = clock_usec(CLOCK_MONOTONIC) + timeout_usec;

        for (;;) {
                int r = child_reap(pid, NULL);
                if (r != 0)
                        return r;
                if (clock_usec(CLOCK_MONOTONIC) >= deadline)
                        return 0;
                sleep_usec(UAPI_POLL_USEC);
        }
}

static void child_stop(pid_t pid) {
        if (pid <= 0)
                return;
        if (child_wait(pid, UAPI_EXIT_TIMEOUT_USEC) != 0)
                return;
        (void) kill(pid, SIGTERM);
        if (child_wait(pid, UAPI_EXIT_TIMEOUT_USEC) != 0)
                return;
        (void) kill(pid, SIGKILL);
        (void) child_wait(pid, UAPI_EXIT_TIMEOUT_USEC);
}

extern char **environ;

static int spawn_wireguard_go(const char *command, const char *ifname, pid_t *ret_pid) {
        _cleanup_free_ char **env = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t mask, defaults;
        size_t n = 0, k = 0;
        pid_t pid;
        int r;

        /* Our environment plus the opt-in variable; built here rather than
         * with setenv() so the parent's environment stays untouched. */
        for (char **e = environ; e && *e; e++)
                n++;
        env = calloc(n + 2, sizeof(char *));
        if (!env)
                return -ENOMEM;
        for (char **e = environ; e && *e; e++)
                if (strncmp(*e, "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=", 45) != 0)
                        env[k++] = *e;
        env[k++] = (char *) UAPI_ENV_PREFER_USERSPACE;
        env[k] = NULL;

        char *argv[] = { (char *) command, (char *) "-f", (char *) ifname, NULL };

        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }

        /* stdin from /dev/null; stdout/stderr stay ours so its log lines end
         * up where ours do (the journal, under the service). A daemon may have
         * signals blocked or ignored: the child gets a clean slate. */
        sigemptyset(&mask);
        sigfillset(&defaults);
        sigdelset(&defaults, SIGKILL);
        sigdelset(&defaults, SIGSTOP);
        r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &mask);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &defaults);
        if (r == 0)
                r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (r == 0)
                r = posix_spawnp(&pid, command, &fa, &attr, argv, env);

        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return log_debug_errno(-r, "Failed to start %s: %m", command);

        *ret_pid = pid;
        return 0;
}

/* Ready means: the tun link exists here and the socket accepts us. */
static int uapi_probe(WgBackend *b) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = uapi_connect(b->socket_path, &fd);
        if (r < 0)
                return r;
        r = link_get_ifindex(b->ifname);
        if (r < 0)
                return r;
        b->ifindex = r;
        return 0;
}

int wg_uapi_open(WgBackend *b, const WgBackendOptions *opts, bool *ret_created) {
        const char *dir = opts->uapi_dir ?: UAPI_DIR_DEFAULT;
        const char *command = opts->userspace_command ?: UAPI_COMMAND_DEFAULT;
        _cleanup_close_ int fd = -EBADF;
        uint64_t deadline;
        pid_t pid;
        int r;

        free(b->socket_path);
        if (asprintf(&b->socket_path, "%s/%s.sock", dir, b->ifname) < 0) {
                b->socket_path = NULL;
                return -ENOMEM;
        }
        b->type = WG_BACKEND_USERSPACE;
        b->ifindex = 0;
        b->child_pid = 0;

        r = uapi_connect(b->socket_path, &fd);
        if (r >= 0) {
                fd = safe_close(fd);
                r = link_get_ifindex(b->ifname);
                if (r == -ENODEV)
                        /* The socket directory is shared by all network
                         * namespaces, the link is not: this socket is some
                         * other namespace's interface of the same name. */
                        return log_debug_errno(-EEXIST, "%s is in use by an interface %s in another network namespace.",
                                               b->socket_path, b->ifname);
                if (r < 0)
                        return r;
                b->ifindex = r;
                if (ret_created)
                        *ret_created = false;
                return 0;
        }
        if (r == -ECONNREFUSED) {
                /* Left behind by a wireguard-go that died without cleaning up. */
                log_debug("Removing stale UAPI socket %s.", b->socket_path);
                if (unlink(b->socket_path) < 0 && errno != ENOENT)
                        return log_debug_errno(errno, "Failed to remove stale socket %s: %m", b->socket_path);
        } else if (r != -ENOENT)
                return log_debug_errno(r, "Failed to connect to %s: %m", b->socket_path);

        r = spawn_wireguard_go(command, b->ifname, &pid);
        if (r < 0)
                return r;

        deadline = clock_usec(CLOCK_MONOTONIC) + UAPI_START_TIMEOUT_USEC;
        for (;;) {
                int status = 0;

                r = child_reap(pid, &status);
                if (r != 0) {
                        if (r > 0 && WIFEXITED(status))
                                return log_debug_errno(-ESRCH, "%s -f %s exited with status %i before it was ready.",
                                                       command, b->ifname, WEXITSTATUS(status));
                        if (r > 0 && WIFSIGNALED(status))
                                return log_debug_errno(-ESRCH, "%s -f %s was killed by signal %i before it was ready.",
                                                       command, b->ifname, WTERMSIG(status));
                        return log_debug_errno(-ESRCH, "%s -f %s went away before it was ready.", command, b->ifname);
                }

                if (uapi_probe(b) >= 0)
                        break;

                if (clock_usec(CLOCK_MONOTONIC) >= deadline) {
                        (void) kill(pid, SIGTERM);
                        child_stop(pid);
                        return log_debug_errno(-ETIMEDOUT, "%s -f %s did not open %s in time.",
                                               command, b->ifname, b->socket_path);
                }
                sleep_usec(UAPI_POLL_USEC);
        }

        b->child_pid = pid;
        log_debug("Started %s for %s as PID %i.", command, b->ifname, (int) pid);
        if (ret_created)
                *ret_created = true;
        return 0;
}

int wg_uapi_destroy(WgBackend *b) {
        int r;

        /* wireguard-go exits when its tun goes away, and removes its socket. */
        r = link_delete(b->ifindex);
        if (r == -ENODEV)
                r = 0;
        if (r < 0) {
                log_debug_errno(r, "Failed to delete link %s: %m", b->ifname);
                /* Deleting the socket also makes wireguard-go shut down. */
                if (b->child_pid <= 0 && unlink(b->socket_path) >= 0)
                        r = 0;
        }

        if (b->child_pid > 0) {
                child_stop(b->child_pid);
                b->child_pid = 0;
                r = 0;
        }
        return r;
}

void wg_uapi_close(WgBackend *b) {
        free(b->socket_path);
        b->socket_path = NULL;
}
