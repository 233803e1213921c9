/* The GEMM kernels of src/engine/gemm.c against double-precision references: products over every
 * tile shape and ragged edge, each epilogue, 1-3 threads, strided and partial panel ranges;
 * and the row operations (rowops.h), softmax, LayerNorm and GELU. The forward-pass tests only ever run the best kernel the
 * CPU has, so this file is built once per kernel (GEMM_MAX_ISA) and checks that the kernel
 * it asked for is the one that ran: a CPU without it skips that build's test, visibly. */
#include "check.h"
#include "gemm_check.h"
#include "engine/gemm.h"
#include "engine/rowops.h"
#include "engine/threadpool.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL 12345.0f

static float rnd(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 8388608.0f - 1.0f; /* [-1, 1) */
}

static float *random_floats(size_t n, unsigned seed)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = rnd(&seed);
    return x;
}

static double gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

/* Checks c[i * ldc + j] for rows [0, m), columns [j0, j1) against A · Wᵀ (+ bias, GELU), W
 * given as [n][k]; the tolerance scales with the sum of the terms' magnitudes. One report per
 * case. */
static void check_product(const char *what, const float *a, int lda, const float *w, int m, int j0, int j1,
                          int k, const float *c, int ldc, const float *bias, enum gemm_epilogue ep)
{
    for (int i = 0; i < m; i++)
        for (int j = j0; j < j1; j++) {
            double ref = 0, mag = 0;
            for (int t = 0; t < k; t++) {
                double term = (double)a[(size_t)i * lda + t] * w[(size_t)j * k + t];
                ref += term;
                mag += fabs(term);
            }
            if (ep != GEMM_STORE) {
                ref += bias[j];
                mag += fabs(bias[j]);
            }
            if (ep == GEMM_BIAS_GELU)
                ref = gelu(ref); /* |gelu'| <= 1.13: the same tolerance holds */
            double got = c[(size_t)i * ldc + j];
            if (!(fabs(got - ref) <= 2e-5 * mag + 1e-6)) {
                CHECK(0, "%s: C[%d][%d] = %.9g, reference %.9g", what, i, j, got, ref);
                return;
            }
        }
}

static void check_linear(threadpool *pool, int m, int n, int k, enum gemm_epilogue ep)
{
    char what[96];
    snprintf(what, sizeof what, "linear m=%d n=%d k=%d ep=%d threads=%d", m, n, k, (int)ep,
             threadpool_size(pool));
    float *a = random_floats((size_t)m * k, 1u + (unsigned)m), *w = random_floats((size_t)n * k, 7u + (unsigned)n);
    float *bias = random_floats((size_t)n, 3u);
    float *packed = malloc(gemm_packed_floats(n, k) * sizeof(float));
    float *c = malloc(((size_t)m * n + 16) * sizeof(float));
    for (int i = 0; i < 16; i++)
        c[(size_t)m * n + i] = SENTINEL;
    gemm_pack(w, k, n, k, packed);
    gemm_linear(pool, a, m, packed, n, k, c, ep == GEMM_STORE ? NULL : bias, ep);
    check_product(what, a, k, w, m, 0, n, k, c, n, bias, ep);
    for (int i = 0; i < 16; i++)
        CHECK(c[(size_t)m * n + i] == SENTINEL, "%s: wrote past C", what);
    free(a), free(w), free(bias), free(packed), free(c);
}

/* Attention's use: strided A and C, a panel range, and B given transposed (P · V). */
static void check_panels_strided(int m, int n, int k, int p0, int p1)
{
    char what[96];
    snprintf(what, sizeof what, "panels m=%d n=%d k=%d [%d, %d)", m, n, k, p0, p1);
    int lda = k + 5, ldc = n + 7;
    float *a = random_floats((size_t)m * lda, 11u), *w = random_floats((size_t)n * k, 13u);
    float *wt = malloc((size_t)k * n * sizeof(float)), *packed = malloc(gemm_packed_floats(n, k) * sizeof(float));
    float *c = malloc((size_t)m * ldc * sizeof(float));
    for (int t = 0; t < k; t++)
        for (int j = 0; j < n; j++)
            wt[(size_t)t * n + j] = w[(size_t)j * k + t];
    for (size_t i = 0; i < (size_t)m * ldc; i++)
        c[i] = SENTINEL;
    gemm_pack_transposed(wt, n, n, k, packed);
    gemm_panels_run(a, lda, m, packed, n, k, c, ldc, NULL, GEMM_STORE, p0, p1);
    int j0 = p0 * GEMM_NR, j1 = p1 * GEMM_NR < n ? p1 * GEMM_NR : n;
    check_product(what, a, lda, w, m, j0, j1, k, c, ldc, NULL, GEMM_STORE);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ldc; j++)
            if ((j < j0 || j >= j1) && c[(size_t)i * ldc + j] != SENTINEL) {
                CHECK(0, "%s: wrote C[%d][%d] outside its panels", what, i, j);
                i = m;
                break;
            }
    free(a), free(w), free(wt), free(packed), free(c);
}

static void check_softmax(const float *x, int n)
{
    float *y = malloc((size_t)n * sizeof *y);
    memcpy(y, x, (size_t)n * sizeof *y);
    float scale = 0.125f;
    rowop_softmax(y, n, scale);
    double max = x[0], sum = 0, got_sum = 0;
    for (int i = 1; i < n; i++)
        max = x[i] > max ? x[i] : max;
    for (int i = 0; i < n; i++)
        sum += exp(((double)x[i] - max) * scale);
    for (int i = 0; i < n; i++) {
        double ref = exp(((double)x[i] - max) * scale) / sum;
        got_sum += y[i];
        if (!(fabs(y[i] - ref) <= 1e-5 * ref + 1e-9)) {
            CHECK(0, "softmax n=%d: p[%d] = %.9g, reference %.9g", n, i, y[i], ref);
            break;
        }
    }
    CHECK(fabs(got_sum - 1.0) < 1e-5, "softmax n=%d: sums to %.9g", n, got_sum);
    free(y);
}

static void check_layernorm(int n, bool with_add)
{
    float *x = random_floats((size_t)n, 17u), *add = random_floats((size_t)n, 19u);
    float *bias = random_floats((size_t)n, 23u), *g = random_floats((size_t)n, 29u), *b = random_floats((size_t)n, 31u);
    x[0] += 1000.0f; /* rows hold outliers */
    double *v = malloc((size_t)n * sizeof *v), mean = 0, var = 0;
    for (int i = 0; i < n; i++) {
        v[i] = with_add ? add[i] + bias[i] + x[i] : x[i]; /* summed in float, as the kernel does */
        mean += v[i];
    }
    mean /= n;
    for (int i = 0; i < n; i++)
        var += (v[i] - mean) * (v[i] - mean);
    double rstd = 1.0 / sqrt(var / n + 1e-12);
    rowop_layernorm(x, with_add ? add : NULL, with_add ? bias : NULL, g, b, n, 1e-12f);
    for (int i = 0; i < n; i++) {
        double ref = (v[i] - mean) * rstd * g[i] + b[i];
        if (!(fabs(x[i] - ref) <= 1e-5 * (fabs(ref) + 1))) {
            CHECK(0, "layernorm n=%d add=%d: y[%d] = %.9g, reference %.9g", n, with_add, i, x[i], ref);
            break;
        }
    }
    free(x), free(add), free(bias), free(g), free(b), free(v);
}

/* rowop_gelu is GEMM_BIAS_GELU's function, tail included. */
static void check_gelu(int n)
{
    float *x = random_floats((size_t)n, 41u), *y = malloc((size_t)n * sizeof *y);
    for (int i = 0; i < n; i++)
        y[i] = x[i] *= 6.0f;
    rowop_gelu(y, n);
    for (int i = 0; i < n; i++)
        if (!(fabs(y[i] - gelu(x[i])) <= 1e-6 * fabs(x[i]) + 1e-7)) {
            CHECK(0, "gelu n=%d: gelu(%.9g) = %.9g, reference %.9g", n, x[i], y[i], gelu(x[i]));
            break;
        }
    free(x), free(y);
}

int main(void)
{
    require_kernel(GEMM_EXPECT, gemm_kernel_name());

    /* Column counts that end inside a panel, k from 1 to a layer's. */
    static const int nk[][2] = {{1, 1}, {5, 3}, {32, 16}, {33, 64}, {77, 40}, {96, 768}};
    check_linear_shapes(check_linear, nk, sizeof nk / sizeof nk[0], NULL);
    check_panels_strided(20, 100, 64, 0, gemm_panels(100));
    check_panels_strided(13, 100, 50, 1, 3);
    check_panels_strided(1, 512, 64, 0, gemm_panels(512));

    static const int ns[] = {1, 5, 16, 17, 40, 512};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        float *x = random_floats((size_t)ns[i], 37u);
        for (int t = 0; t < ns[i]; t++)
            x[t] *= 30.0f;
        check_softmax(x, ns[i]);
        free(x);
    }
    check_softmax((const float[]){-100.0f, 5.0f}, 2); /* no NaN, no overflow */
    check_softmax((const float[]){5.0f, -100.0f, 5.0f, 1e4f}, 4);

    static const int ln[] = {1, 7, 8, 768, 770};
    for (size_t i = 0; i < sizeof ln / sizeof ln[0]; i++) {
        check_layernorm(ln[i], false);
        check_layernorm(ln[i], true);
    }
    for (int n = 1; n <= 40; n++)
        check_gelu(n);
    return test_finish("test_gemm_" GEMM_EXPECT);
}
