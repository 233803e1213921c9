#include "engine/gemm.h"

#include "engine/gemm_split.h"
#include "engine/rowops.h"

#include <math.h>
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
    void (*row_gelu)(float *x, int n);
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

void rowop_gelu(float *x, int n) { kernels()->row_gelu(x, n); }

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

/* One product's operands, for the panels of gemm_split_panels. */
struct linear_job {
    const float *a, *w, *bias;
    float *c;
    int m, n, k;
    enum gemm_epilogue ep;
};

static void linear_panels(void *ctx, int p0, int p1, int pf_end)
{
    const struct linear_job *j = ctx;
    kernels()->panels(j->a, j->k, j->m, j->w, j->n, j->k, j->c, j->n, j->bias, j->ep, p0, p1, pf_end);
}

void gemm_linear(threadpool *pool, const float *a, int m, const float *w, int n, int k, float *c,
                 const float *bias, enum gemm_epilogue ep)
{
    struct linear_job j = {.a = a, .w = w, .bias = bias, .c = c, .m = m, .n = n, .k = k, .ep = ep};
    gemm_split_panels(pool, m, n, k, linear_panels, &j);
}
