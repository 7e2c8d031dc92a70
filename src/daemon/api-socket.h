/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The unix socket the local API listens on, for api.c's server. */

#include <sys/stat.h>

/* Creates and listens on a unix socket at path: a socket left by an
 * earlier run is removed, anything else there is -EEXIST; mode 0660 and
 * group "meshd" when it exists, both before listen(). Returns the fd, and
 * in ret_st the socket file's identity (to remove only our own later). */
int api_socket_listen(const char *path, struct stat *ret_st);
