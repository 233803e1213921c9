#include "server/infer.h"

#include "common/clock.h"
#include "common/json_text.h"
#include "engine/gemm.h"
#include "engine/gemm_amx.h"
#include "engine/predict.h"
#include "server/request.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct infer_call {
    const struct infer_service *svc;
    served_model *m; /* the model served when the call arrived, held until infer_free */
    struct predict_request req; /* the parsed body (request.h) */
    double t_arrived, tokenize_s;
    char request_id[PREDICTION_ID_MAX + 1];
    int *tokens;     /* per input, after truncation */
    float *unk_share; /* per input: [UNK] among its tokens, [CLS]/[SEP] left out */
    bool *truncated; /* per input */
    bool submitted;
    atomic_bool finished; /* set by the worker before it calls done */
    void (*done)(void *arg);
    void *arg;
    struct job job;
};

/* ---- tokenization -------------------------------------------------------------------------- */

static int alloc_outputs(infer_call *c, struct service_error *e)
{
    int n = c->req.n;
    struct job *j = &c->job;
    c->tokens = calloc((size_t)n, sizeof *c->tokens);
    c->truncated = calloc((size_t)n, sizeof *c->truncated);
    c->unk_share = calloc((size_t)n, sizeof *c->unk_share);
    j->lens = calloc((size_t)n, sizeof *j->lens);
    j->logits = calloc((size_t)n * (size_t)c->m->model->cfg.n_labels, sizeof *j->logits);
    if (!c->tokens || !c->truncated || !c->unk_share || !j->lens || !j->logits)
        return service_fail(e, ERROR_INTERNAL, "out of memory");
    j->n_seqs = n;
    return 0;
}

/* The share of enc's tokens that are unk_id, the special tokens the model adds left out. */
static float unk_share(const encoding *enc, int unk_id)
{
    int words = 0, unknown = 0;
    for (int k = 0; k < enc->n; k++) {
        if (enc->spans[k].special)
            continue;
        words++;
        unknown += enc->ids[k] == unk_id;
    }
    return words ? (float)unknown / (float)words : 0.0f;
}

/* Tokenizes input i into the job's packed arrays. where names it in messages; unk_id is the
 * vocabulary's [UNK] (-1: none). */
static int tokenize_input(infer_call *c, int i, const char *where, int unk_id, encoding *enc,
                          struct service_error *e)
{
    const served_model *m = c->m;
    const struct predict_request *q = &c->req;
    const char *text = q->texts[i], *pair = q->pairs[i];
    size_t len = strlen(text), pair_len = pair ? strlen(pair) : 0;
    char err[BS_ERR_LEN];
    if (any_tokenizer_encode(m->tok, text, len, pair, pair_len, m->max_len, q->truncate_side, enc, err))
        return service_fail(e, ERROR_VALIDATION, "%s: %s", where, err);
    /* Nothing but [CLS] [SEP] (and [SEP]): empty, whitespace or only ignorable characters. BPE
     * spells whitespace with tokens of its own: it is refused by its text. */
    if (enc->n_untruncated <= any_tokenizer_special_tokens(m->tok, pair != NULL) ||
        (any_tokenizer_blank(text, len) && (!pair || any_tokenizer_blank(pair, pair_len))))
        return service_fail(e, ERROR_VALIDATION, "%s is empty or only whitespace", where);
    if (enc->truncated && !q->truncate)
        return service_fail(e, ERROR_TEXT_TOO_LONG,
                            "%s is %d tokens, over the limit of %d tokens; send \"truncate\": true to truncate it",
                            where, enc->n_untruncated, m->max_len);
    if (packed_tokens_append(&c->job.tokens, enc))
        return service_fail(e, ERROR_INTERNAL, "out of memory");
    c->job.lens[i] = enc->n;
    c->tokens[i] = enc->n;
    c->truncated[i] = enc->truncated;
    c->unk_share[i] = unk_id >= 0 ? unk_share(enc, unk_id) : 0.0f;
    return 0;
}

static int tokenize_inputs(infer_call *c, struct service_error *e)
{
    if (alloc_outputs(c, e))
        return -1;
    const struct predict_request *q = &c->req;
    const char *what = q->shape == SHAPE_TEXT    ? "\"text\""
                       : q->shape == SHAPE_TEXTS ? "texts"
                       : q->shape == SHAPE_V2    ? "data"
                                                 : "inputs";
    bool indexed = q->shape == SHAPE_TEXTS || q->shape == SHAPE_TEI_BATCH || q->shape == SHAPE_V2;
    encoding enc = {0};
    int rc = 0;
    /* WordPiece maps unknown words to its unk_token ([UNK]); byte-level BPE has none (-1). */
    int unk_id = any_tokenizer_unk_id(c->m->tok);
    for (int i = 0; i < q->n && rc == 0; i++) {
        char where[48];
        if (indexed)
            snprintf(where, sizeof where, "%s[%d]", what, i);
        else
            snprintf(where, sizeof where, "%s", what);
        rc = tokenize_input(c, i, where, unk_id, &enc, e);
    }
    encoding_free(&enc);
    return rc;
}

infer_call *infer_new(const struct infer_service *s, double t_arrived, const char *request_id)
{
    infer_call *c = calloc(1, sizeof *c);
    if (c) {
        c->svc = s;
        snprintf(c->request_id, sizeof c->request_id, "%s", request_id);
        c->m = model_slot_acquire(s->models);
        c->t_arrived = t_arrived;
    }
    return c;
}

int infer_prepare(infer_call *c, char *body, size_t len, enum request_route route, struct service_error *e)
{
    double t0 = monotonic_seconds();
    struct predict_limits limits = {.max_texts = c->svc->cfg->max_texts, .route = route};
    if (predict_request_parse(body, len, &limits, &c->req, e) || tokenize_inputs(c, e))
        return -1;
    c->tokenize_s = monotonic_seconds() - t0;
    return 0;
}

/* ---- the batcher ---------------------------------------------------------------------------- */

/* Runs on a compute worker once every text is done. */
static void job_done(struct job *j, void *arg)
{
    (void)j;
    infer_call *c = arg;
    metrics_queue_depth(c->svc->metrics, -1);
    atomic_store(&c->finished, true);
    c->done(c->arg);
}

int infer_submit(infer_call *c, void (*admitted)(void *arg), void (*done)(void *arg), void *arg,
                 struct service_error *e)
{
    const struct infer_service *s = c->svc;
    if (!batcher_reserve(s->batcher))
        return service_fail(e, ERROR_OVERLOADED, "the server is busy: %d requests are already queued; retry later",
                            s->cfg->max_concurrent_requests);
    c->done = done;
    c->arg = arg;
    c->job.model = c->m->model;
    c->job.done = job_done;
    c->job.arg = c;
    c->submitted = true;
    metrics_queue_depth(s->metrics, +1);
    admitted(arg);
    batcher_enqueue(s->batcher, &c->job);
    return 0;
}

bool infer_finished(const infer_call *c)
{
    return c->submitted && atomic_load(&c->finished);
}

double infer_stalled_seconds(const struct infer_service *s)
{
    return batcher_stalled_seconds(s->batcher);
}

/* ---- the answer ----------------------------------------------------------------------------- */

/* Ours: {"text", ("text_pair"), "prediction", "confidence", "scores", "tokens", "truncated"}. */
static cJSON *result_object(const infer_call *c, int i, const float *probs, int best)
{
    const bert_config *cfg = &c->m->model->cfg;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "text", c->req.texts[i]);
    if (c->req.pairs[i])
        cJSON_AddStringToObject(o, "text_pair", c->req.pairs[i]);
    cJSON_AddStringToObject(o, "prediction", cfg->labels[best]);
    cJSON_AddNumberToObject(o, "confidence", probs[best]);
    json_add_number_map(o, "scores", cfg->labels, probs, cfg->n_labels);
    cJSON_AddNumberToObject(o, "tokens", c->tokens[i]);
    cJSON_AddBoolToObject(o, "truncated", c->truncated[i]);
    return o;
}

/* TEI: [{"label", "score"}, ...] by score, highest first; logits when raw_scores. */
static cJSON *tei_list(const infer_call *c, const float *logits, const float *probs)
{
    const bert_config *cfg = &c->m->model->cfg;
    int L = cfg->n_labels;
    const float *values = c->req.raw_scores ? logits : probs;
    int order[BERT_MAX_LABELS];
    prediction_order(values, L, order);
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < L; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "label", cfg->labels[order[k]]);
        cJSON_AddNumberToObject(o, "score", values[order[k]]);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* JSON has no NaN or infinity (cJSON would print null): such a score is never answered. */
static bool all_finite(const float *v, int n)
{
    for (int k = 0; k < n; k++)
        if (!isfinite(v[k]))
            return false;
    return true;
}

/* ---- KServe v2 / Open Inference Protocol ---------------------------------------------------- */

void infer_v2_model_name(const struct infer_service *s, const served_model *m, char *out, size_t cap)
{
    if (s->cfg->model_name) {
        snprintf(out, cap, "%s", s->cfg->model_name);
        return;
    }
    const char *dir = m->dir;
    size_t end = strlen(dir);
    while (end > 1 && dir[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    size_t n = end - start < cap - 1 ? end - start : cap - 1;
    memcpy(out, dir + start, n);
    out[n] = '\0';
}

static bool model_is(const struct infer_service *s, const served_model *m, const char *name, const char *version)
{
    char own[256];
    infer_v2_model_name(s, m, own, sizeof own);
    return !strcmp(own, name) && (!version || !version[0] || !strcmp(version, m->version));
}

bool infer_v2_call_model_is(const infer_call *c, const char *name, const char *version)
{
    return model_is(c->svc, c->m, name, version);
}

bool infer_v2_model_is(const struct infer_service *s, const char *name, const char *version)
{
    served_model *m = model_slot_acquire(s->models);
    bool is = model_is(s, m, name, version);
    served_model_release(m);
    return is;
}

/* A tensor's metadata or answer: {"name", "datatype", "shape": [d0(, d1)](, "data")}. */
static cJSON *v2_tensor(const char *name, const char *datatype, int d0, int d1, cJSON *data)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddStringToObject(t, "datatype", datatype);
    cJSON *shape = cJSON_AddArrayToObject(t, "shape");
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(d0));
    if (d1)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(d1));
    if (data)
        cJSON_AddItemToObject(t, "data", data);
    return t;
}

cJSON *infer_v2_model_metadata(const struct infer_service *s)
{
    served_model *m = model_slot_acquire(s->models);
    char name[256];
    infer_v2_model_name(s, m, name, sizeof name);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON *versions = cJSON_AddArrayToObject(o, "versions");
    cJSON_AddItemToArray(versions, cJSON_CreateString(m->version));
    cJSON_AddStringToObject(o, "platform", "bertserve");
    cJSON *inputs = cJSON_AddArrayToObject(o, "inputs");
    cJSON_AddItemToArray(inputs, v2_tensor("text", "BYTES", -1, 0, NULL)); /* [n]; [n, 1], [n, 2] taken too */
    cJSON *outputs = cJSON_AddArrayToObject(o, "outputs");
    cJSON_AddItemToArray(outputs, v2_tensor("label", "BYTES", -1, 0, NULL));
    cJSON_AddItemToArray(outputs, v2_tensor("probabilities", "FP32", -1, m->model->cfg.n_labels, NULL));
    served_model_release(m);
    return o;
}

/* The v2 answer: {"model_name", "model_version", ("id"), "outputs": [the tensors asked for]}. */
static cJSON *v2_answer(const infer_call *c, cJSON *labels, cJSON *probs)
{
    char name[256];
    infer_v2_model_name(c->svc, c->m, name, sizeof name);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model_name", name);
    cJSON_AddStringToObject(o, "model_version", c->m->version);
    if (c->req.v2_id)
        cJSON_AddStringToObject(o, "id", c->req.v2_id);
    cJSON *outputs = cJSON_AddArrayToObject(o, "outputs");
    for (int k = 0; k < c->req.v2_n_outputs; k++) {
        if (c->req.v2_outputs[k] == V2_OUTPUT_LABEL) {
            cJSON_AddItemToArray(outputs, v2_tensor("label", "BYTES", c->req.n, 0, labels));
            labels = NULL;
        } else {
            cJSON_AddItemToArray(outputs, v2_tensor("probabilities", "FP32", c->req.n, c->m->model->cfg.n_labels, probs));
            probs = NULL;
        }
    }
    cJSON_Delete(labels); /* the outputs not asked for */
    cJSON_Delete(probs);
    return o;
}

/* Each input's prediction into the table /feedback scores against (never its text), and into
 * the prediction log, once the answer is built: a call answered 500 records nothing a client
 * could give feedback for. */
static void record_predictions(const infer_call *c)
{
    const bert_model *m = c->m->model;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    for (int i = 0; i < c->req.n; i++) {
        float probs[BERT_MAX_LABELS];
        int best = prediction_compute(m, c->job.logits + (size_t)i * (size_t)m->cfg.n_labels, probs);
        struct prediction p = {.index = i, .n_texts = c->req.n, .predicted = best, .actual = -1,
                               .confidence = probs[best], .time = (double)now.tv_sec + now.tv_nsec * 1e-9,
                               .series = c->m->series};
        memcpy(p.request_id, c->request_id, sizeof p.request_id);
        if (c->svc->predictions)
            prediction_table_record(c->svc->predictions, &p);
        if (c->svc->prediction_log) {
            bool text = c->svc->cfg->log_text;
            struct prediction_log_entry le = {c->request_id, c->m->version, i, m->cfg.labels, probs,
                                              m->cfg.n_labels, best, text ? c->req.texts[i] : NULL,
                                              text ? c->req.pairs[i] : NULL};
            prediction_log_record(c->svc->prediction_log, &le);
        }
    }
}

cJSON *infer_answer(infer_call *c, struct service_error *e)
{
    const struct infer_service *s = c->svc;
    const bert_model *m = c->m->model;
    struct job *j = &c->job;
    if (j->status) {
        service_fail(e, ERROR_UNAVAILABLE, "%s", j->err);
        return NULL;
    }
    metrics_job(s->metrics, j->t_started - j->t_queued, c->tokenize_s, j->t_finished - j->t_started, c->req.n);
    enum predict_shape shape = c->req.shape;
    bool ours = shape == SHAPE_TEXT || shape == SHAPE_TEXTS;
    cJSON *out = NULL, *list = NULL;
    if (shape == SHAPE_TEXTS) {
        out = cJSON_CreateObject();
        list = cJSON_AddArrayToObject(out, "results");
    } else if (shape == SHAPE_TEI_BATCH) {
        out = list = cJSON_CreateArray();
    }
    cJSON *v2_labels = shape == SHAPE_V2 ? cJSON_CreateArray() : NULL;
    cJSON *v2_probs = shape == SHAPE_V2 ? cJSON_CreateArray() : NULL;
    for (int i = 0; i < c->req.n; i++) {
        const float *logits = j->logits + (size_t)i * (size_t)m->cfg.n_labels;
        float probs[BERT_MAX_LABELS];
        int best = prediction_compute(m, logits, probs);
        if (!all_finite(logits, m->cfg.n_labels) || !all_finite(probs, m->cfg.n_labels)) {
            cJSON_Delete(out);
            cJSON_Delete(v2_labels);
            cJSON_Delete(v2_probs);
            service_fail(e, ERROR_INTERNAL, "the model computed a non-finite score for input %d", i);
            return NULL;
        }
        metrics_text(s->metrics, c->tokens[i]);
        metrics_text_drift(s->metrics, c->unk_share[i], c->truncated[i]);
        metrics_prediction(s->metrics, c->m->series, best, probs[best]);
        if (shape == SHAPE_V2) {
            cJSON_AddItemToArray(v2_labels, cJSON_CreateString(m->cfg.labels[best]));
            for (int k = 0; k < m->cfg.n_labels; k++)
                cJSON_AddItemToArray(v2_probs, cJSON_CreateNumber(probs[k]));
            continue;
        }
        cJSON *item = ours ? result_object(c, i, probs, best) : tei_list(c, logits, probs);
        if (list)
            cJSON_AddItemToArray(list, item);
        else
            out = item;
    }
    if (shape == SHAPE_V2)
        out = v2_answer(c, v2_labels, v2_probs);
    if (ours) {
        cJSON_AddStringToObject(out, "model_version", c->m->version);
        cJSON_AddNumberToObject(out, "processing_time_ms", (monotonic_seconds() - c->t_arrived) * 1000.0);
    }
    if (!out)
        service_fail(e, ERROR_INTERNAL, "out of memory");
    else
        record_predictions(c);
    return out;
}

bool infer_timing(const infer_call *c, struct infer_timing *t)
{
    if (!infer_finished(c))
        return false;
    const struct job *j = &c->job;
    t->tokenize = c->tokenize_s;
    t->queue = j->t_started - j->t_queued;
    t->inference = j->t_finished - j->t_started;
    t->compute_tokens = j->tokens.n;
    return true;
}

int infer_tokens(const infer_call *c)
{
    return c ? c->job.tokens.n : 0;
}

cJSON *infer_inputs_json(const infer_call *c)
{
    if (!c || c->req.n == 0)
        return NULL;
    cJSON *a = cJSON_CreateArray();
    const struct predict_request *q = &c->req;
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

void infer_free(infer_call *c)
{
    if (!c)
        return;
    predict_request_free(&c->req);
    free(c->tokens);
    free(c->truncated);
    free(c->unk_share);
    packed_tokens_free(&c->job.tokens);
    free(c->job.lens);
    free(c->job.logits);
    served_model_release(c->m);
    free(c);
}

const char *infer_model_version(const infer_call *c) { return c->m->version; }

int infer_serve_model(const struct infer_service *s, served_model *m, served_model **replaced, char *err)
{
    struct metrics_model_facts facts = {m->dir, bert_dtype_name(m->model->dtype), bert_model_kernel_name(m->model),
                                        m->version};
    if (metrics_set_model(s->metrics, &m->model->cfg, &facts, &m->series))
        return bs_fail(err, "out of memory");
    *replaced = model_slot_swap(s->models, m);
    return 0;
}

/* ---- the startup facts ---------------------------------------------------------------------- */

cJSON *infer_describe(const struct infer_service *s)
{
    const struct config *cfg = s->cfg;
    served_model *m = model_slot_acquire(s->models);
    const bert_config *c = &m->model->cfg;
    char previous[MODEL_VERSION_MAX + 1], sha[65];
    model_slot_previous_version(s->models, previous);
    served_model_weights_sha256(m, sha);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", m->dir);
    cJSON_AddStringToObject(o, "model_version", m->version);
    cJSON_AddStringToObject(o, "model_loaded_at", m->loaded_at);
    if (previous[0])
        cJSON_AddStringToObject(o, "previous_model_version", previous);
    else
        cJSON_AddNullToObject(o, "previous_model_version");
    cJSON *labels = cJSON_AddArrayToObject(o, "labels");
    for (int k = 0; k < c->n_labels; k++)
        cJSON_AddItemToArray(labels, cJSON_CreateString(c->labels[k]));
    cJSON_AddBoolToObject(o, "multi_label", c->multi_label);
    cJSON_AddStringToObject(o, "model_type", bert_family_name(c->family));
    cJSON_AddNumberToObject(o, "max_tokens", m->max_len);
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_positions);
    cJSON_AddNumberToObject(o, "layers", c->n_layers);
    cJSON_AddNumberToObject(o, "hidden_size", c->hidden);
    cJSON_AddNumberToObject(o, "attention_heads", c->n_heads);
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddStringToObject(o, "weights_dtype", m->model->weights_dtype);
    cJSON_AddStringToObject(o, "weights_sha256", sha);
    cJSON_AddStringToObject(o, "compute_dtype", bert_dtype_name(m->model->dtype));
    cJSON_AddStringToObject(o, "requested_dtype", cfg->dtype);
    cJSON_AddStringToObject(o, "kernel", bert_model_kernel_name(m->model));
    cJSON_AddStringToObject(o, "amx", gemm_amx_status()); /* why a bf16/int8 model runs on AMX or not */
    cJSON_AddNumberToObject(o, "weights_bytes", (double)bert_model_bytes(m->model));
    served_model_release(m);
    cJSON_AddStringToObject(o, "version", config_version());
    cJSON_AddStringToObject(o, "build", config_build_info());
    cJSON_AddStringToObject(o, "gemm_kernel", gemm_kernel_name());
    cJSON_AddNumberToObject(o, "workers", cfg->workers);
    cJSON_AddNumberToObject(o, "threads_per_worker", s->threads_per_worker);
    cJSON_AddNumberToObject(o, "cpus", s->cpus);
    cJSON_AddStringToObject(o, "cpu_source", s->cpu_source ? s->cpu_source : "");
    cJSON_AddNumberToObject(o, "max_texts", cfg->max_texts);
    cJSON_AddNumberToObject(o, "feedback_window", cfg->feedback_window);
    cJSON_AddNumberToObject(o, "max_body_bytes", (double)cfg->max_body_bytes);
    cJSON_AddNumberToObject(o, "max_concurrent_requests", cfg->max_concurrent_requests);
    cJSON_AddNumberToObject(o, "max_batch_tokens", cfg->max_batch_tokens);
    cJSON_AddNumberToObject(o, "max_batch_requests", cfg->max_batch_requests);
    cJSON_AddNumberToObject(o, "batch_wait_us", cfg->batch_wait_us);
    return o;
}
