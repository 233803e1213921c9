/* The service between the HTTP transport and the batcher, as text-embeddings-inference's
 * core/infer.rs sits between its router and its backends: a /predict body in; parsing
 * (request.h), tokenization, a job for the batcher; and the answer in the request's shape out
 * (ours or TEI's), with the prediction metrics. It knows nothing of HTTP: a refusal is an error
 * kind (errors.h) that the transport maps to a status. */
#ifndef INFER_H
#define INFER_H

#include "engine/model.h"
#include "server/batcher.h"
#include "server/config.h"
#include "server/errors.h"
#include "server/metrics.h"
#include "server/prediction_log.h"
#include "server/prediction_table.h"
#include "server/request.h"
#include "server/served_model.h"
#include "text/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

/* What the service runs on, owned by main: the model served now (a reload swaps it: each call
 * keeps the model it was tokenized for, served_model.h), the batcher, the metrics, the reloader,
 * and the facts /info and the startup log report. */
struct reloader;
struct infer_service {
    const struct config *cfg;
    model_slot *models;
    batcher *batcher;
    metrics *metrics;
    struct reloader *reloader; /* reload.h */
    prediction_table *predictions; /* the recent predictions /feedback scores (--feedback-window) */
    prediction_log *prediction_log; /* --prediction-log, or NULL */
    int threads_per_worker; /* forward-pass threads of each compute worker */
    int cpus;               /* CPUs the workers share, and how that was decided (cpu_budget.h) */
    const char *cpu_source;
};

/* One /predict call, from its body to its answer. */
typedef struct infer_call infer_call;

/* A new call; t_arrived (monotonic seconds) is when the request arrived: the answer's
 * processing_time_ms counts from it. request_id (at most PREDICTION_ID_MAX characters, longer
 * is cut) is the id the answer goes out under: its predictions are recorded under it for
 * /feedback. NULL when out of memory. Free it with infer_free. */
infer_call *infer_new(const struct infer_service *s, double t_arrived, const char *request_id);

/* Parses body (len bytes, not NUL-terminated, rewritten in place and not kept) as route's body
 * (REQUEST_PREDICT or REQUEST_BATCH_PREDICT, request.h) and tokenizes every input. -1 with e:
 * ERROR_INVALID_JSON, ERROR_VALIDATION, ERROR_TEXT_TOO_LONG or ERROR_INTERNAL; the call then
 * still holds the inputs it parsed, for the request log. */
int infer_prepare(infer_call *c, char *body, size_t len, enum request_route route, struct service_error *e);

/* Queues the call's texts for the batcher. Once the call is admitted, admitted(arg) runs
 * first, on this thread (the transport suspends its connection there, so that done can never
 * resume a connection not yet suspended); done(arg) runs later, once, on a compute worker (or on
 * the thread stopping the batcher). -1 with ERROR_OVERLOADED when the queue is full or stopping. */
int infer_submit(infer_call *c, void (*admitted)(void *arg), void (*done)(void *arg), void *arg,
                 struct service_error *e);

/* True once done has been called: the answer is ready. */
bool infer_finished(const infer_call *c);

/* The answer in the request's shape, after done; records the prediction metrics and each
 * text's prediction in the service's prediction table. NULL with e:
 * ERROR_UNAVAILABLE when the job was cancelled (shutting down), ERROR_INTERNAL. */
cJSON *infer_answer(infer_call *c, struct service_error *e);

/* A finished call's stages in seconds, for TEI's timing headers; false before done. */
struct infer_timing {
    double tokenize, queue, inference;
    int compute_tokens; /* tokens the model ran, after truncation */
};
bool infer_timing(const infer_call *c, struct infer_timing *t);

/* The version of the model that answers the call (model_version.h), for X-Model-Version. */
const char *infer_model_version(const infer_call *c);

/* Starts serving m (taking over the caller's reference): its predictions get their own series
 * in the metrics, then new calls go to it. *replaced receives the model it replaces (NULL at
 * startup), still held for the caller, whose calls in flight finish on it. -1 with err when out
 * of memory (nothing changed, m still the caller's). */
int infer_serve_model(const struct infer_service *s, served_model *m, served_model **replaced, char *err);

/* Tokens handed to the model so far (0 before tokenization), for the request log. */
int infer_tokens(const infer_call *c);
/* The inputs as a JSON array (a text, or [text, pair]), for --log-text; NULL if none. */
cJSON *infer_inputs_json(const infer_call *c);
void infer_free(infer_call *c);

/* Seconds the batcher has been busy without progress (/health's liveness signal). */
double infer_stalled_seconds(const struct infer_service *s);

/* The facts of the model served now: its version, shape and labels, the kernel, the CPUs and
 * the batching settings. One description for the `loaded` log line and /info. NULL when out of
 * memory. */
cJSON *infer_describe(const struct infer_service *s);

/* ---- KServe v2 / Open Inference Protocol ---- */

/* The v2 protocol's name of model m: --model-name, else its directory's last component
 * ("/models/finsent-mini/" is "finsent-mini"), at most cap - 1 bytes. */
void infer_v2_model_name(const struct infer_service *s, const served_model *m, char *out, size_t cap);
/* True if name (and version, when not NULL or "") is the model the call runs on. */
bool infer_v2_call_model_is(const infer_call *c, const char *name, const char *version);
/* The same for the model served now (GET /v2/models/{name}[/versions/{version}][/ready]). */
bool infer_v2_model_is(const struct infer_service *s, const char *name, const char *version);
/* GET /v2/models/{name}: {"name", "versions", "platform", "inputs", "outputs"}; NULL when out of
 * memory. */
cJSON *infer_v2_model_metadata(const struct infer_service *s);

#endif
