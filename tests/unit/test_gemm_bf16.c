/* The bf16 GEMM kernels of src/engine/gemm_bf16.c: the rounding to bf16 (ties to even, NaN,
 * infinities, denormals), the kernel's own rounding of A's rows against it, and products over
 * every tile shape and ragged edge (odd k included), each epilogue, 1-3 threads, against a
 * double-precision product of the SAME bf16-rounded inputs, and a row's C against the same row
 * computed alone, bit for bit. Built once per kernel (GEMM_BF16_MAX_ISA); a CPU without the
 * kernel's instructions skips that build, visibly. The AMX kernel is built once more on the C
 * model of its tile instructions (GEMM_AMX_SOFTWARE_MODEL), which runs everywhere. */
#include "check.h"
#include "gemm_check.h"
#include "engine/gemm_bf16.h"
#include "engine/threadpool.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL 12345.0f

static unsigned next(unsigned *s) { return *s = *s * 1664525u + 1013904223u; }

static float rnd(unsigned *s) { return (float)(next(s) >> 8) / 8388608.0f - 1.0f; /* [-1, 1) */ }

static float *random_floats(size_t n, unsigned seed)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = rnd(&seed);
    return x;
}

static float from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static uint32_t bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static double gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

/* gemm_bf16_round on the cases that matter, by bit pattern. */
static void check_round_cases(void)
{
    static const struct { uint32_t in; uint16_t out; const char *what; } cases[] = {
        {0x3f800000u, 0x3f80, "1 is exact"},
        {0x3f808000u, 0x3f80, "tie between 1 and 1+2^-7 goes to the even 1"},
        {0x3f818000u, 0x3f82, "tie above an odd significand goes up to even"},
        {0x3f808001u, 0x3f81, "just above a tie rounds up"},
        {0x3f817fffu, 0x3f81, "just below a tie rounds down"},
        {0xbf808000u, 0xbf80, "negative tie to even"},
        {0xbf80c000u, 0xbf81, "negative, above half, rounds away from zero"},
        {0x7f7fffffu, 0x7f80, "FLT_MAX rounds up to inf"},
        {0x7f7f7fffu, 0x7f7f, "below the tie under FLT_MAX stays finite"},
        {0x7f800000u, 0x7f80, "+inf"},
        {0xff800000u, 0xff80, "-inf"},
        {0x7fc00000u, 0x7fc0, "quiet NaN"},
        {0x7f800001u, 0x7fc0, "signaling NaN with a low payload stays NaN (quieted)"},
        {0x7fbfffffu, 0x7fff, "NaN whose payload would carry into the exponent"},
        {0xffa12345u, 0xffe1, "negative NaN keeps sign and top payload"},
        {0x00800000u, 0x0080, "FLT_MIN is exact"},
        {0x00000001u, 0x0000, "smallest denormal flushes to +0"},
        {0x007fffffu, 0x0000, "largest denormal flushes to +0 (not up to FLT_MIN)"},
        {0x80400000u, 0x8000, "negative denormal flushes to -0"},
        {0x00000000u, 0x0000, "+0"},
        {0x80000000u, 0x8000, "-0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = gemm_bf16_round(from_bits(cases[i].in));
        CHECK(got == cases[i].out, "bf16(0x%08x) = 0x%04x, want 0x%04x: %s", cases[i].in, got, cases[i].out,
              cases[i].what);
    }
    CHECK(gemm_bf16_float(0x3f80) == 1.0f && gemm_bf16_float(0xc040) == -3.0f, "bf16 -> float");
    CHECK(isnan(gemm_bf16_float(gemm_bf16_round(NAN))) && isinf(gemm_bf16_float(gemm_bf16_round(INFINITY))),
          "NaN and inf round trip");
}

/* The kernel rounds A's rows itself (vcvtne2ps2bf16 in avx512-bf16): it must agree with
 * gemm_bf16_round bit for bit on every length (tails, odd padding) and on any bit pattern. */
static void check_round_row(void)
{
    enum { MAXK = 70 };
    uint32_t special[] = {0x3f808000u, 0x3f818000u, 0x7f7fffffu, 0x7f800001u, 0xffa12345u, 0x007fffffu,
                          0x80400000u, 0xff800000u, 0x80000000u, 0x00800000u};
    unsigned seed = 99u;
    for (int round = 0; round < 200; round++)
        for (int k = 1; k <= MAXK; k++) {
            float x[MAXK];
            uint16_t out[MAXK + 2];
            for (int i = 0; i < k; i++)
                x[i] = from_bits(round % 2 ? next(&seed) : special[next(&seed) % 10] ^ (next(&seed) & 1u) << 16);
            out[k] = out[k + 1] = 0xdead;
            gemm_bf16_round_row(x, k, out);
            for (int i = 0; i < k; i++)
                if (out[i] != gemm_bf16_round(x[i])) {
                    CHECK(0, "round_row k=%d: [%d] bf16(0x%08x) = 0x%04x, want 0x%04x", k, i,
                          (unsigned)bits(x[i]), out[i], gemm_bf16_round(x[i]));
                    return;
                }
            CHECK(k % 2 == 0 || out[k] == 0, "round_row k=%d: odd k's pad is 0x%04x, not zero", k, out[k]);
            CHECK(out[k + k % 2] == 0xdead, "round_row k=%d: wrote past its pairs", k);
        }
}

/* The packed layout itself, element by element (gemm_bf16.h). */
static void check_pack(int n, int k)
{
    float *w = random_floats((size_t)n * k, 5u);
    uint16_t *packed = malloc(gemm_packed_bf16_size(n, k) * sizeof *packed);
    gemm_pack_bf16(w, k, n, k, packed);
    int kp = gemm_bf16_pairs(k);
    for (int p = 0; p < gemm_panels(n); p++)
        for (int t = 0; t < kp; t++)
            for (int j = 0; j < GEMM_NR; j++)
                for (int h = 0; h < 2; h++) {
                    int row = p * GEMM_NR + j, col = 2 * t + h;
                    uint16_t want = row < n && col < k ? gemm_bf16_round(w[(size_t)row * k + col]) : 0;
                    uint16_t got = packed[(((size_t)p * kp + t) * GEMM_NR + j) * 2 + h];
                    if (got != want) {
                        CHECK(0, "pack n=%d k=%d: [%d][%d][%d][%d] = 0x%04x, want 0x%04x", n, k, p, t, j, h, got, want);
                        free(w), free(packed);
                        return;
                    }
                }
    free(w), free(packed);
}

/* Rounds x[n] to the bf16 values, in place: the reference multiplies exactly these. */
static void round_in_place(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = gemm_bf16_float(gemm_bf16_round(x[i]));
}

/* C against a double product of the rounded A and W (+ bias, GELU). The kernels add k exact
 * products in float32, in some order, so the only error is the float32 additions'. Their
 * worst case, (k - 1) u sum|a w| (u = 2^-24), is too loose to be a test: at k = 3071 it would
 * pass a kernel that did not round A at all (whose error, 2^-9 per term of random sign, sums
 * to about 2^-9 sum|a w| / sqrt k). On random data the rounding errors have random signs and
 * grow like sqrt(k) u sum|a w|: the largest seen over every case here, both kernels, was 0.99
 * sqrt(k + 2) u sum|a w| (GELU's own 1e-7 and its slope <= 1.13 included); the tolerance is 4x
 * that. It still fails an unrounded A (2.6x over it at k = 3071, ~1000x at small k) and a
 * dropped product (~sum|a w| / k: 24x over at k = 3071). Products too small for float32
 * (vdpbf16ps flushes them, the portable kernel keeps denormals) differ by < 2^-126 each, in the
 * absolute 1e-6. */
static void check_product(const char *what, const float *a, const float *w, int m, int n, int k, const float *c,
                          const float *bias, enum gemm_epilogue ep)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double ref = 0, mag = 0;
            for (int t = 0; t < k; t++) {
                double term = (double)a[(size_t)i * k + t] * w[(size_t)j * k + t];
                ref += term;
                mag += fabs(term);
            }
            if (ep != GEMM_STORE) {
                ref += bias[j];
                mag += fabs(bias[j]);
            }
            if (ep == GEMM_BIAS_GELU)
                ref = gelu(ref);
            double got = c[(size_t)i * n + j], tol = 4 * 1.13 * sqrt(k + 2.0) * 0x1p-24 * mag + 1e-6;
            if (!(fabs(got - ref) <= tol)) {
                CHECK(0, "%s: C[%d][%d] = %.9g, reference %.9g (tolerance %.3g)", what, i, j, got, ref, tol);
                return;
            }
        }
}

static void check_linear(threadpool *pool, int m, int n, int k, enum gemm_epilogue ep)
{
    char what[96];
    snprintf(what, sizeof what, "linear m=%d n=%d k=%d ep=%d threads=%d", m, n, k, (int)ep, threadpool_size(pool));
    float *a = random_floats((size_t)m * k, 1u + (unsigned)m), *w = random_floats((size_t)n * k, 7u + (unsigned)n);
    float *bias = random_floats((size_t)n, 3u);
    uint16_t *packed = malloc(gemm_packed_bf16_size(n, k) * sizeof *packed);
    float *c = malloc(((size_t)m * n + 16) * sizeof(float));
    size_t scratch_size = gemm_bf16_scratch_size(m, k);
    uint16_t *scratch = malloc((scratch_size + 16) * sizeof *scratch);
    for (int i = 0; i < 16; i++) {
        c[(size_t)m * n + i] = SENTINEL;
        scratch[scratch_size + i] = 0xdead;
    }
    gemm_pack_bf16(w, k, n, k, packed);
    gemm_linear_bf16(pool, a, m, packed, n, k, c, ep == GEMM_STORE ? NULL : bias, ep, scratch);
    round_in_place(a, (size_t)m * k);
    round_in_place(w, (size_t)n * k);
    check_product(what, a, w, m, n, k, c, bias, ep);
    for (int i = 0; i < 16; i++)
        CHECK(c[(size_t)m * n + i] == SENTINEL && scratch[scratch_size + i] == 0xdead, "%s: wrote past C or scratch",
              what);
    free(a), free(w), free(bias), free(packed), free(c), free(scratch);
}

/* gemm_check.h's linear_product in bf16. */
static void product_bf16(threadpool *pool, const float *a, int m, const float *w, int n, int k, const float *bias,
                         float *c)
{
    uint16_t *packed = malloc(gemm_packed_bf16_size(n, k) * sizeof *packed);
    uint16_t *scratch = malloc(gemm_bf16_scratch_size(m, k) * sizeof *scratch);
    gemm_pack_bf16(w, k, n, k, packed);
    gemm_linear_bf16(pool, a, m, packed, n, k, c, bias, GEMM_BIAS_GELU, scratch);
    free(packed), free(scratch);
}

/* An odd k as long as FinBERT's FFN, across the kernel's 256-float blocks of A; each row's result
 * alone and in a batch. */
static void check_large(threadpool *pool)
{
    check_linear(pool, 13, 768, 3071, GEMM_STORE);
    check_batch_invariance(pool, product_bf16);
}

#ifdef GEMM_AMX_SOFTWARE_MODEL
unsigned long gemm_bf16_amx_model_products(void); /* gemm_bf16.c's count, in this build only */
#endif

int main(void)
{
    require_kernel(GEMM_EXPECT, gemm_bf16_kernel_name());
    check_round_cases();
    check_round_row();
    check_pack(1, 1);
    check_pack(33, 7);
    check_pack(77, 40);

    /* Column counts that end inside a panel; k odd and even, from 1 to past two of the
     * kernel's 256-float blocks of A; for AMX, k of one, two and three 32-k steps (32, 64, odd
     * 95), and k it leaves to the AVX-512 kernel (the rest). */
    static const int nk[][2] = {{1, 1},   {5, 3},    {32, 16},  {33, 64},  {77, 40}, {40, 7},
                                {65, 129}, {31, 257}, {96, 768}, {77, 32}, {40, 95}};
    check_linear_shapes(check_linear, nk, sizeof nk / sizeof nk[0], check_large);
#ifdef GEMM_AMX_SOFTWARE_MODEL
    /* Not the AVX-512 stand-in every time: the tile code itself ran. */
    CHECK(gemm_bf16_amx_model_products() > 0, "the AMX kernel never ran a tile product");
    printf("amx-bf16 on the tile model: %lu tdpbf16ps modelled\n", gemm_bf16_amx_model_products());
#endif
    return test_finish("test_gemm_bf16_" GEMM_EXPECT);
}
