#include "server/request.h"

#include "server/model_version.h"

#include "common/json_text.h"
#include "text/utf8.h"

#include <ctype.h>
#include <math.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_string_array(const cJSON *a, int *n)
{
    *n = cJSON_GetArraySize(a);
    for (const cJSON *x = a->child; x; x = x->next)
        if (!cJSON_IsString(x))
            return false;
    return true;
}

static int alloc_inputs(struct predict_request *req, int n, struct service_error *e)
{
    req->n = n;
    req->texts = calloc((size_t)n, sizeof *req->texts);
    req->pairs = calloc((size_t)n, sizeof *req->pairs);
    if (!req->texts || !req->pairs)
        return service_fail(e, ERROR_INTERNAL, "out of memory");
    return 0;
}

/* The options: "truncate", TEI's "raw_scores" and "truncation_direction". */
static int parse_options(struct predict_request *req, struct service_error *e)
{
    const cJSON *root = req->root;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "truncate");
    if (t && !cJSON_IsBool(t))
        return service_fail(e, ERROR_VALIDATION, "\"truncate\" must be true or false");
    req->truncate = !t || cJSON_IsTrue(t);
    const cJSON *raw = cJSON_GetObjectItemCaseSensitive(root, "raw_scores");
    if (raw && !cJSON_IsBool(raw))
        return service_fail(e, ERROR_VALIDATION, "\"raw_scores\" must be true or false");
    req->raw_scores = raw && cJSON_IsTrue(raw);
    const cJSON *dir = cJSON_GetObjectItemCaseSensitive(root, "truncation_direction");
    if (dir &&
        (!cJSON_IsString(dir) || (strcasecmp(dir->valuestring, "right") && strcasecmp(dir->valuestring, "left"))))
        return service_fail(e, ERROR_VALIDATION, "\"truncation_direction\" must be \"right\" or \"left\"");
    req->truncate_side = dir && !strcasecmp(dir->valuestring, "left") ? TRUNCATE_LEFT : TRUNCATE_RIGHT;
    return 0;
}

/* A non-empty array of at most max_texts strings, the value of key, as the request's texts. */
static int parse_string_list(struct predict_request *req, const cJSON *list, const char *key,
                             enum predict_shape shape, const struct predict_limits *lim, struct service_error *e)
{
    int n = 0;
    if (!cJSON_IsArray(list))
        return service_fail(e, ERROR_VALIDATION, "\"%s\" must be an array of strings", key);
    bool strings = is_string_array(list, &n);
    if (n == 0)
        return service_fail(e, ERROR_VALIDATION, "\"%s\" is empty", key);
    if (n > lim->max_texts)
        return service_fail(e, ERROR_VALIDATION, "\"%s\" holds %d texts, more than the limit of %d", key, n,
                            lim->max_texts);
    if (!strings)
        return service_fail(e, ERROR_VALIDATION, "every item of \"%s\" must be a string", key);
    req->shape = shape;
    if (alloc_inputs(req, n, e))
        return -1;
    int i = 0;
    for (const cJSON *x = list->child; x; x = x->next)
        req->texts[i++] = x->valuestring;
    return 0;
}

/* Ours: {"texts": ["a", "b"]}. */
static int parse_texts(struct predict_request *req, const cJSON *texts, const struct predict_limits *lim,
                       struct service_error *e)
{
    return parse_string_list(req, texts, "texts", SHAPE_TEXTS, lim, e);
}

/* TEI's "inputs" as one string: a single text. */
static int parse_one_text(struct predict_request *req, const cJSON *inputs, struct service_error *e)
{
    req->shape = SHAPE_TEI_ONE;
    if (alloc_inputs(req, 1, e))
        return -1;
    req->texts[0] = inputs->valuestring;
    return 0;
}

/* TEI: "text" | ["a", "b"] (one pair) | [item, ...] with item "t", ["t"] or ["q", "d"]. */
static int parse_tei_inputs(struct predict_request *req, const cJSON *inputs, const struct predict_limits *lim,
                            struct service_error *e)
{
    int n = 0;
    if (cJSON_IsString(inputs))
        return parse_one_text(req, inputs, e);
    if (!cJSON_IsArray(inputs))
        return service_fail(e, ERROR_VALIDATION,
                            "\"inputs\" must be a string, a pair of strings or an array of inputs");
    bool strings = is_string_array(inputs, &n);
    if (n == 0)
        return service_fail(e, ERROR_VALIDATION, "\"inputs\" is empty");
    if (strings && n == 2) {
        req->shape = SHAPE_TEI_ONE;
        if (alloc_inputs(req, 1, e))
            return -1;
        req->texts[0] = inputs->child->valuestring;
        req->pairs[0] = inputs->child->next->valuestring;
        return 0;
    }
    if (n > lim->max_texts)
        return service_fail(e, ERROR_VALIDATION, "\"inputs\" holds %d inputs, more than the limit of %d", n,
                            lim->max_texts);
    req->shape = SHAPE_TEI_BATCH;
    if (alloc_inputs(req, n, e))
        return -1;
    int i = 0;
    for (const cJSON *x = inputs->child; x; x = x->next, i++) {
        int m = 0;
        if (cJSON_IsString(x)) {
            req->texts[i] = x->valuestring;
        } else if (cJSON_IsArray(x) && is_string_array(x, &m) && (m == 1 || m == 2)) {
            req->texts[i] = x->child->valuestring;
            req->pairs[i] = m == 2 ? x->child->next->valuestring : NULL;
        } else {
            return service_fail(e, ERROR_VALIDATION, "inputs[%d] must be a string or an array of one or two strings",
                                i);
        }
    }
    return 0;
}

/* TEI's /tokenize: {"inputs": "t" | ["a", "b", ...], "add_special_tokens": true}. */
static int parse_tokenize(struct predict_request *req, const struct predict_limits *lim, struct service_error *e)
{
    const cJSON *root = req->root;
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!inputs)
        return service_fail(e, ERROR_VALIDATION, "missing \"inputs\" (a text or an array of texts)");
    const cJSON *special = cJSON_GetObjectItemCaseSensitive(root, "add_special_tokens");
    if (special && !cJSON_IsBool(special))
        return service_fail(e, ERROR_VALIDATION, "\"add_special_tokens\" must be true or false");
    req->add_special_tokens = !special || cJSON_IsTrue(special);
    if (cJSON_IsString(inputs))
        return parse_one_text(req, inputs, e);
    if (!cJSON_IsArray(inputs))
        return service_fail(e, ERROR_VALIDATION, "\"inputs\" must be a string or an array of strings");
    return parse_string_list(req, inputs, "inputs", SHAPE_TEI_BATCH, lim, e);
}

/* ---- KServe v2 / Open Inference Protocol ---------------------------------------------------- */

/* The tensor's elements in row-major order, flat or nested ("data": ["a", "b"] or [["a"], ["b"]]):
 * the protocol allows both. Collects at most cap strings into out; -1 on an element that is not a
 * string (or an array of them), or on more than cap elements. */
static int v2_flatten(const cJSON *a, const char **out, int cap, int *count)
{
    for (const cJSON *x = a->child; x; x = x->next) {
        if (cJSON_IsArray(x)) {
            if (v2_flatten(x, out, cap, count))
                return -1;
        } else if (cJSON_IsString(x) && *count < cap) {
            out[(*count)++] = x->valuestring;
        } else {
            return -1;
        }
    }
    return 0;
}

/* A dimension of "shape": a whole number in [0, 2^31). */
static bool v2_dimension(const cJSON *d, int *out)
{
    if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble >= 2147483648.0 ||
        d->valuedouble != (double)(long long)d->valuedouble)
        return false;
    *out = (int)d->valuedouble;
    return true;
}

static int parse_v2_outputs(struct predict_request *req, const cJSON *outputs, struct service_error *e)
{
    req->v2_n_outputs = 0;
    if (!outputs) { /* the protocol's default: every output the model has */
        req->v2_outputs[req->v2_n_outputs++] = V2_OUTPUT_LABEL;
        req->v2_outputs[req->v2_n_outputs++] = V2_OUTPUT_PROBABILITIES;
        return 0;
    }
    if (!cJSON_IsArray(outputs) || cJSON_GetArraySize(outputs) < 1)
        return service_fail(e, ERROR_VALIDATION, "\"outputs\" must be a non-empty array of {\"name\": ...}");
    for (const cJSON *o = outputs->child; o; o = o->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (!cJSON_IsObject(o) || !cJSON_IsString(name))
            return service_fail(e, ERROR_VALIDATION, "every item of \"outputs\" must be an object with a \"name\"");
        enum v2_output which;
        if (!strcmp(name->valuestring, "label"))
            which = V2_OUTPUT_LABEL;
        else if (!strcmp(name->valuestring, "probabilities"))
            which = V2_OUTPUT_PROBABILITIES;
        else
            return service_fail(e, ERROR_VALIDATION, "unknown output \"%.64s\": the model has \"label\" and "
                                "\"probabilities\"", name->valuestring);
        for (int k = 0; k < req->v2_n_outputs; k++)
            if (req->v2_outputs[k] == which)
                return service_fail(e, ERROR_VALIDATION, "output \"%s\" is asked for twice", name->valuestring);
        req->v2_outputs[req->v2_n_outputs++] = which;
    }
    return 0;
}

static int parse_v2(struct predict_request *req, const struct predict_limits *lim, struct service_error *e)
{
    const cJSON *root = req->root;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id && !cJSON_IsString(id))
        return service_fail(e, ERROR_VALIDATION, "\"id\" must be a string");
    req->v2_id = id ? id->valuestring : NULL;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    if (params && !cJSON_IsObject(params))
        return service_fail(e, ERROR_VALIDATION, "\"parameters\" must be an object");
    if (parse_v2_outputs(req, cJSON_GetObjectItemCaseSensitive(root, "outputs"), e))
        return -1;
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) != 1)
        return service_fail(e, ERROR_VALIDATION, "\"inputs\" must be an array of one tensor (the texts)");
    const cJSON *in = inputs->child;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(in, "name");
    const cJSON *datatype = cJSON_GetObjectItemCaseSensitive(in, "datatype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(in, "shape");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(in, "data");
    if (!cJSON_IsObject(in) || !cJSON_IsString(name))
        return service_fail(e, ERROR_VALIDATION, "the input tensor must be an object with a \"name\"");
    if (!cJSON_IsString(datatype) || strcmp(datatype->valuestring, "BYTES"))
        return service_fail(e, ERROR_VALIDATION, "the input tensor's \"datatype\" must be \"BYTES\" (texts)");
    int rank = cJSON_IsArray(shape) ? cJSON_GetArraySize(shape) : 0;
    int n = 0, k = 1;
    if ((rank != 1 && rank != 2) || !v2_dimension(shape->child, &n) ||
        (rank == 2 && (!v2_dimension(shape->child->next, &k) || (k != 1 && k != 2))))
        return service_fail(e, ERROR_VALIDATION,
                            "the input tensor's \"shape\" must be [n], [n, 1] (texts) or [n, 2] (sentence pairs)");
    if (n == 0)
        return service_fail(e, ERROR_VALIDATION, "the input tensor is empty");
    if (n > lim->max_texts)
        return service_fail(e, ERROR_VALIDATION, "the input tensor holds %d inputs, more than the limit of %d", n,
                            lim->max_texts);
    if (!cJSON_IsArray(data))
        return service_fail(e, ERROR_VALIDATION, "the input tensor's \"data\" must be an array of strings");
    const char **flat = calloc((size_t)n * (size_t)k, sizeof *flat);
    if (!flat)
        return service_fail(e, ERROR_INTERNAL, "out of memory");
    int count = 0;
    int bad = v2_flatten(data, flat, n * k, &count);
    if (bad || count != n * k) {
        free(flat);
        return service_fail(e, ERROR_VALIDATION, "the input tensor's \"data\" must hold %d strings (its shape), %s",
                            n * k, bad ? "and nothing else" : "no more, no less");
    }
    req->shape = SHAPE_V2;
    req->truncate = true;
    req->truncate_side = TRUNCATE_RIGHT;
    int rc = alloc_inputs(req, n, e);
    for (int i = 0; rc == 0 && i < n; i++) {
        req->texts[i] = flat[(size_t)i * (size_t)k];
        req->pairs[i] = k == 2 ? flat[(size_t)i * 2 + 1] : NULL;
    }
    free(flat);
    return rc;
}

/* Fills req's inputs and options from the parsed body (req->root). */
static int parse_inputs(struct predict_request *req, const struct predict_limits *lim, struct service_error *e)
{
    const cJSON *root = req->root;
    if (!cJSON_IsObject(root))
        return service_fail(e, ERROR_VALIDATION, "the request body must be a JSON object");
    if (lim->route == REQUEST_TOKENIZE)
        return parse_tokenize(req, lim, e);
    if (lim->route == REQUEST_V2_INFER)
        return parse_v2(req, lim, e);
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text");
    const cJSON *texts = cJSON_GetObjectItemCaseSensitive(root, "texts");
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    int given = (text != NULL) + (texts != NULL) + (inputs != NULL);
    if (given == 0)
        return service_fail(e, ERROR_VALIDATION, "missing \"text\" (or \"texts\", or TEI's \"inputs\")");
    if (given > 1)
        return service_fail(e, ERROR_VALIDATION, "give only one of \"text\", \"texts\" and \"inputs\"");
    if (lim->route == REQUEST_BATCH_PREDICT && !texts)
        return service_fail(e, ERROR_VALIDATION, "/batch_predict takes {\"texts\": [...]}; send \"text\" or "
                                                 "\"inputs\" to /predict");
    if (parse_options(req, e))
        return -1;
    if (texts)
        return parse_texts(req, texts, lim, e);
    if (inputs)
        return parse_tei_inputs(req, inputs, lim, e);
    if (!cJSON_IsString(text))
        return service_fail(e, ERROR_VALIDATION, "\"text\" must be a string");
    req->shape = SHAPE_TEXT;
    if (alloc_inputs(req, 1, e))
        return -1;
    req->texts[0] = text->valuestring;
    return 0;
}

/* Parses the body into req->root: one JSON value, and nothing after it but whitespace. */
static int parse_json(struct predict_request *req, const char *json, size_t len, struct service_error *e)
{
    size_t control = json_raw_control_byte(json, len);
    if (control < len) {
        unsigned c = (unsigned char)json[control];
        return service_fail(e, ERROR_INVALID_JSON,
                            "the request body is not valid JSON: a raw control character (0x%02x) at byte %zu; "
                            "escape it inside a string (\\u%04x)",
                            c, control, c);
    }
    const char *end = NULL;
    req->root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!req->root) {
        /* cJSON refuses an unpaired surrogate escape as a parse error; it is invalid text. */
        if (json_has_lone_surrogate(json, len))
            return service_fail(e, ERROR_VALIDATION,
                                "a \\u escape encodes an unpaired UTF-16 surrogate, which is not valid text");
        return service_fail(e, ERROR_INVALID_JSON, "the request body is not valid JSON");
    }
    size_t rest = (size_t)(end - json);
    while (rest < len && (json[rest] == ' ' || json[rest] == '\t' || json[rest] == '\r' || json[rest] == '\n'))
        rest++;
    if (rest < len)
        return service_fail(e, ERROR_INVALID_JSON,
                            "the request body is not valid JSON: data after the JSON value at byte %zu", rest);
    return 0;
}

int predict_request_parse(char *body, size_t len, const struct predict_limits *limits,
                          struct predict_request *req, struct service_error *e)
{
    memset(req, 0, sizeof *req);
    const char *json = body && len ? body : "";
    if (body)
        json_replace_nul_escapes(body, len);
    if (parse_json(req, json, len, e) || parse_inputs(req, limits, e)) {
        predict_request_free(req);
        return -1;
    }
    return 0;
}

/* A string member of the reload body into out (cap bytes with the NUL); "" when absent. */
static int reload_string(const cJSON *root, const char *key, char *out, size_t cap, struct service_error *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    out[0] = '\0';
    if (!v)
        return 0;
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return service_fail(e, ERROR_VALIDATION, "\"%s\" must be a non-empty string", key);
    if (strlen(v->valuestring) >= cap)
        return service_fail(e, ERROR_VALIDATION, "\"%s\" is over %zu bytes", key, cap - 1);
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return 0;
}

int reload_request_parse(const char *body, size_t len, char model[RELOAD_MODEL_MAX + 1],
                         char version[RELOAD_VERSION_MAX + 1], struct service_error *e)
{
    model[0] = version[0] = '\0';
    size_t start = 0;
    while (start < len && strchr(" \t\r\n", body[start]))
        start++;
    if (start == len)
        return 0; /* no body: reload the model directory served now */
    struct predict_request req;
    memset(&req, 0, sizeof req);
    int rc = parse_json(&req, body, len, e);
    if (rc == 0 && !cJSON_IsObject(req.root))
        rc = service_fail(e, ERROR_VALIDATION, "the body must be a JSON object: {\"model\": DIR, \"version\": NAME}");
    for (const cJSON *item = rc == 0 ? req.root->child : NULL; item && rc == 0; item = item->next)
        if (strcmp(item->string, "model") && strcmp(item->string, "version"))
            rc = service_fail(e, ERROR_VALIDATION, "unknown key in a reload request (only \"model\" and \"version\")");
    if (rc == 0)
        rc = reload_string(req.root, "model", model, RELOAD_MODEL_MAX + 1, e);
    if (rc == 0)
        rc = reload_string(req.root, "version", version, RELOAD_VERSION_MAX + 1, e);
    char err[BS_ERR_LEN];
    if (rc == 0 && version[0] && model_version_check(version, "\"version\"", err))
        rc = service_fail(e, ERROR_VALIDATION, "%s", err);
    cJSON_Delete(req.root);
    return rc;
}

void predict_request_free(struct predict_request *req)
{
    cJSON_Delete(req->root);
    free(req->texts);
    free(req->pairs);
    memset(req, 0, sizeof *req);
}

/* ---- POST /feedback ------------------------------------------------------------------------ */

static bool is_request_id(const char *s)
{
    size_t n = strlen(s);
    bool ok = n > 0 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)s[i]) || strchr("-_.:", s[i]);
    return ok;
}

/* One item of a feedback body; where names it in messages ("the body" or "item 3"). */
static int feedback_item_parse(const cJSON *o, const char *where, struct feedback_item *it, struct service_error *e)
{
    if (!cJSON_IsObject(o))
        return service_fail(e, ERROR_VALIDATION,
                            "%s must be an object {\"request_id\": ..., \"label\": ..., \"index\": i}", where);
    for (const cJSON *k = o->child; k; k = k->next)
        if (strcmp(k->string, "request_id") && strcmp(k->string, "label") && strcmp(k->string, "index"))
            return service_fail(e, ERROR_VALIDATION,
                                "%s: unknown key (only \"request_id\", \"label\" and \"index\")", where);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "request_id");
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(o, "label");
    const cJSON *index = cJSON_GetObjectItemCaseSensitive(o, "index");
    if (!cJSON_IsString(id) || !is_request_id(id->valuestring))
        return service_fail(e, ERROR_VALIDATION,
                            "%s: \"request_id\" must be the X-Request-Id of a prediction (1-64 characters of "
                            "[A-Za-z0-9._:-])",
                            where);
    if (!cJSON_IsString(label) || !label->valuestring[0])
        return service_fail(e, ERROR_VALIDATION, "%s: \"label\" must be a non-empty string", where);
    size_t n = strlen(label->valuestring);
    if (utf8_validate(label->valuestring, n) != n)
        return service_fail(e, ERROR_VALIDATION, "%s: \"label\" is not valid UTF-8", where);
    if (index && (!cJSON_IsNumber(index) || !isfinite(index->valuedouble) || index->valuedouble < 0 ||
                  index->valuedouble > 2147483647.0 || floor(index->valuedouble) != index->valuedouble))
        return service_fail(e, ERROR_VALIDATION, "%s: \"index\" must be an integer >= 0", where);
    it->request_id = id->valuestring;
    it->label = label->valuestring;
    it->index = index ? (int)index->valuedouble : 0;
    return 0;
}

int feedback_request_parse(char *body, size_t len, int max_items, struct feedback_request *req,
                           struct service_error *e)
{
    memset(req, 0, sizeof *req);
    struct predict_request json = {0};
    if (len == 0)
        return service_fail(e, ERROR_INVALID_JSON, "the request body is empty; send {\"request_id\", \"label\"}");
    json_replace_nul_escapes(body, len); /* a "\u0000" would cut a C string short: U+FFFD */
    int rc = parse_json(&json, body, len, e);
    req->root = json.root;
    if (rc) {
        feedback_request_free(req);
        return -1;
    }
    req->is_list = cJSON_IsArray(req->root);
    req->n = req->is_list ? cJSON_GetArraySize(req->root) : 1;
    if (req->is_list && (req->n < 1 || req->n > max_items))
        rc = service_fail(e, ERROR_VALIDATION, "a feedback list holds 1 to %d items, not %d", max_items, req->n);
    else if (!(req->items = calloc((size_t)req->n, sizeof *req->items)))
        rc = service_fail(e, ERROR_INTERNAL, "out of memory");
    const cJSON *o = req->is_list ? req->root->child : req->root;
    for (int i = 0; rc == 0 && i < req->n; i++, o = o->next) {
        char where[32];
        snprintf(where, sizeof where, req->is_list ? "item %d" : "the body", i);
        rc = feedback_item_parse(o, where, &req->items[i], e);
    }
    if (rc)
        feedback_request_free(req);
    return rc;
}

void feedback_request_free(struct feedback_request *req)
{
    cJSON_Delete(req->root);
    free(req->items);
    memset(req, 0, sizeof *req);
}
