/* The Prometheus registry of the daemon and its text exposition (format 0.0.4). Thread-safe:
 * HTTP threads and compute workers record into it, /metrics renders it. */
#ifndef METRICS_H
#define METRICS_H

#include "engine/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Routes are a closed set so that a scan of random URLs cannot grow the label space. */
enum metrics_route {
    ROUTE_PREDICT, ROUTE_HEALTH, ROUTE_READY, ROUTE_INFO, ROUTE_METRICS, ROUTE_TOKENIZE, ROUTE_BATCH_PREDICT,
    ROUTE_ADMIN_RELOAD, ROUTE_FEEDBACK, ROUTE_PLAYGROUND, ROUTE_OPENAPI,
    /* KServe v2 (v2_path.h); the /versions/{version} forms count with these */
    ROUTE_V2_SERVER, ROUTE_V2_LIVE, ROUTE_V2_READY, ROUTE_V2_MODEL, ROUTE_V2_MODEL_READY, ROUTE_V2_INFER,
    ROUTE_OTHER, ROUTE_COUNT
};
const char *metrics_route_name(enum metrics_route r);

typedef struct metrics metrics;

/* What bertserve_model_info says about the model served; bertserve_predictions_total carries
 * model_version too. */
struct metrics_model_facts {
    const char *model;         /* its directory */
    const char *precision;     /* the compute dtype: "f32", "bf16" */
    const char *kernel;        /* the encoder products' kernel, e.g. "avx512-bf16" */
    const char *model_version; /* model_version.h */
};

/* Empty: no model yet (metrics_set_model); version is bertserve's. NULL when out of memory. */
metrics *metrics_create(const char *version);

/* Which series a model's predictions count in (bertserve_predictions_total{model_version}). */
struct metrics_series {
    int slot;
    unsigned gen;
};

/* The model served from now on: bertserve_model_info says it, and its predictions count in the
 * series *series names (present from the start, one per label; the same series again for the
 * same version and labels). Series of earlier versions stay, up to eight in all. -1 when out of
 * memory (nothing changed). */
int metrics_set_model(metrics *m, const bert_config *labels, const struct metrics_model_facts *facts,
                      struct metrics_series *series);

/* One reload attempt: bertserve_model_reloads_total{result} and its duration. */
void metrics_reload(metrics *m, bool ok, double seconds);
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
/* A prediction of label (an index into the series' model's labels); one of a series dropped since
 * is not counted. */
void metrics_prediction(metrics *m, struct metrics_series series, int label, double confidence);

/* One answered text's drift signals: the share of its tokens (the [CLS]/[SEP] the model adds left
 * out) that are [UNK], and whether it was truncated (bertserve_unk_token_share,
 * bertserve_truncated_texts_total). */
void metrics_text_drift(metrics *m, double unk_share, bool truncated);

/* Feedback (POST /feedback, issue 21). The label space of bertserve_feedback_total is the
 * labels of the series metrics tracks: a feedback names a label of the model version that
 * made the prediction, or it is refused. */
enum feedback_unmatched {
    FEEDBACK_UNKNOWN_ID, /* no prediction with that request id in the window: never made, or forgotten */
    FEEDBACK_BAD_LABEL,  /* not a label of the model version that made the prediction */
    FEEDBACK_BAD_INDEX,  /* the request had fewer texts */
    FEEDBACK_DUPLICATE,  /* the prediction already had a feedback: the first stands */
    FEEDBACK_REASON_COUNT
};
const char *metrics_feedback_reason_name(enum feedback_unmatched r);

/* The index of label among series' labels: -1 if it is none of them (then labels_out, if not
 * NULL, receives them as "a, b, c", cut to cap bytes); -2 if the series was dropped since. */
int metrics_label_index(metrics *m, struct metrics_series series, const char *label, char *labels_out, size_t cap);

/* The names of a feedback's model version and labels as heap strings (free() them); actual
 * may be -1 (*actual_name NULL then). -1 when the series was dropped or out of memory (all
 * NULL). */
int metrics_feedback_names(metrics *m, struct metrics_series series, int predicted, int actual, char **version,
                           char **predicted_name, char **actual_name);

/* One feedback matched: bertserve_feedback_total{predicted, actual, model_version}. */
void metrics_feedback(metrics *m, struct metrics_series series, int predicted, int actual);
/* One feedback not counted: bertserve_feedback_unmatched_total{reason}. */
void metrics_feedback_unmatched(metrics *m, enum feedback_unmatched reason);

/* The prediction log (prediction_log.h): lines written, lines dropped
 * (bertserve_prediction_log_lines_total, bertserve_prediction_log_dropped_total). */
void metrics_prediction_log(metrics *m, uint64_t written, uint64_t dropped);

/* The exposition as a heap string (free() it), *len its length; NULL when out of memory. */
char *metrics_render(metrics *m, size_t *len);

#endif
