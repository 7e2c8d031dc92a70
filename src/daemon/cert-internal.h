/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What cert.c (the CertKeeper) and cert-pending.c (an ACME order pending
 * at the control server) share. */

#include "api.h"
#include "cert-reload.h"
#include "cert-x509.h"
#include "cert.h"
#include "control-client.h"
#include "msg-cert.h"

struct CertKeeper {
        sd_event *event;
        char *directory;
        char *parent; /* where new sets are built: beside directory, same file system */
        char *token;
        ControlClient *control; /* our own: its lifetime is ours, whatever the poll loop does */
        CertReload *reload;

        /* from the netmap */
        char *fqdn;
        char *domain;
        char *ipv4;
        char *ipv6;
        char **requested_names; /* names of the last request that got a certificate */

        /* The set in the directory. `exists` also when it is unusable: it was
         * asked for once, so it is renewed. */
        bool exists;
        char *cert_pem, *key_pem, *ca_pem; /* NULL when unusable */
        CertInfo info;
        uint64_t obtained_usec; /* REALTIME: when we wrote it */

        /* POST /v1/cert in flight, or an ACME order pending at the server */
        bool requesting;
        char *pending_key_pem;
        char *pending_csr; /* asked again, unchanged, while the order is pending */
        char **pending_names;
        sd_event_source *pending_timer;
        char **issuer_names; /* the DNS names the ACME issuer certifies; NULL: the mesh CA's */
        bool pending_noted;
        ApiCall **waiters;
        size_t n_waiters;
        bool renew_when_named; /* a renewal waits for the netmap */

        unsigned failures;
        sd_event_source *timer;

        /* GET /v1/ca */
        char *ca_cache; /* when no set is there */
        char *ca_domain;
        bool ca_requesting;
        ApiCall **ca_waiters;
        size_t n_ca_waiters;

        /* pinned at join (netmap-trust.h) */
        char *pin_domain, *pin_ipv4_range, *pin_ipv6_range, *pin_ca_sha256;
        void (*ca_pinned)(const char *sha256_hex, void *userdata);
        void *userdata;
};

/* cert.c */
void cert_keeper_request_failed(CertKeeper *k, const char *error_name, const char *message);
void cert_keeper_renew_or_fail(CertKeeper *k);
void on_cert_reply(ControlClient *c, int error, const char *message, const char *body, size_t len,
                   void *userdata);

/* cert-pending.c: a 202 reply; takes *key and *names when it keeps them */
void cert_keeper_pending(CertKeeper *k, CertReply *reply, char **key, char ***names);
