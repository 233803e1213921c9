/* The compute side of the daemon: a bounded queue of jobs and a fixed pool of threads that
 * run each job's texts as one packed bert_forward batch. Knows nothing of HTTP or JSON: a job
 * is token arrays in, logits out, and a callback when done. */
#ifndef WORKER_H
#define WORKER_H

#include "bs_error.h"
#include "model.h"
#include "tokenizer.h"

#include <stdbool.h>
#include <stdint.h>

struct job {
    /* Filled by the submitter: n_seqs sequences packed end to end (see bert_batch). */
    struct packed_tokens tokens;
    int *lens;
    int n_seqs;
    /* Filled by the worker: n_seqs x n_labels logits (allocated by the submitter), and on
     * failure a message. */
    float *logits;
    int status; /* 0, or -1 with err */
    char err[BS_ERR_LEN];
    double t_queued, t_started, t_finished; /* CLOCK_MONOTONIC seconds */
    /* Called once the job is finished, on its worker thread (or, for a job cancelled at
     * shutdown with status -1, on the thread stopping the pool); the job belongs to the
     * submitter again from then on. */
    void (*done)(struct job *j, void *arg);
    void *arg;
    struct job *next; /* queue link, owned by the pool */
};

typedef struct worker_pool worker_pool;

/* Starts n_workers threads over the model, each running its forward passes on
 * threads_per_worker threads (bert_scratch.n_threads); at most max_jobs jobs may be admitted
 * (queued or running) at once. NULL with err on failure. */
worker_pool *worker_pool_start(const bert_model *m, int n_workers, int threads_per_worker, int max_jobs,
                               char *err);

/* Admission in two steps, so that the submitter can get ready for the callback (e.g. suspend
 * its connection) only once the job is sure to be accepted: worker_pool_reserve takes a slot
 * (false if max_jobs are already admitted or the pool is stopping: the caller answers "busy"),
 * worker_pool_enqueue then queues the job in that slot (done is always called, with status -1
 * if the pool stopped in between). */
bool worker_pool_reserve(worker_pool *p);
void worker_pool_enqueue(worker_pool *p, struct job *j);

/* Stops admitting, cancels the jobs still queued (done with status -1), lets running ones
 * finish, joins the threads and frees the pool. */
void worker_pool_stop(worker_pool *p);

/* CLOCK_MONOTONIC in seconds: the clock of every job and request timing. */
double monotonic_seconds(void);

#endif
