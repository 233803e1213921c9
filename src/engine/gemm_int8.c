/* int8 products (gemm_int8.h): the quantization, the packing, two kernels and their choice at
 * run time.
 *
 *   avx512-vnni    vpdpbusd: 64 u8 x s8 multiply-adds per instruction into int32, four times an
 *                  fp32 FMA's 16.
 *   portable-int8  plain C on the same integers: any CPU, and the check on the first one.
 *
 * Both quantize A's rows into the caller's scratch first (one function for both, so they
 * multiply the same bytes), compute C a panel at a time under gemm_split_panels, and
 * dequantize by the same recipe (gemm_int8.h), so their C is bit-identical; then the fp32
 * kernels' own GELU (rowop_gelu) runs on the stored row. */
#include "engine/gemm_int8.h"

#include "engine/gemm_split.h"
#include "engine/rowops.h"

#include <math.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

/* One product's operands. */
struct int8_job {
    const float *a;          /* [m][k] float32 */
    const float *row_scale;  /* [m]: sa, in scratch */
    const int32_t *row_zp;   /* [m]: zp, in scratch */
    const uint8_t *qa;       /* [m][4 kq]: A quantized, by quantize_rows before the panels run */
    const int8_t *w;
    const float *bias;
    float *c; /* [m][n] */
    int m, n, k;
    enum gemm_epilogue ep;
    int quantize_rows_per_task;
};

struct int8_kernels {
    const char *name;
    void (*panels)(const struct int8_job *j, int p0, int p1, int pf_end);
};

static int min_int(int a, int b) { return a < b ? a : b; }

static int panel_cols(int n, int p) { return min_int(n - p * GEMM_NR, GEMM_NR); }

/* A panel's parts (gemm_int8.h). */
static const int8_t *panel_weights(const struct int8_job *j, int p)
{
    return j->w + (size_t)p * gemm_int8_panel_bytes(j->k);
}
static const int32_t *panel_colsum(const struct int8_job *j, int p)
{
    return (const int32_t *)(const void *)(panel_weights(j, p) + (size_t)gemm_int8_quads(j->k) * GEMM_NR * 4);
}
static const float *panel_scale(const struct int8_job *j, int p) { return (const float *)(const void *)(panel_colsum(j, p) + GEMM_NR); }

/* ---- quantization (shared by both kernels) ---- */

/* Round to nearest, ties to even (the default rounding mode, as vcvtps2dq), as an int. */
static int32_t round_even(float x) { return (int32_t)lrintf(x); }

void gemm_int8_quantize_row(const float *x, int k, uint8_t *q, float *scale, int32_t *zero_point)
{
    float lo = 0.0f, hi = 0.0f;
    for (int t = 0; t < k; t++) {
        lo = x[t] < lo ? x[t] : lo;
        hi = x[t] > hi ? x[t] : hi;
    }
    float sa = (hi - lo) / 255.0f;
    if (!(sa > 0.0f)) /* a row of zeros (or a NaN): any scale represents it */
        sa = 1.0f;
    float inv = 1.0f / sa;
    int32_t zp = round_even(-lo * inv);
    zp = zp < 0 ? 0 : zp > 255 ? 255 : zp;
    for (int t = 0; t < k; t++) {
        int32_t v = round_even(x[t] * inv) + zp;
        q[t] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    for (int t = k; t < 4 * gemm_int8_quads(k); t++)
        q[t] = 0;
    *scale = sa;
    *zero_point = zp;
}

/* ---- the epilogue: one recipe, written twice ---- */

/* c[0, cols) from a row's int32 sums (gemm_int8.h): what the AVX-512 epilogue computes lane by
 * lane, fmaf being its vfmadd's single rounding. */
static void finish_row(float *c, const int32_t *sum, int32_t zp, float sa, const int32_t *colsum,
                       const float *scale, const float *bias, int cols, enum gemm_epilogue ep)
{
    for (int j = 0; j < cols; j++)
        c[j] = fmaf((float)(sum[j] - zp * colsum[j]), sa * scale[j], ep != GEMM_STORE ? bias[j] : 0.0f);
    if (ep == GEMM_BIAS_GELU)
        rowop_gelu(c, cols);
}

/* ---- portable-int8 ---- */

/* Rows [i, i + rows) (rows <= 4) of C for panel p: 4 x 32 int32 sums over k, quad by quad. */
static void tile_portable(const struct int8_job *j, int i, int rows, int p)
{
    int32_t sum[4][GEMM_NR] = {{0}};
    int kq = gemm_int8_quads(j->k);
    const int8_t *w = panel_weights(j, p);
    for (int t = 0; t < kq; t++) {
        const int8_t *wt = w + (size_t)t * GEMM_NR * 4;
        for (int r = 0; r < rows; r++) {
            const uint8_t *ar = j->qa + (size_t)(i + r) * 4 * kq + 4 * t;
            for (int c = 0; c < GEMM_NR; c++)
                for (int h = 0; h < 4; h++)
                    sum[r][c] += (int32_t)ar[h] * wt[4 * c + h];
        }
    }
    int col0 = p * GEMM_NR;
    for (int r = 0; r < rows; r++)
        finish_row(j->c + (size_t)(i + r) * j->n + col0, sum[r], j->row_zp[i + r], j->row_scale[i + r],
                   panel_colsum(j, p), panel_scale(j, p), j->bias ? j->bias + col0 : NULL, panel_cols(j->n, p),
                   j->ep);
}

static void panels_portable(const struct int8_job *j, int p0, int p1, int pf_end)
{
    (void)pf_end;
    for (int p = p0; p < p1; p++)
        for (int i = 0; i < j->m; i += 4)
            tile_portable(j, i, min_int(4, j->m - i), p);
}

static const struct int8_kernels kernels_portable = {"portable-int8", panels_portable};

/* ---- avx512-vnni ---- */

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vnni")
#include <immintrin.h>

/* 12 x 32 tiles: 24 int32 accumulators, the k quad's two weight registers and a broadcast of
 * A's quad take 27 of the 32 registers, as in the fp32 and bf16 AVX-512 kernels. */
#define MR 12

/* A's quantized rows are written as bytes and read here four at a time. */
typedef uint32_t u8_quad __attribute__((may_alias));

/* One row of the epilogue, 16 columns: fma((float)(sum - zp colsum), sa scale, bias), the
 * recipe of finish_row. */
INLINE __m512 dequantize16(__m512i sum, __m512i zp, __m512 sa, const int32_t *colsum, const float *scale,
                           const float *bias, __mmask16 cols)
{
    __m512i corr = _mm512_sub_epi32(sum, _mm512_mullo_epi32(zp, _mm512_loadu_si512(colsum)));
    __m512 s = _mm512_mul_ps(sa, _mm512_loadu_ps(scale));
    __m512 b = bias ? _mm512_maskz_loadu_ps(cols, bias) : _mm512_setzero_ps();
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(corr), s, b);
}

/* Rows [0, rows) of C (rows <= R <= MR) for a panel, whole k in registers: per k quad, two
 * loads of weights, and per row one broadcast of A's quad and two vpdpbusd. R is a constant in
 * each call, so the row loops unroll and the sums stay in registers. */
INLINE void tile_avx512(const int R, int rows, const struct int8_job *j, int i, int p)
{
    __m512i acc0[MR], acc1[MR];
    const u8_quad *ar[MR];
    int kq = gemm_int8_quads(j->k);
    const int8_t *w = panel_weights(j, p);
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
        ar[r] = (const u8_quad *)(const void *)(j->qa + (size_t)(i + (r < rows ? r : 0)) * 4 * kq);
        acc0[r] = acc1[r] = _mm512_setzero_si512(); /* rows past the edge: computed, not stored */
    }
    for (int t = 0; t < kq; t++) {
        const int8_t *wt = w + (size_t)t * GEMM_NR * 4;
        __m512i b0 = _mm512_loadu_si512(wt), b1 = _mm512_loadu_si512(wt + 64);
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) {
            __m512i av = _mm512_set1_epi32((int)ar[r][t]);
            acc0[r] = _mm512_dpbusd_epi32(acc0[r], av, b0);
            acc1[r] = _mm512_dpbusd_epi32(acc1[r], av, b1);
        }
    }
    int col0 = p * GEMM_NR, cols = panel_cols(j->n, p);
    const int32_t *colsum = panel_colsum(j, p);
    const float *scale = panel_scale(j, p), *bias = j->bias ? j->bias + col0 : NULL;
    __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xffff : (1u << cols) - 1);
    __mmask16 m1 = (__mmask16)(cols <= 16 ? 0 : cols >= 32 ? 0xffff : (1u << (cols - 16)) - 1);
    for (int r = 0; r < rows; r++) {
        __m512i zp = _mm512_set1_epi32(j->row_zp[i + r]);
        __m512 sa = _mm512_set1_ps(j->row_scale[i + r]);
        float *c = j->c + (size_t)(i + r) * j->n + col0;
        _mm512_mask_storeu_ps(c, m0, dequantize16(acc0[r], zp, sa, colsum, scale, bias, m0));
        _mm512_mask_storeu_ps(c + 16, m1,
                              dequantize16(acc1[r], zp, sa, colsum + 16, scale + 16, bias ? bias + 16 : NULL, m1));
        if (j->ep == GEMM_BIAS_GELU)
            rowop_gelu(c, cols);
    }
}

/* Rows in the next tile from row i on: MR, then 8 or 4, as the fp32 kernel. */
static int tile_rows_avx512(int m, int i) { return m - i >= MR ? MR : m - i >= 8 ? 8 : m - i >= 4 ? 4 : m - i; }

static void panels_avx512(const struct int8_job *j, int p0, int p1, int pf_end)
{
    (void)pf_end;
    for (int p = p0; p < p1; p++)
        for (int i = 0, rows; i < j->m; i += rows) {
            rows = tile_rows_avx512(j->m, i);
            if (rows == MR)
                tile_avx512(MR, MR, j, i, p);
            else if (rows == 8)
                tile_avx512(8, 8, j, i, p);
            else
                tile_avx512(4, rows, j, i, p);
        }
}

static const struct int8_kernels kernels_avx512 = {"avx512-vnni", panels_avx512};
#undef MR
#pragma GCC pop_options
#endif

/* ---- choice, packing, the product ---- */

enum int8_isa { INT8_PORTABLE, INT8_AVX512_VNNI };

/* The best kernel this file may choose: the tests build it again with the portable one only. */
#ifndef GEMM_INT8_MAX_ISA
#define GEMM_INT8_MAX_ISA INT8_AVX512_VNNI
#endif

static const struct int8_kernels *kernels(void)
{
#if defined(__x86_64__)
    if (GEMM_INT8_MAX_ISA >= INT8_AVX512_VNNI && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512vnni"))
        return &kernels_avx512;
#endif
    return &kernels_portable;
}

const char *gemm_int8_kernel_name(void) { return kernels()->name; }

/* Row j's symmetric scale (gemm_int8.h): max |w| / 127. */
static float weight_scale(const float *w, int k)
{
    float amax = 0.0f;
    for (int t = 0; t < k; t++)
        amax = fabsf(w[t]) > amax ? fabsf(w[t]) : amax;
    return amax / 127.0f;
}

static int8_t quantize_weight(float w, float scale)
{
    int32_t v = scale > 0.0f ? round_even(w / scale) : 0;
    return (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
}

void gemm_pack_int8(const float *w, int ldw, int n, int k, int8_t *packed)
{
    int kq = gemm_int8_quads(k);
    for (int p = 0; p < gemm_panels(n); p++) {
        int8_t *panel = packed + (size_t)p * gemm_int8_panel_bytes(k);
        int32_t *colsum = (int32_t *)(void *)(panel + (size_t)kq * GEMM_NR * 4);
        float *scale = (float *)(void *)(colsum + GEMM_NR);
        memset(panel, 0, gemm_int8_panel_bytes(k));
        for (int c = 0; c < GEMM_NR && p * GEMM_NR + c < n; c++) {
            const float *row = w + (size_t)(p * GEMM_NR + c) * ldw;
            scale[c] = weight_scale(row, k);
            for (int t = 0; t < k; t++) {
                int8_t q = quantize_weight(row[t], scale[c]);
                panel[((size_t)(t / 4) * GEMM_NR + c) * 4 + t % 4] = q;
                colsum[c] += q;
            }
        }
    }
}

static void linear_panels(void *ctx, int p0, int p1, int pf_end) { kernels()->panels(ctx, p0, p1, pf_end); }

/* Quantizes A's rows [task * per, (task + 1) * per) into scratch, per = quantize_rows_per_task. */
#define QUANTIZE_TASKS_PER_THREAD 2
static void quantize_rows(void *ctx, int task, int thread)
{
    const struct int8_job *j = ctx;
    (void)thread;
    int kq = gemm_int8_quads(j->k);
    int i0 = task * j->quantize_rows_per_task, i1 = min_int(i0 + j->quantize_rows_per_task, j->m);
    for (int i = i0; i < i1; i++)
        gemm_int8_quantize_row(j->a + (size_t)i * j->k, j->k, (uint8_t *)j->qa + (size_t)i * 4 * kq,
                               (float *)j->row_scale + i, (int32_t *)j->row_zp + i);
}

/* A is quantized once, before the panels run, as gemm_linear_bf16 rounds it once: each panel
 * reads every row again, and a row's scale needs the whole row first anyway. */
void gemm_linear_int8(threadpool *pool, const float *a, int m, const int8_t *packed, int n, int k, float *c,
                      const float *bias, enum gemm_epilogue ep, uint8_t *scratch)
{
    float *row_scale = (float *)(void *)scratch;
    int32_t *row_zp = (int32_t *)(void *)(row_scale + m);
    struct int8_job j = {.a = a, .row_scale = row_scale, .row_zp = row_zp, .qa = (const uint8_t *)(row_zp + m),
                         .w = packed, .bias = bias, .c = c, .m = m, .n = n, .k = k, .ep = ep};
    int tasks = min_int(m, QUANTIZE_TASKS_PER_THREAD * threadpool_size(pool));
    j.quantize_rows_per_task = (m + tasks - 1) / tasks;
    threadpool_run(pool, (m + j.quantize_rows_per_task - 1) / j.quantize_rows_per_task, quantize_rows, &j);
    gemm_split_panels(pool, m, n, k, linear_panels, &j);
}
