/* Cross-origin resource sharing (--cors-allow-origin, TEI's flag): which browser origins may
 * call the API, and the headers that tell the browser so. Pure functions of the configured
 * list and the request's Origin header; http.c adds the headers. */
#ifndef CORS_H
#define CORS_H

#include "common/bs_error.h"

#include <stdbool.h>

/* What a preflight answer allows: the methods the routes take, the request headers clients
 * send (JSON bodies, the API key, a request id), how long a browser may cache the answer, and
 * the answer headers a page may read (the request id and TEI's timing headers). */
#define CORS_ALLOW_METHODS "GET, POST, OPTIONS"
#define CORS_ALLOW_HEADERS "Content-Type, Authorization, X-Request-Id"
#define CORS_MAX_AGE_SECONDS "600"
#define CORS_EXPOSE_HEADERS \
    "X-Request-Id, x-total-time, x-tokenization-time, x-queue-time, x-inference-time, x-compute-tokens"

/* Checks the configured list: "*", or origins separated by commas (spaces around them
 * allowed), each "scheme://host[:port]" with no path. -1 with err naming the bad entry. */
int cors_check_list(const char *list, char *err);

/* The Access-Control-Allow-Origin value for a request from origin (its Origin header, NULL if
 * none) under list (NULL: CORS off): "*" when any origin is allowed, the origin itself when it
 * is listed (exactly, as browsers send it), else NULL: no CORS headers. */
const char *cors_allow_origin(const char *list, const char *origin);

#endif
