#include "server/feedback.h"

#include "server/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What became of one item. */
enum item_status { ITEM_RECORDED, ITEM_ALREADY_RECORDED, ITEM_NOT_FOUND, ITEM_BAD_LABEL, ITEM_BAD_INDEX, ITEM_INTERNAL };

/* The "status" of an item in the answer. */
static const char *item_status_names[] = {
    [ITEM_RECORDED] = "recorded",      [ITEM_ALREADY_RECORDED] = "already_recorded",
    [ITEM_NOT_FOUND] = "not_found",    [ITEM_BAD_LABEL] = "invalid_label",
    [ITEM_BAD_INDEX] = "invalid_index", [ITEM_INTERNAL] = "internal",
};

/* The answer for a matched item: its prediction and feedback (p->actual set). */
static cJSON *record_json(const struct infer_service *s, const struct prediction *p, enum item_status status,
                          struct service_error *e)
{
    char *version, *predicted, *actual;
    if (metrics_feedback_names(s->metrics, p->series, p->predicted, p->actual, &version, &predicted, &actual)) {
        service_fail(e, ERROR_INTERNAL, "out of memory");
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "request_id", p->request_id);
    cJSON_AddNumberToObject(o, "index", p->index);
    cJSON_AddStringToObject(o, "status", item_status_names[status]);
    cJSON_AddStringToObject(o, "predicted", predicted);
    cJSON_AddStringToObject(o, "actual", actual);
    cJSON_AddBoolToObject(o, "correct", p->predicted == p->actual);
    cJSON_AddNumberToObject(o, "confidence", p->confidence);
    cJSON_AddStringToObject(o, "model_version", version);
    free(version), free(predicted), free(actual);
    if (!o)
        service_fail(e, ERROR_INTERNAL, "out of memory");
    return o;
}

/* An item whose request id is no longer (or never was) in the window. */
static enum item_status not_found(const struct infer_service *s, const struct feedback_item *it,
                                  struct service_error *e)
{
    metrics_feedback_unmatched(s->metrics, FEEDBACK_UNKNOWN_ID);
    service_fail(e, ERROR_NOT_FOUND,
                 "no prediction %s[%d] among the last %d predictions: an unknown request id, or one older than "
                 "--feedback-window",
                 it->request_id, it->index, s->cfg->feedback_window);
    return ITEM_NOT_FOUND;
}

/* Matches one item to its prediction and records it; *answer gets the record when matched. */
static enum item_status score_item(const struct infer_service *s, const struct feedback_item *it, cJSON **answer,
                                   struct service_error *e)
{
    *answer = NULL;
    struct prediction p;
    enum prediction_lookup found = prediction_table_find(s->predictions, it->request_id, it->index, &p);
    if (found == PREDICTION_UNKNOWN)
        return not_found(s, it, e);
    if (found == PREDICTION_BAD_INDEX) {
        metrics_feedback_unmatched(s->metrics, FEEDBACK_BAD_INDEX);
        service_fail(e, ERROR_VALIDATION, "request %s had %d text%s: \"index\" must be 0 to %d, not %d",
                     it->request_id, p.n_texts, p.n_texts == 1 ? "" : "s", p.n_texts - 1, it->index);
        return ITEM_BAD_INDEX;
    }
    char labels[512];
    int actual = metrics_label_index(s->metrics, p.series, it->label, labels, sizeof labels);
    if (actual == -2) /* its model version's series was dropped (more than eight versions since) */
        return not_found(s, it, e);
    if (actual < 0) {
        metrics_feedback_unmatched(s->metrics, FEEDBACK_BAD_LABEL);
        service_fail(e, ERROR_VALIDATION, "\"label\" \"%.200s\" is not a label of the model that made prediction %s[%d] (%s)",
                     it->label, it->request_id, it->index, labels);
        return ITEM_BAD_LABEL;
    }
    enum item_status status = ITEM_RECORDED;
    if (prediction_table_claim(s->predictions, &p, actual)) {
        metrics_feedback(s->metrics, p.series, p.predicted, actual);
    } else if (p.actual >= 0) { /* the first feedback stands; this one is answered, not counted */
        metrics_feedback_unmatched(s->metrics, FEEDBACK_DUPLICATE);
        status = ITEM_ALREADY_RECORDED;
    } else { /* overwritten between the lookup and the claim */
        return not_found(s, it, e);
    }
    return (*answer = record_json(s, &p, status, e)) ? status : ITEM_INTERNAL;
}

/* A list item's answer when it was not matched. */
static cJSON *unmatched_json(const struct feedback_item *it, enum item_status status, const struct service_error *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "request_id", it->request_id);
    cJSON_AddNumberToObject(o, "index", it->index);
    cJSON_AddStringToObject(o, "status", item_status_names[status]);
    cJSON_AddStringToObject(o, "error", e->msg);
    return o;
}

cJSON *feedback_answer(const struct infer_service *s, char *body, size_t len, struct service_error *e)
{
    struct feedback_request req;
    if (feedback_request_parse(body, len, s->cfg->max_texts, &req, e))
        return NULL;
    cJSON *out = NULL;
    if (!req.is_list) {
        if (score_item(s, &req.items[0], &out, e) > ITEM_ALREADY_RECORDED)
            out = NULL; /* e says why */
    } else {
        out = cJSON_CreateObject();
        cJSON *results = cJSON_AddArrayToObject(out, "results");
        for (int i = 0; results && i < req.n; i++) {
            cJSON *item;
            struct service_error ie;
            enum item_status st = score_item(s, &req.items[i], &item, &ie);
            if (st == ITEM_INTERNAL) {
                *e = ie;
                cJSON_Delete(out);
                out = NULL;
                break;
            }
            cJSON_AddItemToArray(results, item ? item : unmatched_json(&req.items[i], st, &ie));
        }
        if (out && !results) {
            cJSON_Delete(out);
            out = NULL;
            service_fail(e, ERROR_INTERNAL, "out of memory");
        }
    }
    feedback_request_free(&req);
    return out;
}
