/* The recent predictions, for POST /feedback (issue 21): a fixed ring of the last N texts
 * answered by /predict and /batch_predict, keyed by (request id, index) through a hash index.
 * Each record holds what a feedback needs to be scored (the predicted label, its confidence,
 * the metrics series of the model version that made it, the time) and never the text. All
 * memory is taken at creation: recording a prediction allocates nothing, and the oldest record
 * is overwritten when the ring is full. Thread-safe (answers are built on several threads). */
#ifndef PREDICTION_TABLE_H
#define PREDICTION_TABLE_H

#include "server/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Request ids are at most 64 characters (the transport's X-Request-Id rule). */
#define PREDICTION_ID_MAX 64

typedef struct prediction_table prediction_table;

/* One prediction as recorded; actual is -1 until a feedback is recorded for it. */
struct prediction {
    char request_id[PREDICTION_ID_MAX + 1];
    int index;    /* the text's place in its request */
    int n_texts;  /* texts in its request (to tell a bad index from an unknown id) */
    int predicted; /* label index in the series' model */
    int actual;    /* label index of the feedback; -1: none yet */
    float confidence;
    double time;   /* seconds since the epoch */
    struct metrics_series series; /* the model version that made it */
    uint64_t seq; /* set by the table: which recording this is (tells a record from its successor) */
};

/* A table of capacity predictions (>= 1); NULL when out of memory. */
prediction_table *prediction_table_create(int capacity);
void prediction_table_free(prediction_table *t);

/* The bytes the table holds (fixed at creation), for the README's bound and its test. */
size_t prediction_table_bytes(const prediction_table *t);

/* Records p (its actual is ignored: a new prediction has no feedback), overwriting the oldest
 * record when full. A request id seen again (clients may reuse X-Request-Id) shadows the older
 * record with the same (id, index): lookups find the newest. */
void prediction_table_record(prediction_table *t, const struct prediction *p);

enum prediction_lookup {
    PREDICTION_FOUND,
    PREDICTION_UNKNOWN,   /* no such request id in the table: never seen, or overwritten since */
    PREDICTION_BAD_INDEX, /* the request is there, but it had fewer texts than index + 1 */
};

/* Copies the newest record of (request_id, index) into *out. */
enum prediction_lookup prediction_table_find(prediction_table *t, const char *request_id, int index,
                                             struct prediction *out);

/* Records the feedback label actual for the record found as *p (the same record: not
 * overwritten since). Returns true if it was recorded now; false if that record already had a
 * feedback (*p then receives the record as it is, with the first actual) or is gone (p->actual
 * stays -1). Atomic: of two concurrent feedbacks for a prediction, one wins. */
bool prediction_table_claim(prediction_table *t, struct prediction *p, int actual);

/* Records held (at most the capacity). */
int prediction_table_count(prediction_table *t);

#endif
