/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <net/if.h>
#include <systemd/sd-daemon.h>

#include "control-urls.h"
#include "fileio.h"
#include "link.h"
#include "log.h"
#include "manager-private.h"
#include "messages.h"
#include "netmap-trust.h"
#include "strv.h"
#include "varlink.h"

/* Membership of a mesh: joining with an auth key (Up, AuthKeyFile=), the
 * register reply and node.json, and leaving again (Down, Logout, removal). */

/* ---- joining -------------------------------------------------------------------------------- */

static const char *register_error_name(int error) {
        switch (error) {
        case -EACCES:
        case -EPERM:
        case -EEXIST:
                return "io.meshd.AuthFailed";
        case -EKEYREJECTED:
                return "io.meshd.PinMismatch";
        case -EBADMSG:
                return "io.meshd.ProtocolError";
        default:
                return "io.meshd.ControlUnreachable";
        }
}

void manager_finish_up(Manager *m, const char *error_name, const char *message) {
        _cleanup_(api_call_unrefp) ApiCall *call = TAKE_PTR(m->up_call);

        if (!call)
                return;
        if (error_name)
                (void) api_call_reply_errorf(call, error_name, "%s", message);
        else
                (void) api_call_reply(call, manager_status_json(m));
}

static int manager_read_auth_key_file(Manager *m, char **ret);

static int on_join_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *authkey = NULL;

        m->join_retry_source = sd_event_source_disable_unref(m->join_retry_source);
        if (m->joined || m->registering)
                return 0;
        if (manager_read_auth_key_file(m, &authkey) < 0)
                return 0;
        (void) manager_up(m, m->config.control_url, m->config.control_pin, authkey, NULL);
        explicit_bzero(authkey, strlen(authkey));
        return 0;
}

/* An unattended join (AuthKeyFile=) at boot may well find the control server
 * or the network not there yet: retry transient failures with backoff. A
 * refused key or a wrong pin will not get better by retrying. */
static void manager_schedule_join_retry(Manager *m, int error) {
        if (error == -EACCES || error == -EPERM || error == -EEXIST || error == -EKEYREJECTED)
                return;
        m->join_retry_usec =
                m->join_retry_usec == 0 ? 2 * USEC_PER_SEC : MIN(m->join_retry_usec * 2, 60 * USEC_PER_SEC);
        m->join_retry_source = sd_event_source_disable_unref(m->join_retry_source);
        if (sd_event_add_time_relative(m->event, &m->join_retry_source, CLOCK_MONOTONIC, m->join_retry_usec, 0,
                                       on_join_retry, m) >= 0)
                log_info("Retrying to join in %llus.",
                         (unsigned long long) (m->join_retry_usec / USEC_PER_SEC));
}

/* Store exactly the netmap object the server sent, for the cache. */
/* A reply we can join with: it parses, its netmap is for our key and
 * within sane bounds. Otherwise answers the Up call and fails. */
static int manager_check_register_reply(Manager *m, ControlClient *c, const char *body, size_t len,
                                        RegisterReply *reply) {
        _cleanup_free_ char *parse_error = NULL, *msg = NULL;
        int r;

        r = register_reply_parse(body, len, reply, &parse_error);
        if (r < 0 || !key_equal(&reply->netmap->self.public_key, &m->public_key)) {
                if (asprintf(&msg, "%s", r < 0 ? strna(parse_error) : "netmap is for another key") < 0)
                        msg = NULL;
                log_error("Joining the mesh failed, malformed reply from control server: %s", strna(msg));
                manager_finish_up(m, "io.meshd.ProtocolError", strna(msg));
                return -EBADMSG;
        }

        r = manager_check_join_netmap(m, reply->netmap, control_client_get_urls(c), &parse_error);
        if (r < 0) {
                if (asprintf(&msg, "refusing the control server's netmap: %s",
                             strna(parse_error ?: "cannot check it")) < 0)
                        msg = NULL;
                log_full_errno_fields(LOG_ERR, 0, &((LogFields) { .message_id = MESSAGE_NETMAP_REFUSED }),
                                      "Refusing to join the mesh at %s: %s", control_client_get_url(c),
                                      strna(parse_error ?: "cannot check its netmap"));
                manager_finish_up(m, "io.meshd.ProtocolError", strna(msg));
                return r;
        }
        return 0;
}

/* Writes netmap.json and node.json and takes the new credentials.
 * node.json is the commit point: without it, a cached netmap is never used. */
static int manager_save_membership(Manager *m, ControlClient *c, RegisterReply *reply,
                                   const char *netmap_text) {
        _cleanup_(credentials_done) Credentials creds = {};
        int r;

        creds.control_url = strdup(control_client_get_urls(c));
        creds.control_pin = strdup(m->credentials.control_pin ? m->credentials.control_pin : "");
        creds.node_id = reply->node_id;
        creds.name = strdup(reply->netmap->self.name);
        creds.token = TAKE_PTR(reply->token);
        if (!creds.control_url || !creds.control_pin || !creds.name ||
            credentials_pin_netmap(&creds, reply->netmap) < 0) {
                manager_finish_up(m, "org.varlink.service.InternalError", "out of memory");
                return -ENOMEM;
        }

        /* a netmap without peers is no cache: the first long-poll writes one */
        r = reply->netmap_self ? 0 : state_save_netmap(m->state_dir, netmap_text, strlen(netmap_text));
        if (r >= 0)
                r = state_save_credentials(m->state_dir, &creds);
        if (r < 0) {
                log_error_errno(r, "Failed to store credentials in %s: %m", m->state_dir);
                (void) state_remove_membership(m->state_dir);
                manager_finish_up(m, "org.varlink.service.InternalError", "cannot write the state directory");
                return r;
        }

        credentials_done(&m->credentials);
        m->credentials = creds;
        creds = (Credentials) {};
        return 0;
}

/* Joined: the registering client becomes the polling one, the netmap of
 * the reply is applied, and the Up call gets its answer. A reply whose
 * netmap has no peers ("netmap_scope": "self") was only checked and pinned:
 * applied, it would make a node with peers look like one alone (online at
 * once, READY=1 too early); the first long-poll (since=0) brings the whole
 * netmap, and on_netmap() answers the Up call. */
static void manager_joined(Manager *m, RegisterReply *reply, const char *netmap_text) {
        uint64_t version = reply->netmap->version;

        m->joined = true;
        manager_set_state(m, MANAGER_STARTING);
        m->join_retry_usec = 0;
        log_notice("Joined the mesh at %s as %s.", m->credentials.control_url, m->credentials.name);

        m->control = TAKE_PTR(m->registering);
        manager_start_cert_keeper(m);
        if (!reply->netmap_self)
                (void) manager_apply_netmap(m, TAKE_PTR(reply->netmap), netmap_text, strlen(netmap_text), true);
        (void) manager_arm_online_timeout(m);
        (void) manager_start_polling(m);
        if (reply->netmap_self)
                return;
        control_client_set_netmap_version(m->control, version);
        manager_post_endpoints(m);
        manager_finish_up(m, NULL, NULL);
}

static void on_register_reply(ControlClient *c, int error, const char *message, const char *body, size_t len,
                              void *userdata) {
        Manager *m = userdata;
        _cleanup_(register_reply_done) RegisterReply reply = {};
        _cleanup_free_ char *netmap_text = NULL;

        if (error < 0) {
                log_error_errno(error, "Joining the mesh at %s failed: %s", control_client_get_url(c),
                                strna(message));
                if (!m->up_call)
                        manager_schedule_join_retry(m, error);
                manager_finish_up(m, register_error_name(error), strna(message));
                goto drop_client;
        }
        if (manager_check_register_reply(m, c, body, len, &reply) < 0)
                goto drop_client;
        /* Store exactly the netmap object the server sent, for the cache. */
        netmap_text = TAKE_PTR(reply.netmap_json);
        if (!netmap_text) {
                manager_finish_up(m, "org.varlink.service.InternalError", "out of memory");
                goto drop_client;
        }
        if (manager_save_membership(m, c, &reply, netmap_text) < 0)
                goto drop_client;
        manager_joined(m, &reply, netmap_text);
        return;

drop_client:
        m->registering = control_client_free(m->registering);
        if (!m->joined)
                m->credentials.control_pin = mfree(m->credentials.control_pin);
}

static bool pin_is_valid(const char *pin) {
        WgKey k; /* a SHA-256 is 32 bytes, like a key, and uses the same base64 form */
        return pin && strncmp(pin, "sha256//", 8) == 0 && key_from_base64(pin + 8, &k) >= 0;
}

int manager_up(Manager *m, const char *url, const char *pin, const char *authkey, ApiCall *call) {
        _cleanup_strv_free_ char **candidates = NULL;
        int r;

        if (m->joined) {
                if (!url && !authkey) {
                        /* `meshctl up` after `meshctl down`: come back with what we have. */
                        if (m->state != MANAGER_STOPPED)
                                return call ? api_call_reply(call, manager_status_json(m)) : 0;
                        manager_set_state(m, MANAGER_STARTING);
                        (void) manager_load_cached_netmap(m);
                        (void) manager_start_polling(m);
                        return call ? api_call_reply(call, manager_status_json(m)) : 0;
                }
                return call ? api_call_reply_errorf(call, "io.meshd.AlreadyJoined",
                                                    "already joined as %s at %s; run meshctl logout first",
                                                    m->credentials.name, m->credentials.control_url)
                            : -EALREADY;
        }
        if (!url || !control_urls_valid(url))
                return call ? api_call_reply_errorf(call, "io.meshd.InvalidParameter",
                                                    "server: must be https:// URLs, separated by spaces or "
                                                    "commas")
                            : -EINVAL;
        if (!pin_is_valid(pin))
                return call ? api_call_reply_errorf(call, "io.meshd.InvalidParameter",
                                                    "pin: must be sha256// followed by 44 base64 characters")
                            : -EINVAL;
        if (!authkey || !*authkey)
                return call ? api_call_reply_errorf(call, "io.meshd.InvalidParameter", "authkey: empty")
                            : -EINVAL;
        if (m->registering)
                return call ? api_call_reply_errorf(call, "io.meshd.InvalidParameter",
                                                    "a join is already in progress")
                            : -EBUSY;

        r = control_client_new(m->event, url, pin, &m->registering);
        if (r < 0)
                return log_error_errno(r, "Failed to set up control client: %m");
        control_client_set_fwmark(m->registering, m->config.exit_fwmark);
        free(m->credentials.control_pin);
        m->credentials.control_pin = strdup(pin);

        /* The port is known only when configured; with ListenPort=0 the
         * endpoints follow once the interface exists. */
        /* Our own mesh interface may be there already (KeepInterface=):
         * its addresses are no endpoints. */
        if (m->config.listen_port > 0 &&
            link_list_endpoint_candidates((int) if_nametoindex(m->config.interface), m->config.listen_port,
                                          &candidates) >= 0)
                manager_drop_mesh_candidates(m, candidates);

        r = control_client_register(m->registering, authkey, &m->private_key, m->hostname, candidates,
                                    on_register_reply, m);
        if (r < 0) {
                m->registering = control_client_free(m->registering);
                return log_error_errno(r, "Failed to send registration: %m");
        }
        if (call)
                m->up_call = api_call_ref(call);
        log_info("Joining the mesh at %s as %s.", url, m->hostname);
        return 0;
}

/* ---- leaving -------------------------------------------------------------------------------- */

int manager_down(Manager *m) {
        if (m->control)
                control_client_stop_polling(m->control);
        m->control = control_client_free(m->control);
        manager_drop_peers(m);
        /* Explicitly asked for: the interface goes even with KeepInterface=yes. */
        manager_release_device(m, true);
        manager_firewall_remove(m);
        m->netmap = netmap_free(m->netmap);
        m->netmap_json = mfree(m->netmap_json);
        (void) manager_write_hosts(m);
        manager_set_state(m, MANAGER_STOPPED);
        manager_set_status(m, "Stopped (meshctl down).");
        log_notice("Mesh interface taken down on request.");
        return 0;
}

int manager_logout(Manager *m) {
        (void) manager_down(m);
        m->control = control_client_free(m->control);
        manager_forget_membership(m, "Logged out; run meshctl up to join again.");
        log_notice("Logged out of the mesh.");
        return 0;
}

void manager_forget_membership(Manager *m, const char *why) {
        int r;

        if (m->control)
                control_client_stop_polling(m->control);
        manager_drop_peers(m);
        manager_release_device(m, true);
        manager_firewall_remove(m);
        /* The certificate files stay, valid until they expire; renewal
         * stops, as the control server would refuse it. */
        m->cert_keeper = cert_keeper_free(m->cert_keeper);
        r = state_remove_membership(m->state_dir);
        if (r < 0)
                log_warning_errno(r, "Failed to remove membership files: %m");
        credentials_done(&m->credentials);
        m->netmap = netmap_free(m->netmap);
        m->netmap_json = mfree(m->netmap_json);
        m->announced_endpoints = strv_free(m->announced_endpoints);
        /* a new membership gets the advertised routes anew */
        m->routes_posted = mfree(m->routes_posted);
        m->n_routes_posted = 0;
        m->routes_post_ok = false;
        (void) manager_write_hosts(m);
        m->joined = false;
        manager_set_state(m, MANAGER_NEEDS_LOGIN);
        manager_set_status(m, why);
}

/* ---- at start: node.json and AuthKeyFile= --------------------------------------------------- */

static int manager_read_auth_key_file(Manager *m, char **ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_full_file(m->config.auth_key_file, 4096, &text, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read AuthKeyFile=%s: %m", m->config.auth_key_file);
        text[strcspn(text, "\r\n")] = 0;
        if (!*text)
                return log_error_errno(-EINVAL, "AuthKeyFile=%s is empty.", m->config.auth_key_file);
        *ret = TAKE_PTR(text);
        return 0;
}

/* A node.json that does not parse would otherwise be tried at every start;
 * the key stays, so a re-join is recognised by the control server. */
static void manager_set_aside_credentials(Manager *m) {
        int r = state_set_aside_credentials(m->state_dir);

        if (r < 0)
                log_full_errno_fields(
                        LOG_ERR, r, &((LogFields) { .message_id = MESSAGE_STATE_CORRUPT }),
                        "%s/node.json is corrupt (not JSON or fields missing) and could not be moved "
                        "aside (%m); starting as a node that has not joined, key kept. Join again "
                        "with meshctl up or AuthKeyFile=.",
                        m->state_dir);
        else
                log_full_errno_fields(
                        LOG_ERR, 0, &((LogFields) { .message_id = MESSAGE_STATE_CORRUPT }),
                        "%s/node.json is corrupt (not JSON or fields missing); moved it to "
                        "node.json.corrupt, starting as a node that has not joined, key kept. Join "
                        "again with meshctl up or AuthKeyFile=.",
                        m->state_dir);
}

/* At start: resume the membership in node.json, or join unattended with
 * AuthKeyFile=, or wait for `meshctl up` without holding up the boot. */
int manager_join_at_start(Manager *m) {
        int r;

        r = state_load_credentials(m->state_dir, &m->credentials);
        if (r >= 0) {
                m->joined = true;
                manager_set_state(m, MANAGER_STARTING);
                manager_set_status(m, "Connecting to the mesh.");
                (void) manager_arm_online_timeout(m);
                manager_start_cert_keeper(m);
                /* The cache first: the mesh works even while the control server is down. */
                (void) manager_load_cached_netmap(m);
                r = manager_start_polling(m);
                if (r < 0)
                        return r;
                /* What we announced before is unknown: say it now, not when
                 * the next netmap comes (with the cache up to date that waits
                 * for somebody's change: an address that changed while we
                 * were down would stay unannounced). The answer also shows the
                 * control server reachable before the long-poll's first. */
                manager_post_endpoints(m);
                return 0;
        }
        if (r == -EBADMSG)
                manager_set_aside_credentials(m);
        else if (r != -ENOENT)
                log_warning_errno(r, "Ignoring unreadable credentials, joining anew: %m");

        if (m->config.auth_key_file && m->config.control_url && m->config.control_pin) {
                _cleanup_free_ char *authkey = NULL;
                manager_set_state(m, MANAGER_STARTING);
                manager_set_status(m, "Joining the mesh.");
                (void) manager_arm_online_timeout(m);
                r = manager_read_auth_key_file(m, &authkey);
                if (r >= 0)
                        r = manager_up(m, m->config.control_url, m->config.control_pin, authkey, NULL);
                if (authkey)
                        explicit_bzero(authkey, strlen(authkey));
                if (r < 0)
                        log_error_errno(r, "Unattended join failed: %m");
                return 0;
        }

        /* Nothing to wait for: not being joined must never hold up the boot. */
        manager_set_state(m, MANAGER_NEEDS_LOGIN);
        m->ready_sent = true;
        free(m->status_text);
        m->status_text = strdup("Not joined to a mesh; run meshctl up.");
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", m->status_text);
        log_notice("Not joined to a mesh yet; waiting for meshctl up.");
        return 0;
}
