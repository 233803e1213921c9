#include "server/request.h"

#include "common/json_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int request_fail(struct request_error *e, unsigned status, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->status = status;
    e->type = type;
    return -1;
}

static bool is_string_array(const cJSON *a, int *n)
{
    *n = cJSON_GetArraySize(a);
    for (const cJSON *x = a->child; x; x = x->next)
        if (!cJSON_IsString(x))
            return false;
    return true;
}

static int alloc_inputs(struct predict_request *req, int n, struct request_error *e)
{
    req->n = n;
    req->texts = calloc((size_t)n, sizeof *req->texts);
    req->pairs = calloc((size_t)n, sizeof *req->pairs);
    if (!req->texts || !req->pairs)
        return request_fail(e, 500, "internal", "out of memory");
    return 0;
}

/* Fills req's inputs and options from the parsed body (req->root). */
static int parse_inputs(struct predict_request *req, const struct predict_limits *lim, struct request_error *e)
{
    const cJSON *root = req->root;
    if (!cJSON_IsObject(root))
        return request_fail(e, 422, "validation", "the request body must be a JSON object");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text");
    const cJSON *texts = cJSON_GetObjectItemCaseSensitive(root, "texts");
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    int given = (text != NULL) + (texts != NULL) + (inputs != NULL);
    if (given == 0)
        return request_fail(e, 422, "validation", "missing \"text\" (or \"texts\", or TEI's \"inputs\")");
    if (given > 1)
        return request_fail(e, 422, "validation", "give only one of \"text\", \"texts\" and \"inputs\"");

    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "truncate");
    if (t && !cJSON_IsBool(t))
        return request_fail(e, 422, "validation", "\"truncate\" must be true or false");
    req->truncate = !t || cJSON_IsTrue(t);
    const cJSON *raw = cJSON_GetObjectItemCaseSensitive(root, "raw_scores");
    if (raw && !cJSON_IsBool(raw))
        return request_fail(e, 422, "validation", "\"raw_scores\" must be true or false");
    req->raw_scores = raw && cJSON_IsTrue(raw);
    const cJSON *dir = cJSON_GetObjectItemCaseSensitive(root, "truncation_direction");
    if (dir &&
        (!cJSON_IsString(dir) || (strcasecmp(dir->valuestring, "right") && strcasecmp(dir->valuestring, "left"))))
        return request_fail(e, 422, "validation", "\"truncation_direction\" must be \"right\" or \"left\"");
    req->truncate_side = dir && !strcasecmp(dir->valuestring, "left") ? TRUNCATE_LEFT : TRUNCATE_RIGHT;

    int n = 0;
    if (text) {
        if (!cJSON_IsString(text))
            return request_fail(e, 422, "validation", "\"text\" must be a string");
        req->shape = SHAPE_TEXT;
        if (alloc_inputs(req, 1, e))
            return -1;
        req->texts[0] = text->valuestring;
        return 0;
    }
    if (texts) {
        if (!cJSON_IsArray(texts))
            return request_fail(e, 422, "validation", "\"texts\" must be an array of strings");
        bool strings = is_string_array(texts, &n);
        if (n == 0)
            return request_fail(e, 422, "validation", "\"texts\" is empty");
        if (n > lim->max_texts)
            return request_fail(e, 422, "validation", "\"texts\" holds %d texts, more than the limit of %d", n,
                                lim->max_texts);
        if (!strings)
            return request_fail(e, 422, "validation", "every item of \"texts\" must be a string");
        req->shape = SHAPE_TEXTS;
        if (alloc_inputs(req, n, e))
            return -1;
        int i = 0;
        for (const cJSON *x = texts->child; x; x = x->next)
            req->texts[i++] = x->valuestring;
        return 0;
    }
    /* TEI: "text" | ["a", "b"] (one pair) | [item, ...] with item "t", ["t"] or ["q", "d"]. */
    if (cJSON_IsString(inputs)) {
        req->shape = SHAPE_TEI_ONE;
        if (alloc_inputs(req, 1, e))
            return -1;
        req->texts[0] = inputs->valuestring;
        return 0;
    }
    if (!cJSON_IsArray(inputs))
        return request_fail(e, 422, "validation",
                            "\"inputs\" must be a string, a pair of strings or an array of inputs");
    bool strings = is_string_array(inputs, &n);
    if (n == 0)
        return request_fail(e, 422, "validation", "\"inputs\" is empty");
    if (strings && n == 2) {
        req->shape = SHAPE_TEI_ONE;
        if (alloc_inputs(req, 1, e))
            return -1;
        req->texts[0] = inputs->child->valuestring;
        req->pairs[0] = inputs->child->next->valuestring;
        return 0;
    }
    if (n > lim->max_texts)
        return request_fail(e, 422, "validation", "\"inputs\" holds %d inputs, more than the limit of %d", n,
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
            return request_fail(e, 422, "validation",
                                "inputs[%d] must be a string or an array of one or two strings", i);
        }
    }
    return 0;
}

int predict_request_parse(char *body, size_t len, const struct predict_limits *limits,
                          struct predict_request *req, struct request_error *e)
{
    memset(req, 0, sizeof *req);
    const char *json = body && len ? body : "";
    if (body)
        json_replace_nul_escapes(body, len);
    req->root = cJSON_ParseWithLength(json, len);
    if (!req->root) {
        /* cJSON refuses an unpaired surrogate escape as a parse error; it is invalid text. */
        if (json_has_lone_surrogate(json, len))
            return request_fail(e, 422, "validation",
                                "a \\u escape encodes an unpaired UTF-16 surrogate, which is not valid text");
        return request_fail(e, 400, "invalid_json", "the request body is not valid JSON");
    }
    if (parse_inputs(req, limits, e)) {
        predict_request_free(req);
        return -1;
    }
    return 0;
}

void predict_request_free(struct predict_request *req)
{
    cJSON_Delete(req->root);
    free(req->texts);
    free(req->pairs);
    memset(req, 0, sizeof *req);
}
