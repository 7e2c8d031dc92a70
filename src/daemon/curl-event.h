/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* libcurl's multi interface driven by an sd-event loop: curl says which
 * sockets and which timeout to watch, we tell it when they fire, and each
 * finished transfer goes to a callback. Nothing here blocks. */

#include <curl/curl.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct CurlEvent CurlEvent;

/* A transfer finished (for CURLOPT_CONNECT_ONLY: the connection is made).
 * The easy handle is still in the multi handle. Runs from the event loop;
 * it may call curl_event_free(), which then waits until it returned. */
typedef void (*CurlEventDone)(CurlEvent *ce, CURL *easy, CURLcode result, void *userdata);

/* name: for the event sources' descriptions. */
int curl_event_new(sd_event *event, const char *name, CurlEventDone done, void *userdata, CurlEvent **ret);
/* Removes what is still added, closing its connection. */
CurlEvent *curl_event_free(CurlEvent *ce);
DEFINE_TRIVIAL_CLEANUP_FUNC(CurlEvent *, curl_event_free);

/* Starts the transfer from curl's timer, in the event loop. */
int curl_event_add(CurlEvent *ce, CURL *easy);
/* Closes the transfer's connection (a CONNECT_ONLY one too); a no-op for
 * one not added. */
void curl_event_remove(CurlEvent *ce, CURL *easy);
