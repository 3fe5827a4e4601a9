// Low-bit weight types (k_quants_lo.c): Q2_K, Q3_K, Q5_K against Q8_K activations, Q4_0 against Q8_0.
#pragma once
#include "common.h"

enum { GGML_Q4_0 = 2, GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q5_K = 13 };

/** Bytes of one row of K values of one of these types, or 0 (another type, or K not whole blocks). */
size_t lowbit_row_bytes(int type, int K);
/** The dot of `type` for the kernel table k (its SIMD level), or NULL for another type. */
dot_fn lowbit_dot(const kernels_t *k, int type);
/** Whether type is one of these and wants Q8_K activations (else Q8_0). */
static inline int lowbit_wants_q8_K(int type) { return type != GGML_Q4_0; }
