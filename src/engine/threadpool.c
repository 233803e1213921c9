#include "engine/threadpool.h"

#include "common/bs_error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

/* Workers spin this many rounds before sleeping: a forward pass is a chain of parallel
 * loops a few hundred microseconds apart, and waking a sleeping thread costs tens of them. */
#define SPIN_ROUNDS 20000

struct threadpool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    /* the current job */
    threadpool_fn fn;
    void *ctx;
    int n_tasks;
    atomic_int next_task;
    atomic_int unfinished; /* workers still inside the current job */
    atomic_uint generation; /* bumped for each job; workers wait for a new value */
    atomic_bool resting;    /* no job expected soon: workers sleep instead of spinning */
    bool stop;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

struct worker_arg {
    threadpool *pool;
    int thread;
};

static void run_tasks(threadpool *p, int thread)
{
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed);
        if (t >= p->n_tasks)
            break;
        p->fn(p->ctx, t, thread);
    }
}

static void *worker_main(void *arg)
{
    threadpool *p = ((struct worker_arg *)arg)->pool;
    int thread = ((struct worker_arg *)arg)->thread;
    free(arg);
    unsigned seen = 0;
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               spins++ < SPIN_ROUNDS && !atomic_load_explicit(&p->resting, memory_order_relaxed))
            cpu_relax();
        if (gen == seen) {
            pthread_mutex_lock(&p->lock);
            while ((gen = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen && !p->stop)
                pthread_cond_wait(&p->wake, &p->lock);
            bool stop = p->stop;
            pthread_mutex_unlock(&p->lock);
            if (stop)
                return NULL;
        }
        seen = gen;
        run_tasks(p, thread);
        if (atomic_fetch_sub_explicit(&p->unfinished, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
    }
}

threadpool *threadpool_create(int n_threads, char *err)
{
    if (n_threads < 1)
        n_threads = 1;
    threadpool *p = calloc(1, sizeof *p);
    if (!p)
        return bs_fail(err, "out of memory"), NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        threadpool_free(p);
        return bs_fail(err, "out of memory"), NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *a = malloc(sizeof *a); /* the thread frees it */
        if (a)
            *a = (struct worker_arg){.pool = p, .thread = i};
        if (!a || pthread_create(&p->threads[i], NULL, worker_main, a) != 0) {
            free(a);
            p->n_threads = i; /* only the started ones are joined */
            threadpool_free(p);
            return bs_fail(err, "cannot start compute thread %d of %d", i + 1, n_threads), NULL;
        }
    }
    return p;
}

void threadpool_free(threadpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int threadpool_size(const threadpool *p) { return p->n_threads; }

void threadpool_run(threadpool *p, int n_tasks, threadpool_fn fn, void *ctx)
{
    if (p->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&p->unfinished, p->n_threads - 1, memory_order_relaxed);
    atomic_store_explicit(&p->resting, false, memory_order_relaxed);
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);

    run_tasks(p, 0);

    int spins = 0;
    while (atomic_load_explicit(&p->unfinished, memory_order_acquire) > 0 && spins++ < SPIN_ROUNDS)
        cpu_relax();
    if (atomic_load_explicit(&p->unfinished, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->lock);
        while (atomic_load_explicit(&p->unfinished, memory_order_acquire) > 0)
            pthread_cond_wait(&p->done, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
}

void threadpool_rest(threadpool *p) { atomic_store_explicit(&p->resting, true, memory_order_relaxed); }

