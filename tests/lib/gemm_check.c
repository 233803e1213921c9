#include "gemm_check.h"

#include "check.h"
#include "engine/gemm_amx.h"

#include <stdlib.h>
#include <string.h>

void require_kernel(const char *expected, const char *running)
{
    if (strcmp(running, expected) != 0 && strncmp(expected, "amx-", 4) == 0) {
        printf("SKIPPED: no AMX here (%s), so not the real %s kernel; its code runs on the software tile "
               "model in the *_amx_model test\n", gemm_amx_status(), expected);
        exit(77);
    }
    if (strcmp(running, expected) != 0) {
        printf("SKIPPED: this CPU cannot run the %s kernel (runs %s)\n", expected, running);
        exit(77);
    }
    printf("kernel: %s (amx: %s)\n", running, gemm_amx_status());
}

void check_linear_shapes(linear_check check, const int (*nk)[2], size_t n_nk, void (*more)(threadpool *pool))
{
    static const int ms[] = {1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 16, 20, 24, 25, 32, 37, 64};
    char err[256];
    for (int threads = 1; threads <= 3; threads++) {
        threadpool *pool = threadpool_create(threads, err);
        CHECK(pool != NULL, "threadpool_create: %s", err);
        if (!pool)
            break;
        for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
            for (size_t s = 0; s < n_nk; s++)
                for (int ep = GEMM_STORE; ep <= GEMM_BIAS_GELU; ep++)
                    check(pool, ms[i], nk[s][0], nk[s][1], (enum gemm_epilogue)ep);
        check(pool, 37, 3072, 768, GEMM_BIAS_GELU);
        if (more)
            more(pool);
        threadpool_free(pool);
    }
}

static float *random_matrix(int rows, int cols, unsigned seed)
{
    float *x = malloc((size_t)rows * cols * sizeof *x);
    for (size_t i = 0; i < (size_t)rows * cols; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 8388608.0f - 1.0f; /* [-1, 1) */
    }
    return x;
}

static void rows_alone(threadpool *pool, linear_product product, int m, int n, int k)
{
    float *a = random_matrix(m, k, 11u), *w = random_matrix(n, k, 13u), *bias = random_matrix(1, n, 3u);
    float *c = malloc((size_t)m * n * sizeof *c), *row = malloc((size_t)n * sizeof *row);
    product(pool, a, m, w, n, k, bias, c);
    for (int i = 0; i < m; i++) {
        product(pool, a + (size_t)i * k, 1, w, n, k, bias, row);
        if (memcmp(row, c + (size_t)i * n, (size_t)n * sizeof *row) != 0) {
            CHECK(0, "batch invariance m=%d n=%d k=%d: row %d alone differs from row %d of the batch", m, n, k, i, i);
            break;
        }
    }
    free(a), free(w), free(bias), free(c), free(row);
}

void check_batch_invariance(threadpool *pool, linear_product product)
{
    rows_alone(pool, product, 37, 77, 768);
    rows_alone(pool, product, 50, 40, 64);
    rows_alone(pool, product, 20, 33, 3071);
    rows_alone(pool, product, 37, 33, 40);
}
