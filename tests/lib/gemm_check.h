/* What the GEMM kernel tests (test_gemm, test_gemm_bf16, test_gemm_int8) share: which kernel a
 * test binary checks, and the sweep of product shapes each kernel's check_linear runs over. */
#ifndef GEMM_CHECK_H
#define GEMM_CHECK_H

#include "engine/gemm.h"
#include "engine/threadpool.h"

#include <stddef.h>

/* The kernel a test binary was built to check (its GEMM_EXPECT) against the one this CPU runs:
 * prints it, or where they differ says SKIPPED on stdout and exits 77, which ctest reports as a
 * skipped test (SKIP_RETURN_CODE 77), never as a pass. An AMX kernel's skip ("SKIPPED: no AMX
 * here") names gemm_amx_status(): not on this CPU, or refused by the kernel. */
void require_kernel(const char *expected, const char *running);

/* One checked product of an m x k A by an n x k W with epilogue ep, on pool's threads. */
typedef void (*linear_check)(threadpool *pool, int m, int n, int k, enum gemm_epilogue ep);

/* check() on pools of 1, 2 and 3 threads for row counts around every tile size (12, 8, 4 and
 * what is left), each of the n_nk (n, k) shapes and every epilogue, and 37 x 3072 x 768 with
 * GELU (enough chunks that each thread has several and steals from the others); then, on the
 * same pool, more(pool) unless it is NULL: a kernel's own large cases. */
void check_linear_shapes(linear_check check, const int (*nk)[2], size_t n_nk, void (*more)(threadpool *pool));

/* C[m][n] = A[m][k] · W[n][k]ᵀ + bias, then GELU, in a test's dtype on pool's threads: the
 * test's packing and product, W packed anew by each call. */
typedef void (*linear_product)(threadpool *pool, const float *a, int m, const float *w, int n, int k,
                               const float *bias, float *c);

/* A row's C must not depend on m nor on the rows beside it (bert.c's batches rely on it: a
 * sequence's logits are bit-identical batched or alone): each row of an m-row product against
 * that row's product alone, bit for bit, over 32-row blocks and their tails (37 = 32 + 5,
 * 50 = 32 + 16 + 2; the AMX kernels run a row alone on a 1-row tile config, and in a batch in a
 * full block or the last rows' shorter one), k on AMX's path (64, 768, odd 3071) and off it (40). */
void check_batch_invariance(threadpool *pool, linear_product product);

#endif
