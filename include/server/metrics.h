/* The Prometheus registry of the daemon and its text exposition (format 0.0.4). Thread-safe:
 * HTTP threads and compute workers record into it, /metrics renders it. */
#ifndef METRICS_H
#define METRICS_H

#include "engine/model.h"

#include <stddef.h>

/* Routes are a closed set so that a scan of random URLs cannot grow the label space. */
enum metrics_route {
    ROUTE_PREDICT, ROUTE_HEALTH, ROUTE_READY, ROUTE_INFO, ROUTE_METRICS, ROUTE_TOKENIZE, ROUTE_BATCH_PREDICT,
    ROUTE_OTHER, ROUTE_COUNT
};
const char *metrics_route_name(enum metrics_route r);

typedef struct metrics metrics;

/* What bertserve_model_info says about the model served; bertserve_predictions_total carries
 * model_version too. */
struct metrics_model_facts {
    const char *model;         /* its directory */
    const char *version;       /* bertserve's */
    const char *precision;     /* the compute dtype: "f32", "bf16" */
    const char *kernel;        /* the encoder products' kernel, e.g. "avx512-bf16" */
    const char *model_version; /* model_version.h */
};

/* labels: the model's labels (predictions_total has one series each, present from the start).
 * NULL when out of memory. */
metrics *metrics_create(const bert_config *labels, const struct metrics_model_facts *facts);
void metrics_free(metrics *m);

/* One finished HTTP request (method is normalized to a known one or "OTHER"). */
void metrics_request(metrics *m, enum metrics_route route, const char *method, int code, double seconds);
void metrics_in_flight(metrics *m, int delta);
void metrics_queue_depth(metrics *m, int delta);
/* One /predict job's stages, and its texts. */
void metrics_job(metrics *m, double queue_s, double tokenize_s, double inference_s, int n_texts);
void metrics_text(metrics *m, int tokens);
/* One batch run by a compute worker (a batcher_settings.on_batch callback; arg is the metrics). */
void metrics_batch(void *m, int n_texts, int n_tokens, double seconds);
void metrics_prediction(metrics *m, int label, double confidence);

/* The exposition as a heap string (free() it), *len its length; NULL when out of memory. */
char *metrics_render(metrics *m, size_t *len);

#endif
