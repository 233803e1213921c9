#include "server/http.h"

#include "common/bs_error.h"
#include "common/clock.h"
#include "server/cors.h"
#include "server/feedback.h"
#include "server/header_deadline.h"
#include "server/infer.h"
#include "server/logger.h"
#include "server/playground.h"
#include "server/openapi.h"
#include "server/reload.h"
#include "server/request.h"
#include "server/tokenize.h"
#include "server/v2_path.h"
#include "text/utf8.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Connection-handling threads: two, so that tokenizing a large request on one never delays
 * /health on the other; inference runs on the compute workers, never here. */
#define HTTP_THREADS 2

struct http_server {
    const struct config *cfg;
    const struct infer_service *svc;
    struct MHD_Daemon *mhd;
    int listen_fd;
    int port;
    struct MHD_Daemon *mhd_metrics; /* --metrics-port: /metrics alone on its own listener */
    int metrics_fd, metrics_port;
    atomic_bool ready;  /* false once draining */
    atomic_bool warm;   /* the compute workers' warm-up is done (http_set_warm) */
    atomic_int in_flight;
    atomic_llong last_activity_us; /* monotonic: a request began or ended (the drain's quiet) */
    atomic_uint_fast64_t request_counter;
    atomic_long buffered_bytes; /* held for request bodies, across all connections */
    header_deadline *deadline;  /* --header-timeout-seconds; NULL: none */
    uint64_t id_seed;
};

/* One request and its answer on a connection, from the first byte to the completed callback. */
struct exchange {
    http_server *srv;
    struct MHD_Connection *conn;
    enum metrics_route route;
    char method[16];
    char id[72];
    double t_start;
    int status; /* sent; 0 until a response is queued */
    char *body;
    size_t len, cap;
    size_t budget;    /* bytes of the server's buffered_bytes this body holds */
    /* A chunked body refused mid-way: the rest is read and dropped (libmicrohttpd cannot queue an
     * answer before the body ends), then this is the answer. */
    bool discarding;
    size_t discarded;
    struct service_error refusal;
    bool close_after; /* the request's framing is suspect: close the connection after answering */
    bool reads_body;  /* a POST route's request (not a preflight): its body is read and answered */
    infer_call *call; /* /predict and /batch_predict, once the body is in (infer.h) */
    struct admin_reload *reload; /* /admin/reload, once asked (reload.h) */
    const struct playground_file *page; /* the playground's file this GET asks for */
    const char *const *more_headers; /* name, value, ..., NULL: added to the answer */
    void *watch;      /* the connection's header deadline (header_deadline.h) */
    signed char ready_read; /* /ready's answer: the state its status was read from (1 ready,
                             * 0 draining, 2 warming up); -1 for any other answer */
    char v2_name[V2_NAME_MAX + 1], v2_version[V2_VERSION_MAX + 1]; /* a v2 route's {name}, {version} */
};

/* Every error kind's status and TEI's error_type: the one place a refusal becomes a status
 * (422 and 413 by number: libmicrohttpd renamed their constants between versions). */
static const struct {
    unsigned status;
    const char *type;
} error_status[ERROR_KIND_COUNT] = {
    [ERROR_BAD_FRAMING] = {MHD_HTTP_BAD_REQUEST, "bad_request"},
    [ERROR_TRANSFER_CODING] = {MHD_HTTP_NOT_IMPLEMENTED, "not_implemented"},
    [ERROR_INVALID_JSON] = {MHD_HTTP_BAD_REQUEST, "invalid_json"},
    [ERROR_VALIDATION] = {422, "validation"},
    [ERROR_TEXT_TOO_LONG] = {413, "validation"},
    [ERROR_BODY_TOO_LARGE] = {413, "payload_too_large"},
    [ERROR_MEDIA_TYPE] = {MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"},
    [ERROR_UNAUTHORIZED] = {MHD_HTTP_UNAUTHORIZED, "unauthorized"},
    [ERROR_NOT_FOUND] = {MHD_HTTP_NOT_FOUND, "not_found"},
    [ERROR_METHOD_NOT_ALLOWED] = {MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed"},
    [ERROR_OVERLOADED] = {MHD_HTTP_TOO_MANY_REQUESTS, "overloaded"},
    [ERROR_UNAVAILABLE] = {MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable"},
    [ERROR_CONFLICT] = {MHD_HTTP_CONFLICT, "conflict"},
    [ERROR_BAD_MODEL] = {422, "invalid_model"},
    [ERROR_INTERNAL] = {MHD_HTTP_INTERNAL_SERVER_ERROR, "internal"},
};

/* The routes that take a POSTed JSON body; the others answer GET and HEAD. */
static bool route_reads_body(enum metrics_route route)
{
    return route == ROUTE_PREDICT || route == ROUTE_BATCH_PREDICT || route == ROUTE_TOKENIZE ||
           route == ROUTE_ADMIN_RELOAD || route == ROUTE_V2_INFER || route == ROUTE_FEEDBACK;
}

/* The KServe v2 routes, whose errors are the protocol's {"error": "..."}. */
static bool route_is_v2(enum metrics_route route)
{
    return route == ROUTE_V2_SERVER || route == ROUTE_V2_LIVE || route == ROUTE_V2_READY || route == ROUTE_V2_MODEL ||
           route == ROUTE_V2_MODEL_READY || route == ROUTE_V2_INFER;
}

/* A reload asked through /admin/reload, answered when the reloader is done. */
struct admin_reload {
    struct reload_outcome outcome;
    atomic_bool finished;
};

/* ---- responses ----------------------------------------------------------------------- */

static void add_ms_header(struct MHD_Response *resp, const char *name, double seconds)
{
    char v[32];
    snprintf(v, sizeof v, "%.0f", seconds * 1000.0); /* TEI sends whole milliseconds */
    MHD_add_response_header(resp, name, v);
}

/* With --cors-allow-origin, an answer to an allowed Origin says so (and that it depends on the
 * Origin, for caches); any other answer carries no CORS header, so the browser withholds it. */
static void add_cors_headers(const struct exchange *r, struct MHD_Response *resp)
{
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    const char *allow = cors_allow_origin(r->srv->cfg->cors_allow_origin, origin);
    if (!allow)
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", allow);
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
    if (strcmp(allow, "*"))
        MHD_add_response_header(resp, "Vary", "Origin");
}

static enum MHD_Result queue_answer(struct exchange *r, unsigned status, struct MHD_Response *resp, const char *type,
                                    const char *extra_name, const char *extra_value);

/* Queues body (heap, taken over) with the request id and, for a finished job, TEI's timing
 * headers. Returns what the access handler should return. */
static enum MHD_Result respond(struct exchange *r, unsigned status, char *body, size_t len, const char *type,
                               const char *extra_name, const char *extra_value)
{
    if (!body) {
        static const char oom[] = "{\"error\":\"out of memory\",\"error_type\":\"internal\"}";
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        body = strdup(oom);
        len = body ? strlen(body) : 0;
        type = "application/json";
        if (!body)
            return MHD_NO;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    return queue_answer(r, status, resp, type, extra_name, extra_value);
}

/* Queues resp (destroyed here) with the request id, the CORS and extra headers and, for a
 * finished job, TEI's timing headers; counts the answer. */
static enum MHD_Result queue_answer(struct exchange *r, unsigned status, struct MHD_Response *resp, const char *type,
                                    const char *extra_name, const char *extra_value)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    if (r->call)
        MHD_add_response_header(resp, "X-Model-Version", infer_model_version(r->call));
    add_cors_headers(r, resp);
    if (extra_name)
        MHD_add_response_header(resp, extra_name, extra_value);
    for (const char *const *h = r->more_headers; h && *h; h += 2)
        MHD_add_response_header(resp, h[0], h[1]);
    struct infer_timing t;
    if (r->call && infer_timing(r->call, &t)) {
        add_ms_header(resp, "x-total-time", monotonic_seconds() - r->t_start);
        add_ms_header(resp, "x-tokenization-time", t.tokenize);
        add_ms_header(resp, "x-queue-time", t.queue);
        add_ms_header(resp, "x-inference-time", t.inference);
        char v[32];
        snprintf(v, sizeof v, "%d", t.compute_tokens);
        MHD_add_response_header(resp, "x-compute-tokens", v);
    }
    /* During the drain every answer closes its connection, so keep-alive clients move to
     * another pod. /ready's answer follows the state its status was read from: a 200 never
     * closes the connection and a 503 always does, whenever the drain begins. */
    bool draining = r->ready_read >= 0 ? r->ready_read == 0 : !atomic_load(&r->srv->ready);
    if (draining || r->close_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->status = (int)status;
        /* Counted now, not once sent: a client that has its answer finds it in /metrics. */
        metrics_request(r->srv->svc->metrics, r->route, r->method, r->status, monotonic_seconds() - r->t_start);
    }
    return ret;
}

static enum MHD_Result respond_json(struct exchange *r, unsigned status, cJSON *obj, const char *extra_name,
                                    const char *extra_value)
{
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    return respond(r, status, s, s ? strlen(s) : 0, "application/json", extra_name, extra_value);
}

/* TEI's error shape, {"error": "one sentence", "error_type": "..."}, with the kind's status
 * and the header the status calls for (Allow, WWW-Authenticate, Retry-After). */
static enum MHD_Result respond_error(struct exchange *r, const struct service_error *e)
{
    unsigned status = error_status[e->kind].status;
    const char *type = error_status[e->kind].type;
    /* Messages quote the client's URL, method or headers: keep the answer valid UTF-8. */
    char msg[3 * sizeof e->msg];
    utf8_copy_valid(msg, sizeof msg, e->msg, strlen(e->msg));
    r->close_after |= e->kind == ERROR_BAD_FRAMING || e->kind == ERROR_TRANSFER_CODING;
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddStringToObject(o, "error", msg) ||
              (!route_is_v2(r->route) && !cJSON_AddStringToObject(o, "error_type", type)))) {
        cJSON_Delete(o);
        o = NULL;
    }
    const char *name = NULL, *value = NULL;
    if (e->kind == ERROR_METHOD_NOT_ALLOWED) {
        name = MHD_HTTP_HEADER_ALLOW;
        value = route_reads_body(r->route) ? "POST" : "GET, HEAD";
    } else if (e->kind == ERROR_UNAUTHORIZED) {
        name = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
        value = "Bearer";
    } else if (e->kind == ERROR_OVERLOADED) {
        name = MHD_HTTP_HEADER_RETRY_AFTER;
        value = "1";
    }
    return respond_json(r, status, o, name, value);
}

/* Refuses the request with an error of this kind and a printf-style message. */
static enum MHD_Result refuse(struct exchange *r, enum error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result refuse(struct exchange *r, enum error_kind kind, const char *fmt, ...)
{
    struct service_error e = {.kind = kind};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    return respond_error(r, &e);
}

/* ---- request bodies ----------------------------------------------------------------------- */

/* Takes bytes from the server's budget for request bodies (--max-buffered-bytes); false, with
 * nothing taken, beyond it. Without this bound, 450 clients each sending all but the last byte
 * of a 2 MB body took finsent-mini from 76 MB to 957 MB of memory. */
static bool body_budget_take(struct exchange *r, size_t bytes)
{
    http_server *s = r->srv;
    long held = atomic_fetch_add(&s->buffered_bytes, (long)bytes) + (long)bytes;
    if (held > s->cfg->max_buffered_bytes) {
        atomic_fetch_sub(&s->buffered_bytes, (long)bytes);
        return false;
    }
    r->budget += bytes;
    return true;
}

/* Frees the body and gives its bytes back to the budget. */
static void body_free(struct exchange *r)
{
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    atomic_fetch_sub(&r->srv->buffered_bytes, (long)r->budget);
    r->budget = 0;
}

static const char buffered_message[] =
    "the server holds its limit of %ld bytes of request bodies (--max-buffered-bytes); retry later";

static enum MHD_Result refuse_buffered(struct exchange *r)
{
    return refuse(r, ERROR_OVERLOADED, buffered_message, r->srv->cfg->max_buffered_bytes);
}

/* ---- GET routes ----------------------------------------------------------------------- */

static enum MHD_Result handle_info(struct exchange *r)
{
    cJSON *o = infer_describe(r->srv->svc);
    return respond_json(r, MHD_HTTP_OK, o, NULL, NULL);
}

/* 200 with bytes embedded in the binary (embed_files in CMakeLists.txt), sent as they are. */
static enum MHD_Result respond_static(struct exchange *r, const unsigned char *data, size_t len, const char *type)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    return resp ? queue_answer(r, MHD_HTTP_OK, resp, type, NULL, NULL) : MHD_NO;
}

/* The playground's page, script, style sheet and icon (playground.h). */
static enum MHD_Result handle_playground(struct exchange *r)
{
    if (r->srv->cfg->no_ui)
        return refuse(r, ERROR_NOT_FOUND, "no playground page: the daemon runs with --no-ui");
    static const char *const page_headers[] = {"Content-Security-Policy", PLAYGROUND_CSP, "X-Content-Type-Options",
                                               "nosniff", "Referrer-Policy", "no-referrer", "Cache-Control",
                                               "no-cache", NULL};
    r->more_headers = page_headers;
    return respond_static(r, r->page->data, *r->page->len, r->page->content_type);
}

/* The API's OpenAPI description, compiled in from docs/openapi.json (server/openapi.h); open to
 * all like /info, as it says nothing about the model. */
static enum MHD_Result handle_openapi(struct exchange *r)
{
    return respond_static(r, embed_openapi_json, embed_openapi_json_len, "application/json");
}

/* KServe v2's GET routes: the server's metadata and health, a model's metadata and readiness. */
static enum MHD_Result handle_v2_get(struct exchange *r)
{
    http_server *s = r->srv;
    int limit = s->cfg->stall_seconds;
    cJSON *o = cJSON_CreateObject();
    switch (r->route) {
    case ROUTE_V2_SERVER: {
        cJSON_AddStringToObject(o, "name", "bertserve");
        cJSON_AddStringToObject(o, "version", config_version());
        cJSON_AddArrayToObject(o, "extensions");
        return respond_json(r, MHD_HTTP_OK, o, NULL, NULL);
    }
    case ROUTE_V2_LIVE: { /* as /health */
        bool live = !(limit > 0 && infer_stalled_seconds(s->svc) >= limit);
        cJSON_AddBoolToObject(o, "live", live);
        return respond_json(r, live ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, o, NULL, NULL);
    }
    default:
        break;
    }
    if (r->route == ROUTE_V2_MODEL || r->route == ROUTE_V2_MODEL_READY) {
        if (!infer_v2_model_is(s->svc, r->v2_name, r->v2_version)) {
            cJSON_Delete(o);
            return refuse(r, ERROR_NOT_FOUND, "no model \"%s\"%s%s%s: see GET /v2/models/<name> for the name served",
                          r->v2_name, r->v2_version[0] ? " of version \"" : "", r->v2_version,
                          r->v2_version[0] ? "\"" : "");
        }
        if (r->route == ROUTE_V2_MODEL) {
            cJSON_Delete(o);
            return respond_json(r, MHD_HTTP_OK, infer_v2_model_metadata(s->svc), NULL, NULL);
        }
        cJSON_AddStringToObject(o, "name", r->v2_name);
    }
    /* /v2/health/ready and a model's ready: as /ready (the model is loaded before the daemon
     * listens; it stops being ready when the drain begins). */
    r->ready_read = atomic_load(&s->ready);
    cJSON_AddBoolToObject(o, "ready", r->ready_read);
    return respond_json(r, r->ready_read ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, o, NULL, NULL);
}

static enum MHD_Result handle_get(struct exchange *r)
{
    http_server *s = r->srv;
    switch (r->route) {
    case ROUTE_HEALTH: { /* liveness: the model stays loaded; the workers must keep making progress */
        double stalled = infer_stalled_seconds(s->svc);
        int limit = s->cfg->stall_seconds;
        if (limit > 0 && stalled >= limit) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "status", "stalled");
            cJSON_AddNumberToObject(o, "stalled_seconds", stalled);
            return respond_json(r, MHD_HTTP_SERVICE_UNAVAILABLE, o, NULL, NULL);
        }
        return respond_json(r, MHD_HTTP_OK, cJSON_Parse("{\"status\":\"ok\"}"), NULL, NULL);
    }
    case ROUTE_READY:
        r->ready_read = atomic_load(&s->ready) ? (atomic_load(&s->warm) ? 1 : 2) : 0;
        if (r->ready_read == 2) /* not ready yet, but not leaving: the connection stays open */
            return respond_json(r, MHD_HTTP_SERVICE_UNAVAILABLE, cJSON_Parse("{\"status\":\"warming_up\"}"), NULL,
                                NULL);
        if (r->ready_read)
            return respond_json(r, MHD_HTTP_OK, cJSON_Parse("{\"status\":\"ready\"}"), NULL, NULL);
        return respond_json(r, MHD_HTTP_SERVICE_UNAVAILABLE, cJSON_Parse("{\"status\":\"draining\"}"), NULL, NULL);
    case ROUTE_INFO:
        return handle_info(r);
    case ROUTE_PLAYGROUND:
        return handle_playground(r);
    case ROUTE_METRICS: {
        size_t len = 0;
        char *text = metrics_render(s->svc->metrics, &len);
        return respond(r, MHD_HTTP_OK, text, len, "text/plain; version=0.0.4; charset=utf-8", NULL, NULL);
    }
    case ROUTE_OPENAPI:
        return handle_openapi(r);
    case ROUTE_V2_SERVER:
    case ROUTE_V2_LIVE:
    case ROUTE_V2_READY:
    case ROUTE_V2_MODEL:
    case ROUTE_V2_MODEL_READY:
        return handle_v2_get(r);
    default:
        return refuse(r, ERROR_NOT_FOUND, "no such route");
    }
}

/* ---- /predict: content type and tokenization (request.c parses and validates the body) ---- */

/* Content-Type must be application/json; a charset parameter may say utf-8. */
static bool json_content_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    static const char want[] = "application/json";
    if (strncasecmp(ct, want, sizeof want - 1))
        return false;
    const char *p = ct + sizeof want - 1;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return true;
    if (*p != ';')
        return false;
    for (p++; *p; p++) { /* parameters: only charset matters */
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        if (!strncasecmp(p, "charset=", 8)) {
            const char *v = p + 8;
            if (*v == '"')
                v++;
            if (strncasecmp(v, "utf-8", 5) && strncasecmp(v, "utf8", 4))
                return false;
        }
        while (*p && *p != ';')
            p++;
        if (!*p)
            break;
    }
    return true;
}

/* ---- /predict: the service does the work (infer.h) ----------------------------------------- */

/* The call was admitted: suspend before it is queued, so that the worker can never resume a
 * connection that is not yet suspended. */
static void predict_admitted(void *arg)
{
    struct exchange *r = arg;
    MHD_suspend_connection(r->conn);
}

/* Runs on a compute worker: hand the connection back to libmicrohttpd. */
static void predict_done(void *arg)
{
    struct exchange *r = arg;
    MHD_resume_connection(r->conn);
}

static enum MHD_Result predict_body_complete(struct exchange *r)
{
    struct service_error e;
    if (!(r->call = infer_new(r->srv->svc, r->t_start, r->id)))
        return refuse(r, ERROR_INTERNAL, "out of memory");
    if (r->route == ROUTE_V2_INFER && !infer_v2_call_model_is(r->call, r->v2_name, r->v2_version)) {
        body_free(r);
        return refuse(r, ERROR_NOT_FOUND, "no model \"%s\"%s%s%s: see GET /v2/models/<name> for the name served",
                      r->v2_name, r->v2_version[0] ? " of version \"" : "", r->v2_version,
                      r->v2_version[0] ? "\"" : "");
    }
    enum request_route route = r->route == ROUTE_BATCH_PREDICT ? REQUEST_BATCH_PREDICT
                               : r->route == ROUTE_V2_INFER    ? REQUEST_V2_INFER
                                                               : REQUEST_PREDICT;
    int rc = infer_prepare(r->call, r->body, r->len, route, &e);
    body_free(r); /* the texts live in the call; the raw body is no longer needed */
    if (rc || infer_submit(r->call, predict_admitted, predict_done, r, &e))
        return respond_error(r, &e);
    return MHD_YES;
}

/* /tokenize needs no model: answered here, on the connection's thread, as /predict tokenizes. */
static enum MHD_Result tokenize_body_complete(struct exchange *r)
{
    struct service_error e;
    cJSON *answer = tokenize_answer(r->srv->svc, r->body, r->len, &e);
    body_free(r);
    if (!answer)
        return respond_error(r, &e);
    return respond_json(r, MHD_HTTP_OK, answer, NULL, NULL);
}

/* /feedback: matched against the recent predictions on the connection's thread (feedback.h). */
static enum MHD_Result feedback_body_complete(struct exchange *r)
{
    struct service_error e;
    cJSON *answer = feedback_answer(r->srv->svc, r->body, r->len, &e);
    body_free(r);
    if (!answer)
        return respond_error(r, &e);
    return respond_json(r, MHD_HTTP_OK, answer, NULL, NULL);
}

/* ---- /admin/reload: the reloader does the work (reload.h) ---------------------------------- */

static void reload_admitted(void *arg)
{
    struct exchange *r = arg;
    MHD_suspend_connection(r->conn);
}

/* Runs on the reloader's thread. */
static void reload_done(void *arg, const struct reload_outcome *o)
{
    struct exchange *r = arg;
    r->reload->outcome = *o;
    atomic_store(&r->reload->finished, true);
    MHD_resume_connection(r->conn);
}

static enum MHD_Result reload_body_complete(struct exchange *r)
{
    struct service_error e;
    char model[RELOAD_MODEL_MAX + 1], version[RELOAD_VERSION_MAX + 1];
    int rc = reload_request_parse(r->body, r->len, model, version, &e);
    body_free(r);
    if (rc)
        return respond_error(r, &e);
    if (!(r->reload = calloc(1, sizeof *r->reload)))
        return refuse(r, ERROR_INTERNAL, "out of memory");
    if (reloader_request(r->srv->svc->reloader, model[0] ? model : NULL, version[0] ? version : NULL, "/admin/reload",
                         reload_admitted, reload_done, r, &e))
        return respond_error(r, &e);
    return MHD_YES;
}

static enum MHD_Result reload_answer(struct exchange *r)
{
    const struct reload_outcome *o = &r->reload->outcome;
    if (!o->ok) {
        struct service_error e = {.kind = o->kind};
        snprintf(e.msg, sizeof e.msg, "the model was not reloaded: %.600s", o->message);
        return respond_error(r, &e);
    }
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "status", "reloaded");
    cJSON_AddStringToObject(a, "model", o->model);
    cJSON_AddStringToObject(a, "model_version", o->version);
    cJSON_AddStringToObject(a, "previous_model_version", o->previous_version);
    cJSON_AddNumberToObject(a, "seconds", o->seconds);
    return respond_json(r, MHD_HTTP_OK, a, NULL, NULL);
}

static enum MHD_Result predict_answer(struct exchange *r)
{
    struct service_error e;
    cJSON *answer = infer_answer(r->call, &e);
    if (!answer)
        return respond_error(r, &e);
    return respond_json(r, MHD_HTTP_OK, answer, NULL, NULL);
}

/* ---- the access handler ------------------------------------------------------------------ */

static enum metrics_route route_of(const char *url)
{
    static const struct {
        const char *path;
        enum metrics_route route;
    } routes[] = {{"/predict", ROUTE_PREDICT},   {"/health", ROUTE_HEALTH},   {"/ready", ROUTE_READY},
                  {"/info", ROUTE_INFO},         {"/metrics", ROUTE_METRICS}, {"/tokenize", ROUTE_TOKENIZE},
                  {"/batch_predict", ROUTE_BATCH_PREDICT}, {"/admin/reload", ROUTE_ADMIN_RELOAD},
                  {"/openapi.json", ROUTE_OPENAPI}, {"/feedback", ROUTE_FEEDBACK}};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(url, routes[i].path))
            return routes[i].route;
    return ROUTE_OTHER;
}

/* True if the Authorization header is "Bearer <key>" (the scheme in any case, RFC 6750). The
 * comparison takes the same time wherever the given token differs, so response timing does
 * not reveal how much of the key a guess got right. */
static bool bearer_matches(const char *authorization, const char *key)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7))
        return false;
    const char *given = authorization + 7;
    while (*given == ' ')
        given++;
    size_t n = strlen(given), k = strlen(key);
    unsigned diff = n != k;
    for (size_t i = 0; i < k; i++)
        diff |= (unsigned char)key[i] ^ (unsigned char)(i < n ? given[i] : 0);
    return diff == 0;
}

/* X-Request-Id is echoed when it is short and plain (it lands in logs), else generated. */
static void request_id(http_server *s, struct MHD_Connection *c, char out[72])
{
    const char *given = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (given) {
        size_t n = strlen(given);
        bool ok = n > 0 && n <= 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum((unsigned char)given[i]) || strchr("-_.:", given[i]);
        if (ok) {
            memcpy(out, given, n + 1);
            return;
        }
    }
    /* splitmix64 of a per-process seed and a counter: unique per process, unguessable enough
     * to tell requests apart across restarts. */
    uint64_t z = s->id_seed + 0x9e3779b97f4a7c15ULL * (atomic_fetch_add(&s->request_counter, 1) + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    snprintf(out, 72, "%016llx", (unsigned long long)z);
}

/* How often a header appears, and its last value. */
struct header_count {
    const char *name;
    int n;
    const char *value;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct header_count *h = cls;
    if (!strcasecmp(key, h->name)) {
        h->n++;
        h->value = value;
    }
    return MHD_YES;
}

/* A request whose length two readers could frame differently is refused and its connection
 * closed (RFC 9112 section 6.3): a proxy in front that took the other length would see the
 * rest of the body as a second request (request smuggling). libmicrohttpd itself takes the
 * first Content-Length, and waits in silence on a transfer coding it does not know. */
static int check_framing(struct MHD_Connection *conn, struct service_error *e)
{
    struct header_count cl = {.name = MHD_HTTP_HEADER_CONTENT_LENGTH};
    struct header_count te = {.name = MHD_HTTP_HEADER_TRANSFER_ENCODING};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &cl);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &te);
    if (cl.n > 1)
        return service_fail(e, ERROR_BAD_FRAMING, "the request has %d Content-Length headers; send one", cl.n);
    if (te.n && cl.n)
        return service_fail(e, ERROR_BAD_FRAMING,
                            "the request has both Transfer-Encoding and Content-Length; send one of them");
    if (te.n > 1 || (te.n && strcasecmp(te.value, "chunked")))
        return service_fail(e, ERROR_TRANSFER_CODING,
                            "Transfer-Encoding \"%s\" is not supported; send the body with a Content-Length or "
                            "chunked",
                            te.value);
    if (cl.n && (!*cl.value || strspn(cl.value, "0123456789") != strlen(cl.value)))
        return service_fail(e, ERROR_BAD_FRAMING, "Content-Length must be a number of bytes, not \"%s\"", cl.value);
    return 0;
}

/* A request whose headers are in: the checks that need no body. Returns MHD_YES to read the
 * body (or to wait for its end), or the result of an answer already queued. */
static enum MHD_Result on_headers(struct exchange *r, const char *method)
{
    http_server *s = r->srv;
    struct MHD_Connection *conn = r->conn;
    struct service_error e;
    if (check_framing(conn, &e))
        return respond_error(r, &e);
    /* With --metrics-port, /metrics lives there alone (e.g. kept off a public Service). */
    if (s->mhd_metrics) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
        bool on_metrics_port = ci && ci->daemon == s->mhd_metrics;
        if (on_metrics_port && r->route != ROUTE_METRICS)
            return refuse(r, ERROR_NOT_FOUND, "only /metrics is served on this port");
        if (!on_metrics_port && r->route == ROUTE_METRICS)
            return refuse(r, ERROR_NOT_FOUND, "/metrics is served on port %d", s->metrics_port);
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    long max = s->cfg->max_body_bytes;
    /* Other routes, and preflights, answer once the request is complete: answering while the
     * (empty) body is still due makes libmicrohttpd close the connection instead of keeping it
     * alive. A preflight carries no API key (browsers never send one), so it is not asked for. */
    r->reads_body = route_reads_body(r->route) && strcmp(method, "OPTIONS");
    if (!r->reads_body) {
        /* No other route reads a body: refuse a large one now rather than drain it. */
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)max)
            return refuse(r, ERROR_BODY_TOO_LARGE, "the request body is %s bytes, over the limit of %ld bytes", cl,
                          max);
        return MHD_YES;
    }
    /* /admin/reload exists only with an admin key, and takes that key, not the API key. */
    bool admin = r->route == ROUTE_ADMIN_RELOAD;
    if (admin && !s->cfg->admin_key)
        return refuse(r, ERROR_NOT_FOUND, "no route /admin/reload: the daemon runs without --admin-key");
    const char *key = admin ? s->cfg->admin_key : s->cfg->api_key;
    if (key && !bearer_matches(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), key))
        return refuse(r, ERROR_UNAUTHORIZED, "%s needs the header \"Authorization: Bearer <%s key>\"",
                      metrics_route_name(r->route), admin ? "admin" : "API");
    if (strcmp(method, "POST"))
        return refuse(r, ERROR_METHOD_NOT_ALLOWED, "%s is not allowed on %s; use POST", method,
                      metrics_route_name(r->route));
    if (!atomic_load(&s->ready))
        return refuse(r, ERROR_UNAVAILABLE, "the server is shutting down");
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    bool no_body = !cl || !strcmp(cl, "0");
    if (!json_content_type(ct) && !(admin && !ct && no_body)) /* a reload may come with no body */
        return refuse(r, ERROR_MEDIA_TYPE, "Content-Type must be application/json (charset utf-8), not %s",
                      ct ? ct : "missing");
    /* Refuse an oversized body before reading any of it. */
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || *end || n > (unsigned long long)max)
            return refuse(r, ERROR_BODY_TOO_LARGE, "the request body is %s bytes, over the limit of %ld bytes", cl,
                          max);
        if (n > 0 && !body_budget_take(r, (size_t)n + 1))
            return refuse_buffered(r);
        if (n > 0 && !(r->body = malloc((size_t)n + 1)))
            return refuse(r, ERROR_INTERNAL, "out of memory");
        r->cap = n + 1;
    }
    return MHD_YES;
}

/* A piece of a /predict body: kept, within --max-body-bytes and the server's budget. A refusal
 * mid-body is answered when libmicrohttpd can still queue an answer, else the connection is
 * closed (MHD_NO). */
static enum MHD_Result on_body_data(struct exchange *r, const char *data, size_t n)
{
    long max = r->srv->cfg->max_body_bytes;
    if (r->discarding) {
        /* Drop the rest, up to the limit once more: past that, closing is the answer. */
        r->discarded += n;
        return r->discarded <= (size_t)max ? MHD_YES : MHD_NO;
    }
    if (r->len + n > (size_t)max) { /* a chunked body over the limit */
        body_free(r);
        r->discarding = true;
        service_fail(&r->refusal, ERROR_BODY_TOO_LARGE, "the request body is over the limit of %ld bytes", max);
        return MHD_YES;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->len + n + 1) * 2;
        if (cap > (size_t)max + 1)
            cap = (size_t)max + 1;
        if (!body_budget_take(r, cap - r->cap)) {
            body_free(r);
            r->discarding = true;
            service_fail(&r->refusal, ERROR_OVERLOADED, buffered_message, r->srv->cfg->max_buffered_bytes);
            return MHD_YES;
        }
        char *b = realloc(r->body, cap);
        if (!b)
            return MHD_NO;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return MHD_YES;
}

/* A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) from an allowed
 * origin: 204 with what the routes allow. Others get no CORS headers (and the usual 405). */
static bool is_allowed_preflight(const struct exchange *r, const char *method)
{
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    return !strcmp(method, "OPTIONS") && cors_allow_origin(r->srv->cfg->cors_allow_origin, origin) &&
           MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Method");
}

static enum MHD_Result respond_preflight(struct exchange *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    add_cors_headers(r, resp);
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS);
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
    MHD_add_response_header(resp, "Access-Control-Max-Age", CORS_MAX_AGE_SECONDS);
    if (!atomic_load(&r->srv->ready))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_NO_CONTENT, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->status = MHD_HTTP_NO_CONTENT;
        metrics_request(r->srv->svc->metrics, r->route, r->method, r->status, monotonic_seconds() - r->t_start);
    }
    return ret;
}

/* A request complete that reads no body: a GET route, a preflight, or one to refuse. */
static enum MHD_Result on_other_route(struct exchange *r, const char *url, const char *method)
{
    if (r->route == ROUTE_OTHER)
        return refuse(r, ERROR_NOT_FOUND,
                      "no route %s (see /openapi.json: /predict, /batch_predict, /tokenize, /health, /ready, /info, /metrics)",
                      url);
    if (is_allowed_preflight(r, method))
        return respond_preflight(r);
    if (route_reads_body(r->route)) /* an OPTIONS that is no allowed preflight */
        return refuse(r, ERROR_METHOD_NOT_ALLOWED, "%s is not allowed on %s; use POST", method, url);
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return refuse(r, ERROR_METHOD_NOT_ALLOWED, "%s is not allowed on %s; use GET", method, url);
    return handle_get(r);
}

static struct exchange *exchange_new(http_server *s, struct MHD_Connection *conn, const char *url, const char *method)
{
    struct exchange *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = s;
    r->conn = conn;
    r->t_start = monotonic_seconds();
    r->route = route_of(url);
    if ((r->page = playground_find(url)))
        r->route = ROUTE_PLAYGROUND;
    if (r->route == ROUTE_OTHER)
        r->route = v2_route_of(url, r->v2_name, r->v2_version);
    r->ready_read = -1;
    snprintf(r->method, sizeof r->method, "%s", method);
    request_id(s, conn, r->id);
    if (s->deadline) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r->watch = ci ? ci->socket_context : NULL;
        header_deadline_headers_in(s->deadline, r->watch);
    }
    atomic_fetch_add(&s->in_flight, 1);
    atomic_store(&s->last_activity_us, (long long)(monotonic_seconds() * 1e6));
    metrics_in_flight(s->svc->metrics, +1);
    return r;
}

/* libmicrohttpd's access handler: called once the headers are in, then for each piece of the
 * body, then once more at its end, and again after a suspended connection is resumed. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct exchange *r = *con_cls;
    if (!r) {
        if (!(r = *con_cls = exchange_new(cls, conn, url, method)))
            return MHD_NO;
        return on_headers(r, method);
    }
    if (r->status || !r->reads_body) { /* answered (e.g. 413 mid-body), or a body nobody
                                        * reads: discard it */
        if (*upload_data_size > 0 || r->status) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        return on_other_route(r, url, method);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return on_body_data(r, upload_data, n);
    }
    /* The whole body is in (or the job finished and the connection was resumed). */
    if (r->discarding) {
        r->close_after = true; /* the client may still be sending what it meant as one body */
        return respond_error(r, &r->refusal);
    }
    if (r->route == ROUTE_TOKENIZE)
        return tokenize_body_complete(r);
    if (r->route == ROUTE_FEEDBACK)
        return feedback_body_complete(r);
    if (r->route == ROUTE_ADMIN_RELOAD)
        return !r->reload ? reload_body_complete(r)
                          : atomic_load(&r->reload->finished) ? reload_answer(r) : MHD_YES;
    if (!r->call)
        return predict_body_complete(r);
    if (infer_finished(r->call))
        return predict_answer(r);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    http_server *s = cls;
    struct exchange *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    double seconds = monotonic_seconds() - r->t_start;
    /* 499 (nginx's "client closed request") when the client left before any answer; an
     * answered request was counted when its response was queued. */
    int status = r->status ? r->status : 499;
    if (!r->status)
        metrics_request(s->svc->metrics, r->route, r->method, status, seconds);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "method", r->method);
    cJSON_AddStringToObject(f, "route", metrics_route_name(r->route));
    cJSON_AddNumberToObject(f, "status", status);
    cJSON_AddNumberToObject(f, "duration_ms", seconds * 1000.0);
    cJSON_AddNumberToObject(f, "tokens", infer_tokens(r->call));
    cJSON_AddStringToObject(f, "request_id", r->id);
    if (r->call)
        cJSON_AddStringToObject(f, "model_version", infer_model_version(r->call));
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        cJSON_AddBoolToObject(f, "aborted", true);
    cJSON *inputs = s->cfg->log_text ? infer_inputs_json(r->call) : NULL;
    if (inputs)
        cJSON_AddItemToObject(f, "texts", inputs);
    log_event(s->cfg->log_json, "request", f);

    if (s->deadline)
        header_deadline_answered(s->deadline, r->watch);
    infer_free(r->call);
    free(r->reload);
    body_free(r);
    free(r);
    metrics_in_flight(s->svc->metrics, -1);
    atomic_store(&s->last_activity_us, (long long)(monotonic_seconds() * 1e6));
    atomic_fetch_sub(&s->in_flight, 1);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

/* Connections opened and closed: the header deadline watches each. libmicrohttpd notifies a
 * close before it closes the descriptor. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server *s = cls;
    if (!s->deadline)
        return;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? header_deadline_add(s->deadline, ci->connect_fd) : NULL;
    } else {
        header_deadline_remove(s->deadline, *socket_context);
        *socket_context = NULL;
    }
}

/* libmicrohttpd's own messages (a client that hung up, an internal error) as log events, so
 * that --log-format json stays one JSON object per line. */
static void on_library_message(void *cls, const char *fmt, va_list ap)
{
    const http_server *s = cls;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "message", msg);
    log_event(s->cfg->log_json, "http_library", f);
}

/* Decodes %XX in the URL as libmicrohttpd would, except %00: a NUL would cut the path short and
 * route "/predict%00xyz" to /predict. It stays "%00", so such a path matches no route (404). */
static size_t unescape_keeping_nul(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls, (void)conn;
    char *out = s;
    for (const char *p = s; *p;) {
        if (p[0] == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char hex[3] = {p[1], p[2], 0};
            long v = strtol(hex, NULL, 16);
            if (v) {
                *out++ = (char)v;
                p += 3;
                continue;
            }
        }
        *out++ = *p++;
    }
    *out = '\0';
    return (size_t)(out - s);
}

/* Our own listening socket, so a taken port or a bad address fails with its reason and port 0
 * tells us which port the kernel chose. */
static int listen_on(const char *host, int port, int *bound_port, char *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    int rc = getaddrinfo(host, port_s, &hints, &res);
    if (rc)
        return bs_fail(err, "cannot resolve --host %s: %s", host, gai_strerror(rc));
    int fd = -1, saved = 0;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) || listen(fd, 1024)) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return bs_fail(err, "cannot listen on %s port %d: %s", host, port, strerror(saved));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

http_server *http_start(const struct config *cfg, const struct infer_service *svc, char *err)
{
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        bs_fail(err, "out of memory");
        return NULL;
    }
    if (cfg->cors_allow_origin && cors_check_list(cfg->cors_allow_origin, err)) {
        free(s);
        return NULL;
    }
    s->cfg = cfg;
    s->svc = svc;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->id_seed = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
    s->listen_fd = listen_on(cfg->host, cfg->port, &s->port, err);
    if (s->listen_fd < 0) {
        free(s);
        return NULL;
    }
    atomic_store(&s->ready, true);
    if (cfg->header_timeout_seconds > 0 && !(s->deadline = header_deadline_start(cfg->header_timeout_seconds, err))) {
        close(s->listen_fd);
        free(s);
        return NULL;
    }
    /* poll(2), not epoll: libmicrohttpd 0.9.75's MHD_quiesce_daemon (the drain) races its own
     * epoll workers to remove the listening socket from their epoll sets, and aborts when it
     * loses (MHD_PANIC on ENOENT, an open defect): SIGTERM under load exited with SIGABRT in
     * one run of tests/run.sh in four. The poll path quiesces through the ITC instead; with at
     * most --max-connections descriptors over two threads, poll costs microseconds a wake-up
     * against milliseconds a forward pass. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_library_message, s,
                              MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
                              MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)cfg->timeout_seconds, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_UNESCAPE_CALLBACK, unescape_keeping_nul, s, MHD_OPTION_NOTIFY_CONNECTION,
                              on_connection, s, MHD_OPTION_END);
    if (!s->mhd) {
        bs_fail(err, "cannot start the HTTP server on %s port %d", cfg->host, s->port);
        close(s->listen_fd);
        header_deadline_stop(s->deadline);
        free(s);
        return NULL;
    }
    s->metrics_fd = -1;
    if (cfg->metrics_port >= 0) {
        s->metrics_fd = listen_on(cfg->host, cfg->metrics_port, &s->metrics_port, err);
        if (s->metrics_fd >= 0)
            s->mhd_metrics = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG, 0,
                                              NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
                                              on_library_message, s, MHD_OPTION_LISTEN_SOCKET, s->metrics_fd,
                                              MHD_OPTION_CONNECTION_LIMIT, 64U, MHD_OPTION_CONNECTION_TIMEOUT,
                                              (unsigned)cfg->timeout_seconds, MHD_OPTION_NOTIFY_COMPLETED,
                                              on_completed, s, MHD_OPTION_UNESCAPE_CALLBACK, unescape_keeping_nul,
                                              s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
        if (!s->mhd_metrics) {
            if (s->metrics_fd >= 0) {
                bs_fail(err, "cannot start the metrics server on %s port %d", cfg->host, s->metrics_port);
                close(s->metrics_fd);
            }
            http_stop(s);
            return NULL;
        }
    }
    return s;
}

int http_metrics_port(const http_server *s)
{
    return s->mhd_metrics ? s->metrics_port : -1;
}

int http_port(const http_server *s)
{
    return s->port;
}

void http_set_warm(http_server *s)
{
    atomic_store(&s->warm, true);
}

void http_drain(http_server *s)
{
    /* The listening socket closes before /ready turns 503: a client that saw the 503 and then
     * connects is refused. The other order let such a connection into the backlog of a socket
     * about to close (ctest daemon, "new connections are refused while draining", on a loaded
     * machine). */
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    s->listen_fd = -1;
    atomic_store(&s->ready, false);
}

/* How long the server must have had no request in progress to count as idle. A kept-alive
 * client sends its next request the moment its answer arrives, on a connection the drain cannot
 * close in advance; stopping at the first instant with none in progress would cut off such a
 * request still in transit. Answered during the quiet, it gets 503 and "Connection: close". */
#define DRAIN_QUIET_SECONDS 1.0

bool http_wait_idle(http_server *s, double deadline)
{
    while (atomic_load(&s->in_flight) > 0 ||
           monotonic_seconds() - (double)atomic_load(&s->last_activity_us) * 1e-6 < DRAIN_QUIET_SECONDS) {
        if (monotonic_seconds() >= deadline)
            return false;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return true;
}

void http_stop(http_server *s)
{
    if (!s)
        return;
    /* A daemon closes its listening socket when it stops (unless quiesced: http_drain closes
     * that one itself). */
    if (s->mhd_metrics)
        MHD_stop_daemon(s->mhd_metrics);
    MHD_stop_daemon(s->mhd);
    header_deadline_stop(s->deadline); /* after the daemons: their connections are gone */
    free(s);
}
