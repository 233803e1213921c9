/* A fixed set of threads that run the numeric core's parallel loops. The calling thread
 * takes part, so a pool of n threads starts n - 1. Tasks are handed out one at a time
 * from a shared counter, so uneven tasks (attention of sequences of different lengths)
 * balance themselves. */
#ifndef THREADPOOL_H
#define THREADPOOL_H

typedef struct threadpool threadpool;

/* fn(ctx, task, thread) for task in [0, n_tasks); thread in [0, n_threads) tells which
 * per-thread scratch a task may use. */
typedef void (*threadpool_fn)(void *ctx, int task, int thread);

threadpool *threadpool_create(int n_threads, char *err);
void threadpool_free(threadpool *p);
int threadpool_size(const threadpool *p);

/* Runs every task and returns when all are done. Not reentrant: one caller at a time. */
void threadpool_run(threadpool *p, int n_tasks, threadpool_fn fn, void *ctx);

/* Says no job follows soon (the caller is about to wait for work): the threads sleep at once
 * instead of spinning for the next job, and leave the CPUs to the rest of the process (in the
 * daemon, the HTTP threads answering a batch and reading the next requests). The next
 * threadpool_run wakes them. */
void threadpool_rest(threadpool *p);


#endif
