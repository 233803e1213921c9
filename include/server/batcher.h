/* The compute side of the daemon: a bounded FIFO of jobs, and a fixed pool of compute workers
 * that pack the texts of waiting jobs into batches (up to a token and a text budget) and run
 * each batch as one bert_forward. Knows nothing of HTTP or JSON: a job is token arrays in,
 * logits out, and a callback when done. */
#ifndef BATCHER_H
#define BATCHER_H

#include "common/bs_error.h"
#include "engine/model.h"
#include "text/tokenizer.h"

#include <stdbool.h>
#include <stdint.h>

struct job {
    /* Filled by the submitter: the model to run (it must outlive the job), and n_seqs
     * sequences packed end to end (see bert_batch). A batch holds one model's texts only: the
     * daemon swaps models under traffic (issue 20), and jobs tokenized for the old model finish
     * on it. */
    const bert_model *model;
    struct packed_tokens tokens;
    int *lens;
    int n_seqs;
    /* Filled by the workers: n_seqs x n_labels logits (allocated by the submitter), and on
     * failure a message. */
    float *logits;
    int status; /* 0, or -1 with err */
    char err[BS_ERR_LEN];
    /* CLOCK_MONOTONIC seconds: queued, first text started, last text finished. */
    double t_queued, t_started, t_finished;
    /* Called once every text is finished, on a worker thread (or, for a job cancelled at
     * shutdown with status -1, on the thread stopping the pool); the job belongs to the
     * submitter again from then on. */
    void (*done)(struct job *j, void *arg);
    void *arg;
    /* Owned by the pool. A job's texts may be split across batches (and workers). */
    struct job *next;
    int next_seq;  /* first text not yet taken into a batch */
    size_t next_tok; /* its offset in tokens */
    int seqs_done;
};

struct batcher_settings {
    int n_workers;          /* batches run in parallel */
    int threads_per_worker; /* forward-pass threads of each (bert_scratch.n_threads) */
    int max_jobs;           /* jobs admitted (queued or running) at once */
    int max_batch_tokens;   /* a batch stops growing before this many tokens (a longer text runs alone) */
    int max_batch_texts;    /* and at this many texts; 1 turns batching off */
    double max_wait_seconds; /* after a batch of several texts, how long the next one may wait
                              * for those clients to come back (0: never; see batcher.c) */
    /* Optional: a warm-up before any job, on every worker: one forward pass of warm_texts texts
     * of warm_len tokens over warm_model, so that the scratch buffers and their page faults are
     * paid before the first request (batcher_wait_warm). */
    const bert_model *warm_model;
    int warm_texts, warm_len;
    /* Optional: called after each batch on its worker thread (e.g. for metrics). */
    void (*on_batch)(void *arg, int n_texts, int n_tokens, double seconds);
    void *on_batch_arg;
};

typedef struct batcher batcher;

/* Starts the workers. NULL with err on failure. */
batcher *batcher_start(const struct batcher_settings *s, char *err);

/* Admission in two steps, so that the submitter can get ready for the callback (e.g. suspend
 * its connection) only once the job is sure to be accepted: batcher_reserve takes a slot
 * (false if max_jobs are already admitted or the pool is stopping: the caller answers "busy"),
 * batcher_enqueue then queues the job in that slot (done is always called, with status -1
 * if the pool stopped in between). */
bool batcher_reserve(batcher *p);
void batcher_enqueue(batcher *p, struct job *j);

/* Waits until every worker has done its warm-up (at once without one). 0, or -1 with err when a
 * warm-up pass failed (e.g. out of memory). */
int batcher_wait_warm(batcher *p, char *err);

/* Seconds the pool has been busy (work queued or running) without starting or finishing a
 * batch; 0 when idle or progressing. A liveness signal: a wedged worker makes it grow. */
double batcher_stalled_seconds(batcher *p);

/* Stops admitting, cancels the jobs still queued (done with status -1), lets running ones
 * finish, joins the threads and frees the pool. */
void batcher_stop(batcher *p);

#endif
