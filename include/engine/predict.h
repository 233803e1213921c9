/* One sequence's answer from its logits: probabilities (softmax, or sigmoid per label for
 * multi-label models) and the winning label. Shared by the CLI and the daemon so both report
 * the same numbers the same way. */
#ifndef PREDICT_H
#define PREDICT_H

#include "engine/model.h"

/* Index of the largest of n values (the first one on ties). */
int prediction_argmax(const float *v, int n);

/* Writes the n_labels probabilities of logits into probs and returns the winning label's index. */
int prediction_compute(const bert_model *m, const float *logits, float *probs);

/* Fills order with the label indices sorted by value, highest first (ties in label order). */
void prediction_order(const float *values, int n, int *order);

#endif
