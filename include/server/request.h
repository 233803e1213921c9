/* The /predict, /batch_predict and /tokenize request bodies: JSON parsing and validation, apart from HTTP. A function of the
 * body bytes and the limits alone (no libmicrohttpd, no globals), so it can be tested and
 * fuzzed on its own; the service (infer.h) calls it, then tokenizes the texts and answers. */
#ifndef REQUEST_H
#define REQUEST_H

#include "server/errors.h"
#include "text/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* The request shapes, which decide the answer's shape. */
enum predict_shape {
    SHAPE_TEXT,      /* {"text": "..."}: one result object */
    SHAPE_TEXTS,     /* {"texts": [...]}: {"results": [...]} */
    SHAPE_TEI_ONE,   /* TEI {"inputs": "t"} or {"inputs": ["a", "b"]}: one label list */
    SHAPE_TEI_BATCH, /* TEI {"inputs": [item, ...]}: a list of label lists */
    SHAPE_V2,        /* KServe v2 / Open Inference Protocol: one BYTES tensor in, label and probabilities out */
};

/* The v2 protocol's output tensors, as "outputs" may ask for them. */
enum v2_output { V2_OUTPUT_LABEL, V2_OUTPUT_PROBABILITIES, V2_OUTPUT_COUNT };

/* The route whose body this is, which decides the shapes it takes: /predict every shape above;
 * /batch_predict (seed 003's route) only {"texts": [...]}; /tokenize (TEI's) only "inputs", a
 * text (SHAPE_TEI_ONE) or an array of texts (SHAPE_TEI_BATCH, no pairs), and
 * "add_special_tokens". */
enum request_route { REQUEST_PREDICT, REQUEST_BATCH_PREDICT, REQUEST_TOKENIZE, REQUEST_V2_INFER };
/* REQUEST_V2_INFER (POST /v2/models/{name}/infer) takes {"id"?, "parameters"?, "inputs": [one
 * BYTES tensor of texts: shape [n] or [n, 1], or [n, 2] for sentence pairs; "data" flat or
 * nested in row-major order], "outputs"?: [{"name": "label" | "probabilities"}, ...]}. */

struct predict_limits {
    int max_texts; /* texts (or pairs) per request; a lone TEI pair counts as one */
    enum request_route route; /* 0: /predict */
};

/* A parsed and validated request. texts[i] and pairs[i] are NUL-terminated strings owned by
 * root; pairs[i] is NULL unless input i is a sentence pair. */
struct predict_request {
    cJSON *root;
    enum predict_shape shape;
    int n; /* texts (or pairs): 1..max_texts */
    const char **texts, **pairs;
    bool truncate;   /* "truncate" (default true): false makes an over-long text a 413 */
    bool raw_scores; /* TEI's "raw_scores": logits instead of probabilities */
    enum truncation_side truncate_side; /* TEI's "truncation_direction": "right" (default) or "left" */
    bool add_special_tokens; /* /tokenize: TEI's "add_special_tokens" (default true) */
    const char *v2_id;       /* v2: the request's "id" (owned by root), NULL if none */
    enum v2_output v2_outputs[V2_OUTPUT_COUNT]; /* v2: the outputs to answer, in order */
    int v2_n_outputs;
};

/* Parses body (len bytes; NULL when len is 0) into req. The body is not NUL-terminated and may
 * hold any bytes; its "\u0000" escapes are rewritten to "\uFFFD" in place (see json_text.h).
 * Returns 0, or -1 with e filled in and req empty. Invalid JSON is ERROR_INVALID_JSON; a
 * body that parses but is not a valid request is ERROR_VALIDATION (invalid UTF-8 in the texts is the
 * tokenizer's to find: it names the byte offset). Free req with predict_request_free. */
int predict_request_parse(char *body, size_t len, const struct predict_limits *limits,
                          struct predict_request *req, struct service_error *e);

/* Frees what req owns and leaves it empty; a zeroed or already freed req is fine. */
void predict_request_free(struct predict_request *req);

/* POST /admin/reload's optional body: nothing, or {"model": "DIR", "version": "NAME"}, both
 * optional. Fills model and version ("" when absent; version checked as model_version.h says).
 * -1 with e: ERROR_INVALID_JSON, ERROR_VALIDATION (another key, a non-string, an empty or too
 * long value). */
#define RELOAD_MODEL_MAX 4095
#define RELOAD_VERSION_MAX 64
int reload_request_parse(const char *body, size_t len, char model[RELOAD_MODEL_MAX + 1],
                         char version[RELOAD_VERSION_MAX + 1], struct service_error *e);

/* POST /feedback's body (issue 21): one item {"request_id": "...", "label": "...", "index": i}
 * ("index" optional, default 0), or a list of 1..max_items such items. request_id is 1-64
 * characters of [A-Za-z0-9._:-] (the X-Request-Id rule: no other id is ever given), label a
 * non-empty valid UTF-8 string without NUL, index an integer 0..2^31-1; any other key is refused
 * (a misspelt "lable" would otherwise be lost). Strings point into root. */
struct feedback_item {
    const char *request_id, *label;
    int index;
};
struct feedback_request {
    cJSON *root;
    bool is_list; /* a list answers per item; a lone object answers with its status */
    int n;
    struct feedback_item *items;
};

/* Parses body (len bytes, not NUL-terminated; its "\u0000" escapes are rewritten in place as
 * predict_request_parse does). -1 with e: ERROR_INVALID_JSON, ERROR_VALIDATION (naming the item
 * and the key), ERROR_INTERNAL. Free req with feedback_request_free. */
int feedback_request_parse(char *body, size_t len, int max_items, struct feedback_request *req,
                           struct service_error *e);
void feedback_request_free(struct feedback_request *req);

#endif
