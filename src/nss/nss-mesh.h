/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The entry points glibc's NSS looks up in libnss_mesh.so.2 for
 * "hosts: ... mesh ...", with glibc's own signatures (see nss(5) and
 * nss-mesh(8)). Nothing else is exported (nss-mesh.sym). */

#include <netdb.h>
#include <nss.h>
#include <stdint.h>
#include <sys/socket.h>

#include "constants.h"

/* Default table; MESHD_HOSTS_FILE overrides it for processes that are not
 * running with elevated privileges (secure_getenv). */
#define NSS_MESH_HOSTS_FILE MESHD_HOSTS_FILE_DEFAULT

enum nss_status _nss_mesh_gethostbyname4_r(const char *name, struct gaih_addrtuple **pat, char *buffer,
                                           size_t buflen, int *errnop, int *h_errnop, int32_t *ttlp);
enum nss_status _nss_mesh_gethostbyname3_r(const char *name, int af, struct hostent *result, char *buffer,
                                           size_t buflen, int *errnop, int *h_errnop, int32_t *ttlp,
                                           char **canonp);
enum nss_status _nss_mesh_gethostbyname2_r(const char *name, int af, struct hostent *result, char *buffer,
                                           size_t buflen, int *errnop, int *h_errnop);
enum nss_status _nss_mesh_gethostbyname_r(const char *name, struct hostent *result, char *buffer, size_t buflen,
                                          int *errnop, int *h_errnop);
enum nss_status _nss_mesh_gethostbyaddr2_r(const void *addr, socklen_t len, int af, struct hostent *result,
                                           char *buffer, size_t buflen, int *errnop, int *h_errnop,
                                           int32_t *ttlp);
enum nss_status _nss_mesh_gethostbyaddr_r(const void *addr, socklen_t len, int af, struct hostent *result,
                                          char *buffer, size_t buflen, int *errnop, int *h_errnop);
