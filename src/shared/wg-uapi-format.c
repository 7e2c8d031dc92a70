/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The text of wireguard-go's cross-platform userspace API
 * (https://www.wireguard.com/xplatform/): "key=value\n" lines, keys in hex.
 * Only text here; the socket and the process are wg-uapi.c's. */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "wg-internal.h"

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
                "preshared_key",
                "endpoint",
                "persistent_keepalive_interval",
                "allowed_ip",
                "last_handshake_time_sec",
                "last_handshake_time_nsec",
                "rx_bytes",
                "tx_bytes",
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
                log_debug_errno(r, "Malformed UAPI value for %s%s%s.", key, secret ? "" : ": ",
                                secret ? "" : value);
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
