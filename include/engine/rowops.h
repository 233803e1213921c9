/* Operations along one row of floats: the steps of the forward pass between its matrix
 * products. They are vectorized like the GEMM kernels, from the same source for each
 * instruction set (src/engine/gemm_kernel.inc), and picked with them in src/engine/gemm.c, so
 * that one check of the CPU chooses both. */
#ifndef ROWOPS_H
#define ROWOPS_H

/* x = softmax(x * scale) over a row of n (scale > 0), stable: the row's maximum is
 * subtracted before exp. */
void rowop_softmax(float *x, int n, float scale);

/* x = LayerNorm(x + add + bias) over one row of n (add and bias both NULL: LayerNorm(x)),
 * with gain g and shift b; mean and variance accumulated in double. */
void rowop_layernorm(float *x, const float *add, const float *bias, const float *g, const float *b, int n,
                     float eps);

/* x = gelu(x) over a row of n: HF's erf GELU, the very function of GEMM_BIAS_GELU. */
void rowop_gelu(float *x, int n);

#endif
