/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* org.varlink.service, the interface every Varlink service answers:
 * GetInfo and GetInterfaceDescription, for api.c's server. */

#include <cjson/cJSON.h>

#include "api.h"

#define VARLINK_SERVICE "org.varlink.service"

/* {key: value}, or NULL without memory. */
cJSON *json_object_with_string(const char *key, const char *value);

int api_service_reply_get_info(ApiCall *call, const char *interface_name);
/* The text of interface_name (description) or of org.varlink.service. */
int api_service_reply_get_interface_description(ApiCall *call, const cJSON *parameters,
                                                const char *interface_name, const char *description);
