#include "server/http.h"

#include "common/bs_error.h"
#include "common/clock.h"
#include "common/json_text.h"
#include "engine/gemm.h"
#include "engine/predict.h"
#include "server/logger.h"
#include "server/request.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
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
    struct http_deps d;
    struct MHD_Daemon *mhd;
    int listen_fd;
    int port;
    struct MHD_Daemon *mhd_metrics; /* --metrics-port: /metrics alone on its own listener */
    int metrics_fd, metrics_port;
    atomic_bool ready;
    atomic_int in_flight;
    atomic_uint_fast64_t request_counter;
    uint64_t id_seed;
    pthread_mutex_t info_lock; /* guards weights_sha256 */
    char weights_sha256[80];
};

/* One HTTP request, from its first byte to the completed callback. */
struct request {
    http_server *srv;
    struct MHD_Connection *conn;
    enum metrics_route route;
    char method[16];
    char id[72];
    double t_start;
    int status;          /* sent; 0 until a response is queued */
    char *body;
    size_t len, cap;
    /* /predict */
    struct predict_request req; /* the parsed body (request.h) */
    int *tokens;         /* per text, after truncation */
    bool *truncated;
    bool submitted;
    atomic_bool finished; /* set by the worker before it resumes the connection */
    double tokenize_s;
    struct job job;
};

/* ---- responses ----------------------------------------------------------------------- */

static void add_ms_header(struct MHD_Response *resp, const char *name, double seconds)
{
    char v[32];
    snprintf(v, sizeof v, "%.0f", seconds * 1000.0); /* TEI sends whole milliseconds */
    MHD_add_response_header(resp, name, v);
}

/* Queues body (heap, taken over) with the request id and, for a finished job, TEI's timing
 * headers. Returns what the access handler should return. */
static enum MHD_Result respond(struct request *r, unsigned status, char *body, size_t len, const char *type,
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
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    if (extra_name)
        MHD_add_response_header(resp, extra_name, extra_value);
    if (r->route == ROUTE_PREDICT && r->submitted && r->finished) {
        struct job *j = &r->job;
        add_ms_header(resp, "x-total-time", monotonic_seconds() - r->t_start);
        add_ms_header(resp, "x-tokenization-time", r->tokenize_s);
        add_ms_header(resp, "x-queue-time", j->t_started - j->t_queued);
        add_ms_header(resp, "x-inference-time", j->t_finished - j->t_started);
        char v[32];
        snprintf(v, sizeof v, "%d", r->job.tokens.n);
        MHD_add_response_header(resp, "x-compute-tokens", v);
    }
    if (!atomic_load(&r->srv->ready))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close"); /* draining */
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->status = (int)status;
        /* Counted now, not once sent: a client that has its answer finds it in /metrics. */
        metrics_request(r->srv->d.metrics, r->route, r->method, r->status, monotonic_seconds() - r->t_start);
    }
    return ret;
}

static enum MHD_Result respond_json(struct request *r, unsigned status, cJSON *obj, const char *extra_name,
                                    const char *extra_value)
{
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    return respond(r, status, s, s ? strlen(s) : 0, "application/json", extra_name, extra_value);
}

/* TEI's error shape: {"error": "one sentence", "error_type": "..."}. */
static enum MHD_Result respond_error(struct request *r, unsigned status, const char *type, const char *extra_name,
                                     const char *extra_value, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static enum MHD_Result respond_error(struct request *r, unsigned status, const char *type, const char *extra_name,
                                     const char *extra_value, const char *fmt, ...)
{
    char msg[BS_ERR_LEN + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddStringToObject(o, "error", msg) || !cJSON_AddStringToObject(o, "error_type", type))) {
        cJSON_Delete(o);
        o = NULL;
    }
    return respond_json(r, status, o, extra_name, extra_value);
}

#define ERR(r, status, type, ...) respond_error(r, status, type, NULL, NULL, __VA_ARGS__)

/* ---- GET routes ----------------------------------------------------------------------- */

static enum MHD_Result handle_info(struct request *r)
{
    const struct http_deps *d = &r->srv->d;
    const bert_config *c = &d->model->cfg;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", d->cfg->model);
    cJSON *labels = cJSON_AddArrayToObject(o, "labels");
    for (int k = 0; k < c->n_labels; k++)
        cJSON_AddItemToArray(labels, cJSON_CreateString(c->labels[k]));
    cJSON_AddBoolToObject(o, "multi_label", c->multi_label);
    cJSON_AddNumberToObject(o, "max_tokens", d->max_len);
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_positions);
    cJSON_AddNumberToObject(o, "layers", c->n_layers);
    cJSON_AddNumberToObject(o, "hidden_size", c->hidden);
    cJSON_AddNumberToObject(o, "attention_heads", c->n_heads);
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddStringToObject(o, "weights_dtype", d->model->weights_dtype);
    cJSON_AddStringToObject(o, "compute_dtype", "F32");
    pthread_mutex_lock(&r->srv->info_lock);
    cJSON_AddStringToObject(o, "weights_sha256", r->srv->weights_sha256);
    pthread_mutex_unlock(&r->srv->info_lock);
    cJSON_AddStringToObject(o, "version", config_version());
    cJSON_AddStringToObject(o, "build", config_build_info());
    cJSON_AddStringToObject(o, "gemm_kernel", gemm_kernel_name());
    cJSON_AddNumberToObject(o, "workers", d->cfg->workers);
    cJSON_AddNumberToObject(o, "threads_per_worker", d->threads_per_worker);
    cJSON_AddNumberToObject(o, "cpus", d->cpus);
    cJSON_AddStringToObject(o, "cpu_source", d->cpu_source ? d->cpu_source : "");
    cJSON_AddNumberToObject(o, "max_texts", d->cfg->max_texts);
    cJSON_AddNumberToObject(o, "max_body_bytes", (double)d->cfg->max_body_bytes);
    cJSON_AddNumberToObject(o, "max_concurrent_requests", d->cfg->max_concurrent_requests);
    cJSON_AddNumberToObject(o, "max_batch_tokens", d->cfg->max_batch_tokens);
    cJSON_AddNumberToObject(o, "max_batch_requests", d->cfg->max_batch_requests);
    cJSON_AddNumberToObject(o, "batch_wait_us", d->cfg->batch_wait_us);
    return respond_json(r, MHD_HTTP_OK, o, NULL, NULL);
}

static enum MHD_Result handle_get(struct request *r)
{
    http_server *s = r->srv;
    switch (r->route) {
    case ROUTE_HEALTH: { /* liveness: the model stays loaded; the workers must keep making progress */
        double stalled = batcher_stalled_seconds(s->d.pool);
        int limit = s->d.cfg->stall_seconds;
        if (limit > 0 && stalled >= limit) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "status", "stalled");
            cJSON_AddNumberToObject(o, "stalled_seconds", stalled);
            return respond_json(r, MHD_HTTP_SERVICE_UNAVAILABLE, o, NULL, NULL);
        }
        return respond_json(r, MHD_HTTP_OK, cJSON_Parse("{\"status\":\"ok\"}"), NULL, NULL);
    }
    case ROUTE_READY:
        if (atomic_load(&s->ready))
            return respond_json(r, MHD_HTTP_OK, cJSON_Parse("{\"status\":\"ready\"}"), NULL, NULL);
        return respond_json(r, MHD_HTTP_SERVICE_UNAVAILABLE, cJSON_Parse("{\"status\":\"draining\"}"), NULL, NULL);
    case ROUTE_INFO:
        return handle_info(r);
    case ROUTE_METRICS: {
        size_t len = 0;
        char *text = metrics_render(s->d.metrics, &len);
        return respond(r, MHD_HTTP_OK, text, len, "text/plain; version=0.0.4; charset=utf-8", NULL, NULL);
    }
    default:
        return ERR(r, MHD_HTTP_NOT_FOUND, "not_found", "no such route");
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

/* Tokenizes every input into the job's packed arrays. */
static int tokenize_inputs(struct request *r, struct request_error *f)
{
    const struct http_deps *d = &r->srv->d;
    const struct predict_request *q = &r->req;
    encoding e = {0};
    int rc = 0;
    struct job *j = &r->job;
    r->tokens = calloc((size_t)q->n, sizeof *r->tokens);
    r->truncated = calloc((size_t)q->n, sizeof *r->truncated);
    j->lens = calloc((size_t)q->n, sizeof *j->lens);
    j->logits = calloc((size_t)q->n * (size_t)d->model->cfg.n_labels, sizeof *j->logits);
    if (!r->tokens || !r->truncated || !j->lens || !j->logits)
        return request_fail(f, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
    char err[BS_ERR_LEN];
    const char *what = q->shape == SHAPE_TEXT ? "\"text\"" : q->shape == SHAPE_TEXTS ? "texts" : "inputs";
    bool indexed = q->shape == SHAPE_TEXTS || q->shape == SHAPE_TEI_BATCH;
    for (int i = 0; i < q->n && rc == 0; i++) {
        char where[48];
        if (indexed)
            snprintf(where, sizeof where, "%s[%d]", what, i);
        else
            snprintf(where, sizeof where, "%s", what);
        const char *pair = q->pairs[i];
        if (tokenizer_encode_truncating(d->tok, q->texts[i], strlen(q->texts[i]), pair, pair ? strlen(pair) : 0,
                                        d->max_len, q->truncate_side, &e, err)) {
            rc = request_fail(f, 422, "validation", "%s: %s", where, err);
            break;
        }
        /* Nothing but [CLS] [SEP] (and [SEP]): empty, whitespace or only ignorable characters. */
        if (e.n_untruncated <= (pair ? 3 : 2)) {
            rc = request_fail(f, 422, "validation", "%s is empty or only whitespace", where);
            break;
        }
        if (e.truncated && !q->truncate) {
            rc = request_fail(f, 413, "validation",
                              "%s is %d tokens, over the limit of %d tokens; send \"truncate\": true to truncate it",
                              where, e.n_untruncated, d->max_len);
            break;
        }
        if (packed_tokens_append(&j->tokens, &e)) {
            rc = request_fail(f, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
            break;
        }
        j->lens[i] = e.n;
        r->tokens[i] = e.n;
        r->truncated[i] = e.truncated;
    }
    j->n_seqs = q->n;
    encoding_free(&e);
    return rc;
}

/* ---- /predict: the answer ------------------------------------------------------------- */

static cJSON *result_object(struct request *r, int i, float *probs_out, int *best_out)
{
    const bert_model *m = r->srv->d.model;
    const float *logits = r->job.logits + (size_t)i * (size_t)m->cfg.n_labels;
    float probs[BERT_MAX_LABELS];
    int best = prediction_compute(m, logits, probs);
    *best_out = best;
    memcpy(probs_out, probs, (size_t)m->cfg.n_labels * sizeof *probs);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "text", r->req.texts[i]);
    if (r->req.pairs[i])
        cJSON_AddStringToObject(o, "text_pair", r->req.pairs[i]);
    cJSON_AddStringToObject(o, "prediction", m->cfg.labels[best]);
    cJSON_AddNumberToObject(o, "confidence", probs[best]);
    json_add_number_map(o, "scores", m->cfg.labels, probs, m->cfg.n_labels);
    cJSON_AddNumberToObject(o, "tokens", r->tokens[i]);
    cJSON_AddBoolToObject(o, "truncated", r->truncated[i]);
    return o;
}

/* TEI: [{"label", "score"}, ...] by score, highest first; logits when raw_scores. */
static cJSON *tei_list(struct request *r, int i, float *probs_out, int *best_out)
{
    const bert_model *m = r->srv->d.model;
    int L = m->cfg.n_labels;
    const float *logits = r->job.logits + (size_t)i * (size_t)L;
    *best_out = prediction_compute(m, logits, probs_out);
    const float *values = r->req.raw_scores ? logits : probs_out;
    int order[BERT_MAX_LABELS];
    prediction_order(values, L, order);
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < L; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "label", m->cfg.labels[order[k]]);
        cJSON_AddNumberToObject(o, "score", values[order[k]]);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static enum MHD_Result predict_answer(struct request *r)
{
    http_server *s = r->srv;
    struct job *j = &r->job;
    if (j->status)
        return ERR(r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "%s", j->err);
    metrics_job(s->d.metrics, j->t_started - j->t_queued, r->tokenize_s, j->t_finished - j->t_started, r->req.n);
    cJSON *out = NULL, *list = NULL;
    enum predict_shape shape = r->req.shape;
    if (shape == SHAPE_TEXTS) {
        out = cJSON_CreateObject();
        list = cJSON_AddArrayToObject(out, "results");
    } else if (shape == SHAPE_TEI_BATCH) {
        out = list = cJSON_CreateArray();
    }
    for (int i = 0; i < r->req.n; i++) {
        float probs[BERT_MAX_LABELS];
        int best;
        cJSON *item = shape == SHAPE_TEXT || shape == SHAPE_TEXTS ? result_object(r, i, probs, &best)
                                                                  : tei_list(r, i, probs, &best);
        metrics_text(s->d.metrics, r->tokens[i]);
        metrics_prediction(s->d.metrics, best, probs[best]);
        if (list)
            cJSON_AddItemToArray(list, item);
        else
            out = item;
    }
    if (shape == SHAPE_TEXT || shape == SHAPE_TEXTS)
        cJSON_AddNumberToObject(out, "processing_time_ms", (monotonic_seconds() - r->t_start) * 1000.0);
    return respond_json(r, MHD_HTTP_OK, out, NULL, NULL);
}

/* Runs on a compute worker: hand the connection back to libmicrohttpd. */
static void job_done(struct job *j, void *arg)
{
    (void)j;
    struct request *r = arg;
    metrics_queue_depth(r->srv->d.metrics, -1);
    atomic_store(&r->finished, true);
    MHD_resume_connection(r->conn);
}

static enum MHD_Result predict_body_complete(struct request *r)
{
    http_server *s = r->srv;
    double t0 = monotonic_seconds();
    struct predict_limits limits = {.max_texts = s->d.cfg->max_texts};
    struct request_error f;
    if (predict_request_parse(r->body, r->len, &limits, &r->req, &f) || tokenize_inputs(r, &f))
        return ERR(r, f.status, f.type, "%s", f.msg);
    r->tokenize_s = monotonic_seconds() - t0;
    free(r->body); /* the texts live in r->req.root; the raw body is no longer needed */
    r->body = NULL;
    r->job.done = job_done;
    r->job.arg = r;
    if (!batcher_reserve(s->d.pool))
        return respond_error(r, MHD_HTTP_TOO_MANY_REQUESTS, "overloaded", MHD_HTTP_HEADER_RETRY_AFTER, "1",
                             "the server is busy: %d requests are already queued; retry later",
                             s->d.cfg->max_concurrent_requests);
    /* Suspend before enqueueing, so the worker can never resume a connection that is not yet
     * suspended. */
    r->submitted = true;
    metrics_queue_depth(s->d.metrics, +1);
    MHD_suspend_connection(r->conn);
    batcher_enqueue(s->d.pool, &r->job);
    return MHD_YES;
}

/* ---- the access handler ------------------------------------------------------------------ */

static enum metrics_route route_of(const char *url)
{
    static const struct {
        const char *path;
        enum metrics_route route;
    } routes[] = {{"/predict", ROUTE_PREDICT}, {"/health", ROUTE_HEALTH}, {"/ready", ROUTE_READY},
                  {"/info", ROUTE_INFO},       {"/metrics", ROUTE_METRICS}};
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    http_server *s = cls;
    struct request *r = *con_cls;
    if (!r) { /* headers are in; the body (if any) follows in later calls */
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        r->srv = s;
        r->conn = conn;
        r->t_start = monotonic_seconds();
        r->route = route_of(url);
        snprintf(r->method, sizeof r->method, "%s", method);
        request_id(s, conn, r->id);
        atomic_fetch_add(&s->in_flight, 1);
        metrics_in_flight(s->d.metrics, +1);

        /* With --metrics-port, /metrics lives there alone (e.g. kept off a public Service). */
        if (s->mhd_metrics) {
            const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
            bool on_metrics_port = ci && ci->daemon == s->mhd_metrics;
            if (on_metrics_port && r->route != ROUTE_METRICS)
                return ERR(r, MHD_HTTP_NOT_FOUND, "not_found", "only /metrics is served on this port");
            if (!on_metrics_port && r->route == ROUTE_METRICS)
                return ERR(r, MHD_HTTP_NOT_FOUND, "not_found", "/metrics is served on port %d", s->metrics_port);
        }

        /* Other routes answer once the request is complete: answering while the (empty) body
         * is still due makes libmicrohttpd close the connection instead of keeping it alive. */
        if (r->route != ROUTE_PREDICT) {
            /* No other route reads a body: refuse a large one now rather than drain it. */
            const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (cl && strtoull(cl, NULL, 10) > (unsigned long long)s->d.cfg->max_body_bytes)
                return ERR(r, 413, "payload_too_large", "the request body is %s bytes, over the limit of %ld bytes",
                           cl, s->d.cfg->max_body_bytes);
            return MHD_YES;
        }
        if (s->d.cfg->api_key &&
            !bearer_matches(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                            s->d.cfg->api_key))
            return respond_error(r, MHD_HTTP_UNAUTHORIZED, "unauthorized", MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer",
                                 "/predict needs the header \"Authorization: Bearer <API key>\"");
        if (strcmp(method, "POST"))
            return respond_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", MHD_HTTP_HEADER_ALLOW, "POST",
                                 "%s is not allowed on /predict; use POST", method);
        if (!atomic_load(&s->ready))
            return ERR(r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "the server is shutting down");
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!json_content_type(ct))
            return ERR(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                       "Content-Type must be application/json (charset utf-8), not %s", ct ? ct : "missing");
        /* Refuse an oversized body before reading any of it. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        long max = s->d.cfg->max_body_bytes;
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || n > (unsigned long long)max)
                return ERR(r, 413, "payload_too_large",
                           "the request body is %s bytes, over the limit of %ld bytes", cl, max);
            if (n > 0 && !(r->body = malloc((size_t)n + 1)))
                return ERR(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
            r->cap = n + 1;
        }
        return MHD_YES;
    }

    if (r->status || r->route != ROUTE_PREDICT) { /* answered (e.g. 413 mid-body), or a body
                                                   * nobody reads: discard it */
        if (*upload_data_size > 0 || r->status) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (r->route == ROUTE_OTHER)
            return ERR(r, MHD_HTTP_NOT_FOUND, "not_found",
                       "no route %s (see README: /predict, /health, /ready, /info, /metrics)", url);
        if (strcmp(method, "GET") && strcmp(method, "HEAD"))
            return respond_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", MHD_HTTP_HEADER_ALLOW,
                                 "GET, HEAD", "%s is not allowed on %s; use GET", method, url);
        return handle_get(r);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        long max = s->d.cfg->max_body_bytes;
        if (r->len + n > (size_t)max) { /* chunked (or lying) body over the limit */
            free(r->body);
            r->body = NULL;
            r->len = 0;
            if (ERR(r, 413, "payload_too_large",
                    "the request body is over the limit of %ld bytes", max) != MHD_YES)
                return MHD_NO; /* cannot answer mid-body: close the connection instead */
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = (r->len + n + 1) * 2;
            if (cap > (size_t)max + 1)
                cap = (size_t)max + 1;
            char *b = realloc(r->body, cap);
            if (!b)
                return MHD_NO;
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    /* The whole body is in (or the job finished and the connection was resumed). */
    if (!r->submitted)
        return predict_body_complete(r);
    if (atomic_load(&r->finished))
        return predict_answer(r);
    return MHD_YES;
}

static cJSON *json_texts(const struct request *r)
{
    cJSON *a = cJSON_CreateArray();
    const struct predict_request *q = &r->req;
    for (int i = 0; i < q->n; i++) {
        if (q->pairs[i]) {
            const char *both[2] = {q->texts[i], q->pairs[i]};
            cJSON_AddItemToArray(a, cJSON_CreateStringArray(both, 2));
        } else {
            cJSON_AddItemToArray(a, cJSON_CreateString(q->texts[i]));
        }
    }
    return a;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    http_server *s = cls;
    struct request *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    double seconds = monotonic_seconds() - r->t_start;
    /* 499 (nginx's "client closed request") when the client left before any answer; an
     * answered request was counted when its response was queued. */
    int status = r->status ? r->status : 499;
    if (!r->status)
        metrics_request(s->d.metrics, r->route, r->method, status, seconds);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "method", r->method);
    cJSON_AddStringToObject(f, "route", metrics_route_name(r->route));
    cJSON_AddNumberToObject(f, "status", status);
    cJSON_AddNumberToObject(f, "duration_ms", seconds * 1000.0);
    cJSON_AddNumberToObject(f, "tokens", r->job.tokens.n);
    cJSON_AddStringToObject(f, "request_id", r->id);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        cJSON_AddBoolToObject(f, "aborted", true);
    if (s->d.cfg->log_text && r->req.n > 0)
        cJSON_AddItemToObject(f, "texts", json_texts(r));
    log_event(s->d.cfg->log_json, "request", f);

    predict_request_free(&r->req);
    free(r->body);
    free(r->tokens);
    free(r->truncated);
    packed_tokens_free(&r->job.tokens);
    free(r->job.lens);
    free(r->job.logits);
    free(r);
    metrics_in_flight(s->d.metrics, -1);
    atomic_fetch_sub(&s->in_flight, 1);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

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

http_server *http_start(const struct http_deps *d, char *err)
{
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        bs_fail(err, "out of memory");
        return NULL;
    }
    s->d = *d;
    pthread_mutex_init(&s->info_lock, NULL);
    snprintf(s->weights_sha256, sizeof s->weights_sha256, "pending");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->id_seed = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
    s->listen_fd = listen_on(d->cfg->host, d->cfg->port, &s->port, err);
    if (s->listen_fd < 0) {
        pthread_mutex_destroy(&s->info_lock);
        free(s);
        return NULL;
    }
    atomic_store(&s->ready, true);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
                              MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)d->cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)d->cfg->timeout_seconds, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_END);
    if (!s->mhd) {
        bs_fail(err, "cannot start the HTTP server on %s port %d", d->cfg->host, s->port);
        close(s->listen_fd);
        pthread_mutex_destroy(&s->info_lock);
        free(s);
        return NULL;
    }
    s->metrics_fd = -1;
    if (d->cfg->metrics_port >= 0) {
        s->metrics_fd = listen_on(d->cfg->host, d->cfg->metrics_port, &s->metrics_port, err);
        if (s->metrics_fd >= 0)
            s->mhd_metrics = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0,
                                              NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, s->metrics_fd,
                                              MHD_OPTION_CONNECTION_LIMIT, 64U, MHD_OPTION_CONNECTION_TIMEOUT,
                                              (unsigned)d->cfg->timeout_seconds, MHD_OPTION_NOTIFY_COMPLETED,
                                              on_completed, s, MHD_OPTION_END);
        if (!s->mhd_metrics) {
            if (s->metrics_fd >= 0) {
                bs_fail(err, "cannot start the metrics server on %s port %d", d->cfg->host, s->metrics_port);
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

void http_set_weights_sha256(http_server *s, const char *value)
{
    pthread_mutex_lock(&s->info_lock);
    snprintf(s->weights_sha256, sizeof s->weights_sha256, "%s", value);
    pthread_mutex_unlock(&s->info_lock);
}

void http_drain(http_server *s)
{
    atomic_store(&s->ready, false);
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    s->listen_fd = -1;
}

bool http_wait_idle(http_server *s, double deadline)
{
    while (atomic_load(&s->in_flight) > 0) {
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
    pthread_mutex_destroy(&s->info_lock);
    free(s);
}
