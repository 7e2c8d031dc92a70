/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "api-service.h"
#include "config.h"
#include "macro.h"

/* The project's home page for GetInfo; the build may define it. */
#ifndef PACKAGE_URL
#define PACKAGE_URL ""
#endif

#define ERROR_INTERFACE_NOT_FOUND VARLINK_SERVICE ".InterfaceNotFound"
#define ERROR_INVALID_PARAMETER VARLINK_SERVICE ".InvalidParameter"

static const char varlink_service_description[] =
        "# The standard interface every Varlink service provides.\n"
        "interface org.varlink.service\n"
        "\n"
        "method GetInfo() -> (\n"
        "  vendor: string,\n"
        "  product: string,\n"
        "  version: string,\n"
        "  url: string,\n"
        "  interfaces: []string\n"
        ")\n"
        "\n"
        "method GetInterfaceDescription(interface: string) -> (description: string)\n"
        "\n"
        "error InterfaceNotFound (interface: string)\n"
        "error MethodNotFound (method: string)\n"
        "error MethodNotImplemented (method: string)\n"
        "error InvalidParameter (parameter: string)\n";

cJSON *json_object_with_string(const char *key, const char *value) {
        cJSON *o = cJSON_CreateObject();

        if (o && !cJSON_AddStringToObject(o, key, value)) {
                cJSON_Delete(o);
                return NULL;
        }
        return o;
}

int api_service_reply_get_info(ApiCall *call, const char *interface_name) {
        cJSON *o = cJSON_CreateObject(), *l;

        if (!o || !cJSON_AddStringToObject(o, "vendor", "meshd") ||
            !cJSON_AddStringToObject(o, "product", "meshd") ||
            !cJSON_AddStringToObject(o, "version", PACKAGE_VERSION) ||
            !cJSON_AddStringToObject(o, "url", PACKAGE_URL) || !(l = cJSON_AddArrayToObject(o, "interfaces")) ||
            !cJSON_AddItemToArray(l, cJSON_CreateString(interface_name)) ||
            !cJSON_AddItemToArray(l, cJSON_CreateString(VARLINK_SERVICE))) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        return api_call_reply(call, o);
}

int api_service_reply_get_interface_description(ApiCall *call, const cJSON *parameters,
                                                const char *interface_name, const char *description) {
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(parameters, "interface");
        const char *d;

        if (!cJSON_IsString(i))
                return api_call_reply_error(call, ERROR_INVALID_PARAMETER,
                                            json_object_with_string("parameter", "interface"));
        if (streq(i->valuestring, interface_name))
                d = description;
        else if (streq(i->valuestring, VARLINK_SERVICE))
                d = varlink_service_description;
        else
                return api_call_reply_error(call, ERROR_INTERFACE_NOT_FOUND,
                                            json_object_with_string("interface", i->valuestring));
        return api_call_reply(call, json_object_with_string("description", d));
}
