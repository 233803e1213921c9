/* The Prometheus exposition (server/metrics.c) never prints a non-finite number: "-nan" in a
 * histogram's _sum made Prometheus reject every later scrape of a daemon whose weights held a
 * NaN. Non-finite observations are dropped; finite ones still count. */
#include "check.h"
#include "server/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    bert_config labels = {.n_labels = 2, .labels = {"up", "down"}};
    struct metrics_model_facts facts = {"models/x", "0.0.0", "f32", "avx512-f32", "v\"7\\"};
    metrics *m = metrics_create(&labels, &facts);
    CHECK(m != NULL, "metrics_create");
    if (!m)
        return test_finish("test_metrics");
    metrics_prediction(m, 0, 0.75);
    metrics_prediction(m, 1, NAN);
    metrics_prediction(m, 1, -INFINITY);
    metrics_request(m, ROUTE_PREDICT, "POST", 200, NAN);
    metrics_job(m, INFINITY, NAN, -NAN, 1);
    metrics_batch(m, 1, 10, NAN);
    size_t len = 0;
    char *text = metrics_render(m, &len);
    CHECK(text && len == strlen(text), "render");
    if (text) {
        CHECK(!strstr(text, "nan") && !strstr(text, "NaN"), "a NaN in the exposition");
        CHECK(!strstr(text, " inf") && !strstr(text, " -inf") && !strstr(text, " +Inf"), "an infinity as a value");
        CHECK(strstr(text, "bertserve_prediction_confidence_sum 0.75\n") != NULL,
              "the finite confidence still counts, alone: %s", strstr(text, "bertserve_prediction_confidence_sum"));
        CHECK(strstr(text, "bertserve_prediction_confidence_count 1\n") != NULL, "one confidence observed");
        /* Every label value escaped as the exposition format requires (\" and \\). */
        CHECK(strstr(text, "bertserve_predictions_total{label=\"up\",model_version=\"v\\\"7\\\\\"} 1\n") != NULL,
              "predictions_total carries the model version: %s", strstr(text, "bertserve_predictions_total{"));
        CHECK(strstr(text, "kernel=\"avx512-f32\",model_version=\"v\\\"7\\\\\"} 1\n") != NULL,
              "model_info carries the kernel and the model version");
    }
    free(text);
    metrics_free(m);
    return test_finish("test_metrics");
}
