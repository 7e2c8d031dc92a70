/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The kernel's WireGuard over generic netlink, after the model of
 * wireguard-tools' ipc-linux.h: one dump for reading (a device with many
 * peers spans several messages), and for writing as many messages as it takes
 * to carry all peers and allowed IPs without exceeding one page each. */
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include <net/if.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "wg-internal.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_msg *, nlmsg_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cb *, nl_cb_put);

#define WG_DUMP_RETRIES 8

typedef struct GenlSocket {
        struct nl_sock *sk;
        int family;
} GenlSocket;

static void genl_socket_done(GenlSocket *g) {
        if (g->sk)
                nl_socket_free(g->sk);
        g->sk = NULL;
}

/* libnl squashes kernel errnos into NLE_* codes; the error callback keeps
 * the kernel's own value, this is the fallback for libnl-local failures. */
static int errno_from_nlerr(int nlerr) {
        switch (nlerr < 0 ? -nlerr : nlerr) {
        case 0:
                return 0;
        case NLE_NOMEM:
                return -ENOMEM;
        case NLE_PERM:
                return -EPERM;
        case NLE_NODEV:
                return -ENODEV;
        case NLE_OBJ_NOTFOUND:
                return -ENOENT;
        case NLE_OPNOTSUPP:
                return -EOPNOTSUPP;
        case NLE_INVAL:
                return -EINVAL;
        case NLE_MSG_TOOSHORT:
        case NLE_MSG_TRUNC:
        case NLE_MSG_OVERFLOW:
        case NLE_PARSE_ERR:
                return -EBADMSG;
        case NLE_DUMP_INTR:
                return -EINTR;
        case NLE_SEQ_MISMATCH:
                return -EPROTO;
        default:
                return -EIO;
        }
}

static int genl_socket_open(GenlSocket *ret) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        int r, family;

        sk = nl_socket_alloc();
        if (!sk)
                return -ENOMEM;
        r = genl_connect(sk);
        if (r < 0)
                return log_debug_errno(errno_from_nlerr(r), "Failed to connect to generic netlink: %s",
                                       nl_geterror(r));
        /* Large dump replies: let libnl size its buffer by peeking. */
        nl_socket_enable_msg_peek(sk);

        family = genl_ctrl_resolve(sk, WG_GENL_NAME);
        if (family < 0)
                return log_debug_errno(-EOPNOTSUPP, "Generic netlink family \"%s\" not found: %s", WG_GENL_NAME,
                                       nl_geterror(family));

        *ret = (GenlSocket) { .sk = TAKE_PTR(sk), .family = family };
        return 0;
}

int wg_kernel_open(WgBackend *b) {
        _cleanup_(genl_socket_done) GenlSocket g = {};

        return genl_socket_open(&g);
}

typedef struct Reply {
        WgDevice *device; /* for dumps */
        int kernel_error; /* from NLMSG_ERROR */
        int parse_error;  /* first malformed message */
} Reply;

static int reply_error_cb(struct sockaddr_nl *nla, struct nlmsgerr *e, void *userdata) {
        Reply *reply = userdata;

        reply->kernel_error = e->error < 0 ? e->error : -e->error;
        return NL_STOP;
}

static int reply_ack_cb(struct nl_msg *msg, void *userdata) {
        return NL_STOP;
}

static bool attr_has_len(const struct nlattr *a, int len) {
        return nla_len(a) == len;
}

static int parse_allowed_ip(WgPeer *p, const struct nlattr *nest) {
        const struct nlattr *a;
        union in_addr_union addr = {};
        bool have_family = false, have_addr = false, have_cidr = false;
        int family = AF_UNSPEC, addr_len = 0, rem;
        uint8_t cidr = 0;

        nla_for_each_nested(a, nest, rem) {
                switch (nla_type(a)) {
                case WGALLOWEDIP_A_FAMILY:
                        if (!attr_has_len(a, sizeof(uint16_t)))
                                return -EBADMSG;
                        family = nla_get_u16((struct nlattr *) a);
                        have_family = true;
                        break;
                case WGALLOWEDIP_A_IPADDR:
                        addr_len = nla_len(a);
                        if (addr_len != sizeof(struct in_addr) && addr_len != sizeof(struct in6_addr))
                                return -EBADMSG;
                        memcpy(&addr, nla_data(a), (size_t) addr_len);
                        have_addr = true;
                        break;
                case WGALLOWEDIP_A_CIDR_MASK:
                        if (!attr_has_len(a, sizeof(uint8_t)))
                                return -EBADMSG;
                        cidr = nla_get_u8((struct nlattr *) a);
                        have_cidr = true;
                        break;
                default:
                        break;
                }
        }
        if (rem >= (int) sizeof(struct nlattr))
                return -EBADMSG;
        if (!have_family || !have_addr || !have_cidr)
                return -EBADMSG;
        if (!((family == AF_INET && addr_len == sizeof(struct in_addr)) ||
              (family == AF_INET6 && addr_len == sizeof(struct in6_addr))))
                return -EBADMSG;

        if (cidr > (family == AF_INET ? 32 : 128))
                return -EBADMSG;
        return wg_peer_add_allowed_ip(p, family, &addr, cidr);
}

/* WGPEER_A_ENDPOINT: a struct sockaddr_in or sockaddr_in6. */
static int parse_peer_endpoint(WgPeer *p, const struct nlattr *a) {
        const struct sockaddr *sa = nla_data(a);
        int len = nla_len(a);

        if (len == sizeof(struct sockaddr_in) && sa->sa_family == AF_INET)
                memcpy(&p->endpoint.in, sa, sizeof(struct sockaddr_in));
        else if (len == sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6)
                memcpy(&p->endpoint.in6, sa, sizeof(struct sockaddr_in6));
        else
                return -EBADMSG;
        p->flags |= WG_PEER_HAS_ENDPOINT;
        return 0;
}

/* WGPEER_A_LAST_HANDSHAKE_TIME: a struct __kernel_timespec. */
static int parse_peer_last_handshake(WgPeer *p, const struct nlattr *a) {
        struct __kernel_timespec ts;

        if (!attr_has_len(a, sizeof(ts)))
                return -EBADMSG;
        memcpy(&ts, nla_data(a), sizeof(ts));
        if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)
                return -EBADMSG;
        p->last_handshake.tv_sec = (time_t) ts.tv_sec;
        p->last_handshake.tv_nsec = (long) ts.tv_nsec;
        return 0;
}

/* WGPEER_A_ALLOWEDIPS: a nest of WGALLOWEDIP_A_* nests. */
static int parse_allowed_ips(WgPeer *p, const struct nlattr *nest) {
        const struct nlattr *ip;
        int rem, r;

        nla_for_each_nested(ip, nest, rem) {
                r = parse_allowed_ip(p, ip);
                if (r < 0)
                        return r;
        }
        if (rem >= (int) sizeof(struct nlattr))
                return -EBADMSG;
        return 0;
}

static int parse_peer(WgPeer *p, const struct nlattr *nest) {
        const struct nlattr *a;
        bool have_key = false;
        int rem, r;

        nla_for_each_nested(a, nest, rem) {
                switch (nla_type(a)) {
                case WGPEER_A_PUBLIC_KEY:
                        if (!attr_has_len(a, WG_KEY_LEN))
                                return -EBADMSG;
                        memcpy(p->public_key.data, nla_data(a), WG_KEY_LEN);
                        have_key = true;
                        break;
                case WGPEER_A_PRESHARED_KEY:
                        if (!attr_has_len(a, WG_KEY_LEN))
                                return -EBADMSG;
                        memcpy(p->preshared_key.data, nla_data(a), WG_KEY_LEN);
                        if (!key_is_zero(&p->preshared_key))
                                p->flags |= WG_PEER_HAS_PRESHARED_KEY;
                        break;
                case WGPEER_A_ENDPOINT:
                        r = parse_peer_endpoint(p, a);
                        if (r < 0)
                                return r;
                        break;
                case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
                        if (!attr_has_len(a, sizeof(uint16_t)))
                                return -EBADMSG;
                        p->persistent_keepalive = nla_get_u16((struct nlattr *) a);
                        p->flags |= WG_PEER_HAS_PERSISTENT_KEEPALIVE;
                        break;
                case WGPEER_A_LAST_HANDSHAKE_TIME:
                        r = parse_peer_last_handshake(p, a);
                        if (r < 0)
                                return r;
                        break;
                case WGPEER_A_RX_BYTES:
                        if (!attr_has_len(a, sizeof(uint64_t)))
                                return -EBADMSG;
                        p->rx_bytes = nla_get_u64((struct nlattr *) a);
                        break;
                case WGPEER_A_TX_BYTES:
                        if (!attr_has_len(a, sizeof(uint64_t)))
                                return -EBADMSG;
                        p->tx_bytes = nla_get_u64((struct nlattr *) a);
                        break;
                case WGPEER_A_ALLOWEDIPS:
                        r = parse_allowed_ips(p, a);
                        if (r < 0)
                                return r;
                        break;
                default:
                        /* WGPEER_A_PROTOCOL_VERSION and whatever comes later. */
                        break;
                }
        }
        if (rem >= (int) sizeof(struct nlattr))
                return -EBADMSG;
        return have_key ? 0 : -EBADMSG;
}

/* The kernel continues a peer whose allowed IPs did not fit in the next
 * message, repeating its public key: such a peer is merged into the last one. */
static int device_add_parsed_peer(WgDevice *d, WgPeer *parsed) {
        WgPeer *last = d->n_peers > 0 ? &d->peers[d->n_peers - 1] : NULL, *p;
        int r;

        if (last && memcmp(last->public_key.data, parsed->public_key.data, WG_KEY_LEN) == 0) {
                for (size_t i = 0; i < parsed->n_allowed_ips; i++) {
                        const WgAllowedIp *a = &parsed->allowed_ips[i];

                        r = wg_peer_add_allowed_ip(last, a->family, &a->addr, a->cidr);
                        if (r < 0)
                                return r;
                }
                return 0;
        }

        r = wg_device_add_peer(d, &p);
        if (r < 0)
                return r;
        *p = *parsed;
        parsed->allowed_ips = NULL; /* moved */
        parsed->n_allowed_ips = 0;
        return 0;
}

static int parse_device(WgDevice *d, const struct nlattr *head, int len) {
        const struct nlattr *a;
        int rem, r;

        nla_for_each_attr(a, head, len, rem) {
                switch (nla_type(a)) {
                case WGDEVICE_A_IFINDEX:
                        if (!attr_has_len(a, sizeof(uint32_t)))
                                return -EBADMSG;
                        d->ifindex = (int) nla_get_u32((struct nlattr *) a);
                        break;
                case WGDEVICE_A_IFNAME: {
                        const char *s = nla_data(a);
                        int n = nla_len(a);

                        if (n < 2 || n > (int) sizeof(d->ifname) || s[n - 1] != 0 ||
                            strlen(s) != (size_t) n - 1)
                                return -EBADMSG;
                        memcpy(d->ifname, s, (size_t) n);
                        break;
                }
                case WGDEVICE_A_PRIVATE_KEY:
                        if (!attr_has_len(a, WG_KEY_LEN))
                                return -EBADMSG;
                        memcpy(d->private_key.data, nla_data(a), WG_KEY_LEN);
                        d->flags |= WG_DEVICE_HAS_PRIVATE_KEY;
                        break;
                case WGDEVICE_A_PUBLIC_KEY:
                        if (!attr_has_len(a, WG_KEY_LEN))
                                return -EBADMSG;
                        memcpy(d->public_key.data, nla_data(a), WG_KEY_LEN);
                        break;
                case WGDEVICE_A_LISTEN_PORT:
                        if (!attr_has_len(a, sizeof(uint16_t)))
                                return -EBADMSG;
                        d->listen_port = nla_get_u16((struct nlattr *) a);
                        d->flags |= WG_DEVICE_HAS_LISTEN_PORT;
                        break;
                case WGDEVICE_A_FWMARK:
                        if (!attr_has_len(a, sizeof(uint32_t)))
                                return -EBADMSG;
                        d->fwmark = nla_get_u32((struct nlattr *) a);
                        d->flags |= WG_DEVICE_HAS_FWMARK;
                        break;
                case WGDEVICE_A_PEERS: {
                        const struct nlattr *pa;
                        int rem_peer;

                        nla_for_each_nested(pa, a, rem_peer) {
                                WgPeer parsed = {};

                                r = parse_peer(&parsed, pa);
                                if (r >= 0)
                                        r = device_add_parsed_peer(d, &parsed);
                                free(parsed.allowed_ips);
                                explicit_bzero(&parsed.preshared_key, sizeof(parsed.preshared_key));
                                if (r < 0)
                                        return r;
                        }
                        if (rem_peer >= (int) sizeof(struct nlattr))
                                return -EBADMSG;
                        break;
                }
                default:
                        break;
                }
        }
        if (rem >= (int) sizeof(struct nlattr))
                return -EBADMSG;
        return 0;
}

static int dump_valid_cb(struct nl_msg *msg, void *userdata) {
        Reply *reply = userdata;
        struct nlmsghdr *nlh = nlmsg_hdr(msg);
        struct genlmsghdr *gnlh;
        int r;

        /* After an error, keep reading (and ignoring) so that the dump is
         * drained to its NLMSG_DONE. */
        if (reply->parse_error < 0)
                return NL_SKIP;

        if (!genlmsg_valid_hdr(nlh, 0)) {
                reply->parse_error = -EBADMSG;
                return NL_SKIP;
        }
        gnlh = nlmsg_data(nlh);
        r = parse_device(reply->device, genlmsg_attrdata(gnlh, 0), genlmsg_attrlen(gnlh, 0));
        if (r < 0)
                reply->parse_error = r;
        return NL_OK;
}

static int kernel_get_device_once(WgBackend *b, WgDevice **ret) {
        _cleanup_(genl_socket_done) GenlSocket g = {};
        _cleanup_(nlmsg_freep) struct nl_msg *msg = NULL;
        _cleanup_(nl_cb_putp) struct nl_cb *cb = NULL;
        _cleanup_(wg_device_freep) WgDevice *d = NULL;
        Reply reply = {};
        int r;

        r = genl_socket_open(&g);
        if (r < 0)
                return r;

        d = calloc(1, sizeof(WgDevice));
        msg = nlmsg_alloc();
        cb = nl_cb_clone(nl_socket_get_cb(g.sk));
        if (!d || !msg || !cb)
                return -ENOMEM;
        reply.device = d;

        if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, g.family, 0, NLM_F_DUMP, WG_CMD_GET_DEVICE,
                         WG_GENL_VERSION))
                return -ENOMEM;
        r = nla_put_string(msg, WGDEVICE_A_IFNAME, b->ifname);
        if (r < 0)
                return errno_from_nlerr(r);

        nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, dump_valid_cb, &reply);
        nl_cb_err(cb, NL_CB_CUSTOM, reply_error_cb, &reply);

        r = nl_send_auto(g.sk, msg);
        if (r < 0)
                return log_debug_errno(errno_from_nlerr(r), "Failed to send WG_CMD_GET_DEVICE: %s",
                                       nl_geterror(r));
        r = nl_recvmsgs(g.sk, cb);
        if (reply.kernel_error < 0)
                return reply.kernel_error;
        if (r < 0)
                return errno_from_nlerr(r);
        if (reply.parse_error < 0)
                return log_debug_errno(reply.parse_error, "Malformed WG_CMD_GET_DEVICE reply for %s: %m",
                                       b->ifname);

        if (d->ifname[0] == 0)
                snprintf(d->ifname, sizeof(d->ifname), "%s", b->ifname);
        *ret = TAKE_PTR(d);
        return 0;
}

int wg_kernel_get_device(WgBackend *b, WgDevice **ret) {
        int r = -EINTR;

        /* A device that changes during the dump is flagged NLM_F_DUMP_INTR:
         * the result is not coherent, so read it again. */
        for (unsigned i = 0; i < WG_DUMP_RETRIES && r == -EINTR; i++)
                r = kernel_get_device_once(b, ret);
        if (r < 0)
                return log_debug_errno(r, "Failed to read WireGuard device %s: %m", b->ifname);
        return 0;
}

/* One message per page, like wg(8): bounded by what the kernel is sure to
 * accept, and the unit the splitting below works in. */
static size_t set_message_size(void) {
        long p = sysconf(_SC_PAGESIZE);
        return p > 0 ? MIN((size_t) p, (size_t) 8192) : 4096;
}

/* Appends one allowed IP; on -EMSGSIZE nothing of it remains in msg. */
static int put_allowed_ip(struct nl_msg *msg, const WgAllowedIp *a) {
        struct nlattr *nest;

        nest = nla_nest_start(msg, NLA_F_NESTED);
        if (!nest)
                return -EMSGSIZE;
        if (nla_put_u16(msg, WGALLOWEDIP_A_FAMILY, (uint16_t) a->family) < 0 ||
            nla_put(msg, WGALLOWEDIP_A_IPADDR,
                    a->family == AF_INET ? (int) sizeof(struct in_addr) : (int) sizeof(struct in6_addr),
                    &a->addr) < 0 ||
            nla_put_u8(msg, WGALLOWEDIP_A_CIDR_MASK, a->cidr) < 0) {
                nla_nest_cancel(msg, nest);
                return -EMSGSIZE;
        }
        nla_nest_end(msg, nest);
        return 0;
}

/* Puts as much of peer p as fits. *started: its first chunk (the one with
 * the flags that must be applied once, and its settings) was sent already;
 * *next_ip: the first allowed IP not yet sent. Returns 1 when the peer is
 * complete, 0 when it continues in the next message, -EMSGSIZE when nothing
 * of it fit (msg is then as before). */
static int put_peer(struct nl_msg *msg, const WgPeer *p, bool *started, size_t *next_ip) {
        struct nlattr *peer_nest, *ips_nest;
        bool remove = p->flags & WG_PEER_REMOVE_ME;
        uint32_t flags = 0;
        size_t added = 0;

        peer_nest = nla_nest_start(msg, NLA_F_NESTED);
        if (!peer_nest)
                return -EMSGSIZE;
        if (nla_put(msg, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, p->public_key.data) < 0)
                goto cancel;

        if (remove)
                flags |= WGPEER_F_REMOVE_ME;
        /* Every chunk carries UPDATE_ONLY: without it, a continuation chunk
         * would create the peer that the first chunk was told not to. */
        if (p->flags & WG_PEER_UPDATE_ONLY)
                flags |= WGPEER_F_UPDATE_ONLY;

        if (!*started) {
                /* REPLACE_ALLOWEDIPS only on the first chunk, or each chunk
                 * would wipe the allowed IPs the previous one added. */
                if (p->flags & WG_PEER_REPLACE_ALLOWED_IPS)
                        flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
                if ((p->flags & WG_PEER_HAS_PRESHARED_KEY) &&
                    nla_put(msg, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN, p->preshared_key.data) < 0)
                        goto cancel;
                if (p->endpoint.sa.sa_family == AF_INET || p->endpoint.sa.sa_family == AF_INET6) {
                        if (nla_put(msg, WGPEER_A_ENDPOINT, (int) endpoint_socklen(&p->endpoint),
                                    &p->endpoint) < 0)
                                goto cancel;
                } else if (p->flags & WG_PEER_HAS_ENDPOINT) {
                        nla_nest_cancel(msg, peer_nest);
                        return -EINVAL;
                }
                if ((p->flags & WG_PEER_HAS_PERSISTENT_KEEPALIVE) &&
                    nla_put_u16(msg, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p->persistent_keepalive) < 0)
                        goto cancel;
        }
        if (flags != 0 && nla_put_u32(msg, WGPEER_A_FLAGS, flags) < 0)
                goto cancel;

        if (!remove && *next_ip < p->n_allowed_ips) {
                ips_nest = nla_nest_start(msg, WGPEER_A_ALLOWEDIPS | NLA_F_NESTED);
                if (ips_nest) {
                        for (; *next_ip < p->n_allowed_ips; (*next_ip)++, added++)
                                if (put_allowed_ip(msg, &p->allowed_ips[*next_ip]) < 0)
                                        break;
                        if (added > 0)
                                nla_nest_end(msg, ips_nest);
                        else
                                nla_nest_cancel(msg, ips_nest);
                }
                if (*next_ip < p->n_allowed_ips) {
                        /* A continuation chunk that carries no allowed IP is
                         * no progress; a first chunk is (its settings). */
                        if (*started && added == 0)
                                goto cancel;
                        nla_nest_end(msg, peer_nest);
                        *started = true;
                        return 0;
                }
        }

        nla_nest_end(msg, peer_nest);
        *started = false;
        *next_ip = 0;
        return 1;

cancel:
        nla_nest_cancel(msg, peer_nest);
        return -EMSGSIZE;
}

static int kernel_send_and_ack(GenlSocket *g, struct nl_msg *msg) {
        _cleanup_(nl_cb_putp) struct nl_cb *cb = NULL;
        Reply reply = {};
        int r;

        cb = nl_cb_clone(nl_socket_get_cb(g->sk));
        if (!cb)
                return -ENOMEM;
        nl_cb_err(cb, NL_CB_CUSTOM, reply_error_cb, &reply);
        nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, reply_ack_cb, NULL);

        r = nl_send_auto(g->sk, msg);
        if (r < 0)
                return errno_from_nlerr(r);
        r = nl_recvmsgs(g->sk, cb);
        if (reply.kernel_error < 0)
                return reply.kernel_error;
        return errno_from_nlerr(r);
}

/* The device's own settings; -EMSGSIZE when they do not fit. */
static int put_device_settings(struct nl_msg *msg, const WgDevice *d) {
        uint32_t flags = 0;

        if ((d->flags & WG_DEVICE_HAS_PRIVATE_KEY) &&
            nla_put(msg, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN, d->private_key.data) < 0)
                return -EMSGSIZE;
        if ((d->flags & WG_DEVICE_HAS_LISTEN_PORT) &&
            nla_put_u16(msg, WGDEVICE_A_LISTEN_PORT, d->listen_port) < 0)
                return -EMSGSIZE;
        if ((d->flags & WG_DEVICE_HAS_FWMARK) && nla_put_u32(msg, WGDEVICE_A_FWMARK, d->fwmark) < 0)
                return -EMSGSIZE;
        if (d->flags & WG_DEVICE_REPLACE_PEERS)
                flags |= WGDEVICE_F_REPLACE_PEERS;
        if (flags != 0 && nla_put_u32(msg, WGDEVICE_A_FLAGS, flags) < 0)
                return -EMSGSIZE;
        return 0;
}

int wg_kernel_set_device(WgBackend *b, const WgDevice *d) {
        _cleanup_(genl_socket_done) GenlSocket g = {};
        size_t size = set_message_size(), peer_idx = 0, next_ip = 0;
        bool first = true, started = false;
        unsigned n_messages = 0;
        int r;

        r = genl_socket_open(&g);
        if (r < 0)
                return r;

        do {
                _cleanup_(nlmsg_freep) struct nl_msg *msg = NULL;
                struct nlattr *peers_nest;

                msg = nlmsg_alloc_size(size);
                if (!msg)
                        return -ENOMEM;
                if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, g.family, 0, NLM_F_ACK, WG_CMD_SET_DEVICE,
                                 WG_GENL_VERSION))
                        return -ENOMEM;
                if (nla_put_string(msg, WGDEVICE_A_IFNAME, b->ifname) < 0)
                        return -EMSGSIZE;

                /* Device settings, REPLACE_PEERS above all, go in the first
                 * message only: repeated, it would drop the peers the
                 * earlier messages just added. */
                if (first && put_device_settings(msg, d) < 0)
                        return -EMSGSIZE;

                if (peer_idx < d->n_peers) {
                        bool progress = false;

                        peers_nest = nla_nest_start(msg, WGDEVICE_A_PEERS | NLA_F_NESTED);
                        if (!peers_nest)
                                return -EMSGSIZE;
                        while (peer_idx < d->n_peers) {
                                r = put_peer(msg, &d->peers[peer_idx], &started, &next_ip);
                                if (r == -EMSGSIZE)
                                        break;
                                if (r < 0)
                                        return log_debug_errno(r, "Invalid peer %zu for %s.", peer_idx,
                                                               b->ifname);
                                progress = true;
                                if (r == 0)
                                        break;
                                peer_idx++;
                        }
                        if (!progress)
                                /* Not even one peer fits in an empty message. */
                                return log_debug_errno(-E2BIG,
                                                       "Peer %zu of %s does not fit in a netlink message.",
                                                       peer_idx, b->ifname);
                        nla_nest_end(msg, peers_nest);
                }

                r = kernel_send_and_ack(&g, msg);
                if (r < 0)
                        return log_debug_errno(r, "Failed to configure WireGuard device %s (message %u): %m",
                                               b->ifname, n_messages + 1);
                n_messages++;
                first = false;
        } while (peer_idx < d->n_peers);

        log_debug("Configured %s with %zu peers in %u netlink messages.", b->ifname, d->n_peers, n_messages);
        return 0;
}
