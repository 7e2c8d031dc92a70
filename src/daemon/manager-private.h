/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the manager-*.c files share among themselves and nobody else:
 * the Manager object is one, its concerns are split over several files. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manager.h"

/* manager.c: life cycle and event loop */
uint64_t manager_now(Manager *m);
/* The only place m->state changes; logs "old -> new". Returns whether it changed. */
bool manager_set_state(Manager *m, ManagerState s);
void manager_set_status(Manager *m, const char *text);
void manager_drop_peers(Manager *m);
/* Whether this host's endpoint candidates differ from the last look. */
bool manager_underlay_moved(Manager *m);

/* manager-device.c: the WireGuard interface and its peer entries */
int manager_setup_device(Manager *m, const Netmap *nm);
void manager_release_device(Manager *m, bool destroy);
/* Returns the number of peer entries written (or -errno). */
int manager_sync_device_peers(Manager *m, const Netmap *nm);
int manager_hub_to_wg(Manager *m, const Netmap *nm, WgDevice *d);
int wg_device_add_removal(WgDevice *d, const WgKey *key);
void manager_renew_endpoints(Manager *m);

/* manager-netmap.c: applying netmaps from the control server or the cache */
int manager_apply_netmap(Manager *m, Netmap *nm, const char *json, size_t len, bool from_cache);
int manager_load_cached_netmap(Manager *m);
int manager_start_polling(Manager *m);
int manager_write_hosts(Manager *m);
void manager_drop_mesh_candidates(Manager *m, char **candidates);
void manager_post_endpoints(Manager *m);

/* manager-routes.c: subnet routes advertised and accepted */
int manager_routes_load(Manager *m);
void manager_routes_done(Manager *m);
void manager_post_routes(Manager *m);
void manager_sync_routes(Manager *m);
/* Follows what meshd keeps in the kernel's routing (rule-watch.h): after a
 * sync of the routes and every change of the exit node. */
void manager_routes_watch(Manager *m);
/* Status's "exit_node" and "accepted_routes" (docs/api.md) into o. */
int manager_routes_status_json(const Manager *m, cJSON *o);
/* This node's own approved subnet routes (no exit routes) into ret (at
 * most max, ROUTES_MSG_MAX fits all): what its firewall forwards to. */
size_t manager_routes_own_approved(const Manager *m, InAddrPrefix *ret, size_t max);

/* manager-trust.c: which netmaps this node accepts */
int manager_check_join_netmap(Manager *m, const Netmap *nm, const char *url, char **ret_error);
bool manager_netmap_trusted(Manager *m, const Netmap *nm, const char *what);
/* One warning per new reason; the same reason again is only debug. */
void manager_log_refusal(Manager *m, const char *what, const char *error);

/* manager-cert.c: the certificate keeper's wiring */
void manager_start_cert_keeper(Manager *m);
void manager_feed_cert_names(Manager *m);

/* manager-join.c: joining, leaving, node.json */
int manager_join_at_start(Manager *m);
void manager_forget_membership(Manager *m, const char *why);
/* Answers the pending Up call, if any: with the status, or the error. */
void manager_finish_up(Manager *m, const char *error_name, const char *message);

/* manager-dns.c: the node's mesh DNS server, names from the applied netmap */
void manager_dns_update(Manager *m);
void manager_dns_stop(Manager *m);

/* manager-exit.c: this node's exit node (ExitNode=), after every netmap
 * and reload; stop removes its rules, routes, default routes and fwmark */
void manager_exit_update(Manager *m);
void manager_exit_stop(Manager *m);
/* manager-firewall.c: table inet meshd from the applied netmap */
void manager_firewall_update(Manager *m);
/* Deletes it (the mesh interface goes). */
void manager_firewall_remove(Manager *m);

/* manager-online.c: online policy, READY=1, WaitOnline */
int manager_arm_online_timeout(Manager *m);
void manager_free_wait_online(Manager *m);
