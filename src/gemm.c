#include "gemm.h"

#include "threadpool.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* 16 floats: one AVX-512 register, two AVX2 registers, four SSE ones. GCC's vector
 * extensions let one kernel source compile for each instruction set below. */
/* The helpers below return vectors by value; they are always inlined into the kernels,
 * so the ABI note GCC gives for that does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

#define INLINE static inline __attribute__((always_inline))

INLINE v16 v_load(const float *p)
{
    v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE void v_store(float *p, v16 v) { memcpy(p, &v, sizeof v); }
/* A shuffle of element 0 into every lane: GCC turns this into one broadcast, where
 * spelling out {x, x, ...} or adding x to a zero vector does not. */
INLINE v16 v_splat(float x) { return __builtin_shuffle((v16){x}, (v16i){0}); }
INLINE v16 v_select(v16i mask, v16 yes, v16 no) { return (v16)(((v16i)yes & mask) | ((v16i)no & ~mask)); }

/* exp(x) for x <= 0 (Cephes' expf: range reduction by ln 2, degree-6 polynomial; ~1 ulp).
 * Below -87 the result is clamped near FLT_MIN, which every caller treats as zero. */
INLINE v16 v_exp_nonpositive(v16 x)
{
    x = v_select(x < -87.0f, v_splat(-87.0f), x);
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    v16 t = x * 1.44269504088896341f + magic;
    v16 n = t - magic;
    v16i ni = (v16i)t - (v16i)v_splat(magic);
    v16 r = x - n * 0.693359375f - n * -2.12194440e-4f;
    v16 p = v_splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * (v16)((ni + 127) << 23);
}

/* HF's exact GELU, 0.5 x (1 + erf(x / sqrt 2)), written with erfc so that the negative tail
 * keeps its relative accuracy: erfc from Numerical Recipes' Chebyshev fit (fractional
 * error < 1.2e-7 everywhere). */
INLINE v16 v_gelu(v16 x)
{
    v16 z = (v16)((v16i)x & 0x7fffffff) * 0.70710678118654752f;
    v16 t = 1.0f / (1.0f + 0.5f * z);
    v16 p = v_splat(0.17087277f);
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    v16 erfc = t * v_exp_nonpositive(p - z * z);
    return 0.5f * x * v_select(x >= 0.0f, 2.0f - erfc, erfc);
}

/* One tile: rows [0, rows) of C (rows <= MR) for one panel of NR = 32 columns, the whole
 * k loop in registers (MR x 2 accumulators), then the epilogue. MR is a constant in every
 * call, so the compiler unrolls the row loops and keeps the accumulators in registers.
 * While it computes, it prefetches pf_lines cache lines from prefetch on into L2, evenly
 * over its k steps: pf_rate / 256 lines per step, at most 2 (see DEFINE_PANELS). */
INLINE void tile(const int MR, int rows, const float *a, int lda, const float *w, int k, float *c,
                 int ldc, int cols, const float *bias, enum gemm_epilogue ep, const float *prefetch,
                 int pf_lines, int pf_rate)
{
    const float *ar[12];
    v16 acc0[12], acc1[12];
    int pf_due = 0;
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        ar[r] = a + (size_t)(r < rows ? r : 0) * (size_t)lda;
        acc0[r] = acc1[r] = (v16){0};
    }
    for (int kk = 0; kk < k; kk++) {
        v16 b0 = v_load(w + (size_t)kk * GEMM_NR), b1 = v_load(w + (size_t)kk * GEMM_NR + 16);
        for (pf_due += pf_rate; pf_due >= 256 && pf_lines > 0; pf_due -= 256, pf_lines--) {
            __builtin_prefetch(prefetch, 0, 2);
            prefetch += 16;
        }
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            v16 av = v_splat(ar[r][kk]);
            acc0[r] += av * b0;
            acc1[r] += av * b1;
        }
    }
    float tmp[GEMM_NR];
    v16 bias0 = {0}, bias1 = {0};
    if (ep != GEMM_STORE) {
        memset(tmp, 0, sizeof tmp);
        memcpy(tmp, bias, (size_t)cols * sizeof(float));
        bias0 = v_load(tmp);
        bias1 = v_load(tmp + 16);
    }
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        if (r >= rows)
            break;
        v16 x0 = acc0[r] + bias0, x1 = acc1[r] + bias1;
        if (ep == GEMM_BIAS_GELU) {
            x0 = v_gelu(x0);
            x1 = v_gelu(x1);
        }
        float *cr = c + (size_t)r * (size_t)ldc;
        if (cols == GEMM_NR) {
            v_store(cr, x0);
            v_store(cr + 16, x1);
        } else {
            v_store(tmp, x0);
            v_store(tmp + 16, x1);
            memcpy(cr, tmp, (size_t)cols * sizeof(float));
        }
    }
}

/* Rows in the next tile of a panel from row i on: MR at a time, then smaller tiles for the
 * rest, so that no tile computes many rows it throws away. */
INLINE int tile_rows(const int MR, int m, int i)
{
    return m - i >= MR ? MR : MR > 8 && m - i >= 8 ? 8 : m - i >= 4 ? 4 : m - i;
}

/* The panel loop for one instruction set. The next panel of weights (if it is below pf_end:
 * the caller may go on past p1) is prefetched into L2 while this one is computed, spread
 * evenly over all of its tiles. Spread so, a product at 32-128 rows takes 0.89-0.91x the time
 * it took with the whole prefetch in the first two tiles, and at 8 rows (one tile) the same
 * (in-process A/B, identical results). The likely reason: a software prefetch holds one of
 * the core's few L1 miss buffers until memory answers, so a burst of them starves the loads
 * of the current panel from L2. */
#define DEFINE_PANELS(NAME, TARGET, MR)                                                        \
    TARGET static void NAME(const float *a, int lda, int m, const float *packed, int n, int k,  \
                            float *c, int ldc, const float *bias, enum gemm_epilogue ep, int p0, \
                            int p1, int pf_end)                                                 \
    {                                                                                           \
        int tiles = 0;                                                                          \
        for (int i = 0; i < m; i += tile_rows(MR, m, i))                                        \
            tiles++;                                                                            \
        int panel_lines = 2 * k, lines_per_tile = (panel_lines + tiles - 1) / tiles;            \
        int rate = (lines_per_tile * 256 + k - 1) / k;                                          \
        for (int p = p0; p < p1; p++) {                                                         \
            const float *w = packed + (size_t)p * (size_t)k * GEMM_NR;                          \
            const float *next = p + 1 < pf_end ? w + (size_t)k * GEMM_NR : NULL;                \
            int cols = n - p * GEMM_NR < GEMM_NR ? n - p * GEMM_NR : GEMM_NR;                   \
            const float *b = bias ? bias + (size_t)p * GEMM_NR : NULL;                          \
            for (int i = 0, line = 0; i < m; line += lines_per_tile) {                          \
                int rows = tile_rows(MR, m, i);                                                 \
                int lines = !next || line >= panel_lines ? 0                                    \
                            : panel_lines - line < lines_per_tile ? panel_lines - line : lines_per_tile; \
                const float *pf = lines ? next + (size_t)line * 16 : NULL;                      \
                const float *ai = a + (size_t)i * lda;                                          \
                float *ci = c + (size_t)i * ldc + (size_t)p * GEMM_NR;                          \
                if (rows == MR)                                                                 \
                    tile(MR, MR, ai, lda, w, k, ci, ldc, cols, b, ep, pf, lines, rate);         \
                else if (rows == 8)                                                             \
                    tile(8, 8, ai, lda, w, k, ci, ldc, cols, b, ep, pf, lines, rate);           \
                else                                                                            \
                    tile(4, rows, ai, lda, w, k, ci, ldc, cols, b, ep, pf, lines, rate);        \
                i += rows;                                                                      \
            }                                                                                   \
        }                                                                                       \
    }

/* x = softmax(x * scale) over a row. The maximum is taken 16 lanes at a time: a scalar
 * max is one 4-cycle dependency chain per element, which cost 7% of a 512-token pass. */
#define DEFINE_SOFTMAX_ROW(NAME, TARGET)                                                        \
    TARGET static void NAME(float *x, int n, float scale)                                      \
    {                                                                                           \
        float max = x[0];                                                                       \
        int i = 0;                                                                              \
        if (n >= 16) {                                                                          \
            v16 m16 = v_load(x);                                                                \
            for (i = 16; i + 16 <= n; i += 16) {                                                \
                v16 v = v_load(x + i);                                                          \
                m16 = v_select(v > m16, v, m16);                                                \
            }                                                                                   \
            for (int j = 0; j < 16; j++)                                                        \
                max = m16[j] > max ? m16[j] : max;                                              \
        }                                                                                       \
        for (; i < n; i++)                                                                      \
            max = x[i] > max ? x[i] : max;                                                      \
        v16 sum16 = {0};                                                                        \
        for (i = 0; i + 16 <= n; i += 16) {                                                     \
            v16 e = v_exp_nonpositive((v_load(x + i) - max) * scale);                           \
            v_store(x + i, e);                                                                  \
            sum16 += e;                                                                         \
        }                                                                                       \
        float sum = 0;                                                                          \
        for (int j = 0; j < 16; j++)                                                            \
            sum += sum16[j];                                                                    \
        for (int t = i; t < n; t++)                                                             \
            sum += x[t] = expf((x[t] - max) * scale);                                           \
        float inv = 1.0f / sum;                                                                 \
        for (i = 0; i + 16 <= n; i += 16)                                                       \
            v_store(x + i, v_load(x + i) * inv);                                                \
        for (; i < n; i++)                                                                      \
            x[i] *= inv;                                                                        \
    }

/* x = LayerNorm(x + add + bias) over one row (add and bias may be NULL). Mean and variance
 * accumulate in double, 8 lanes at a time: rows hold outliers, and float sums would cost
 * accuracy; the lanes keep it vectorized. */
typedef float v8f __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));

#define DEFINE_LAYERNORM(NAME, TARGET)                                                          \
    TARGET static void NAME(float *x, const float *add, const float *bias, const float *g,     \
                            const float *b, int n, float eps)                                  \
    {                                                                                           \
        int n8 = n / 8 * 8;                                                                     \
        v8d sum8 = {0};                                                                         \
        double sum = 0;                                                                         \
        for (int i = 0; i < n8; i += 8) {                                                       \
            v8f v;                                                                              \
            memcpy(&v, x + i, sizeof v);                                                        \
            if (add) {                                                                          \
                v8f a, c;                                                                       \
                memcpy(&a, add + i, sizeof a);                                                  \
                memcpy(&c, bias + i, sizeof c);                                                 \
                v = a + c + v;                                                                  \
                memcpy(x + i, &v, sizeof v);                                                    \
            }                                                                                   \
            sum8 += __builtin_convertvector(v, v8d);                                            \
        }                                                                                       \
        for (int i = n8; i < n; i++) {                                                          \
            if (add)                                                                            \
                x[i] = add[i] + bias[i] + x[i];                                                 \
            sum += x[i];                                                                        \
        }                                                                                       \
        for (int j = 0; j < 8; j++)                                                             \
            sum += sum8[j];                                                                     \
        double mean = sum / n, sq = 0;                                                          \
        v8d sq8 = {0};                                                                          \
        for (int i = 0; i < n8; i += 8) {                                                       \
            v8f v;                                                                              \
            memcpy(&v, x + i, sizeof v);                                                        \
            v8d dv = __builtin_convertvector(v, v8d) - mean;                                    \
            sq8 += dv * dv;                                                                     \
        }                                                                                       \
        for (int i = n8; i < n; i++)                                                            \
            sq += (x[i] - mean) * (x[i] - mean);                                                \
        for (int j = 0; j < 8; j++)                                                             \
            sq += sq8[j];                                                                       \
        float m = (float)mean, rstd = (float)(1.0 / sqrt(sq / n + eps));                        \
        for (int i = 0; i < n; i++)                                                             \
            x[i] = (x[i] - m) * rstd * g[i] + b[i];                                             \
    }

#if defined(__x86_64__)
DEFINE_LAYERNORM(layernorm_avx512, __attribute__((target("avx512f,fma"))))
DEFINE_LAYERNORM(layernorm_avx2, __attribute__((target("avx2,fma"))))
DEFINE_PANELS(panels_avx512, __attribute__((target("avx512f,fma"))), 12)
DEFINE_PANELS(panels_avx2, __attribute__((target("avx2,fma"))), 4)
DEFINE_SOFTMAX_ROW(softmax_row_avx512, __attribute__((target("avx512f,fma"))))
DEFINE_SOFTMAX_ROW(softmax_row_avx2, __attribute__((target("avx2,fma"))))
#endif
DEFINE_PANELS(panels_generic, , 4)
DEFINE_LAYERNORM(layernorm_generic, )
DEFINE_SOFTMAX_ROW(softmax_row_generic, )

enum isa { ISA_GENERIC, ISA_AVX2, ISA_AVX512 };

/* The best kernel this file may choose: tests build it again with a lower one, to check the
 * kernels that a CPU with a better one never runs. */
#ifndef GEMM_MAX_ISA
#define GEMM_MAX_ISA ISA_AVX512
#endif

static enum isa cpu_isa(void)
{
#if defined(__x86_64__)
    if (GEMM_MAX_ISA >= ISA_AVX512 && __builtin_cpu_supports("avx512f"))
        return ISA_AVX512;
    if (GEMM_MAX_ISA >= ISA_AVX2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return ISA_AVX2;
#endif
    return ISA_GENERIC;
}

const char *gemm_kernel_name(void)
{
    static const char *names[] = {"generic", "avx2", "avx512"};
    return names[cpu_isa()];
}

static void panels_run(const float *a, int lda, int m, const float *packed, int n, int k, float *c, int ldc,
                       const float *bias, enum gemm_epilogue ep, int p0, int p1, int pf_end)
{
    switch (cpu_isa()) {
#if defined(__x86_64__)
    case ISA_AVX512:
        panels_avx512(a, lda, m, packed, n, k, c, ldc, bias, ep, p0, p1, pf_end);
        return;
    case ISA_AVX2:
        panels_avx2(a, lda, m, packed, n, k, c, ldc, bias, ep, p0, p1, pf_end);
        return;
#endif
    default:
        panels_generic(a, lda, m, packed, n, k, c, ldc, bias, ep, p0, p1, pf_end);
    }
}

void gemm_panels_run(const float *a, int lda, int m, const float *packed, int n, int k, float *c,
                     int ldc, const float *bias, enum gemm_epilogue ep, int p0, int p1)
{
    panels_run(a, lda, m, packed, n, k, c, ldc, bias, ep, p0, p1, p1);
}

void gemm_softmax_row(float *x, int n, float scale)
{
    switch (cpu_isa()) {
#if defined(__x86_64__)
    case ISA_AVX512:
        softmax_row_avx512(x, n, scale);
        return;
    case ISA_AVX2:
        softmax_row_avx2(x, n, scale);
        return;
#endif
    default:
        softmax_row_generic(x, n, scale);
    }
}

void gemm_layernorm_row(float *x, const float *add, const float *bias, const float *g, const float *b, int n,
                        float eps)
{
    switch (cpu_isa()) {
#if defined(__x86_64__)
    case ISA_AVX512:
        layernorm_avx512(x, add, bias, g, b, n, eps);
        return;
    case ISA_AVX2:
        layernorm_avx2(x, add, bias, g, b, n, eps);
        return;
#endif
    default:
        layernorm_generic(x, add, bias, g, b, n, eps);
    }
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
    panels_run(j->a, j->k, j->m, j->w, j->n, j->k, j->c, j->n, j->bias, j->ep, p0, p1,
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
