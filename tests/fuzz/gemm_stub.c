/* The fuzz build's stand-in for src/engine/gemm.c, gemm_bf16.c and gemm_int8.c, which clang
 * cannot compile (they use GCC's vector builtins and target pragmas). model.c references
 * gemm_pack, gemm_pack_bf16 and gemm_pack_int8 only to pack loaded weights, and the kernels'
 * names only to describe a loaded model or resolve --dtype auto; no fuzz target does either:
 * reaching one is a bug in a target. */
#include "engine/gemm.h"
#include "engine/gemm_bf16.h"
#include "engine/gemm_int8.h"

#include <stdio.h>
#include <stdlib.h>

static void no_kernels(const char *what)
{
    fprintf(stderr, "%s called in the fuzz build, which has no GEMM kernels\n", what);
    abort();
}

void gemm_pack(const float *w, int ldw, int n, int k, float *packed)
{
    (void)w, (void)ldw, (void)n, (void)k, (void)packed;
    no_kernels("gemm_pack");
}

void gemm_pack_bf16(const float *w, int ldw, int n, int k, uint16_t *packed)
{
    (void)w, (void)ldw, (void)n, (void)k, (void)packed;
    no_kernels("gemm_pack_bf16");
}

const char *gemm_kernel_name(void)
{
    no_kernels("gemm_kernel_name");
    return NULL;
}

const char *gemm_bf16_kernel_name(void)
{
    no_kernels("gemm_bf16_kernel_name");
    return NULL;
}

void gemm_pack_int8(const float *w, int ldw, int n, int k, int8_t *packed)
{
    (void)w, (void)ldw, (void)n, (void)k, (void)packed;
    no_kernels("gemm_pack_int8");
}

const char *gemm_int8_kernel_name(void)
{
    no_kernels("gemm_int8_kernel_name");
    return NULL;
}
