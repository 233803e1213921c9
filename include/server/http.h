/* The HTTP side of the daemon (libmicrohttpd): routes, the /predict body (parsed by request.h),
 * tokenization, JSON responses, request logs. Hands plain token arrays to the compute workers
 * (batcher.h) and suspends the connection until they answer. */
#ifndef HTTP_H
#define HTTP_H

#include "engine/model.h"
#include "server/batcher.h"
#include "server/config.h"
#include "server/metrics.h"
#include "text/tokenizer.h"

#include <stdbool.h>

struct http_deps {
    const struct config *cfg;
    const tokenizer *tok;
    const bert_model *model;
    batcher *pool;
    metrics *metrics;
    int max_len;            /* effective tokens per text */
    int threads_per_worker; /* forward-pass threads of each compute worker */
    int cpus;               /* CPUs the workers share, and how that was decided (cpu_budget.h) */
    const char *cpu_source;
};

typedef struct http_server http_server;

/* Binds cfg->host:cfg->port and starts serving. NULL with err (e.g. the port is taken). */
http_server *http_start(const struct http_deps *d, char *err);
int http_port(const http_server *s);
/* The port /metrics is served on alone (--metrics-port), or -1 when it is on http_port. */
int http_metrics_port(const http_server *s);

/* /info's weights_sha256: "pending" until this is called with the hash (or an error text). */
void http_set_weights_sha256(http_server *s, const char *value);

/* /ready turns 503, the listening socket closes; connections already open are served. */
void http_drain(http_server *s);
/* Waits until no request is in progress or deadline (monotonic seconds); true if idle. */
bool http_wait_idle(http_server *s, double deadline);
/* Stops the server and frees it. Every submitted job must have finished (batcher_stop). */
void http_stop(http_server *s);

#endif
