/* int8 products (gemm_int8.h): the quantization, the packing, three kernels and their choice at
 * run time.
 *
 *   amx-int8       tdpbusd on Intel AMX tiles (gemm_int8_amx.inc): 16 x 16 x 64 u8 x s8
 *                  multiply-adds per instruction, where the CPU has them and Linux grants the
 *                  tile state (gemm_amx.h); else the next one. The same integers again, the
 *                  same epilogue recipe: the same bits.
 *   avx512-vnni    vpdpbusd: 64 u8 x s8 multiply-adds per instruction into int32, four times an
 *                  fp32 FMA's 16 (on Zen 4 it issues at about half vdpbf16ps's rate, so about
 *                  twice bf16's speed: README, Performance); 4 x 64 tiles over two adjacent
 *                  panels, 12 x 32 for a lone one.
 *   portable-int8  plain C on the same integers: any CPU, and the check on the first one.
 *
 * Both quantize A's rows into the caller's scratch first (each with its own loop over one
 * recipe, row_params: the same bytes, checked by test_gemm_int8), compute C a pair of panels at
 * a time under gemm_split_panels, and dequantize by the same recipe (gemm_int8.h), so their C is
 * bit-identical; then the fp32 kernels' own GELU (rowop_gelu) runs on each panel's row. */
#include "engine/gemm_int8.h"

#include "engine/gemm_amx.h"
#include "engine/gemm_split.h"
#include "engine/rowops.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
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
    void (*quantize_row)(const float *x, int k, uint8_t *q, float *scale, int32_t *zero_point);
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

/* ---- quantization: the recipe once, its loops twice ---- */

/* Round to nearest, ties to even (the default rounding mode, as vcvtps2dq). A long, so that
 * adding a zero point cannot overflow even for the garbage a NaN or inf in A rounds to. */
static long round_even(float x) { return lrintf(x); }

/* A row's scale, its reciprocal and zero point from its range [lo, hi] (lo <= 0 <= hi). */
static void row_params(float lo, float hi, float *scale, float *inv, int32_t *zero_point)
{
    float sa = (hi - lo) / 255.0f;
    if (!(sa > 0.0f)) /* a row of zeros (or a NaN): any scale represents it */
        sa = 1.0f;
    *inv = 1.0f / sa;
    long zp = round_even(-lo * *inv);
    *zero_point = (int32_t)(zp < 0 ? 0 : zp > 255 ? 255 : zp);
    *scale = sa;
}

/* The pad after k, to the row's last quad: zero (it meets zero weights). */
static void zero_pad(uint8_t *q, int k)
{
    for (int t = k; t < 4 * gemm_int8_quads(k); t++)
        q[t] = 0;
}

static void quantize_row_portable(const float *x, int k, uint8_t *q, float *scale, int32_t *zero_point)
{
    float lo = 0.0f, hi = 0.0f, inv;
    for (int t = 0; t < k; t++) {
        lo = x[t] < lo ? x[t] : lo;
        hi = x[t] > hi ? x[t] : hi;
    }
    row_params(lo, hi, scale, &inv, zero_point);
    for (int t = 0; t < k; t++) {
        long v = round_even(x[t] * inv) + *zero_point;
        q[t] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    zero_pad(q, k);
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

static const struct int8_kernels kernels_portable = {"portable-int8", quantize_row_portable, panels_portable};

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

/* Row r's sums for panel p's 32 columns (acc0: 0-15, acc1: 16-31) into C, then GELU. */
INLINE void store_row(const struct int8_job *j, int row, int p, __m512i acc0, __m512i acc1)
{
    int col0 = p * GEMM_NR, cols = panel_cols(j->n, p);
    const int32_t *colsum = panel_colsum(j, p);
    const float *scale = panel_scale(j, p), *bias = j->bias ? j->bias + col0 : NULL;
    __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xffff : (1u << cols) - 1);
    __mmask16 m1 = (__mmask16)(cols <= 16 ? 0 : cols >= 32 ? 0xffff : (1u << (cols - 16)) - 1);
    __m512i zp = _mm512_set1_epi32(j->row_zp[row]);
    __m512 sa = _mm512_set1_ps(j->row_scale[row]);
    float *c = j->c + (size_t)row * j->n + col0;
    _mm512_mask_storeu_ps(c, m0, dequantize16(acc0, zp, sa, colsum, scale, bias, m0));
    _mm512_mask_storeu_ps(c + 16, m1, dequantize16(acc1, zp, sa, colsum + 16, scale + 16, bias ? bias + 16 : NULL, m1));
    if (j->ep == GEMM_BIAS_GELU)
        rowop_gelu(c, cols);
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
#pragma GCC unroll 12
    for (int r = 0; r < R; r++)
        if (r < rows)
            store_row(j, i + r, p, acc0[r], acc1[r]);
}

/* The portable loop's arithmetic 16 floats at a time: min and max are exact in any order, the
 * product is the same float multiply, vcvtps2dq rounds to nearest even as lrintf does, and the
 * clamp makes the narrowing exact. Scalar, it took 29-34% of an int8 product's time at n = 768
 * (gemm-int8-bench, 1 thread). */
static void quantize_row_avx512(const float *x, int k, uint8_t *q, float *scale, int32_t *zero_point)
{
    __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
    for (int t = 0; t < k; t += 16) {
        __mmask16 in = (__mmask16)(k - t >= 16 ? 0xffff : (1u << (k - t)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(in, x + t); /* zeros past k: 0 is in the range anyway */
        lo = _mm512_min_ps(lo, v);
        hi = _mm512_max_ps(hi, v);
    }
    float inv;
    row_params(_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi), scale, &inv, zero_point);
    __m512 vinv = _mm512_set1_ps(inv);
    __m512i zp = _mm512_set1_epi32(*zero_point), zero = _mm512_setzero_si512(), top = _mm512_set1_epi32(255);
    for (int t = 0; t < k; t += 16) {
        __mmask16 in = (__mmask16)(k - t >= 16 ? 0xffff : (1u << (k - t)) - 1);
        __m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(in, x + t), vinv)), zp);
        _mm512_mask_cvtepi32_storeu_epi8(q + t, in, _mm512_min_epi32(_mm512_max_epi32(v, zero), top));
    }
    zero_pad(q, k);
}

/* Rows [i, i + rows) (rows <= R <= MR2) of C for panels p and p + 1 at once, 64 columns: per k
 * quad four loads of weights, and per row one broadcast of A's quad and four vpdpbusd: half as
 * many broadcasts per vpdpbusd as a 12 x 32 tile. A's quads cannot be vpdpbusd's embedded
 * broadcast (only its s8 operand can be), and the broadcasts bound the 12 x 32 tile: it ran
 * 512 x 3072 x 768 at 177 GOP/s, no faster than bf16's 177 GFLOP/s, though one core issues
 * vpdpbusd zmm at ~2x vdpbf16ps's multiply-adds (a register-only loop: 168 vs 80 G/s). This
 * tile: 180-221 GOP/s there, 1.6-2.0x bf16 (gemm-int8-bench, 1 thread, a busy machine). Four
 * rows rather than five or six: 16 sums, 4 weights and a broadcast in registers; with 24 sums
 * GCC moved them through the stack, and five measured no different within the noise. */
#define MR2 4
INLINE void tile2_avx512(const int R, int rows, const struct int8_job *j, int i, int p)
{
    __m512i acc0[MR2], acc1[MR2], acc2[MR2], acc3[MR2]; /* one array per column block: GCC kept a
                                                          * [MR2][4] array on the stack */
    const u8_quad *ar[MR2];
    int kq = gemm_int8_quads(j->k);
    const int8_t *w0 = panel_weights(j, p), *w1 = panel_weights(j, p + 1);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        ar[r] = (const u8_quad *)(const void *)(j->qa + (size_t)(i + (r < rows ? r : 0)) * 4 * kq);
        acc0[r] = acc1[r] = acc2[r] = acc3[r] = _mm512_setzero_si512();
    }
    for (int t = 0; t < kq; t++) {
        const int8_t *wt0 = w0 + (size_t)t * GEMM_NR * 4, *wt1 = w1 + (size_t)t * GEMM_NR * 4;
        __m512i b0 = _mm512_loadu_si512(wt0), b1 = _mm512_loadu_si512(wt0 + 64);
        __m512i b2 = _mm512_loadu_si512(wt1), b3 = _mm512_loadu_si512(wt1 + 64);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512i av = _mm512_set1_epi32((int)ar[r][t]);
            acc0[r] = _mm512_dpbusd_epi32(acc0[r], av, b0);
            acc1[r] = _mm512_dpbusd_epi32(acc1[r], av, b1);
            acc2[r] = _mm512_dpbusd_epi32(acc2[r], av, b2);
            acc3[r] = _mm512_dpbusd_epi32(acc3[r], av, b3);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) /* constant indices, or GCC keeps the sums in memory (1.6x the time) */
        if (r < rows) {
            store_row(j, i + r, p, acc0[r], acc1[r]);
            store_row(j, i + r, p + 1, acc2[r], acc3[r]);
        }
}

/* Rows in the next tile from row i on: MR, then 8 or 4, as the fp32 kernel. */
static int tile_rows_avx512(int m, int i) { return m - i >= MR ? MR : m - i >= 8 ? 8 : m - i >= 4 ? 4 : m - i; }

/* One panel alone (the last of an odd range): 12 x 32 tiles. */
static void panel_avx512(const struct int8_job *j, int p)
{
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

static void panels_avx512(const struct int8_job *j, int p0, int p1, int pf_end)
{
    (void)pf_end;
    int p = p0;
    for (; p + 1 < p1; p += 2)
        for (int i = 0, rows; i < j->m; i += rows) {
            rows = min_int(MR2, j->m - i);
            if (rows > 2)
                tile2_avx512(MR2, rows, j, i, p);
            else
                tile2_avx512(2, rows, j, i, p);
        }
    if (p < p1)
        panel_avx512(j, p);
}

static const struct int8_kernels kernels_avx512 = {"avx512-vnni", quantize_row_avx512, panels_avx512};
#undef MR
#undef MR2
#pragma GCC pop_options
#endif

/* ---- choice, packing, the product ---- */

enum int8_isa { INT8_PORTABLE, INT8_AVX512_VNNI, INT8_AMX };

/* The best kernel this file may choose: the tests build it again with the lower ones only, and
 * with the AMX kernel on the software tile model (GEMM_AMX_SOFTWARE_MODEL). */
#ifndef GEMM_INT8_MAX_ISA
#define GEMM_INT8_MAX_ISA INT8_AMX
#endif

/* The best kernel below AMX: AMX's own stand-in where its tiles do not fit k, and its
 * quantization of A (the same bytes either way). */
static const struct int8_kernels *kernels_below_amx(void)
{
#if defined(__x86_64__)
    if (GEMM_INT8_MAX_ISA >= INT8_AVX512_VNNI && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512vnni"))
        return &kernels_avx512;
#endif
    return &kernels_portable;
}

/* ---- amx-int8 ---- */

static void quantize_row_amx(const float *x, int k, uint8_t *q, float *scale, int32_t *zero_point)
{
    kernels_below_amx()->quantize_row(x, k, q, scale, zero_point);
}

#if defined(GEMM_AMX_SOFTWARE_MODEL)
#define AMX_MODEL 1
#define AMX_VARIANT model
#define AMX_NAME "amx-int8-model"
#include "gemm_amx_tiles.inc"
#include "gemm_int8_amx.inc"

/* For the test of this build only (no header declares it): tile products the model ran. */
unsigned long gemm_int8_amx_model_products(void) { return amx_model_products; }
#elif defined(__x86_64__)
/* With the AVX-512 kernel's target too: <immintrin.h> was first included under it, so its tile
 * functions carry it, and gcc inlines them only into functions whose target includes theirs.
 * Every CPU with AMX has it; kernels() checks anyway. */
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vnni,amx-tile,amx-bf16,amx-int8")
#include <immintrin.h>
#define AMX_MODEL 0
#define AMX_VARIANT hw
#define AMX_NAME "amx-int8"
#include "gemm_amx_tiles.inc"
#include "gemm_int8_amx.inc"
#pragma GCC pop_options
#endif

static const struct int8_kernels *kernels(void)
{
#if defined(GEMM_AMX_SOFTWARE_MODEL)
    if (GEMM_INT8_MAX_ISA >= INT8_AMX)
        return &kernels_amx_model; /* the test build: the AMX code on the C model of its tiles */
#elif defined(__x86_64__)
    /* The AMX code is compiled with the AVX-512 kernel's target as well (see above). */
    if (GEMM_INT8_MAX_ISA >= INT8_AMX && (gemm_amx_features() & GEMM_AMX_INT8) &&
        kernels_below_amx() == &kernels_avx512)
        return &kernels_amx_hw;
#endif
    return kernels_below_amx();
}

const char *gemm_int8_kernel_name(void) { return kernels()->name; }

void gemm_int8_quantize_row(const float *x, int k, uint8_t *q, float *scale, int32_t *zero_point)
{
    kernels()->quantize_row(x, k, q, scale, zero_point);
}

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
    long v = scale > 0.0f ? round_even(w / scale) : 0;
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

/* Pairs [q0, q1) of panels: panels [2 q0, 2 q1), the last pair maybe a single panel. */
static void linear_pairs(void *ctx, int q0, int q1, int pf_end)
{
    const struct int8_job *j = ctx;
    int panels = gemm_panels(j->n);
    kernels()->panels(j, 2 * q0, min_int(2 * q1, panels), min_int(2 * pf_end, panels));
}

/* Quantizes A's rows [task * per, (task + 1) * per) into scratch, per = quantize_rows_per_task. */
#define QUANTIZE_TASKS_PER_THREAD 2
static void quantize_rows(void *ctx, int task, int thread)
{
    const struct int8_job *j = ctx;
    (void)thread;
    int kq = gemm_int8_quads(j->k);
    int i0 = task * j->quantize_rows_per_task, i1 = min_int(i0 + j->quantize_rows_per_task, j->m);
    for (int i = i0; i < i1; i++)
        kernels()->quantize_row(j->a + (size_t)i * j->k, j->k, (uint8_t *)j->qa + (size_t)i * 4 * kq,
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
    /* The split hands out pairs of panels, the 4 x 64 tile's width (as panels of a product with
     * half the columns and twice the depth: the same work per chunk). Split into single panels,
     * at 2 threads n = 768 became 32 one-panel chunks, all on the 12 x 32 tile, and 512 x 768 x
     * 768 ran no faster than bf16 (0.98x; 1 thread, in pairs: 2.0x). */
    gemm_split_panels(pool, m, (gemm_panels(n) + 1) / 2 * GEMM_NR, 2 * k, linear_pairs, &j);
}
