/* The int8 GEMM kernels of src/engine/gemm_int8.c: the activation and weight quantization
 * (gemm_int8.h's recipe), the packed layout, and products over every tile shape and ragged
 * edge (k odd and not a multiple of 4 included), each epilogue, 1-3 threads, against
 *   - a double-precision product of the SAME quantized inputs (the integer sum exact in
 *     int64), within the float32 dequantization's own rounding, and
 *   - the dequantization recipe evaluated here in plain C on that exact sum, BIT FOR BIT:
 *     both kernels must equal it, so each build checks its kernel against the same bits and
 *     the two kernels are bit-identical to each other.
 * and a row's C against the same row computed alone, bit for bit.
 * Built once per kernel (GEMM_INT8_MAX_ISA); a CPU without the kernel's instructions skips that
 * build, visibly. The AMX kernel is built once more on the C model of its tile instructions
 * (GEMM_AMX_SOFTWARE_MODEL), which runs everywhere. */
#include "check.h"
#include "gemm_check.h"
#include "engine/gemm_int8.h"
#include "engine/rowops.h"
#include "engine/threadpool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL 12345.0f

static unsigned next(unsigned *s) { return *s = *s * 1664525u + 1013904223u; }

static float rnd(unsigned *s) { return (float)(next(s) >> 8) / 8388608.0f - 1.0f; /* [-1, 1) */ }

/* Random rows with a per-row offset and spread, so rows differ in range and zero point (some
 * all positive, some all negative, one all zero). */
static float *random_rows(int rows, int k, unsigned seed)
{
    float *x = malloc((size_t)rows * k * sizeof *x);
    for (int i = 0; i < rows; i++) {
        float spread = 0.1f + 4.0f * (rnd(&seed) + 1.0f), offset = i % 5 == 1 ? 1.5f * spread : i % 5 == 2 ? -1.5f * spread : 0.0f;
        for (int t = 0; t < k; t++)
            x[(size_t)i * k + t] = i % 7 == 3 ? 0.0f : offset + spread * rnd(&seed);
    }
    return x;
}

static double gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

/* gemm_int8.h's activation quantization, written out here in float32 as the header says: the
 * kernel's own (vectorized in avx512-vnni) must give these very bytes, scale and zero point. */
static void reference_quantize(const float *x, int k, uint8_t *q, float *scale, int32_t *zero_point)
{
    float lo = 0.0f, hi = 0.0f;
    for (int t = 0; t < k; t++)
        lo = fminf(lo, x[t]), hi = fmaxf(hi, x[t]);
    float sa = (hi - lo) / 255.0f;
    sa = sa > 0.0f ? sa : 1.0f;
    float inv = 1.0f / sa;
    long zp = lrintf(-lo * inv);
    zp = zp < 0 ? 0 : zp > 255 ? 255 : zp;
    for (int t = 0; t < k; t++) {
        long v = lrintf(x[t] * inv) + zp;
        q[t] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    *scale = sa;
    *zero_point = (int32_t)zp;
}

/* gemm_int8_quantize_row against its definition: bit for bit the reference's; and so that the
 * reference is right, 0 exact, every value within half a step of its quantized one, the pad
 * zeroed. */
static void check_quantize_row(void)
{
    enum { MAXK = 70 };
    unsigned seed = 17u;
    for (int round = 0; round < 100; round++)
        for (int k = 1; k <= MAXK; k++) {
            float x[MAXK], sa;
            uint8_t q[MAXK + 8];
            int32_t zp;
            float *r = random_rows(1, k, seed + (unsigned)round * 131u + (unsigned)k);
            memcpy(x, r, (size_t)k * sizeof *x);
            free(r);
            if (round % 10 == 4)
                x[next(&seed) % (unsigned)k] = 0.0f;
            memset(q, 0xab, sizeof q);
            gemm_int8_quantize_row(x, k, q, &sa, &zp);
            float ref_sa;
            int32_t ref_zp;
            uint8_t ref_q[MAXK];
            reference_quantize(x, k, ref_q, &ref_sa, &ref_zp);
            CHECK(sa == ref_sa && zp == ref_zp && !memcmp(q, ref_q, (size_t)k),
                  "quantize k=%d: not the reference's bytes (scale %g vs %g, zp %d vs %d)", k, sa, ref_sa, zp, ref_zp);
            float lo = 0, hi = 0;
            for (int t = 0; t < k; t++)
                lo = fminf(lo, x[t]), hi = fmaxf(hi, x[t]);
            CHECK(zp >= 0 && zp <= 255 && sa > 0, "quantize k=%d: zp %d, scale %g", k, zp, sa);
            if (hi > lo)
                CHECK(fabsf(sa - (hi - lo) / 255.0f) <= 1e-7f * (hi - lo), "quantize k=%d: scale %g", k, sa);
            int bad = -1;
            for (int t = 0; t < k && bad < 0; t++)
                if (!(fabs(((double)q[t] - zp) * sa - x[t]) <= 0.5001 * sa) || (x[t] == 0.0f && q[t] != zp))
                    bad = t;
            CHECK(bad < 0, "quantize k=%d: x[%d] = %g -> %d (zp %d, scale %g)", k, bad, bad < 0 ? 0 : x[bad],
                  bad < 0 ? 0 : q[bad], zp, sa);
            for (int t = k; t < 4 * gemm_int8_quads(k); t++)
                CHECK(q[t] == 0, "quantize k=%d: pad [%d] = %d, not 0", k, t, q[t]);
            CHECK(q[4 * gemm_int8_quads(k)] == 0xab, "quantize k=%d: wrote past its quads", k);
        }
    float zeros[5] = {0}, sa;
    uint8_t q[8];
    int32_t zp;
    gemm_int8_quantize_row(zeros, 5, q, &sa, &zp);
    CHECK(sa == 1.0f && zp == 0 && q[0] == 0 && q[4] == 0, "a zero row: scale %g, zp %d", sa, zp);
}

/* A packed panel's parts (gemm_int8.h). */
static const int8_t *panel_q(const int8_t *packed, int k, int p) { return packed + (size_t)p * gemm_int8_panel_bytes(k); }
static const int32_t *panel_colsum(const int8_t *packed, int k, int p)
{
    return (const int32_t *)(const void *)(panel_q(packed, k, p) + (size_t)gemm_int8_quads(k) * GEMM_NR * 4);
}
static const float *panel_scale(const int8_t *packed, int k, int p) { return (const float *)(const void *)(panel_colsum(packed, k, p) + GEMM_NR); }

/* The weight quantized at [row][col], read back from the packed layout. */
static int packed_q(const int8_t *packed, int k, int row, int col)
{
    return panel_q(packed, k, row / GEMM_NR)[((size_t)(col / 4) * GEMM_NR + row % GEMM_NR) * 4 + col % 4];
}
static float packed_scale(const int8_t *packed, int k, int row) { return panel_scale(packed, k, row / GEMM_NR)[row % GEMM_NR]; }

/* The packed layout against its definition: scale = max|w|/127, |q scale - w| <= scale/2, the
 * row's largest |w| at +-127, zero pads, column sums. */
static void check_pack(int n, int k, unsigned seed)
{
    float *w = random_rows(n, k, seed);
    int8_t *packed = malloc(gemm_packed_int8_size(n, k));
    gemm_pack_int8(w, k, n, k, packed);
    int kq = gemm_int8_quads(k);
    for (int row = 0; row < gemm_panels(n) * GEMM_NR; row++) {
        float amax = 0;
        for (int t = 0; row < n && t < k; t++)
            amax = fmaxf(amax, fabsf(w[(size_t)row * k + t]));
        float scale = packed_scale(packed, k, row);
        CHECK(scale == (row < n ? amax / 127.0f : 0.0f), "pack n=%d k=%d: row %d scale %g, max|w| %g", n, k, row,
              scale, amax);
        long sum = 0;
        int bad = -1;
        for (int t = 0; t < 4 * kq; t++) {
            int q = packed_q(packed, k, row, t);
            sum += q;
            if (row >= n || t >= k ? q != 0 : !(fabs(q * (double)scale - w[(size_t)row * k + t]) <= 0.5001 * scale) ||
                                                 (amax > 0 && fabsf(w[(size_t)row * k + t]) == amax && abs(q) != 127))
                bad = t;
        }
        CHECK(bad < 0, "pack n=%d k=%d: [%d][%d] quantized to %d (scale %g)", n, k, row, bad,
              bad < 0 ? 0 : packed_q(packed, k, row, bad), scale);
        CHECK(panel_colsum(packed, k, row / GEMM_NR)[row % GEMM_NR] == sum, "pack n=%d k=%d: row %d column sum", n,
              k, row);
    }
    free(w), free(packed);
}

/* C against (1) the recipe on the exact integer sum, bit for bit, and (2) a double product of
 * the dequantized inputs. (2)'s tolerance: the recipe rounds (float)S, sa ws and the fma once
 * each (2^-24 relative): 3 ulps of |sa ws S| + 1 of the result; GELU adds its own 1e-7 and
 * slope <= 1.13; x4 margin. A kernel that dropped the zero point's correction, a quad or a
 * scale is off by whole quantization steps, millions of times that. */
static void check_product(const char *what, const float *a, const int8_t *packed, int m, int n, int k, const float *c,
                          const float *bias, enum gemm_epilogue ep)
{
    int kq = gemm_int8_quads(k);
    uint8_t *qa = malloc((size_t)4 * kq);
    float *row = malloc((size_t)n * sizeof *row);
    for (int i = 0; i < m; i++) {
        float sa;
        int32_t zp;
        gemm_int8_quantize_row(a + (size_t)i * k, k, qa, &sa, &zp);
        for (int j = 0; j < n; j++) {
            int64_t s = 0;
            for (int t = 0; t < k; t++)
                s += ((int64_t)qa[t] - zp) * packed_q(packed, k, j, t);
            float ws = packed_scale(packed, k, j);
            row[j] = fmaf((float)s, sa * ws, ep != GEMM_STORE ? bias[j] : 0.0f);
            double ref = (double)sa * ws * (double)s + (ep != GEMM_STORE ? bias[j] : 0.0);
            double mag = fabs((double)sa * ws * (double)s) + (ep != GEMM_STORE ? fabs(bias[j]) : 0.0);
            if (ep == GEMM_BIAS_GELU)
                ref = gelu(ref);
            double got = c[(size_t)i * n + j], tol = 4 * 1.13 * 4 * 0x1p-24 * mag + 1e-6;
            if (!(fabs(got - ref) <= tol)) {
                CHECK(0, "%s: C[%d][%d] = %.9g, reference %.9g (tolerance %.3g)", what, i, j, got, ref, tol);
                goto out;
            }
        }
        if (ep == GEMM_BIAS_GELU)
            for (int p = 0; p < gemm_panels(n); p++) /* the kernels apply it a panel's row at a time */
                rowop_gelu(row + p * GEMM_NR, n - p * GEMM_NR < GEMM_NR ? n - p * GEMM_NR : GEMM_NR);
        for (int j = 0; j < n; j++)
            if (memcmp(&row[j], &c[(size_t)i * n + j], sizeof(float)) != 0) {
                CHECK(0, "%s: C[%d][%d] = %.9g, the recipe gives %.9g: not bit-identical", what, i, j,
                      c[(size_t)i * n + j], row[j]);
                goto out;
            }
    }
out:
    free(qa), free(row);
}

static void check_linear(threadpool *pool, int m, int n, int k, enum gemm_epilogue ep)
{
    char what[96];
    snprintf(what, sizeof what, "linear m=%d n=%d k=%d ep=%d threads=%d", m, n, k, (int)ep, threadpool_size(pool));
    float *a = random_rows(m, k, 1u + (unsigned)m), *w = random_rows(n, k, 7u + (unsigned)n);
    float *bias = random_rows(1, n, 3u);
    int8_t *packed = malloc(gemm_packed_int8_size(n, k));
    float *c = malloc(((size_t)m * n + 16) * sizeof(float));
    size_t scratch_size = gemm_int8_scratch_size(m, k);
    uint8_t *scratch = malloc(scratch_size + 16);
    for (int i = 0; i < 16; i++) {
        c[(size_t)m * n + i] = SENTINEL;
        scratch[scratch_size + i] = 0xad;
    }
    gemm_pack_int8(w, k, n, k, packed);
    gemm_linear_int8(pool, a, m, packed, n, k, c, ep == GEMM_STORE ? NULL : bias, ep, scratch);
    check_product(what, a, packed, m, n, k, c, bias, ep);
    for (int i = 0; i < 16; i++)
        CHECK(c[(size_t)m * n + i] == SENTINEL && scratch[scratch_size + i] == 0xad, "%s: wrote past C or scratch",
              what);
    free(a), free(w), free(bias), free(packed), free(c), free(scratch);
}

/* The widest sums FinBERT can make: k = 3072 with every a at the end of its range and every
 * weight at +-127, all the same sign: |S| = 3072 x 255 x 127 = 99.5 M, exact only if nothing
 * wrapped or saturated. */
static void check_extreme_sums(threadpool *pool)
{
    enum { M = 13, N = 33, K = 3072 };
    float *a = malloc((size_t)M * K * sizeof *a), *w = malloc((size_t)N * K * sizeof *w), c[M * N];
    for (int i = 0; i < M; i++)
        for (int t = 0; t < K; t++)
            a[(size_t)i * K + t] = i % 3 == 0 ? 5.0f : i % 3 == 1 ? -5.0f : (t == 0 ? -5.0f : 5.0f);
    for (int j = 0; j < N; j++)
        for (int t = 0; t < K; t++)
            w[(size_t)j * K + t] = j % 2 ? 1.0f : -1.0f;
    int8_t *packed = malloc(gemm_packed_int8_size(N, K));
    uint8_t *scratch = malloc(gemm_int8_scratch_size(M, K));
    gemm_pack_int8(w, K, N, K, packed);
    gemm_linear_int8(pool, a, M, packed, N, K, c, NULL, GEMM_STORE, scratch);
    check_product("extreme sums k=3072", a, packed, M, N, K, c, NULL, GEMM_STORE);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N && i % 3 != 2; j++) { /* rows of +-5 alone: 5 is exactly 255 sa */
            double want = (double)a[(size_t)i * K] * (j % 2 ? 1 : -1) * K;
            CHECK(fabs(c[i * N + j] - want) <= 1e-5 * fabs(want), "extreme sums: C[%d][%d] = %.9g, want %.9g", i, j,
                  c[i * N + j], want);
        }
    free(a), free(w), free(packed), free(scratch);
}

/* gemm_check.h's linear_product in int8. */
static void product_int8(threadpool *pool, const float *a, int m, const float *w, int n, int k, const float *bias,
                         float *c)
{
    int8_t *packed = malloc(gemm_packed_int8_size(n, k));
    uint8_t *scratch = malloc(gemm_int8_scratch_size(m, k));
    gemm_pack_int8(w, k, n, k, packed);
    gemm_linear_int8(pool, a, m, packed, n, k, c, bias, GEMM_BIAS_GELU, scratch);
    free(packed), free(scratch);
}

/* An odd k as long as FinBERT's FFN, split across the threads, and the widest sums it can make;
 * each row's result alone and in a batch. */
static void check_large(threadpool *pool)
{
    check_linear(pool, 13, 768, 3071, GEMM_STORE);
    check_extreme_sums(pool);
    check_batch_invariance(pool, product_int8);
}

#ifdef GEMM_AMX_SOFTWARE_MODEL
unsigned long gemm_int8_amx_model_products(void); /* gemm_int8.c's count, in this build only */
#endif

int main(void)
{
    require_kernel(GEMM_EXPECT, gemm_int8_kernel_name());
    check_quantize_row();
    check_pack(1, 1, 5u);
    check_pack(33, 7, 6u);
    check_pack(77, 42, 8u);

    /* Column counts that end inside a panel; k from 1 to 3072, odd, even, and every residue
     * mod 4; for AMX, k of one, two and three 64-k steps (64, 61 padded to 64, 190 to 192), and
     * k it leaves to the AVX-512 kernel (the rest). */
    static const int nk[][2] = {{1, 1},   {5, 3},    {32, 16},  {33, 64}, {77, 42}, {40, 7}, {65, 129},
                                {31, 257}, {96, 768}, {17, 6},  {77, 61}, {40, 190}};
    check_linear_shapes(check_linear, nk, sizeof nk / sizeof nk[0], check_large);
#ifdef GEMM_AMX_SOFTWARE_MODEL
    /* Not the AVX-512 stand-in every time: the tile code itself ran. */
    CHECK(gemm_int8_amx_model_products() > 0, "the AMX kernel never ran a tile product");
    printf("amx-int8 on the tile model: %lu tdpbusd modelled\n", gemm_int8_amx_model_products());
#endif
    return test_finish("test_gemm_int8_" GEMM_EXPECT);
}
