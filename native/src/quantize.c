// Activation quantisers: f32 rows to Q8_0 blocks (for Q8_0 weights) and Q8_K blocks (for Q4_K / Q6_K weights),
// so that weight blocks meet activations in integer dot products, as ggml does.
// Q8_0: d = amax/127 (stored as f16), q = round-half-even(x * 127/amax).
// Q8_K: like ggml's quantize_row_q8_K_ref: scale by -127/max where max is the signed value of largest magnitude.
#include "simd.h"

void quant_q8_0_scalar(const float *restrict x, void *restrict vy, int n) {
  block_q8_0 *y = vy;
  for (int i = 0; i < n / QK8_0; i++, x += QK8_0) {
    float amax = 0;
    for (int j = 0; j < QK8_0; j++) {
      float a = x[j] < 0 ? -x[j] : x[j];
      if (a > amax) amax = a;
    }
    const float d = amax / 127.f, id = amax != 0 ? 127.f / amax : 0.f;
    y[i].d = fp16_from_f32(d);
    for (int j = 0; j < QK8_0; j++) y[i].qs[j] = (int8_t)nearest_int(x[j] * id);
  }
}

void quant_q8_K_scalar(const float *restrict x, void *restrict vy, int n) {
  block_q8_K *y = vy;
  for (int i = 0; i < n / QK_K; i++, x += QK_K) {
    float max = 0, amax = 0;
    for (int j = 0; j < QK_K; j++) {
      float a = x[j] < 0 ? -x[j] : x[j];
      if (a > amax) {
        amax = a;
        max = x[j];
      }
    }
    if (amax == 0) {
      memset(&y[i], 0, sizeof(block_q8_K));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; j++) {
      int v = nearest_int(iscale * x[j]);
      y[i].qs[j] = (int8_t)(v > 127 ? 127 : v);
    }
    for (int g = 0; g < QK_K / 16; g++) {
      int s = 0;
      for (int j = 0; j < 16; j++) s += y[i].qs[16 * g + j];
      y[i].bsums[g] = (int16_t)s;
    }
    y[i].d = 1 / iscale;
  }
}

#if defined(__x86_64__) || defined(__i386__)
/** Round 32 floats (already scaled) to int8 with round-half-even (the default MXCSR mode), in order. */
TARGET_AVX2 static inline __m256i round_pack32(__m256 v0, __m256 v1, __m256 v2, __m256 v3, __m256i *i01, __m256i *i23) {
  __m256i a = _mm256_cvtps_epi32(v0), b = _mm256_cvtps_epi32(v1);
  __m256i c = _mm256_cvtps_epi32(v2), d = _mm256_cvtps_epi32(v3);
  *i01 = _mm256_add_epi32(a, b); // for the Q8_K group sums
  *i23 = _mm256_add_epi32(c, d);
  // packs work per 128-bit lane; the permute restores element order.
  __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

TARGET_AVX2 static inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

TARGET_AVX2 void quant_q8_0_avx2(const float *restrict x, void *restrict vy, int n) {
  block_q8_0 *y = vy;
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int i = 0; i < n / QK8_0; i++, x += QK8_0) {
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                             _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
    const float amax = hmax8(m);
    y[i].d = _cvtss_sh(amax / 127.f, _MM_FROUND_TO_NEAREST_INT);
    const __m256 id = _mm256_set1_ps(amax != 0 ? 127.f / amax : 0.f);
    __m256i s01, s23;
    __m256i q = round_pack32(_mm256_mul_ps(v0, id), _mm256_mul_ps(v1, id), _mm256_mul_ps(v2, id), _mm256_mul_ps(v3, id), &s01, &s23);
    _mm256_storeu_si256((__m256i *)y[i].qs, q);
  }
}

TARGET_AVX2 void quant_q8_K_avx2(const float *restrict x, void *restrict vy, int n) {
  block_q8_K *y = vy;
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int i = 0; i < n / QK_K; i++, x += QK_K) {
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < QK_K; j += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + j), absmask));
    const float amax = hmax8(m);
    if (amax == 0) {
      memset(&y[i], 0, sizeof(block_q8_K));
      continue;
    }
    float max = amax; // the first value of largest magnitude, with its sign (as the reference picks it)
    for (int j = 0; j < QK_K; j++) {
      if (x[j] == amax || x[j] == -amax) {
        max = x[j];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m256 is = _mm256_set1_ps(iscale);
    for (int j = 0; j < QK_K; j += 32) {
      __m256i s01, s23;
      __m256i q = round_pack32(_mm256_mul_ps(_mm256_loadu_ps(x + j), is), _mm256_mul_ps(_mm256_loadu_ps(x + j + 8), is),
                               _mm256_mul_ps(_mm256_loadu_ps(x + j + 16), is), _mm256_mul_ps(_mm256_loadu_ps(x + j + 24), is),
                               &s01, &s23);
      _mm256_storeu_si256((__m256i *)(y[i].qs + j), q);
      y[i].bsums[j / 16] = (int16_t)hsum_i32(s01);
      y[i].bsums[j / 16 + 1] = (int16_t)hsum_i32(s23);
    }
    y[i].d = 1 / iscale;
  }
}
#endif

#if defined(__ARM_NEON) && defined(__aarch64__)
/** Round 16 scaled floats to int8, half to even. */
static inline int8x16_t round16(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d) {
  int16x8_t lo = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(a)), vqmovn_s32(vcvtnq_s32_f32(b)));
  int16x8_t hi = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(c)), vqmovn_s32(vcvtnq_s32_f32(d)));
  return vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
}

void quant_q8_0_neon(const float *restrict x, void *restrict vy, int n) {
  block_q8_0 *y = vy;
  for (int i = 0; i < n / QK8_0; i++, x += QK8_0) {
    float32x4_t v[8];
    float32x4_t m = vdupq_n_f32(0);
    for (int j = 0; j < 8; j++) {
      v[j] = vld1q_f32(x + 4 * j);
      m = vmaxq_f32(m, vabsq_f32(v[j]));
    }
    const float amax = vmaxvq_f32(m);
    y[i].d = fp16_from_f32(amax / 127.f);
    const float id = amax != 0 ? 127.f / amax : 0.f;
    for (int j = 0; j < 8; j++) v[j] = vmulq_n_f32(v[j], id);
    vst1q_s8(y[i].qs, round16(v[0], v[1], v[2], v[3]));
    vst1q_s8(y[i].qs + 16, round16(v[4], v[5], v[6], v[7]));
  }
}

void quant_q8_K_neon(const float *restrict x, void *restrict vy, int n) {
  block_q8_K *y = vy;
  for (int i = 0; i < n / QK_K; i++, x += QK_K) {
    float32x4_t m = vdupq_n_f32(0);
    for (int j = 0; j < QK_K; j += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + j)));
    const float amax = vmaxvq_f32(m);
    if (amax == 0) {
      memset(&y[i], 0, sizeof(block_q8_K));
      continue;
    }
    float max = amax;
    for (int j = 0; j < QK_K; j++) {
      if (x[j] == amax || x[j] == -amax) {
        max = x[j];
        break;
      }
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; j += 16) {
      int8x16_t q = round16(vmulq_n_f32(vld1q_f32(x + j), iscale), vmulq_n_f32(vld1q_f32(x + j + 4), iscale),
                            vmulq_n_f32(vld1q_f32(x + j + 8), iscale), vmulq_n_f32(vld1q_f32(x + j + 12), iscale));
      vst1q_s8(y[i].qs + j, q);
      y[i].bsums[j / 16] = (int16_t)vaddlvq_s8(q);
    }
    y[i].d = 1 / iscale;
  }
}
#endif
