/* Matrix products on bfloat16 inputs with float32 accumulation (--dtype bf16, issue 19).
 *
 * A bf16 is a float32 cut to its top 16 bits: the same sign and 8-bit exponent, 8 bits of
 * significand. The weights are rounded once at load and packed; the activations (A) are
 * rounded as they enter the product; the product of two bf16 values is exact in float32 and
 * the sums are float32, so what bf16 changes is the inputs' rounding (2^-9 relative, each).
 * Bias, GELU and everything outside the products stay float32.
 *
 * C = A · Wᵀ with W an nn.Linear weight [n][k], packed for vdpbf16ps (AVX512-BF16), which
 * takes a PAIR of bf16 in each 32-bit lane, two consecutive k, and adds both products into
 * that lane's float32 sum. Panels of GEMM_NR = 32 output columns, as gemm.h, but k in pairs:
 *
 *   uint16_t packed[ceil(n/32)][kp][32][2],   kp = ceil(k/2)
 *   packed[p][t][j][h] = bf16(W[32p + j][2t + h]),  0 past row n-1 or at 2t + h == k (odd k)
 *
 * so one k pair of a panel is 32 columns x 2 bf16 = 128 bytes, two 512-bit registers, and the
 * kernel streams the panel front to back. 16 consecutive k pairs of a panel are also, as they
 * lie, two B tiles of AMX's tdpbf16ps (columns 0-15 and 16-31, stride 128 bytes). A row of A
 * is rounded into the same pairs (uint16_t[2 kp], the last one zero-padded for odd k: the
 * padding must be a finite zero on both sides, or 0 x inf would be NaN), one 32-bit pair
 * broadcast per row and k pair (AMX: 16 rows of 16 pairs make an A tile).
 *
 * The rounding (gemm_bf16_round): to nearest, ties to even; NaN stays NaN (quieted, sign and
 * top payload kept); infinities stay; float32 denormals become a zero of their sign. That is
 * exactly the hardware's vcvtne2ps2bf16 (checked on Zen 4, and by tests/unit/test_gemm_bf16.c),
 * so the AVX512-BF16 kernel and the portable one multiply the very same values. */
#ifndef GEMM_BF16_H
#define GEMM_BF16_H

#include "engine/gemm.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* bf16(x): see above. A denormal float32 (exponent field 0) is flushed: vdpbf16ps would treat
 * a bf16 denormal as zero anyway, and a normal float32 never rounds to a denormal bf16. */
static inline uint16_t gemm_bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)(u >> 16 | 0x0040u); /* NaN: set the quiet bit */
    if ((u & 0x7f800000u) == 0)
        return (uint16_t)(u >> 16 & 0x8000u); /* zero or denormal: signed zero */
    u += 0x7fffu + (u >> 16 & 1u);            /* ties to even; may carry into inf */
    return (uint16_t)(u >> 16);
}

/* The float32 a bf16 stands for (exact). */
static inline float gemm_bf16_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* k pairs of a k-long row. */
static inline int gemm_bf16_pairs(int k) { return (k + 1) / 2; }

/* uint16_t a packed [n][k] matrix takes. */
static inline size_t gemm_packed_bf16_size(int n, int k)
{
    return (size_t)gemm_panels(n) * GEMM_NR * 2 * (size_t)gemm_bf16_pairs(k);
}

/* Packs W[n][k] (row j at w + j * ldw), rounded to bf16, into the layout above. */
void gemm_pack_bf16(const float *w, int ldw, int n, int k, uint16_t *packed);

/* Rounds a row x[k] into out[2 kp] (zero-padded) with the running kernel's own conversion:
 * what the kernel does to every row of A. */
void gemm_bf16_round_row(const float *x, int k, uint16_t *out);

/* uint16_t of scratch gemm_linear_bf16 needs for m rows of k: A rounded, m rows of 2 kp. */
static inline size_t gemm_bf16_scratch_size(int m, int k) { return (size_t)m * 2 * (size_t)gemm_bf16_pairs(k); }

/* C[m][n] = bf16(A)[m][k] · Wᵀ (+ epilogue, in float32) on the pool's threads; A float32 and
 * C row-major and dense, W packed by gemm_pack_bf16. A is rounded into scratch
 * (gemm_bf16_scratch_size(m, k), the caller's, so that a product never allocates nor fails)
 * before the product runs; scratch must not overlap A or C. */
struct threadpool;
void gemm_linear_bf16(struct threadpool *pool, const float *a, int m, const uint16_t *packed, int n, int k,
                      float *c, const float *bias, enum gemm_epilogue ep, uint16_t *scratch);

/* Which kernel runs here: "amx-bf16" (tdpbf16ps on Intel AMX tiles, where the CPU has them and
 * Linux grants them: gemm_amx.h), "avx512-bf16" (vdpbf16ps) or "portable-bf16" (float32 FMA on
 * the same bf16 values, widened). */
const char *gemm_bf16_kernel_name(void);

#endif
