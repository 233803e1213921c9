/* The forward pass of a sequence classifier of any family (model.h) over a packed batch: the sequences'
 * tokens are laid end to end (no padding), the dense layers run once over all of them,
 * attention runs per sequence. Knows nothing of HTTP or JSON. */
#ifndef BERT_H
#define BERT_H

#include "engine/model.h"

#include <stdint.h>

/* Per-worker state: scratch buffers grown to the largest batch seen and then reused (the
 * steady state allocates nothing), and the threads that run one forward pass in parallel.
 * A zeroed struct is ready to use (the threads start on first use); set n_threads first to
 * choose how many (0: every CPU this process may run on). One per worker thread. */
struct threadpool;
typedef struct {
    float *buf;
    size_t cap; /* floats */
    int n_threads;
    struct threadpool *pool;
} bert_scratch;

void bert_scratch_free(bert_scratch *s);

/* Between passes the threads spin a little while for the next one (waking a sleeping thread
 * costs more than a short pass's parallel step, and far more in a VM). Call this when no pass
 * follows soon, e.g. before a server's worker waits for work: they sleep at once and leave
 * the CPUs to the rest of the process. */
void bert_scratch_rest(bert_scratch *s);

/* A packed batch: sequence i holds lens[i] tokens starting at offset sum(lens[0..i)) of
 * ids and type_ids. Every length is between 1 and cfg.max_tokens, every id inside the
 * vocabulary and every type id below type_vocab_size (checked: -1 with err otherwise; a model
 * without token types, type_vocab_size 0, ignores type_ids). */
typedef struct {
    const int32_t *ids, *type_ids;
    const int *lens;
    int n_seqs;
} bert_batch;

/* Writes n_seqs x n_labels logits, row-major. A sequence's logits do not depend on what
 * else is in the batch. Returns 0, or -1 with err (bad input, out of memory). */
int bert_forward(const bert_model *m, const bert_batch *b, float *logits, bert_scratch *s, char *err);

/* Optional: every hidden state, for tests that locate a bug layer by layer. If not NULL,
 * hidden receives (n_layers + 1) x total_tokens x hidden floats: the embeddings' LayerNorm
 * output, then each encoder layer's output. */
int bert_forward_debug(const bert_model *m, const bert_batch *b, float *logits, float *hidden,
                       bert_scratch *s, char *err);

/* Probabilities from logits: softmax over the labels (numerically stable), or a sigmoid per
 * label when the model is multi-label. In place, n_labels values. */
void bert_probabilities(const bert_model *m, float *scores);

#endif
