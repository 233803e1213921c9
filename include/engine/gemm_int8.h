/* Matrix products on int8 weights and uint8 activations with int32 sums (--dtype int8, issue
 * 19): dynamic quantization, as ONNX Runtime's MatMulInteger path and PyTorch's
 * quantize_dynamic do it.
 *
 * Weights, once at load: symmetric, per output channel. Row j of an nn.Linear weight W[n][k]
 * gets the scale ws_j = max_t |W[j][t]| / 127 and becomes q_j = round(W[j] / ws_j), in
 * [-127, 127] (ties to even; an all-zero row gets ws_j = 0 and q_j = 0).
 *
 * Activations, per product and per row of A (per token), asymmetric uint8 as ONNX Runtime's
 * DynamicQuantizeLinear: lo = min(0, min_t a_t), hi = max(0, max_t a_t) (so that 0 is exact),
 * sa = (hi - lo) / 255, zp = round(-lo / sa) in [0, 255], qa_t = clamp(round(a_t / sa) + zp,
 * 0, 255) where a_t / sa is computed as a_t * (1 / sa), rounded to nearest even. A row of
 * zeros gets sa = 1, zp = 0. Asymmetric rather than symmetric int8 shifted by 128 (which costs
 * the same: either way the kernel subtracts zp x the column's weight sum): the FFN's second
 * product takes GELU outputs, never below -0.17, and a symmetric scale would spend half of its
 * 255 levels on negatives that never come. Measured on finsent-mini over all 4,846
 * PhraseBank sentences against f32 (test_model_int8): asymmetric u8 max |Δlogit| 0.038 and
 * max |Δprob| 0.013; symmetric s8 (sa = max|a| / 127) + 128: 0.082 and 0.032; both keep f32's
 * label on 4,845.
 *
 * The product: C[i][j] = sa_i ws_j (sum_t qa[i][t] q[j][t] - zp_i sum_t q[j][t]) (+ bias_j,
 * + GELU, in float32 as the fp32 kernels' epilogue). The sums are int32 and exact: a term is at
 * most 255 x 127 = 32,385 in magnitude, so with k <= GEMM_INT8_MAX_K (66,000) every partial
 * sum, the zero-point correction and their difference stay below 2^31 (FinBERT's widest k,
 * 3072, reaches 99.5 M of 2,147 M). vpdpbusd adds its four u8 x s8 products exactly in 32 bits
 * and wraps (vpdpbusds would saturate): as nothing can overflow, both give the same sums, and so
 * do the portable kernel's plain C and AMX's tdpbusd. The dequantization is one rounding-exact
 * recipe every kernel follows: c = fma((float)(sum - zp_i colsum_j), sa_i * ws_j, bias_j), so C
 * is bit-identical across kernels (tests/unit/test_gemm_int8.c checks it).
 *
 * Packed weights, panels of GEMM_NR = 32 output columns as gemm.h, k in quads for vpdpbusd
 * (which takes four consecutive u8 of A in a 32-bit lane and four s8 of one column), then the
 * panel's column sums and scales:
 *
 *   panel p at (int8_t *)packed + p * gemm_int8_panel_bytes(k), kq = ceil(k / 4):
 *     int8_t  q[kq][32][4]    q[t][j][h] = q(W[32p + j][4t + h]), 0 past row n-1 or column k-1
 *     int32_t colsum[32]      sum_t q(W[32p + j][t]) (0 past row n-1)
 *     float   scale[32]       ws_(32p + j)          (0 past row n-1)
 *
 * One k quad of a panel is 32 x 4 = 128 bytes, two 512-bit registers, streamed front to back;
 * the avx512-vnni kernel streams two adjacent panels at once (64 columns, four registers). 16
 * consecutive k quads of a panel are also, as they lie, two B tiles of AMX's tdpbusd (columns
 * 0-15 and 16-31, stride 128 bytes).
 *
 * A's quantized rows live in the caller's scratch (gemm_int8_scratch_size): float sa[m],
 * int32 zp[m], then uint8 qa[m][4 kq] (the pad past k is 0; it meets zero weights). */
#ifndef GEMM_INT8_H
#define GEMM_INT8_H

#include "engine/gemm.h"

#include <stddef.h>
#include <stdint.h>

/* The widest k whose int32 sums cannot overflow: 66,000 x 255 x 127 < 2^31. */
#define GEMM_INT8_MAX_K 66000

/* k quads of a k-long row. */
static inline int gemm_int8_quads(int k) { return (k + 3) / 4; }

/* Bytes of one packed panel: weights, then int32 column sums and float scales. */
static inline size_t gemm_int8_panel_bytes(int k)
{
    return (size_t)gemm_int8_quads(k) * GEMM_NR * 4 + GEMM_NR * (sizeof(int32_t) + sizeof(float));
}

/* Bytes a packed [n][k] matrix takes. */
static inline size_t gemm_packed_int8_size(int n, int k) { return (size_t)gemm_panels(n) * gemm_int8_panel_bytes(k); }

/* Quantizes W[n][k] (row j at w + j * ldw) per output channel and packs it as above; packed
 * must be 4-byte aligned. k <= GEMM_INT8_MAX_K (the caller checks). */
void gemm_pack_int8(const float *w, int ldw, int n, int k, int8_t *packed);

/* One row's quantization (see above): x[k] into q[4 kq] (pad zeroed), *scale and *zero_point.
 * The same arithmetic in every kernel. */
void gemm_int8_quantize_row(const float *x, int k, uint8_t *q, float *scale, int32_t *zero_point);

/* Bytes of scratch gemm_linear_int8 needs for m rows of k (4-byte aligned by the caller). */
static inline size_t gemm_int8_scratch_size(int m, int k)
{
    return (size_t)m * (sizeof(float) + sizeof(int32_t) + 4 * (size_t)gemm_int8_quads(k));
}

/* C[m][n] = A[m][k] · Wᵀ (+ epilogue) on the pool's threads through the quantization above;
 * A float32 and C row-major and dense, W packed by gemm_pack_int8. A is quantized into scratch
 * (gemm_int8_scratch_size(m, k), the caller's: a product never allocates nor fails) before the
 * product runs; scratch must not overlap A or C. */
struct threadpool;
void gemm_linear_int8(struct threadpool *pool, const float *a, int m, const int8_t *packed, int n, int k, float *c,
                      const float *bias, enum gemm_epilogue ep, uint8_t *scratch);

/* Which kernel runs here: "amx-int8" (tdpbusd on Intel AMX tiles, where the CPU has them and
 * Linux grants them: gemm_amx.h), "avx512-vnni" (vpdpbusd) or "portable-int8" (plain C, the same
 * integers). */
const char *gemm_int8_kernel_name(void);

#endif
