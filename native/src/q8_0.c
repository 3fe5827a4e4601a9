// Q8_0 weights x Q8_0 activations: per 32-value block an exact int32 dot product, scaled by both f16 deltas.
#include "simd.h"

float dot_q8_0_scalar(int n, const void *restrict vw, const void *restrict vx) {
  const block_q8_0 *w = vw, *x = vx;
  float sum = 0;
  for (int i = 0; i < n / QK8_0; i++) {
    int s = 0;
    for (int j = 0; j < QK8_0; j++) s += w[i].qs[j] * x[i].qs[j];
    sum += (float)s * (fp16_to_f32(w[i].d) * fp16_to_f32(x[i].d));
  }
  return sum;
}

#if defined(__x86_64__) || defined(__i386__)
// maddubs wants unsigned x signed: |w| times x with w's sign moved onto x. Per block 8 int32 partial sums.
#define IDOT_AVX2(aw, sx) _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), _mm256_set1_epi16(1))
#define IDOT_VNNI(aw, sx) _mm256_dpbusd_epi32(_mm256_setzero_si256(), aw, sx) // one vpdpbusd, cannot saturate

#define Q8_0_TERM(IDOT, wb, xb, acc)                                                                         \
  do {                                                                                                       \
    const __m256i qw_ = _mm256_loadu_si256((const __m256i *)(wb)->qs);                                       \
    const __m256i sx_ = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(xb)->qs), qw_);               \
    const __m256 p_ = _mm256_cvtepi32_ps(IDOT(_mm256_sign_epi8(qw_, qw_), sx_));                            \
    acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss((wb)->d) * _cvtsh_ss((xb)->d)), p_, acc);                 \
  } while (0)

// Even and odd blocks in two chains (hides FMA latency); the same order in dot and dot4, so they agree bit for bit.
#define Q8_0_DOT(IDOT)                                                                                       \
  const block_q8_0 *w = vw, *x = vx;                                                                         \
  const int nb = n / QK8_0;                                                                                  \
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                                             \
  for (int i = 0; i < nb; i++) {                                                                             \
    if (i & 1) Q8_0_TERM(IDOT, w + i, x + i, acc1);                                                          \
    else Q8_0_TERM(IDOT, w + i, x + i, acc0);                                                                \
  }                                                                                                          \
  return hsum_ps(_mm256_add_ps(acc0, acc1));

// One weight row against 4 activation rows (xstride bytes apart): the weight block is loaded once.
#define Q8_0_DOT4(IDOT)                                                                                      \
  const block_q8_0 *w = vw;                                                                                  \
  const int nb = n / QK8_0;                                                                                  \
  __m256 acc0[4], acc1[4];                                                                                   \
  for (int u = 0; u < 4; u++) acc0[u] = acc1[u] = _mm256_setzero_ps();                                       \
  for (int i = 0; i < nb; i++) {                                                                             \
    for (int u = 0; u < 4; u++) {                                                                            \
      const block_q8_0 *xu = (const block_q8_0 *)((const uint8_t *)vx + u * xstride) + i;                    \
      if (i & 1) Q8_0_TERM(IDOT, w + i, xu, acc1[u]);                                                        \
      else Q8_0_TERM(IDOT, w + i, xu, acc0[u]);                                                              \
    }                                                                                                        \
  }                                                                                                          \
  for (int u = 0; u < 4; u++) out[u * ostride] = hsum_ps(_mm256_add_ps(acc0[u], acc1[u]));

TARGET_AVX2 float dot_q8_0_avx2(int n, const void *restrict vw, const void *restrict vx) { Q8_0_DOT(IDOT_AVX2) }
TARGET_AVX512 float dot_q8_0_avx512(int n, const void *restrict vw, const void *restrict vx) { Q8_0_DOT(IDOT_VNNI) }
TARGET_AVX2 void dot4_q8_0_avx2(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  Q8_0_DOT4(IDOT_AVX2)
}
TARGET_AVX512 void dot4_q8_0_avx512(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  Q8_0_DOT4(IDOT_VNNI)
}
#endif

#if defined(__ARM_NEON) && defined(__aarch64__)
float dot_q8_0_neon(int n, const void *restrict vw, const void *restrict vx) {
  const block_q8_0 *w = vw, *x = vx;
  float32x4_t acc = vdupq_n_f32(0);
  for (int i = 0; i < n / QK8_0; i++) {
    int32x4_t s = dot16(vdupq_n_s32(0), vld1q_s8(w[i].qs), vld1q_s8(x[i].qs));
    s = dot16(s, vld1q_s8(w[i].qs + 16), vld1q_s8(x[i].qs + 16));
    acc = vmlaq_n_f32(acc, vcvtq_f32_s32(s), fp16_to_f32(w[i].d) * fp16_to_f32(x[i].d));
  }
  return vaddvq_f32(acc);
}
#endif
