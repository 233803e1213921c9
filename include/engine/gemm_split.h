/* How a product's output columns are shared among the pool's threads, for every kernel that
 * computes C a run of GEMM_NR-column panels at a time (the fp32 kernels of gemm.c, the bf16
 * ones of gemm_bf16.c): the panels are cut into chunks, each thread runs a contiguous range of
 * them front to back, then takes chunks from the back of the other ranges. */
#ifndef GEMM_SPLIT_H
#define GEMM_SPLIT_H

#include "engine/threadpool.h"

/* Computes C's output columns of panels [p0, p1); may prefetch the weights of panels up to
 * pf_end (> p1 when the same thread runs the next chunk right after). */
typedef void (*gemm_panels_fn)(void *ctx, int p0, int p1, int pf_end);

/* Runs run(ctx, ...) over all gemm_panels(n) panels of an m x n x k product on the pool's
 * threads, and returns when every panel is done. */
void gemm_split_panels(threadpool *pool, int m, int n, int k, gemm_panels_fn run, void *ctx);

#endif
