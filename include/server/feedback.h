/* POST /feedback (issue 21): ground truth for recent predictions. Each item names a prediction
 * by the X-Request-Id its answer carried (and the text's index in that request) and gives the
 * label it should have had; the service finds it in the prediction table (prediction_table.h),
 * checks the label against the labels of the model version that made it, records it once and
 * counts it in bertserve_feedback_total{predicted, actual, model_version}. Knows nothing of
 * HTTP: refusals are error kinds (errors.h). */
#ifndef FEEDBACK_H
#define FEEDBACK_H

#include "server/errors.h"
#include "server/infer.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses body (len bytes, not NUL-terminated, rewritten in place and not kept) and scores it.
 * A lone item answers its record: {"request_id", "index", "status" ("recorded", or
 * "already_recorded" when the prediction had a feedback: the first stands and is answered),
 * "predicted", "actual", "correct", "confidence", "model_version"}, or NULL with e:
 * ERROR_NOT_FOUND (no such prediction in the window), ERROR_VALIDATION (a bad body, a label
 * that is not the model version's, an index past the request's texts), ERROR_INVALID_JSON,
 * ERROR_INTERNAL. A list answers {"results": [...]}, one per item in order: the record as
 * above, or {"request_id", "index", "status": "not_found" | "invalid_label" | "invalid_index",
 * "error"}; only a malformed list is refused as a whole. */
cJSON *feedback_answer(const struct infer_service *s, char *body, size_t len, struct service_error *e);

#endif
