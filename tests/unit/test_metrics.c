/* The Prometheus exposition (server/metrics.c) never prints a non-finite number: "-nan" in a
 * histogram's _sum made Prometheus reject every later scrape of a daemon whose weights held a
 * NaN. Non-finite observations are dropped; finite ones still count. */
#include "check.h"
#include "server/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    bert_config labels = {.n_labels = 2, .labels = {"up", "down"}};
    struct metrics_model_facts facts = {"models/x", "f32", "avx512-f32", "v\"7\\"};
    struct metrics_series series;
    metrics *m = metrics_create("0.0.0");
    CHECK(m != NULL && metrics_set_model(m, &labels, &facts, &series) == 0, "metrics_create");
    if (!m)
        return test_finish("test_metrics");
    metrics_prediction(m, series, 0, 0.75);
    metrics_prediction(m, series, 1, NAN);
    metrics_prediction(m, series, 1, -INFINITY);
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

    /* Model versions (issue 20): a reload adds a series, keeps the old ones up to eight, drops
     * the oldest past that (its handle then counts nowhere), and a version seen again with the
     * same labels continues its own series. */
    bert_config three = {.n_labels = 3, .labels = {"a", "b", "c"}};
    struct metrics_model_facts v2 = {"models/y", "bf16", "avx512-bf16", "v2"};
    struct metrics_series s2, again;
    CHECK(metrics_set_model(m, &three, &v2, &s2) == 0, "a second model");
    metrics_prediction(m, s2, 2, 0.5);
    metrics_prediction(m, series, 0, 0.5); /* a call still on the first model */
    metrics_reload(m, true, 0.25);
    metrics_reload(m, false, 0.5);
    text = metrics_render(m, &len);
    CHECK(text && strstr(text, "bertserve_predictions_total{label=\"up\",model_version=\"v\\\"7\\\\\"} 2\n"),
          "the first version's series stays and counts its late calls");
    CHECK(text && strstr(text, "bertserve_predictions_total{label=\"c\",model_version=\"v2\"} 1\n"), "v2 counts");
    CHECK(text && strstr(text, "bertserve_model_info{model=\"models/y\",version=\"0.0.0\",precision=\"bf16\","
                               "kernel=\"avx512-bf16\",model_version=\"v2\"} 1\n"),
          "model_info names the current model only: %s", text ? strstr(text, "bertserve_model_info{") : "");
    CHECK(text && strstr(text, "bertserve_model_reloads_total{result=\"success\"} 1\n") &&
              strstr(text, "bertserve_model_reloads_total{result=\"failure\"} 1\n") &&
              strstr(text, "bertserve_model_reload_duration_seconds_count 2\n"),
          "reloads counted by result, with their durations");
    free(text);
    char names[8][8];
    for (int i = 0; i < 8; i++) { /* eight more versions: the first two are dropped */
        snprintf(names[i], sizeof names[i], "w%d", i);
        struct metrics_model_facts f = {"models/z", "f32", "avx512-f32", names[i]};
        CHECK(metrics_set_model(m, &three, &f, &again) == 0, "version %s", names[i]);
    }
    metrics_prediction(m, series, 0, 0.5); /* dropped: counted nowhere */
    CHECK(metrics_set_model(m, &three, &(struct metrics_model_facts){"models/z", "f32", "avx512-f32", "w3"}, &again) == 0 &&
              again.slot >= 0, "w3 again");
    metrics_prediction(m, again, 1, 0.5);
    metrics_prediction(m, again, 1, 0.5);
    text = metrics_render(m, &len);
    int n_series = 0;
    for (const char *p = text; p && (p = strstr(p, "bertserve_predictions_total{label=\"a\"")); p++)
        n_series++;
    CHECK(n_series == 8, "eight versions kept, not %d", n_series);
    CHECK(text && !strstr(text, "model_version=\"v2\"") && !strstr(text, "label=\"up\""),
          "the two oldest versions dropped");
    CHECK(text && strstr(text, "bertserve_predictions_total{label=\"b\",model_version=\"w3\"} 2\n"),
          "a version seen again continues its series");
    free(text);
    metrics_free(m);
    return test_finish("test_metrics");
}
