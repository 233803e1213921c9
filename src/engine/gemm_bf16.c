/* bf16 products (gemm_bf16.h): the packing, three kernels and their choice at run time.
 *
 *   amx-bf16       tdpbf16ps on Intel AMX tiles (gemm_bf16_amx.inc): 16 x 16 x 32
 *                  multiply-adds per instruction, where the CPU has them and Linux grants
 *                  the tile state (gemm_amx.h); else the next one.
 *   avx512-bf16    vdpbf16ps: 32 multiply-adds per instruction, twice an fp32 FMA's 16.
 *   portable-bf16  plain C on the same bf16 values widened to float32: any CPU, and the
 *                  check on the first one (same products, float32 sums in another order).
 *
 * Both round A into the caller's scratch first (see gemm_linear_bf16 for why), compute C a
 * panel at a time under gemm_split_panels, like the fp32 kernels, and store C + bias first,
 * then apply the fp32 kernels' own GELU (rowop_gelu) to the stored row. */
#include "engine/gemm_bf16.h"

#include "engine/gemm_amx.h"
#include "engine/gemm_split.h"
#include "engine/rowops.h"

#include <stdbool.h>
#include <stddef.h>

#define INLINE static inline __attribute__((always_inline))

/* One product's operands. */
struct bf16_job {
    const float *a;    /* [m][k] float32 */
    uint16_t *a16;     /* [m][2 kp]: A rounded, by round_rows before the panels run */
    const uint16_t *w;
    const float *bias;
    float *c; /* [m][n] */
    int m, n, k;
    enum gemm_epilogue ep;
    int round_rows_per_task;
};

struct bf16_kernels {
    const char *name;
    void (*round_row)(const float *x, int k, uint16_t *out);
    void (*panels)(const struct bf16_job *j, int p0, int p1, int pf_end);
};

static int min_int(int a, int b) { return a < b ? a : b; }

/* Columns of panel p that are real (32 but in the last panel). */
static int panel_cols(int n, int p) { return min_int(n - p * GEMM_NR, GEMM_NR); }

/* c[0, cols) = sum + bias (bias NULL: none), then GELU if asked: the fp32 kernels' epilogue. */
static void finish_row(float *c, const float *sum, const float *bias, int cols, enum gemm_epilogue ep)
{
    for (int j = 0; j < cols; j++)
        c[j] = sum[j] + (ep != GEMM_STORE ? bias[j] : 0.0f);
    if (ep == GEMM_BIAS_GELU)
        rowop_gelu(c, cols);
}

/* ---- portable-bf16 ---- */

static void round_row_portable(const float *x, int k, uint16_t *out)
{
    for (int i = 0; i < k; i++)
        out[i] = gemm_bf16_round(x[i]);
    if (k % 2)
        out[k] = 0;
}

/* Rows [i, i + rows) (rows <= 4) of C for panel w: 4 x 32 float32 sums of
 * sum += a(2t) w(2t), then += a(2t+1) w(2t+1), each product exact in float32 as in vdpbf16ps. */
static void tile_portable(const struct bf16_job *j, int i, int rows, const uint16_t *w, int col0, int cols)
{
    float sum[4][GEMM_NR] = {{0}};
    int kp = gemm_bf16_pairs(j->k);
    for (int t = 0; t < kp; t++) {
        const uint16_t *wt = w + (size_t)t * 2 * GEMM_NR;
        float w0[GEMM_NR], w1[GEMM_NR];
        for (int c = 0; c < GEMM_NR; c++) {
            w0[c] = gemm_bf16_float(wt[2 * c]);
            w1[c] = gemm_bf16_float(wt[2 * c + 1]);
        }
        for (int r = 0; r < rows; r++) {
            const uint16_t *ar = j->a16 + (size_t)(i + r) * 2 * kp + 2 * t;
            float a0 = gemm_bf16_float(ar[0]), a1 = gemm_bf16_float(ar[1]);
            for (int c = 0; c < GEMM_NR; c++) {
                sum[r][c] += a0 * w0[c];
                sum[r][c] += a1 * w1[c];
            }
        }
    }
    for (int r = 0; r < rows; r++)
        finish_row(j->c + (size_t)(i + r) * j->n + col0, sum[r], j->bias ? j->bias + col0 : NULL, cols, j->ep);
}

static void panels_portable(const struct bf16_job *j, int p0, int p1, int pf_end)
{
    (void)pf_end;
    int kp = gemm_bf16_pairs(j->k);
    for (int p = p0; p < p1; p++)
        for (int i = 0; i < j->m; i += 4)
            tile_portable(j, i, min_int(4, j->m - i), j->w + (size_t)p * kp * 2 * GEMM_NR, p * GEMM_NR,
                          panel_cols(j->n, p));
}

static const struct bf16_kernels kernels_portable = {"portable-bf16", round_row_portable, panels_portable};

/* ---- avx512-bf16 ---- */

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bf16")
#include <immintrin.h>

/* 12 x 32 tiles: 24 float32 accumulators, the k pair's two weight registers and a broadcast
 * of A's pair take 27 of the 32 registers, as in the fp32 AVX-512 kernel. */
#define MR 12

/* A's rounded rows are written as uint16_t and read here a pair at a time. */
typedef uint32_t bf16_pair __attribute__((may_alias));

/* x[k] to bf16 pairs, 32 floats per vcvtne2ps2bf16 (the tail loaded masked, so zeros pad it). */
static void round_row_avx512(const float *x, int k, uint16_t *out)
{
    int i = 0;
    for (; i + 32 <= k; i += 32) {
        __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
        _mm512_storeu_si512(out + i, (__m512i)h);
    }
    if (i < k) {
        int left = k - i;
        __mmask16 lo = (__mmask16)(left >= 16 ? 0xffff : (1u << left) - 1);
        __mmask16 hi = (__mmask16)(left <= 16 ? 0 : (1u << (left - 16)) - 1);
        uint16_t tmp[32];
        __m512bh h = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + i + 16), _mm512_maskz_loadu_ps(lo, x + i));
        _mm512_storeu_si512(tmp, (__m512i)h);
        memcpy(out + i, tmp, (size_t)(left + left % 2) * sizeof *out);
    }
}

/* Rows [0, rows) of C (rows <= R <= MR) for a panel w, whole k in registers: per k pair, two
 * loads of weights, and per row one broadcast of A's pair (a: row r's pairs at a + r * kp)
 * and two vdpbf16ps. R is a constant in each call, so the row loops unroll and the sums stay
 * in registers. */
INLINE void tile_avx512(const int R, int rows, const bf16_pair *a, const uint16_t *w, int k, float *c, int ldc,
                        int cols, const float *bias, enum gemm_epilogue ep)
{
    __m512 acc0[MR], acc1[MR];
    const bf16_pair *ar[MR];
    int kp = gemm_bf16_pairs(k);
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
        ar[r] = a + (size_t)(r < rows ? r : 0) * kp; /* rows past the edge: computed, not stored */
        acc0[r] = acc1[r] = _mm512_setzero_ps();
    }
    for (int t = 0; t < kp; t++) {
        const uint16_t *wt = w + (size_t)t * 2 * GEMM_NR;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(wt), b1 = (__m512bh)_mm512_loadu_si512(wt + 32);
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)ar[r][t]);
            acc0[r] = _mm512_dpbf16_ps(acc0[r], av, b0);
            acc1[r] = _mm512_dpbf16_ps(acc1[r], av, b1);
        }
    }
    for (int r = 0; r < rows; r++) {
        float sum[GEMM_NR];
        _mm512_storeu_ps(sum, acc0[r]);
        _mm512_storeu_ps(sum + 16, acc1[r]);
        finish_row(c + (size_t)r * ldc, sum, bias, cols, ep);
    }
}

/* Rows in the next tile from row i on: MR, then 8 or 4, as the fp32 kernel. */
static int tile_rows_avx512(int m, int i) { return m - i >= MR ? MR : m - i >= 8 ? 8 : m - i >= 4 ? 4 : m - i; }

static void panels_avx512(const struct bf16_job *j, int p0, int p1, int pf_end)
{
    (void)pf_end;
    int kp = gemm_bf16_pairs(j->k);
    for (int p = p0; p < p1; p++) {
        const uint16_t *w = j->w + (size_t)p * kp * 2 * GEMM_NR;
        const float *bias = j->bias ? j->bias + (size_t)p * GEMM_NR : NULL;
        int cols = panel_cols(j->n, p);
        for (int i = 0, rows; i < j->m; i += rows) {
            rows = tile_rows_avx512(j->m, i);
            const bf16_pair *a = (const bf16_pair *)j->a16 + (size_t)i * kp;
            float *c = j->c + (size_t)i * j->n + (size_t)p * GEMM_NR;
            if (rows == MR)
                tile_avx512(MR, MR, a, w, j->k, c, j->n, cols, bias, j->ep);
            else if (rows == 8)
                tile_avx512(8, 8, a, w, j->k, c, j->n, cols, bias, j->ep);
            else
                tile_avx512(4, rows, a, w, j->k, c, j->n, cols, bias, j->ep);
        }
    }
}

static const struct bf16_kernels kernels_avx512 = {"avx512-bf16", round_row_avx512, panels_avx512};
#undef MR
#pragma GCC pop_options
#endif

/* ---- choice, packing, the product ---- */

enum bf16_isa { BF16_PORTABLE, BF16_AVX512, BF16_AMX };

/* The best kernel this file may choose: the tests build it again with the lower ones only, and
 * with the AMX kernel on the software tile model (GEMM_AMX_SOFTWARE_MODEL). */
#ifndef GEMM_BF16_MAX_ISA
#define GEMM_BF16_MAX_ISA BF16_AMX
#endif

/* The best kernel below AMX: AMX's own stand-in where its tiles do not fit k, and its rounding
 * of A (the same bits either way). */
static const struct bf16_kernels *kernels_below_amx(void)
{
#if defined(__x86_64__)
    if (GEMM_BF16_MAX_ISA >= BF16_AVX512 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bf16"))
        return &kernels_avx512;
#endif
    return &kernels_portable;
}

/* ---- amx-bf16 ---- */

static void round_row_amx(const float *x, int k, uint16_t *out) { kernels_below_amx()->round_row(x, k, out); }

#if defined(GEMM_AMX_SOFTWARE_MODEL)
#define AMX_MODEL 1
#define AMX_VARIANT model
#define AMX_NAME "amx-bf16-model"
#include "gemm_amx_tiles.inc"
#include "gemm_bf16_amx.inc"

/* For the test of this build only (no header declares it): tile products the model ran. */
unsigned long gemm_bf16_amx_model_products(void) { return amx_model_products; }
#elif defined(__x86_64__)
/* With the AVX-512 kernel's target too: <immintrin.h> was first included under it, so its tile
 * functions carry it, and gcc inlines them only into functions whose target includes theirs.
 * Every CPU with AMX has it; kernels() checks anyway. */
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bf16,amx-tile,amx-bf16,amx-int8")
#include <immintrin.h>
#define AMX_MODEL 0
#define AMX_VARIANT hw
#define AMX_NAME "amx-bf16"
#include "gemm_amx_tiles.inc"
#include "gemm_bf16_amx.inc"
#pragma GCC pop_options
#endif

static const struct bf16_kernels *kernels(void)
{
#if defined(GEMM_AMX_SOFTWARE_MODEL)
    if (GEMM_BF16_MAX_ISA >= BF16_AMX)
        return &kernels_amx_model; /* the test build: the AMX code on the C model of its tiles */
#elif defined(__x86_64__)
    /* The AMX code is compiled with the AVX-512 kernel's target as well (see above). */
    if (GEMM_BF16_MAX_ISA >= BF16_AMX && (gemm_amx_features() & GEMM_AMX_BF16) &&
        kernels_below_amx() == &kernels_avx512)
        return &kernels_amx_hw;
#endif
    return kernels_below_amx();
}

const char *gemm_bf16_kernel_name(void) { return kernels()->name; }

void gemm_bf16_round_row(const float *x, int k, uint16_t *out) { kernels()->round_row(x, k, out); }

void gemm_pack_bf16(const float *w, int ldw, int n, int k, uint16_t *packed)
{
    int kp = gemm_bf16_pairs(k);
    for (int p = 0; p < gemm_panels(n); p++)
        for (int t = 0; t < kp; t++)
            for (int j = 0; j < GEMM_NR; j++)
                for (int h = 0; h < 2; h++) {
                    int row = p * GEMM_NR + j, col = 2 * t + h;
                    float x = row < n && col < k ? w[(size_t)row * ldw + col] : 0.0f;
                    packed[(((size_t)p * kp + t) * GEMM_NR + j) * 2 + h] = gemm_bf16_round(x);
                }
}

static void linear_panels(void *ctx, int p0, int p1, int pf_end)
{
    kernels()->panels(ctx, p0, p1, pf_end);
}

/* Rounds A's rows [task * per, (task + 1) * per) into a16, per = round_rows_per_task. */
#define ROUND_TASKS_PER_THREAD 2
static void round_rows(void *ctx, int task, int thread)
{
    const struct bf16_job *j = ctx;
    (void)thread;
    int kp = gemm_bf16_pairs(j->k);
    int i0 = task * j->round_rows_per_task, i1 = min_int(i0 + j->round_rows_per_task, j->m);
    for (int i = i0; i < i1; i++)
        kernels()->round_row(j->a + (size_t)i * j->k, j->k, j->a16 + (size_t)i * 2 * kp);
}

/* A is rounded to bf16 once, into the caller's scratch, before the panels run: rounding each
 * tile's rows again for every panel (KB pairs at a time into a stack buffer, inlined) took
 * 1.28x the time at 512 x 3072 x 768, 1.16x at 128 rows and 1.15x at 32 (medians of 21
 * alternating runs, 1 thread; 15.6 vs 12.2 ms, 4.28 vs 3.70, 1.25 vs 1.09), though it costs only
 * one vcvtne2ps2bf16 per 32 vdpbf16ps on paper. Rounded once, A is also half its float32 size
 * (768 KB at 512 x 768), so it stays in Zen 4's 1 MB L2 while every panel reads it again. The
 * rounding is spread over the pool's threads: at k = 3072 it is 1.5 M floats. */
void gemm_linear_bf16(threadpool *pool, const float *a, int m, const uint16_t *packed, int n, int k, float *c,
                      const float *bias, enum gemm_epilogue ep, uint16_t *scratch)
{
    struct bf16_job j = {.a = a, .a16 = scratch, .w = packed, .bias = bias, .c = c, .m = m, .n = n, .k = k, .ep = ep};
    int tasks = min_int(m, ROUND_TASKS_PER_THREAD * threadpool_size(pool));
    j.round_rows_per_task = (m + tasks - 1) / tasks;
    threadpool_run(pool, (m + j.round_rows_per_task - 1) / j.round_rows_per_task, round_rows, &j);
    gemm_split_panels(pool, m, n, k, linear_panels, &j);
}
