// Low-bit weight types: Q2_K, Q3_K, Q5_K against Q8_K activations, Q4_0 against Q8_0 (k_quants_lo.c); the i-quants
// against Q8_K, IQ4_NL against Q8_0 (iq_quants.c).
#pragma once
#include "common.h"

enum { GGML_Q4_0 = 2, GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q5_K = 13 };
enum {
  GGML_IQ2_XXS = 16, GGML_IQ2_XS = 17, GGML_IQ3_XXS = 18, GGML_IQ1_S = 19, GGML_IQ4_NL = 20, GGML_IQ3_S = 21, GGML_IQ2_S = 22,
  GGML_IQ4_XS = 23, GGML_IQ1_M = 29
};

/** Bytes of one row of K values of one of these types, or 0 (another type, or K not whole blocks). */
size_t lowbit_row_bytes(int type, int K);
/** The dot of `type` for the kernel table k (its SIMD level), or NULL for another type. */
dot_fn lowbit_dot(const kernels_t *k, int type);
/** Whether type is one of these and wants Q8_K activations (else Q8_0). */
static inline int lowbit_wants_q8_K(int type) { return type != GGML_Q4_0 && type != GGML_IQ4_NL; }

/** iq_quants.c: row bytes of an i-quant (0 for another type or K not whole blocks), and its dot (AVX2 when avx2 is
 *  set on x86, else the scalar C), or NULL for another type. */
size_t iq_row_bytes(int type, int K);
dot_fn iq_dot(int avx2, int type);
