/* The fuzz build's stand-in for src/engine/gemm.c, which clang cannot compile (it uses GCC's vector
 * builtins). model.c references gemm_pack only to pack loaded weights, and no fuzz target
 * loads weights: reaching this is a bug in a target. */
#include "engine/gemm.h"

#include <stdio.h>
#include <stdlib.h>

void gemm_pack(const float *w, int ldw, int n, int k, float *packed)
{
    (void)w, (void)ldw, (void)n, (void)k, (void)packed;
    fprintf(stderr, "gemm_pack called in the fuzz build, which has no GEMM kernels\n");
    abort();
}
