#include "engine/gemm_split.h"

#include "engine/gemm.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The output columns are cut into chunks of consecutive panels of about CHUNK_FLOPS each
 * (between MIN and MAX per thread), and the chunks into one contiguous range per thread. A
 * thread runs its own range front to back, so each chunk can prefetch the next one's first
 * panel and the weights stream without a break; then it takes chunks from the back of the
 * other ranges, so a thread slowed down by another process or an HTTP thread holds up the
 * product only briefly. Measured in-process against chunks handed out from one shared counter
 * (each chunk's first panel then came cold): 0.89x the time at 32 rows, 0.94x at 128, 0.96x at
 * 8 and 0.98x at 512, identical results. */
#define CHUNK_FLOPS 8e6
#define MIN_CHUNKS_PER_THREAD 3
#define MAX_CHUNKS_PER_THREAD 16
#define MAX_RANGES 64 /* threads beyond this many sit a product out */

struct split_job {
    gemm_panels_fn run;
    void *ctx;
    int panels, panels_per_chunk, n_ranges;
    /* Chunks [lo, hi) not yet taken from each range, as lo | hi << 32: one word, so that the
     * owner (taking lo) and a thief (taking hi - 1) never take the same chunk. */
    _Atomic uint64_t range[MAX_RANGES];
};

/* The front chunk of range r (its owner) or its back chunk (another thread); -1 when the range
 * is empty. *more: the chunk after the one taken is still in the range. */
static int take_chunk(struct split_job *j, int r, bool front, bool *more)
{
    uint64_t v = atomic_load_explicit(&j->range[r], memory_order_relaxed);
    for (;;) {
        uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
        if (lo >= hi)
            return -1;
        uint64_t taken = front ? (uint64_t)(lo + 1) | (uint64_t)hi << 32 : (uint64_t)lo | (uint64_t)(hi - 1) << 32;
        if (atomic_compare_exchange_weak_explicit(&j->range[r], &v, taken, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *more = front && lo + 1 < hi;
            return front ? (int)lo : (int)hi - 1;
        }
    }
}

static void run_chunk(const struct split_job *j, int chunk, bool prefetch_next)
{
    int p0 = chunk * j->panels_per_chunk, p1 = p0 + j->panels_per_chunk;
    if (p1 > j->panels)
        p1 = j->panels;
    j->run(j->ctx, p0, p1, prefetch_next && p1 < j->panels ? p1 + 1 : p1);
}

/* Task r: range r, then what is left of the others. */
static void split_task(void *ctx, int task, int thread)
{
    struct split_job *j = ctx;
    (void)thread;
    bool more;
    int chunk;
    while ((chunk = take_chunk(j, task, true, &more)) >= 0)
        run_chunk(j, chunk, more);
    for (int i = 1; i < j->n_ranges; i++)
        while ((chunk = take_chunk(j, (task + i) % j->n_ranges, false, &more)) >= 0)
            run_chunk(j, chunk, false);
}

void gemm_split_panels(threadpool *pool, int m, int n, int k, gemm_panels_fn run, void *ctx)
{
    int threads = threadpool_size(pool), panels = gemm_panels(n);
    double chunks_by_work = 2.0 * m * k * (double)n / CHUNK_FLOPS;
    int chunks = chunks_by_work < threads * MIN_CHUNKS_PER_THREAD   ? threads * MIN_CHUNKS_PER_THREAD
                 : chunks_by_work > threads * MAX_CHUNKS_PER_THREAD ? threads * MAX_CHUNKS_PER_THREAD
                                                                   : (int)chunks_by_work;
    struct split_job j = {.run = run, .ctx = ctx, .panels = panels, .panels_per_chunk = (panels + chunks - 1) / chunks};
    chunks = (panels + j.panels_per_chunk - 1) / j.panels_per_chunk;
    j.n_ranges = threads < MAX_RANGES ? threads : MAX_RANGES;
    if (j.n_ranges > chunks)
        j.n_ranges = chunks;
    for (int r = 0; r < j.n_ranges; r++)
        atomic_init(&j.range[r], (uint64_t)(r * chunks / j.n_ranges) | (uint64_t)((r + 1) * chunks / j.n_ranges) << 32);
    threadpool_run(pool, j.n_ranges, split_task, &j);
}
