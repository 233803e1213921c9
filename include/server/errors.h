/* Why the service refused or failed a request: a kind and one sentence. The layers below HTTP
 * (the request parser, the service) say only the kind; the HTTP transport maps every kind to a
 * status and TEI's error_type in one table (http.c), so a status is decided in one place. */
#ifndef ERRORS_H
#define ERRORS_H

#include "common/bs_error.h"

enum error_kind {
    ERROR_BAD_FRAMING,        /* the request's length is ambiguous (smuggling): closes the connection */
    ERROR_TRANSFER_CODING,    /* a Transfer-Encoding other than chunked: closes the connection */
    ERROR_INVALID_JSON,       /* the body is not JSON */
    ERROR_VALIDATION,         /* JSON, but not a valid request (or its text is not valid) */
    ERROR_TEXT_TOO_LONG,      /* a text over the token limit with "truncate": false */
    ERROR_BODY_TOO_LARGE,     /* the body is over --max-body-bytes */
    ERROR_MEDIA_TYPE,         /* the body is not application/json */
    ERROR_UNAUTHORIZED,       /* no or a wrong API key */
    ERROR_NOT_FOUND,          /* no such route (or not on this port) */
    ERROR_METHOD_NOT_ALLOWED, /* the route exists, the method does not */
    ERROR_OVERLOADED,         /* the compute queue is full: retry later */
    ERROR_UNAVAILABLE,        /* shutting down, or the job was cancelled */
    ERROR_CONFLICT,           /* a model reload is already running */
    ERROR_BAD_MODEL,          /* a reload's model directory cannot serve (missing, malformed, incompatible) */
    ERROR_INTERNAL,           /* out of memory */
    ERROR_KIND_COUNT
};

struct service_error {
    enum error_kind kind;
    char msg[BS_ERR_LEN + 128];
};

/* Fills e with the kind and a printf-style message and returns -1, so that
 * `return service_fail(e, ERROR_VALIDATION, "...");` reads as one statement. */
int service_fail(struct service_error *e, enum error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
