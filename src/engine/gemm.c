#include "engine/gemm.h"

#include "engine/rowops.h"
#include "engine/threadpool.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The helpers in gemm_kernel.inc return vectors by value; they are always inlined into the
 * kernels, so the ABI note GCC gives for that does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define INLINE static inline __attribute__((always_inline))

/* What gemm_kernel.inc defines for one instruction set: the GEMM panels, and the row
 * operations of rowops.h. */
struct kernel_set {
    const char *name;
    void (*panels)(const float *a, int lda, int m, const float *packed, int n, int k, float *c, int ldc,
                   const float *bias, enum gemm_epilogue ep, int p0, int p1, int pf_end);
    void (*row_softmax)(float *x, int n, float scale);
    void (*row_layernorm)(float *x, const float *add, const float *bias, const float *g, const float *b, int n,
                          float eps);
};

/* One kernel source, compiled for each instruction set: 12 x 32 tiles in 16-float registers
 * for AVX-512 (32 of them), 6 x 16 in 8-float ones for AVX2 and 6 x 8 in 4-float ones for
 * plain x86-64 (16 registers each): MR x 2 accumulators, two of the panel's vectors and a
 * broadcast fit. */
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
#define ISA avx512
#define LANES 16
#define MR 12
#include "gemm_kernel.inc"
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define ISA avx2
#define LANES 8
#define MR 6
#include "gemm_kernel.inc"
#pragma GCC pop_options
#endif

#define ISA generic
#define LANES 4
#define MR 6
#include "gemm_kernel.inc"

enum isa { ISA_GENERIC, ISA_AVX2, ISA_AVX512 };

/* The best kernel this file may choose: tests build it again with a lower one, to check the
 * kernels that a CPU with a better one never runs. */
#ifndef GEMM_MAX_ISA
#define GEMM_MAX_ISA ISA_AVX512
#endif

/* The best set this CPU runs. */
static const struct kernel_set *kernels(void)
{
#if defined(__x86_64__)
    if (GEMM_MAX_ISA >= ISA_AVX512 && __builtin_cpu_supports("avx512f"))
        return &kernels_avx512;
    if (GEMM_MAX_ISA >= ISA_AVX2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return &kernels_avx2;
#endif
    return &kernels_generic;
}

const char *gemm_kernel_name(void) { return kernels()->name; }

void gemm_panels_run(const float *a, int lda, int m, const float *packed, int n, int k, float *c,
                     int ldc, const float *bias, enum gemm_epilogue ep, int p0, int p1)
{
    kernels()->panels(a, lda, m, packed, n, k, c, ldc, bias, ep, p0, p1, p1);
}

void rowop_softmax(float *x, int n, float scale) { kernels()->row_softmax(x, n, scale); }

void rowop_layernorm(float *x, const float *add, const float *bias, const float *g, const float *b, int n,
                     float eps)
{
    kernels()->row_layernorm(x, add, bias, g, b, n, eps);
}

void gemm_pack(const float *w, int ldw, int n, int k, float *packed)
{
    for (int p = 0; p < gemm_panels(n); p++) {
        float *dst = packed + (size_t)p * (size_t)k * GEMM_NR;
        for (int kk = 0; kk < k; kk++)
            for (int j = 0; j < GEMM_NR; j++) {
                int row = p * GEMM_NR + j;
                dst[(size_t)kk * GEMM_NR + j] = row < n ? w[(size_t)row * ldw + kk] : 0.0f;
            }
    }
}

void gemm_pack_transposed(const float *wt, int ldw, int n, int k, float *packed)
{
    for (int p = 0; p < gemm_panels(n); p++) {
        float *dst = packed + (size_t)p * (size_t)k * GEMM_NR;
        int cols = n - p * GEMM_NR < GEMM_NR ? n - p * GEMM_NR : GEMM_NR;
        for (int kk = 0; kk < k; kk++) {
            memcpy(dst + (size_t)kk * GEMM_NR, wt + (size_t)kk * ldw + (size_t)p * GEMM_NR,
                   (size_t)cols * sizeof(float));
            memset(dst + (size_t)kk * GEMM_NR + cols, 0, (size_t)(GEMM_NR - cols) * sizeof(float));
        }
    }
}

/* C = A · Wᵀ (+ bias, GELU) with W packed. The output columns are cut into chunks of
 * consecutive panels of about CHUNK_FLOPS each (between MIN and MAX per thread), and the chunks
 * into one contiguous range per thread. A thread runs its own range front to back, so each
 * chunk can prefetch the next one's first panel and the weights stream without a break; then
 * it takes chunks from the back of the other ranges, so a thread slowed down by another
 * process or an HTTP thread holds up the product only briefly. Measured in-process against
 * chunks handed out from one shared counter (each chunk's first panel then came cold): 0.89x
 * the time at 32 rows, 0.94x at 128, 0.96x at 8 and 0.98x at 512, identical results. */
#define CHUNK_FLOPS 8e6
#define MIN_CHUNKS_PER_THREAD 3
#define MAX_CHUNKS_PER_THREAD 16
#define MAX_RANGES 64 /* threads beyond this many sit a product out */

struct linear_job {
    const float *a, *w, *bias;
    float *c;
    int m, n, k, panels_per_chunk, n_ranges;
    enum gemm_epilogue ep;
    /* Chunks [lo, hi) not yet taken from each range, as lo | hi << 32: one word, so that the
     * owner (taking lo) and a thief (taking hi - 1) never take the same chunk. */
    _Atomic uint64_t range[MAX_RANGES];
};

/* The front chunk of range r (its owner) or its back chunk (another thread); -1 when the range
 * is empty. *more: the chunk after the one taken is still in the range. */
static int take_chunk(struct linear_job *j, int r, bool front, bool *more)
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

static void run_chunk(const struct linear_job *j, int chunk, bool prefetch_next)
{
    int panels = gemm_panels(j->n), p0 = chunk * j->panels_per_chunk, p1 = p0 + j->panels_per_chunk;
    if (p1 > panels)
        p1 = panels;
    kernels()->panels(j->a, j->k, j->m, j->w, j->n, j->k, j->c, j->n, j->bias, j->ep, p0, p1,
                      prefetch_next && p1 < panels ? p1 + 1 : p1);
}

/* Task r: range r, then what is left of the others. */
static void linear_task(void *ctx, int task, int thread)
{
    struct linear_job *j = ctx;
    (void)thread;
    bool more;
    int chunk;
    while ((chunk = take_chunk(j, task, true, &more)) >= 0)
        run_chunk(j, chunk, more);
    for (int i = 1; i < j->n_ranges; i++)
        while ((chunk = take_chunk(j, (task + i) % j->n_ranges, false, &more)) >= 0)
            run_chunk(j, chunk, false);
}

void gemm_linear(threadpool *pool, const float *a, int m, const float *w, int n, int k, float *c,
                   const float *bias, enum gemm_epilogue ep)
{
    int threads = threadpool_size(pool), panels = gemm_panels(n);
    double chunks_by_work = 2.0 * m * k * (double)n / CHUNK_FLOPS;
    int chunks = chunks_by_work < threads * MIN_CHUNKS_PER_THREAD   ? threads * MIN_CHUNKS_PER_THREAD
                 : chunks_by_work > threads * MAX_CHUNKS_PER_THREAD ? threads * MAX_CHUNKS_PER_THREAD
                                                                   : (int)chunks_by_work;
    struct linear_job j = {.a = a, .w = w, .bias = bias, .c = c, .m = m, .n = n, .k = k, .ep = ep,
                           .panels_per_chunk = (panels + chunks - 1) / chunks};
    chunks = (panels + j.panels_per_chunk - 1) / j.panels_per_chunk;
    j.n_ranges = threads < MAX_RANGES ? threads : MAX_RANGES;
    if (j.n_ranges > chunks)
        j.n_ranges = chunks;
    for (int r = 0; r < j.n_ranges; r++)
        atomic_init(&j.range[r], (uint64_t)(r * chunks / j.n_ranges) | (uint64_t)((r + 1) * chunks / j.n_ranges) << 32);
    threadpool_run(pool, j.n_ranges, linear_task, &j);
}
