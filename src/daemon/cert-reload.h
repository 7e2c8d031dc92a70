/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* [Certificate] ReloadCommand=: run by /bin/sh -c in the background after
 * every new set, with MESHD_CERT_FILE=, MESHD_KEY_FILE=, MESHD_CA_FILE=,
 * MESHD_FULLCHAIN_FILE= and MESHD_CERT_DIR= naming the directory's files
 * (cert-dir.h). One at a time; a new set meanwhile runs it again after.
 * Its result is logged with MESSAGE_CERT_RELOAD. */

#include <systemd/sd-event.h>

#include "macro.h"

typedef struct CertReload CertReload;

/* directory: the certificate directory the command is told about. */
int cert_reload_new(sd_event *event, const char *directory, CertReload **ret);
/* A running command goes on; only its watch ends. */
CertReload *cert_reload_free(CertReload *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(CertReload *, cert_reload_free);

/* command NULL or empty: none. */
int cert_reload_set_command(CertReload *r, const char *command);
/* Starts the command, or has it run again once the one running ends.
 * Failures are logged. */
void cert_reload_run(CertReload *r);
