// Low-bit weight types: Q2_K, Q3_K, Q5_K against Q8_K activations, Q4_0 against Q8_0 (k_quants_lo.c); the i-quants
// against Q8_K, IQ4_NL against Q8_0 (iq_quants.c); Q5_0 against Q8_0, Q4_1 and Q5_1 against Q8_1 (legacy_quants.c);
// MXFP4 against Q8_0 (mxfp4.c).
#pragma once
#include "common.h"

enum { GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q5_0 = 6, GGML_Q5_1 = 7, GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q5_K = 13 };
enum {
  GGML_IQ2_XXS = 16, GGML_IQ2_XS = 17, GGML_IQ3_XXS = 18, GGML_IQ1_S = 19, GGML_IQ4_NL = 20, GGML_IQ3_S = 21, GGML_IQ2_S = 22,
  GGML_IQ4_XS = 23, GGML_IQ1_M = 29
};
enum { GGML_MXFP4 = 39 };

/** Bytes of one row of K values of one of these types, or 0 (another type, or K not whole blocks). */
size_t lowbit_row_bytes(int type, int K);
/** The dot of `type` for the kernel table k (its SIMD level), or NULL for another type. */
dot_fn lowbit_dot(const kernels_t *k, int type);
/** `return` the dot of type T for x86 AVX2 when avx2 is set, else its scalar C (iq_dot, legacy_dot). */
#if defined(__x86_64__) || defined(__i386__)
#define PICK_AVX2(T, avx2) return (avx2) ? dot_##T##_avx2 : dot_##T##_scalar
#else
#define PICK_AVX2(T, avx2) return (void)(avx2), dot_##T##_scalar
#endif

/** The activation blocks one of these types meets. */
enum { ACT_Q8_0, ACT_Q8_K, ACT_Q8_1 };
static inline int lowbit_act(int type) {
  switch (type) {
    case GGML_Q4_0: case GGML_Q5_0: case GGML_IQ4_NL: case GGML_MXFP4: return ACT_Q8_0;
    case GGML_Q4_1: case GGML_Q5_1: return ACT_Q8_1;
    default: return ACT_Q8_K;
  }
}
/** The Q8_1 activation quantiser for the kernel table k (its SIMD level). */
quant_fn lowbit_quant_q8_1(const kernels_t *k);

/** iq_quants.c: row bytes of an i-quant (0 for another type or K not whole blocks), and its dot for SIMD level
 *  `level` (0 scalar C, 1 AVX2, 2 NEON, 3 AVX-512 VNNI), or NULL for another type. */
size_t iq_row_bytes(int type, int K);
dot_fn iq_dot(int level, int type);
/** Its 4-token dot (the weight block decoded once for 4 activation rows) for `level`, or NULL (none: the driver
 *  loops over dot). */
dot4_fn iq_dot4(int level, int type);
/** Panels (prefill): a group of 8 weight rows decoded once into `bytes` per super-block, then run against many
 *  tokens; each result has the bits of the type's dot (the grid i-quants of iq_quants.c). decode reads 8 rows
 *  wrow bytes apart; prep lays nt Q8_K activation rows (xstride bytes apart) out as gemm reads them, nb * 256 bytes
 *  per token at u; gemm writes out[t * ostride + r] for token t < nt and row r < 8. */
typedef struct {
  void (*decode)(const void *w, size_t wrow, int nb, void *panel);
  void (*prep)(const void *x, size_t xstride, int nt, int nb, uint8_t *u);
  void (*gemm)(int nb, const void *panel, const void *x, size_t xstride, const uint8_t *u, int nt, float mult, float *out, size_t ostride);
  float mult;
  size_t bytes;
} panel_kernels;
/** The panel kernels of an i-quant for SIMD level `level` (x86 AVX2 or AVX-512 VNNI), or NULL (none: dot and dot4). */
const panel_kernels *iq_panel(int level, int type);
/** The panel kernels of `type` for the kernel table k, or NULL. */
const panel_kernels *lowbit_panel(const kernels_t *k, int type);
/** lowbit_dot's 4-token counterpart for the kernel table k, or NULL. */
dot4_fn lowbit_dot4(const kernels_t *k, int type);
/** legacy_quants.c: likewise for Q4_1, Q5_0, Q5_1; and the Q8_1 quantiser (AVX2 or scalar C). */
size_t legacy_row_bytes(int type, int K);
dot_fn legacy_dot(int avx2, int type);
quant_fn legacy_quant_q8_1(int avx2);
/** mxfp4.c: row bytes of MXFP4 (0 if K is not whole blocks); its 1- and 4-token dots for SIMD level `level` (0 scalar
 *  C, 1 AVX2, 2 NEON, 3 AVX-512); dot4 NULL where none (the driver loops over dot). */
size_t mxfp4_row_bytes(int K);
dot_fn mxfp4_dot(int level);
dot4_fn mxfp4_dot4(int level);
