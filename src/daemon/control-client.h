/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* HTTPS client of meshd-control (docs/protocol.md): libcurl's multi
 * interface driven by sd-event, so the daemon never blocks on the network.
 * TLS: the server's public key is pinned (CURLOPT_PINNEDPUBLICKEY); the
 * self-signed chain itself is not verified. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "endpoint.h"
#include "macro.h"
#include "msg-register.h" /* register_reply_parse(): what a register's callback gets */

typedef struct ControlClient ControlClient;

/* Errors reported to callbacks, mapped from HTTP/curl results:
 *   -EACCES       401 (bad/expired auth key, unknown token)
 *   -EPERM        403 (node removed or expired; a CSR for names not the node's)
 *   -EEXIST       409
 *   -EKEYREJECTED pin mismatch (CURLE_SSL_PINNEDPUBKEYNOTMATCH)
 *   -EHOSTUNREACH cannot connect / resolve / TLS handshake failed
 *   -ETIMEDOUT    request timed out
 *   -EBADMSG      reply not valid JSON, truncated, or unexpected status
 * message: a one-line explanation (server's "error" text when it sent one). */

/* body: the reply body (NUL-terminated, len without the NUL) on success.
 * Callbacks run from the event loop, never from inside the function that
 * started the request; they may call control_client_free(),
 * control_client_stop_polling() or start a new request. */
typedef void (*ControlReplyCallback)(ControlClient *c, int error, const char *message, const char *body,
                                     size_t len, void *userdata);

/* url: https://HOST[:PORT], or several (replicas of one mesh, space- or
 * comma-separated, control-urls.h): a request that finds its server dead
 * or broken moves the client on to the next, and after a while it tries
 * the first again (docs/replicas.md). pin: sha256//BASE64, the same for
 * all (-EINVAL otherwise).
 * curl_global_init() must have been called once, by main(), before. */
int control_client_new(sd_event *event, const char *url, const char *pin, ControlClient **ret);
/* Connections made from now on carry SO_MARK mark (0: none): with an exit
 * node they must stay on the underlay (exit-route.h). */
void control_client_set_fwmark(ControlClient *c, uint32_t mark);
ControlClient *control_client_free(ControlClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ControlClient *, control_client_free);

/* The URL requests go to now. */
const char *control_client_get_url(const ControlClient *c);
/* The list as given to control_client_new(). */
const char *control_client_get_urls(const ControlClient *c);

/* POST /v1/challenge, then POST /v1/register with the proof that we hold
 * private_key (docs/protocol.md, "Joining"; the key is copied and erased
 * once the proof is made). The callback gets the raw 200 reply body of the
 * register, or the error of either request; the caller validates the body
 * with register_reply_parse(). At most one register at a time (-EBUSY). */
struct WgKey;
int control_client_register(ControlClient *c, const char *authkey, const struct WgKey *private_key,
                            const char *hostname, char *const *endpoints, ControlReplyCallback callback,
                            void *userdata);

/* Starts the long-poll loop: GET /v1/netmap?since=V, again and again. Each
 * 200 body goes to callback with error 0; the caller then reports the
 * version it applied with control_client_set_netmap_version() (the next
 * poll uses it). 304 just polls again. Transient errors (-EHOSTUNREACH,
 * -ETIMEDOUT, 5xx as -EBADMSG) go to the callback too and the loop retries
 * with exponential backoff (1 s … 30 s). -EACCES/-EPERM stop the loop. */
int control_client_start_polling(ControlClient *c, const char *token, uint64_t since_version,
                                 ControlReplyCallback callback, void *userdata);
void control_client_set_netmap_version(ControlClient *c, uint64_t version);
/* Since the client moved to another replica (control-urls.h), no netmap of
 * it was taken: the next 200 is that replica's whole netmap, to be applied
 * even at the version the caller has (its hub differs), but not below it
 * (a replica a moment behind: then the poll asks again).
 * control_client_set_netmap_version() ends this. */
bool control_client_replica_changed(const ControlClient *c);
void control_client_stop_polling(ControlClient *c);
/* The underlay changed: abandon the running long-poll and start a new one,
 * on a new connection, at once. A no-op when not polling. */
int control_client_reconnect(ControlClient *c);
/* Whether the last poll round trip succeeded (for GetStatus). */
bool control_client_is_connected(const ControlClient *c);

/* POST /v1/endpoints, fire and forget (errors logged at debug level). Uses
 * the token of the poll loop (-ENOTCONN while not polling); a newer call
 * replaces one still in flight. */
int control_client_post_endpoints(ControlClient *c, char *const *endpoints);

/* POST /v1/routes: the complete advertised set. Uses the poll loop's token
 * (-ENOTCONN while not polling); a newer call replaces one in flight. The
 * callback gets the outcome (error 0: stored). */
int control_client_post_routes(ControlClient *c, const InAddrPrefix *routes, size_t n,
                               ControlReplyCallback callback, void *userdata);

/* GET /v1/ca: the mesh CA, no authentication. The callback gets the raw 200
 * body ({"ca": PEM, "domain": ...}); the caller validates it. At most one
 * at a time (-EBUSY). */
int control_client_get_ca(ControlClient *c, ControlReplyCallback callback, void *userdata);

/* POST /v1/cert {"csr": PEM} with the node token (not the poll loop's: the
 * certificate keeper has a client of its own). The callback gets the raw
 * 200 body; a refusal (node removed or expired, names not its own) comes as
 * -EPERM (403) or -EACCES (401) with the server's message. At most one at a
 * time (-EBUSY). */
int control_client_post_cert(ControlClient *c, const char *token, const char *csr_pem,
                             ControlReplyCallback callback, void *userdata);
