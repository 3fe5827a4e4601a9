// Small SIMD helpers shared by the kernel files (each compiled for its target with function attributes).
#pragma once
#include "common.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

TARGET_AVX2 static inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

TARGET_AVX2 static inline int hsum_i32x4(__m128i s) {
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

/** 0xff in byte j where bit j of m is set, else 0. */
TARGET_AVX2 static inline __m256i bytes_of_bits(uint32_t m) {
  const __m256i spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  const __m256i bits = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
  return _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)m), spread), bits), bits);
}

/** acc + dw * x.d * sum of v * x.qs over one Q8_0 block, v 32 signed weights (|v| <= 127): |v| * (x.qs with v's
 *  sign), since maddubs wants its first operand unsigned (Q4_0, Q5_0, IQ4_NL). */
TARGET_AVX2 static inline __m256 acc_q8_0_signed(__m256 acc, __m256i v, const block_q8_0 *x, float dw) {
  const __m256i a = _mm256_loadu_si256((const __m256i *)x->qs);
  const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(a, v)), _mm256_set1_epi16(1));
  return _mm256_fmadd_ps(_mm256_set1_ps(dw * fp16_to_f32(x->d)), _mm256_cvtepi32_ps(p), acc);
}

/** The 32 int8 values of 16 nibble-packed bytes (value j: low nibble of qs[j], j + 16: its high nibble) looked up in
 *  a 16-entry table (kvalues_iq4nl, kvalues_mxfp4). */
TARGET_AVX2 static inline __m256i nibble_values(const int8_t *table, const uint8_t *qs) {
  const __m128i q = _mm_loadu_si128((const __m128i *)qs), m15 = _mm_set1_epi8(15);
  const __m256i idx = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m15)), _mm_and_si128(_mm_srli_epi16(q, 4), m15), 1);
  return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)table)), idx);
}

TARGET_AVX2 static inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

// Panels (prefill, see panel_kernels): 8 rows of a block decoded to bytes and interleaved by 4 values, so that one
// 32-byte vector holds 4 values of each of the 8 rows and a dot against 4 broadcast activations lands 8 row sums.

/** 8 rows' 32 values (v[r]) as 8 vectors of 4 values x 8 rows: out[32 c + 4 r + j] = v[r][4 c + j]. */
TARGET_AVX2 static inline void panel_interleave(int8_t *out, const __m256i v[8]) {
  const __m256i a0 = _mm256_unpacklo_epi32(v[0], v[1]), a1 = _mm256_unpackhi_epi32(v[0], v[1]);
  const __m256i a2 = _mm256_unpacklo_epi32(v[2], v[3]), a3 = _mm256_unpackhi_epi32(v[2], v[3]);
  const __m256i a4 = _mm256_unpacklo_epi32(v[4], v[5]), a5 = _mm256_unpackhi_epi32(v[4], v[5]);
  const __m256i a6 = _mm256_unpacklo_epi32(v[6], v[7]), a7 = _mm256_unpackhi_epi32(v[6], v[7]);
  const __m256i b[8] = {_mm256_unpacklo_epi64(a0, a2), _mm256_unpackhi_epi64(a0, a2), _mm256_unpacklo_epi64(a1, a3),
                        _mm256_unpackhi_epi64(a1, a3), _mm256_unpacklo_epi64(a4, a6), _mm256_unpackhi_epi64(a4, a6),
                        _mm256_unpacklo_epi64(a5, a7), _mm256_unpackhi_epi64(a5, a7)};
  for (int c = 0; c < 4; c++) {
    _mm256_storeu_si256((__m256i *)(out + 32 * c), _mm256_permute2x128_si256(b[c], b[c + 4], 0x20));
    _mm256_storeu_si256((__m256i *)(out + 32 * (c + 4)), _mm256_permute2x128_si256(b[c], b[c + 4], 0x31));
  }
}

/** A panel gemm's activations: nt Q8_K rows (xstride bytes apart) as nb * 256 contiguous bytes per token, as they
 *  are (copy) or offset by 128 to unsigned (xor). */
TARGET_AVX2 static inline void panel_prep_copy(const void *vx, size_t xstride, int nt, int nb, uint8_t *u) {
  for (int t = 0; t < nt; t++)
    for (int i = 0; i < nb; i++) memcpy(u + ((size_t)t * nb + i) * QK_K, ((const block_q8_K *)((const uint8_t *)vx + t * xstride) + i)->qs, QK_K);
}
TARGET_AVX2 static inline void panel_prep_xor(const void *vx, size_t xstride, int nt, int nb, uint8_t *u) {
  const __m256i m = _mm256_set1_epi8((char)0x80);
  for (int t = 0; t < nt; t++)
    for (int i = 0; i < nb; i++) {
      const int8_t *q = ((const block_q8_K *)((const uint8_t *)vx + t * xstride) + i)->qs;
      uint8_t *o = u + ((size_t)t * nb + i) * QK_K;
      for (int j = 0; j < QK_K; j += 32)
        _mm256_storeu_si256((__m256i *)(o + j), _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(q + j)), m));
    }
}

#endif

#if defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>

/** acc + products of 16 int8 pairs, summed into 4 lanes (sdot where the CPU has it). */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32(acc, a, b);
#else
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
  return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

/** sum over 32 values of kv[nibble] * q8 (value j: low nibble of qs[j], j + 16: its high nibble; IQ4_NL, MXFP4). */
static inline int32_t nibble_dot32(int8x16_t kv, const uint8_t *qs, const int8_t *q8) {
  const uint8x16_t q = vld1q_u8(qs);
  const int8x16_t lo = vqtbl1q_s8(kv, vandq_u8(q, vdupq_n_u8(15))), hi = vqtbl1q_s8(kv, vshrq_n_u8(q, 4));
  return vaddvq_s32(dot16(dot16(vdupq_n_s32(0), lo, vld1q_s8(q8)), hi, vld1q_s8(q8 + 16)));
}
#endif
