/* The fp32, bf16 and int8 kernels on BERT-base's (FinBERT's) four linear products, at 32 and 512
 * rows: n x k = 2304 x 768 (q|k|v), 768 x 768 (attention output), 3072 x 768 (FFN in) and
 * 768 x 3072 (FFN out). The same process, the three runs taking turns (so a neighbour's load or
 * the clock's drift falls on all alike), median times, GOP/s (a multiply-add is 2 ops) and
 * int8's time against the others'. "quant" is int8's share spent quantizing A: the median time
 * of gemm_int8_quantize_row over the m rows on one thread, divided by the threads. Where the CPU
 * has AMX, bf16 and int8 run on amx-bf16 and amx-int8, and a second line per shape times both
 * with AMX turned off (gemm_amx_allow: avx512-bf16 and avx512-vnni) in the same turns; elsewhere
 * it says "no AMX".
 *
 * usage: gemm-int8-bench [threads [reps]]     (defaults: 1 thread, 15 reps per kernel and shape) */
#include "common/clock.h"
#include "engine/gemm.h"
#include "engine/gemm_amx.h"
#include "engine/gemm_bf16.h"
#include "engine/gemm_int8.h"
#include "engine/threadpool.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static float uniform(unsigned *s) { return (float)((*s = *s * 1664525u + 1013904223u) >> 9) / 8388608.0f - 1.0f; }

/* The three products' operands for one shape. */
struct operands {
    int m, n, k;
    float *a, *c, *bias, *packed;
    uint16_t *packed16, *scratch16;
    int8_t *packed8;
    uint8_t *scratch8;
};

static void operands_init(struct operands *o, int m, int n, int k)
{
    *o = (struct operands){.m = m, .n = n, .k = k};
    o->a = malloc(sizeof(float) * (size_t)m * k);
    o->c = malloc(sizeof(float) * (size_t)m * n);
    o->bias = calloc((size_t)n, sizeof(float));
    o->packed = malloc(sizeof(float) * gemm_packed_floats(n, k));
    o->packed16 = malloc(sizeof(uint16_t) * gemm_packed_bf16_size(n, k));
    o->scratch16 = malloc(sizeof(uint16_t) * gemm_bf16_scratch_size(m, k));
    o->packed8 = aligned_alloc(64, (gemm_packed_int8_size(n, k) + 63) & ~(size_t)63);
    o->scratch8 = aligned_alloc(64, (gemm_int8_scratch_size(m, k) + 63) & ~(size_t)63);
    float *w = malloc(sizeof(float) * (size_t)n * k);
    unsigned s = 1;
    for (size_t i = 0; i < (size_t)m * k; i++)
        o->a[i] = uniform(&s);
    for (size_t i = 0; i < (size_t)n * k; i++)
        w[i] = 0.05f * uniform(&s);
    gemm_pack(w, k, n, k, o->packed);
    gemm_pack_bf16(w, k, n, k, o->packed16);
    gemm_pack_int8(w, k, n, k, o->packed8);
    free(w);
}

static void operands_free(struct operands *o)
{
    free(o->a), free(o->c), free(o->bias), free(o->packed), free(o->packed16), free(o->scratch16);
    free(o->packed8), free(o->scratch8);
}

/* Seconds one product takes in dtype d (0 fp32, 1 bf16, 2 int8). */
static double time_product(threadpool *pool, struct operands *o, int d)
{
    double t0 = monotonic_seconds();
    if (d == 0)
        gemm_linear(pool, o->a, o->m, o->packed, o->n, o->k, o->c, o->bias, GEMM_BIAS);
    else if (d == 1)
        gemm_linear_bf16(pool, o->a, o->m, o->packed16, o->n, o->k, o->c, o->bias, GEMM_BIAS, o->scratch16);
    else
        gemm_linear_int8(pool, o->a, o->m, o->packed8, o->n, o->k, o->c, o->bias, GEMM_BIAS, o->scratch8);
    return monotonic_seconds() - t0;
}

/* Seconds to quantize the m rows of A on this thread. */
static double time_quantize(struct operands *o)
{
    float *scale = o->c; /* C is free meanwhile: room for m floats and m ints */
    int32_t *zp = (int32_t *)(void *)(o->c + o->m);
    double t0 = monotonic_seconds();
    for (int i = 0; i < o->m; i++)
        gemm_int8_quantize_row(o->a + (size_t)i * o->k, o->k, o->scratch8 + (size_t)i * 4 * gemm_int8_quads(o->k),
                               scale + i, zp + i);
    return monotonic_seconds() - t0;
}

static void bench_shape(threadpool *pool, int m, int n, int k, int reps, bool amx)
{
    struct operands o;
    operands_init(&o, m, n, k);
    double *t[6]; /* fp32, bf16, int8, quantization; bf16 and int8 with AMX off */
    for (int d = 0; d < 6; d++)
        t[d] = malloc(sizeof(double) * (size_t)reps);
    for (int d = 0; d < 3; d++)
        time_product(pool, &o, d); /* warm-up: pages, caches, clocks */
    for (int r = 0; r < reps; r++) {
        for (int d = 0; d < 3; d++)
            t[d][r] = time_product(pool, &o, d);
        t[3][r] = time_quantize(&o);
        if (amx) {
            gemm_amx_allow(false);
            t[4][r] = time_product(pool, &o, 1);
            t[5][r] = time_product(pool, &o, 2);
            gemm_amx_allow(true);
        }
    }
    double ops = 2.0 * m * n * k, med[4];
    for (int d = 0; d < 4; d++)
        med[d] = timings_median(t[d], reps);
    printf("%4d x %4d x %4d  fp32 %7.3f ms %5.0f  bf16 %7.3f ms %5.0f  int8 %7.3f ms %5.0f GOP/s  "
           "int8 vs fp32 %.2fx, vs bf16 %.2fx  quant %4.1f%%\n",
           m, n, k, med[0] * 1e3, ops / med[0] * 1e-9, med[1] * 1e3, ops / med[1] * 1e-9, med[2] * 1e3,
           ops / med[2] * 1e-9, med[0] / med[2], med[1] / med[2], 100 * med[3] / threadpool_size(pool) / med[2]);
    if (amx) {
        double xb = timings_median(t[4], reps), xi = timings_median(t[5], reps);
        printf("%4d x %4d x %4d  avx512-bf16 %7.3f ms %5.0f  avx512-vnni %7.3f ms %5.0f GOP/s  amx-bf16 %.2fx its "
               "speed, amx-int8 %.2fx\n",
               m, n, k, xb * 1e3, ops / xb * 1e-9, xi * 1e3, ops / xi * 1e-9, xb / med[1], xi / med[2]);
    }
    for (int d = 0; d < 6; d++)
        free(t[d]);
    operands_free(&o);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 15;
    char err[256];
    threadpool *pool = threadpool_create(threads, err);
    if (!pool || reps < 1) {
        fprintf(stderr, "gemm-int8-bench: %s\n", pool ? "reps must be >= 1" : err);
        return 1;
    }
    printf("kernels: %s, %s and %s, %d thread(s), median of %d runs taking turns\n", gemm_kernel_name(),
           gemm_bf16_kernel_name(), gemm_int8_kernel_name(), threads, reps);
    bool amx = gemm_amx_features() == (GEMM_AMX_BF16 | GEMM_AMX_INT8);
    printf("amx: %s%s\n", gemm_amx_status(), amx ? ": the AVX-512 kernels timed too" : " (no AMX: no AMX runs)");
    static const int ms[] = {32, 512}, nk[][2] = {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}};
    for (int i = 0; i < 2; i++)
        for (int s = 0; s < 4; s++)
            bench_shape(pool, ms[i], nk[s][0], nk[s][1], reps, amx);
    threadpool_free(pool);
    return 0;
}
