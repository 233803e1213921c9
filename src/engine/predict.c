#include "engine/predict.h"

#include "engine/bert.h"

#include <string.h>

int prediction_argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

int prediction_compute(const bert_model *m, const float *logits, float *probs)
{
    memcpy(probs, logits, (size_t)m->cfg.n_labels * sizeof *probs);
    bert_probabilities(m, probs);
    return prediction_argmax(probs, m->cfg.n_labels);
}

void prediction_order(const float *values, int n, int *order)
{
    /* Insertion sort: n is the number of labels, a handful. Stable, so ties keep label order. */
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && values[order[j - 1]] < values[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
}
