/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Cleanup helpers for GnuTLS objects, header-only so that only the programs
 * that link GnuTLS (meshd-control, meshd) pull it in. */

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "log.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_privkey_t, gnutls_x509_privkey_deinit);
DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_crt_t, gnutls_x509_crt_deinit);
DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_crq_t, gnutls_x509_crq_deinit);
DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_pubkey_t, gnutls_pubkey_deinit);
DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_name_constraints_t, gnutls_x509_name_constraints_deinit);

static inline void gnutls_datum_done(gnutls_datum_t *d) {
        gnutls_free(d->data);
        d->data = NULL;
        d->size = 0;
}
#define _cleanup_datum_ _cleanup_(gnutls_datum_done)

/* GnuTLS error codes are not errnos: log the library's words, return -EIO
 * (-ENOMEM for its memory error). */
static inline int log_gnutls_error(int rc, const char *what) {
        if (rc == GNUTLS_E_MEMORY_ERROR)
                return log_oom();
        return log_error_errno(-EIO, "%s: %s", what, gnutls_strerror(rc));
}
