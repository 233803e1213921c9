/* Matrix products of the forward pass on weights packed once at load time.
 *
 * C = A · Wᵀ with W an nn.Linear weight [n][k]: W is stored as panels of GEMM_NR output
 * columns, [ceil(n/NR)][k][NR] (the last panel zero-padded), so the kernel streams each
 * panel front to back while a block of A's rows stays in cache, and no call repacks
 * anything. The kernel is chosen at run time for the CPU (AVX-512, AVX2+FMA, or plain C),
 * so one binary runs well on any x86-64 machine. */
#ifndef GEMM_H
#define GEMM_H

#include <stddef.h>

#define GEMM_NR 32

enum gemm_epilogue {
    GEMM_STORE,     /* C = A · Wᵀ */
    GEMM_BIAS,      /* C = A · Wᵀ + bias */
    GEMM_BIAS_GELU, /* C = gelu(A · Wᵀ + bias), HF's erf GELU */
};

static inline int gemm_panels(int n) { return (n + GEMM_NR - 1) / GEMM_NR; }

/* Floats a packed [n][k] matrix takes. */
static inline size_t gemm_packed_floats(int n, int k)
{
    return (size_t)gemm_panels(n) * GEMM_NR * (size_t)k;
}

/* Packs W[n][k] (row j at w + j * ldw) into panels. */
void gemm_pack(const float *w, int ldw, int n, int k, float *packed);

/* Packs a matrix given transposed, Wᵀ[k][n] (row t at wt + t * ldw): for C = A · B with B
 * the [k][n] matrix as it lies in memory (attention's values). */
void gemm_pack_transposed(const float *wt, int ldw, int n, int k, float *packed);

/* C[i][j] for rows i in [0, m) and output columns of panels [p0, p1); a: row i at a + i * lda;
 * c: row i at c + i * ldc; bias: n floats (NULL for GEMM_STORE). */
void gemm_panels_run(const float *a, int lda, int m, const float *packed, int n, int k, float *c,
                     int ldc, const float *bias, enum gemm_epilogue ep, int p0, int p1);

/* C[m][n] = A[m][k] · Wᵀ (+ epilogue) on the pool's threads, A and C row-major and dense. */
struct threadpool;
void gemm_linear(struct threadpool *pool, const float *a, int m, const float *packed, int n, int k,
                 float *c, const float *bias, enum gemm_epilogue ep);

/* Which kernel runs here: "avx512", "avx2" or "generic". */
const char *gemm_kernel_name(void);

#endif
