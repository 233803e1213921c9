#include "server/tokenize.h"

#include "common/buffer.h"
#include "server/request.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* One token as TEI's SimpleToken. scratch holds the token's text while cJSON copies it. */
static cJSON *token_json(const any_tokenizer *t, const char *text, size_t len, const encoding *enc, int i,
                         struct buffer *scratch)
{
    const struct token_span sp = any_tokenizer_hf_span(t, enc, i, text, len); /* HF's offsets */
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddNumberToObject(o, "id", enc->ids[i]))
        goto fail;
    if (sp.special) {
        if (!cJSON_AddStringToObject(o, "text", any_tokenizer_token(t, enc->ids[i])) ||
            !cJSON_AddTrueToObject(o, "special") ||
            !cJSON_AddNullToObject(o, "start") || !cJSON_AddNullToObject(o, "stop"))
            goto fail;
        return o;
    }
    scratch->len = 0;
    if (buffer_append(scratch, text + sp.start, (size_t)(sp.end - sp.start)) ||
        !cJSON_AddStringToObject(o, "text", scratch->data) || !cJSON_AddFalseToObject(o, "special") ||
        !cJSON_AddNumberToObject(o, "start", sp.start) || !cJSON_AddNumberToObject(o, "stop", sp.end))
        goto fail;
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

/* Tokenizes input i and appends its token list to answer; *total counts the tokens answered. */
static int tokenize_one(const struct infer_service *s, const served_model *m, const struct predict_request *q, int i,
                        encoding *enc, struct buffer *scratch, cJSON *answer, long *total, struct service_error *e)
{
    char where[32], err[BS_ERR_LEN];
    if (q->shape == SHAPE_TEI_BATCH)
        snprintf(where, sizeof where, "inputs[%d]", i);
    else
        snprintf(where, sizeof where, "inputs");
    const char *text = q->texts[i];
    size_t len = strlen(text);
    if (len == 0) /* TEI refuses an empty input, too */
        return service_fail(e, ERROR_VALIDATION, "%s is empty", where);
    if (any_tokenizer_encode(m->tok, text, len, NULL, 0, 0, TRUNCATE_RIGHT, enc, err))
        return service_fail(e, ERROR_VALIDATION, "%s: %s", where, err);
    /* The bound: what the largest /predict may run, so an answer stays the size of one. */
    long limit = (long)s->cfg->max_texts * m->max_len;
    *total += q->add_special_tokens ? enc->n : enc->n - 2;
    if (*total > limit)
        return service_fail(e, ERROR_TEXT_TOO_LONG,
                            "the inputs are over %ld tokens, the limit of a /tokenize request (--max-texts %d x %d "
                            "tokens)",
                            limit, s->cfg->max_texts, m->max_len);
    cJSON *tokens = cJSON_CreateArray();
    if (!tokens || !cJSON_AddItemToArray(answer, tokens)) {
        cJSON_Delete(tokens);
        return service_fail(e, ERROR_INTERNAL, "out of memory");
    }
    for (int k = 0; k < enc->n; k++) {
        if (enc->spans[k].special && !q->add_special_tokens)
            continue;
        cJSON *t = token_json(m->tok, text, len, enc, k, scratch); /* owned by tokens once added */
        if (!t || !cJSON_AddItemToArray(tokens, t)) {
            cJSON_Delete(t);
            return service_fail(e, ERROR_INTERNAL, "out of memory");
        }
    }
    return 0;
}

cJSON *tokenize_answer(const struct infer_service *s, char *body, size_t len, struct service_error *e)
{
    struct predict_limits limits = {.max_texts = s->cfg->max_texts, .route = REQUEST_TOKENIZE};
    struct predict_request q;
    if (predict_request_parse(body, len, &limits, &q, e))
        return NULL;
    cJSON *answer = cJSON_CreateArray();
    encoding enc = {0};
    struct buffer scratch = {0};
    long total = 0;
    served_model *m = model_slot_acquire(s->models);
    int rc = answer ? 0 : service_fail(e, ERROR_INTERNAL, "out of memory");
    for (int i = 0; i < q.n && rc == 0; i++)
        rc = tokenize_one(s, m, &q, i, &enc, &scratch, answer, &total, e);
    served_model_release(m);
    buffer_free(&scratch);
    encoding_free(&enc);
    predict_request_free(&q);
    if (rc) {
        cJSON_Delete(answer);
        return NULL;
    }
    return answer;
}
