/* The HTTP transport of the daemon (libmicrohttpd): routes, headers, body limits, API keys,
 * request ids, error statuses (one table over the error kinds of errors.h), request logs, and
 * the drain. /predict's work is the service's (infer.h): this layer hands it the body, suspends
 * the connection while the batcher runs, and sends the answer the service builds. */
#ifndef HTTP_H
#define HTTP_H

#include "server/config.h"
#include "server/infer.h"

#include <stdbool.h>

typedef struct http_server http_server;

/* Binds cfg->host:cfg->port and starts serving /predict through svc (both must outlive the
 * server). NULL with err (e.g. the port is taken). */
http_server *http_start(const struct config *cfg, const struct infer_service *svc, char *err);
int http_port(const http_server *s);
/* The port /metrics is served on alone (--metrics-port), or -1 when it is on http_port. */
int http_metrics_port(const http_server *s);

/* /ready answers 503 {"status":"warming_up"} from the start until this is called (requests are
 * taken meanwhile, and /health answers). */
void http_set_warm(http_server *s);

/* /ready turns 503, the listening socket closes; connections already open are served. */
void http_drain(http_server *s);
/* Waits until no request has been in progress for a second, or deadline (monotonic seconds);
 * true if idle. */
bool http_wait_idle(http_server *s, double deadline);
/* Stops the server and frees it. Every submitted job must have finished (batcher_stop). */
void http_stop(http_server *s);

#endif
