/* The fp32 kernel against the bf16 one on BERT-base's FFN product (n = 3072, k = 768) at 512,
 * 128 and 32 rows: the same process, the two runs alternating (so a neighbour's load or the
 * clock's drift falls on both alike), median times, GFLOP/s and the ratio. Where the CPU has
 * AMX, the bf16 kernel is amx-bf16 and a third run takes turns with them: bf16 with AMX turned
 * off (gemm_amx_allow), i.e. avx512-bf16, and amx against it; elsewhere it says "no AMX".
 *
 * usage: gemm-bf16-bench [threads [reps]]     (defaults: 1 thread, 15 reps per kernel and shape) */
#include "common/clock.h"
#include "engine/gemm.h"
#include "engine/gemm_amx.h"
#include "engine/gemm_bf16.h"
#include "engine/threadpool.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static void bench_shape(threadpool *pool, int m, int n, int k, int reps, bool amx)
{
    float *a = malloc(sizeof(float) * (size_t)m * k), *w = malloc(sizeof(float) * (size_t)n * k);
    float *c = malloc(sizeof(float) * (size_t)m * n), *bias = calloc((size_t)n, sizeof(float));
    float *packed = malloc(sizeof(float) * gemm_packed_floats(n, k));
    uint16_t *packed16 = malloc(sizeof(uint16_t) * gemm_packed_bf16_size(n, k));
    uint16_t *scratch = malloc(sizeof(uint16_t) * gemm_bf16_scratch_size(m, k));
    double *t32 = malloc(sizeof(double) * (size_t)reps), *t16 = malloc(sizeof(double) * (size_t)reps);
    double *t16x = malloc(sizeof(double) * (size_t)reps); /* bf16 with AMX turned off */
    unsigned s = 1;
    for (size_t i = 0; i < (size_t)m * k; i++)
        a[i] = (float)((s = s * 1664525u + 1013904223u) >> 9) / 8388608.0f - 1.0f;
    for (size_t i = 0; i < (size_t)n * k; i++)
        w[i] = (float)((s = s * 1664525u + 1013904223u) >> 9) / 8388608.0f * 0.1f - 0.05f;
    gemm_pack(w, k, n, k, packed);
    gemm_pack_bf16(w, k, n, k, packed16);
    gemm_linear(pool, a, m, packed, n, k, c, bias, GEMM_BIAS); /* warm-up: pages, caches, clocks */
    gemm_linear_bf16(pool, a, m, packed16, n, k, c, bias, GEMM_BIAS, scratch);
    for (int r = 0; r < reps; r++) {
        double t0 = monotonic_seconds();
        gemm_linear(pool, a, m, packed, n, k, c, bias, GEMM_BIAS);
        double t1 = monotonic_seconds();
        gemm_linear_bf16(pool, a, m, packed16, n, k, c, bias, GEMM_BIAS, scratch);
        double t2 = monotonic_seconds();
        t32[r] = t1 - t0;
        t16[r] = t2 - t1;
        if (amx) {
            gemm_amx_allow(false);
            gemm_linear_bf16(pool, a, m, packed16, n, k, c, bias, GEMM_BIAS, scratch);
            t16x[r] = monotonic_seconds() - t2;
            gemm_amx_allow(true);
        }
    }
    double flops = 2.0 * m * n * k, m32 = timings_median(t32, reps), m16 = timings_median(t16, reps);
    printf("%4d x %4d x %4d   fp32 %7.3f ms %6.1f GFLOP/s   bf16 %7.3f ms %6.1f GFLOP/s   bf16/fp32 time %.2f "
           "(%.2fx speed)\n",
           m, n, k, m32 * 1e3, flops / m32 * 1e-9, m16 * 1e3, flops / m16 * 1e-9, m16 / m32, m32 / m16);
    if (amx) {
        double mx = timings_median(t16x, reps);
        printf("%4d x %4d x %4d   avx512-bf16 %7.3f ms %6.1f GFLOP/s   amx-bf16 %.2fx its speed\n", m, n, k, mx * 1e3,
               flops / mx * 1e-9, mx / m16);
    }
    free(a), free(w), free(c), free(bias), free(packed), free(packed16), free(scratch), free(t32), free(t16);
    free(t16x);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 15;
    char err[256];
    threadpool *pool = threadpool_create(threads, err);
    if (!pool || reps < 1) {
        fprintf(stderr, "gemm-bf16-bench: %s\n", pool ? "reps must be >= 1" : err);
        return 1;
    }
    printf("kernels: %s and %s, %d thread(s), median of %d alternating runs\n", gemm_kernel_name(),
           gemm_bf16_kernel_name(), threads, reps);
    bool amx = gemm_amx_features() & GEMM_AMX_BF16;
    printf("amx: %s%s\n", gemm_amx_status(), amx ? ": amx-bf16 against avx512-bf16 too" : " (no AMX: no amx-bf16 run)");
    static const int ms[] = {512, 128, 32};
    for (int i = 0; i < 3; i++)
        bench_shape(pool, ms[i], 3072, 768, reps, amx);
    threadpool_free(pool);
    return 0;
}
