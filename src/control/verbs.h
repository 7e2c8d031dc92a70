/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The verbs of meshd-control (main.c parses the command line into a
 * ControlArgs and calls one), and what they share (state-dir.c). */

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acme.h"
#include "db.h"
#include "hub.h"
#include "key.h"
#include "store.h"
#include "wg.h"

typedef struct ControlArgs {
        const char *state_dir;
        const char *database; /* --database: a file or a postgresql:// URL; NULL: STATE_DIR/control.db */
        const char *url;
        const char *domain;
        const char *ipv4_range;
        const char *ipv6_range;
        const char *listen;
        bool reusable;
        uint64_t expires_sec;
        bool json;
        const char *hub_endpoint;
        bool hub;
        const char *hub_interface;
        WgBackendType hub_backend;
        uint16_t hub_port;
        bool keep_hub;
        bool hub_ipv6_forwarding;
        bool hub_firewall;
        HubAllow hub_allow[HUB_ALLOW_MAX];
        size_t n_hub_allow;
        uint64_t cert_lifetime_sec;
        bool expired_needs_admin;
        bool relay;
        unsigned relay_max_streams;
        uint16_t relay_port;
        bool udp_echo;
        const char *public_key; /* devices add --public-key */
        bool qr;                /* devices add --qr */
        const char *out;        /* devices add --out */
        uint16_t dns_port;      /* 0: --no-dns */
        const char *resolv_conf;
        bool cert_issuer_acme; /* --cert-issuer=acme */
        AcmeConfig acme;
        char **tags;              /* --tag= (authkey create, devices add): strv, sorted */
        const char *migrate_from; /* migrate --from: the SQLite file; NULL: STATE_DIR/control.db */
} ControlArgs;

/* verbs-print.c: "2026-12-03T16:56:55Z", the number itself when out of range. */
void format_utc_time(int64_t t, char buf[static 32]);
/* Adds key: [strings of l] to o; -ENOMEM. */
int json_add_strv(cJSON *o, const char *key, char *const *l);
/* Fills one object per item (fill returns < 0 only on OOM) and prints the
 * array, as --json of the listing verbs does. */
typedef int (*JsonFillFunc)(cJSON *o, const void *items, size_t i);
int print_json_list(const void *items, size_t n, JsonFillFunc fill);

int verb_init(const ControlArgs *a);
int verb_serve(const ControlArgs *a);
int verb_authkey_create(const ControlArgs *a);
int verb_nodes_list(const ControlArgs *a);
int verb_nodes_remove(const ControlArgs *a, const char *name);
int verb_nodes_expire(const ControlArgs *a, const char *name);
int verb_nodes_renew(const ControlArgs *a, const char *name);
int verb_devices_add(const ControlArgs *a, const char *name);
int verb_devices_list(const ControlArgs *a);
int verb_devices_remove(const ControlArgs *a, const char *name);
int verb_routes_list(const ControlArgs *a);
int verb_routes_set(const ControlArgs *a, const char *node, const char *prefix, bool approve);
/* verbs-policy.c */
int verb_policy_set(const ControlArgs *a, const char *path);
int verb_policy_test(const ControlArgs *a, const char *path);
int verb_policy_get(const ControlArgs *a);
int verb_policy_clear(const ControlArgs *a);
/* verbs-migrate.c */
int verb_migrate(const ControlArgs *a);

/* state-dir.c */
/* name in the state directory */
int state_path(const ControlArgs *a, const char *name, char **ret);
/* --database, else STATE_DIR/control.db. */
int database_location(const ControlArgs *a, char **ret);
/* The database, with a hint when there is none yet. */
int open_store(const ControlArgs *a, Store **ret);
/* "https://HOST[:PORT][/]" → HOST (brackets of an IPv6 literal removed). */
int url_host(const char *url, char **ret);
/* --hub-endpoint, else the host of the URL when it is an IP address. */
int hub_endpoint_from_args(const ControlArgs *a, const char *url, char **ret);
