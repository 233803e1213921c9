#include "worker.h"

#include "bert.h"
#include "bs_error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct worker_pool {
    const bert_model *model;
    pthread_mutex_t lock;
    pthread_cond_t work;  /* a job was queued, or stopping */
    struct job *head, *tail;
    int admitted, max_jobs;
    int threads_per_worker;
    bool stopping;
    int n_threads;
    pthread_t *threads;
};

double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *worker_main(void *arg)
{
    worker_pool *p = arg;
    /* Each worker owns its buffers and forward-pass threads: no locking in the hot path. */
    bert_scratch scratch = {.n_threads = p->threads_per_worker};
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->work, &p->lock);
        struct job *j = p->head;
        if (!j) { /* stopping and nothing left */
            pthread_mutex_unlock(&p->lock);
            break;
        }
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);

        j->t_started = monotonic_seconds();
        bert_batch b = {.ids = j->tokens.ids, .type_ids = j->tokens.type_ids, .lens = j->lens, .n_seqs = j->n_seqs};
        j->status = bert_forward(p->model, &b, j->logits, &scratch, j->err);
        j->t_finished = monotonic_seconds();

        /* Free the slot before handing the job back: once its answer can reach the client, the
         * client's next request must find room. */
        pthread_mutex_lock(&p->lock);
        p->admitted--;
        pthread_mutex_unlock(&p->lock);
        j->done(j, j->arg);
    }
    bert_scratch_free(&scratch);
    return NULL;
}

worker_pool *worker_pool_start(const bert_model *m, int n_workers, int threads_per_worker, int max_jobs,
                               char *err)
{
    worker_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc((size_t)n_workers, sizeof *p->threads))) {
        free(p);
        bs_fail(err, "out of memory starting %d workers", n_workers);
        return NULL;
    }
    p->model = m;
    p->max_jobs = max_jobs;
    p->threads_per_worker = threads_per_worker;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    for (int i = 0; i < n_workers; i++) {
        int rc = pthread_create(&p->threads[i], NULL, worker_main, p);
        if (rc) {
            bs_fail(err, "cannot start compute worker %d: %s", i + 1, strerror(rc));
            worker_pool_stop(p);
            return NULL;
        }
        p->n_threads++;
    }
    return p;
}

bool worker_pool_reserve(worker_pool *p)
{
    pthread_mutex_lock(&p->lock);
    bool ok = !p->stopping && p->admitted < p->max_jobs;
    if (ok)
        p->admitted++;
    pthread_mutex_unlock(&p->lock);
    return ok;
}

/* Finishes a job that will never run (the pool is stopping) and frees its admission. */
static void cancel(worker_pool *p, struct job *j)
{
    j->status = bs_fail(j->err, "the server is shutting down");
    j->t_started = j->t_finished = monotonic_seconds();
    j->done(j, j->arg);
    pthread_mutex_lock(&p->lock);
    p->admitted--;
    pthread_mutex_unlock(&p->lock);
}

void worker_pool_enqueue(worker_pool *p, struct job *j)
{
    j->next = NULL;
    j->t_queued = monotonic_seconds();
    pthread_mutex_lock(&p->lock);
    bool stopping = p->stopping;
    if (!stopping) {
        if (p->tail)
            p->tail->next = j;
        else
            p->head = j;
        p->tail = j;
        pthread_cond_signal(&p->work);
    }
    pthread_mutex_unlock(&p->lock);
    if (stopping)
        cancel(p, j);
}

void worker_pool_stop(worker_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    struct job *cancelled = p->head;
    p->head = p->tail = NULL;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    while (cancelled) {
        struct job *j = cancelled;
        cancelled = j->next;
        cancel(p, j);
    }
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}
