/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "log.h"
#include "macro.h"
#include "resolved-link.h"

#define RESOLVE1_NAME "org.freedesktop.resolve1"
#define RESOLVE1_PATH "/org/freedesktop/resolve1"
#define RESOLVE1_MANAGER "org.freedesktop.resolve1.Manager"
#define RESOLVED_LINK_SERVERS_MAX 2

/* resolved's own default: DNS servers without a port are asked on 53 */
#define DNS_DEFAULT_PORT 53

struct ResolvedLink {
        sd_bus *bus;        /* NULL: no system bus, nothing is ever sent */
        sd_bus_slot *match; /* NameOwnerChanged of org.freedesktop.resolve1 */
        sd_event_source *exit_source;
        bool present; /* resolved owns its name on the bus */
        bool absent_logged;

        /* wanted: ifindex 0 means nothing */
        int ifindex;
        char *domain;
        union sockaddr_union servers[RESOLVED_LINK_SERVERS_MAX];
        size_t n_servers;

        int sent_ifindex;    /* what resolved was last told to keep (0: nothing) */
        bool sent;           /* the wanted registration went out to this resolved */
        bool error_logged;   /* one warning per registration */
        bool success_logged; /* one info line per registration */
};

static int new_call(ResolvedLink *l, const char *member, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(l->bus, &m, RESOLVE1_NAME, RESOLVE1_PATH, RESOLVE1_MANAGER, member);
        if (r < 0)
                return r;
        /* a resolved that is not running stays so: we only follow it */
        r = sd_bus_message_set_auto_start(m, false);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

static int on_set_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        ResolvedLink *l = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        (void) ret_error;
        if (e) {
                if (!l->error_logged)
                        log_warning("systemd-resolved refused the mesh DNS registration: %s: %s", e->name,
                                    strna(e->message));
                l->error_logged = true;
                return 0;
        }
        return 0;
}

static int on_last_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        ResolvedLink *l = userdata;

        (void) on_set_reply(reply, userdata, ret_error);
        if (!sd_bus_message_is_method_error(reply, NULL) && !l->error_logged && !l->success_logged) {
                log_info("Registered mesh DNS with systemd-resolved: ~%s on interface %d.", l->domain,
                         l->ifindex);
                l->success_logged = true;
        }
        return 0;
}

static int append_servers(ResolvedLink *l, sd_bus_message *m, bool ex) {
        int r;

        r = sd_bus_message_open_container(m, 'a', ex ? "(iayqs)" : "(iay)");
        for (size_t i = 0; r >= 0 && i < l->n_servers; i++) {
                const union sockaddr_union *s = &l->servers[i];
                bool v4 = s->sa.sa_family == AF_INET;

                r = sd_bus_message_open_container(m, 'r', ex ? "iayqs" : "iay");
                if (r >= 0)
                        r = sd_bus_message_append(m, "i", (int32_t) s->sa.sa_family);
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'y',
                                                        v4 ? (const void *) &s->in.sin_addr
                                                           : (const void *) &s->in6.sin6_addr,
                                                        v4 ? sizeof(struct in_addr) : sizeof(struct in6_addr));
                if (r >= 0 && ex)
                        r = sd_bus_message_append(m, "qs", ntohs(v4 ? s->in.sin_port : s->in6.sin6_port), "");
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static bool servers_need_ex(const ResolvedLink *l) {
        for (size_t i = 0; i < l->n_servers; i++)
                if (ntohs(l->servers[i].in.sin_port) != DNS_DEFAULT_PORT)
                        return true;
        return false;
}

static int send_call(ResolvedLink *l, sd_bus_message *m, sd_bus_message_handler_t callback) {
        /* floating slot: the reply (or the bus going away) frees it */
        return sd_bus_call_async(l->bus, NULL, m, callback, l, 0);
}

static int push_dns(ResolvedLink *l) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        /* SetLinkDNSEx (resolved >= 246) only where a port other than 53 needs it */
        bool ex = servers_need_ex(l);
        int r;

        r = new_call(l, ex ? "SetLinkDNSEx" : "SetLinkDNS", &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "i", (int32_t) l->ifindex);
        if (r >= 0)
                r = append_servers(l, m, ex);
        if (r >= 0)
                r = send_call(l, m, on_set_reply);
        return r;
}

static int push_domain(ResolvedLink *l) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        /* routing-only (true): only names in the mesh domain go to us */
        r = new_call(l, "SetLinkDomains", &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "ia(sb)", (int32_t) l->ifindex, 1, l->domain, 1);
        if (r >= 0)
                r = send_call(l, m, on_set_reply);
        return r;
}

static int push_simple(ResolvedLink *l, const char *member, const char *types, const void *value,
                       sd_bus_message_handler_t callback) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = new_call(l, member, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "i", (int32_t) l->ifindex);
        if (r >= 0 && types[0] == 'b')
                r = sd_bus_message_append(m, "b", *(const int *) value);
        else if (r >= 0 && types[0] == 's')
                r = sd_bus_message_append(m, "s", (const char *) value);
        if (r >= 0)
                r = send_call(l, m, callback);
        return r;
}

static void push(ResolvedLink *l) {
        static const int no = 0;
        int r;

        if (!l->bus || !l->present || l->ifindex <= 0 || l->sent)
                return;
        l->error_logged = l->success_logged = false;
        r = push_dns(l);
        if (r >= 0)
                r = push_domain(l);
        /* never the default route: names outside the mesh go where they went */
        if (r >= 0)
                r = push_simple(l, "SetLinkDefaultRoute", "b", &no, on_set_reply);
        /* meshd's answers are unsigned and the domain is private: a
         * validating resolved would call them bogus */
        if (r >= 0)
                r = push_simple(l, "SetLinkDNSSEC", "s", "no", on_last_reply);
        if (r < 0) {
                log_warning_errno(r, "Failed to send the mesh DNS registration to systemd-resolved: %m");
                return;
        }
        l->sent = true;
        l->sent_ifindex = l->ifindex;
}

static int on_name_owner(const char *owner, ResolvedLink *l) {
        l->present = owner && owner[0] != '\0';
        l->sent = false;
        if (!l->present) {
                /* resolved forgot the link when it went: nothing to revert */
                l->sent_ifindex = 0;
                if (!l->absent_logged)
                        log_info("systemd-resolved is not running: mesh names reach programs through "
                                 "the NSS module and the mesh DNS server only.");
                l->absent_logged = true;
                return 0;
        }
        log_debug("systemd-resolved is on the bus as %s.", owner);
        push(l);
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *name = NULL, *old_owner = NULL, *new_owner = NULL;

        (void) ret_error;
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || !streq_ptr(name, RESOLVE1_NAME))
                return 0;
        return on_name_owner(new_owner, userdata);
}

static int on_get_name_owner(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const char *owner = NULL;

        (void) ret_error;
        if (sd_bus_message_is_method_error(reply, NULL) || sd_bus_message_read(reply, "s", &owner) < 0)
                owner = NULL; /* org.freedesktop.DBus.Error.NameHasNoOwner */
        return on_name_owner(owner, userdata);
}

static int watch_resolved(ResolvedLink *l) {
        int r;

        /* the match first, then the question: a resolved starting in
         * between is seen by one of the two */
        r = sd_bus_add_match_async(l->bus, &l->match,
                                   "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                   "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                                   "arg0='" RESOLVE1_NAME "'",
                                   on_name_owner_changed, NULL, l);
        if (r < 0)
                return r;
        return sd_bus_call_method_async(l->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "GetNameOwner", on_get_name_owner, l, "s",
                                        RESOLVE1_NAME);
}

static int on_event_exit(sd_event_source *s, void *userdata) {
        (void) s;
        resolved_link_revert_now(userdata);
        return 0;
}

static int open_bus(ResolvedLink *l, sd_event *event) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        /* the bus going away must not end meshd's event loop */
        r = sd_bus_set_exit_on_disconnect(bus, false);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        l->bus = TAKE_PTR(bus);
        /* sd-bus closes the connection in an exit source of its own (at
         * the bus's priority): ours must run first */
        r = sd_event_add_exit(event, &l->exit_source, on_event_exit, l);
        if (r >= 0)
                r = sd_event_source_set_priority(l->exit_source, SD_EVENT_PRIORITY_IMPORTANT);
        if (r >= 0)
                r = watch_resolved(l);
        if (r < 0)
                l->bus = sd_bus_flush_close_unref(l->bus);
        return r;
}

int resolved_link_new(sd_event *event, ResolvedLink **ret) {
        ResolvedLink *l;
        int r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        r = open_bus(l, event);
        if (r == -ENOMEM) {
                free(l);
                return r;
        }
        if (r < 0)
                log_info_errno(r, "No system bus (%m): mesh DNS is not registered with systemd-resolved.");
        *ret = l;
        return 0;
}

static void free_wanted(ResolvedLink *l) {
        l->domain = mfree(l->domain);
        l->ifindex = 0;
        l->n_servers = 0;
}

ResolvedLink *resolved_link_free(ResolvedLink *l) {
        if (!l)
                return NULL;
        sd_bus_slot_unref(l->match);
        sd_event_source_disable_unref(l->exit_source);
        if (l->bus) {
                (void) sd_bus_detach_event(l->bus);
                sd_bus_flush_close_unref(l->bus);
        }
        free_wanted(l);
        free(l);
        return NULL;
}

static bool wanted_equal(const ResolvedLink *l, int ifindex, const char *domain,
                         const union sockaddr_union *servers, size_t n) {
        if (l->ifindex != ifindex || !streq_ptr(l->domain, domain) || l->n_servers != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!endpoint_equal(&l->servers[i], &servers[i]))
                        return false;
        return true;
}

int resolved_link_set(ResolvedLink *l, int ifindex, const char *domain, const union sockaddr_union *servers,
                      size_t n_servers) {
        char *d;

        if (ifindex <= 0 || !domain || n_servers == 0)
                return -EINVAL;
        n_servers = MIN(n_servers, (size_t) RESOLVED_LINK_SERVERS_MAX);
        if (wanted_equal(l, ifindex, domain, servers, n_servers))
                return 0;
        d = strdup(domain);
        if (!d)
                return -ENOMEM;
        /* a new interface: the old one's settings went with it */
        if (l->sent_ifindex != ifindex)
                resolved_link_clear(l);
        free_wanted(l);
        l->domain = d;
        l->ifindex = ifindex;
        memcpy(l->servers, servers, n_servers * sizeof(servers[0]));
        l->n_servers = n_servers;
        l->sent = false;
        push(l);
        return 0;
}

static int new_revert(ResolvedLink *l, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = new_call(l, "RevertLink", &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "i", (int32_t) l->sent_ifindex);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

static int on_revert_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        (void) userdata;
        (void) ret_error;
        /* the interface may be gone already, and its settings with it */
        if (e)
                log_debug("systemd-resolved: RevertLink failed: %s: %s", e->name, strna(e->message));
        return 0;
}

void resolved_link_clear(ResolvedLink *l) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (!l)
                return;
        if (l->bus && l->present && l->sent_ifindex > 0) {
                r = new_revert(l, &m);
                if (r >= 0)
                        r = sd_bus_call_async(l->bus, NULL, m, on_revert_reply, l, 0);
                if (r < 0)
                        log_warning_errno(r, "Failed to withdraw mesh DNS from systemd-resolved: %m");
                else
                        log_info("Withdrew mesh DNS from systemd-resolved on interface %d.", l->sent_ifindex);
        }
        l->sent_ifindex = 0;
        l->sent = false;
        free_wanted(l);
}

void resolved_link_revert_now(ResolvedLink *l) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (!l || !l->bus || !l->present || l->sent_ifindex <= 0)
                return;
        r = new_revert(l, &m);
        if (r >= 0)
                r = sd_bus_call(l->bus, m, RESOLVED_LINK_REVERT_USEC, &error, NULL);
        if (r < 0)
                log_debug_errno(r, "systemd-resolved: RevertLink failed: %s", strna(error.message));
        else
                log_info("Withdrew mesh DNS from systemd-resolved on interface %d.", l->sent_ifindex);
        l->sent_ifindex = 0;
        l->sent = false;
        free_wanted(l);
}
