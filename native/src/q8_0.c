// Q8_0 weights x Q8_0 activations: per 32-value block an exact int32 dot product, scaled by both f16 deltas.
#include <math.h>

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

// Q8_0_R8: 8 rows interleaved per 32-value block: d[8] (f16, 16 bytes), then for each 4-value chunk v (8 of
// them) the 8 rows' 4 bytes side by side (32 bytes at 16 + 32 v): one 32-byte load holds chunk v of all 8 rows,
// so one integer dot against the broadcast activation chunk lands 8 rows' partial sums in one register.
enum { Q8R8_QS = 16, Q8R8_BLOCK = 272 };
_Static_assert(Q8R8_BLOCK == 8 * sizeof(block_q8_0), "Q8_0_R8 block is 8 Q8_0 blocks");

/** One group of 8 rows of nb blocks, in place: plain rows -> the R8 layout (undo 0) or back (undo 1), by one map. */
static void q8_0_r8_move(uint8_t *g, int nb, uint8_t *tmp, int undo) {
  memcpy(tmp, g, (size_t)8 * nb * sizeof(block_q8_0));
  uint8_t *r8s = undo ? tmp : g, *plains = undo ? g : tmp; // the layout read from is the copy in tmp
#define MOVE(r8, plain, n) (undo ? memcpy(plain, r8, n) : memcpy(r8, plain, n))
  for (int i = 0; i < nb; i++) {
    uint8_t *o = r8s + (size_t)i * Q8R8_BLOCK;
    for (int r = 0; r < 8; r++) {
      block_q8_0 *b = (block_q8_0 *)(plains + ((size_t)r * nb + i) * sizeof(block_q8_0));
      MOVE(o + 2 * r, &b->d, 2);
      for (int v = 0; v < 8; v++) MOVE(o + Q8R8_QS + 32 * v + 4 * r, b->qs + 4 * v, 4);
    }
  }
#undef MOVE
}

void repack_q8_0_r8_group(uint8_t *g, int nb, uint8_t *tmp) {
  q8_0_r8_move(g, nb, tmp, 0);
}
void unrepack_q8_0_r8_group(uint8_t *g, int nb, uint8_t *tmp) {
  q8_0_r8_move(g, nb, tmp, 1);
}

/** Portable Q8_0_R8 kernel: per row an exact int32 block sum, then one multiply-add by both scales, as the SIMD kernels. */
void gemv8_q8_0_r8_scalar(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  (void)xstride, (void)ostride;
  const uint8_t *wb = vw;
  const block_q8_0 *x = vx;
  float acc[8] = {0};
  for (int i = 0; i < n / QK8_0; i++) {
    const uint8_t *b = wb + (size_t)i * Q8R8_BLOCK;
    const float dx = fp16_to_f32(x[i].d);
    for (int r = 0; r < 8; r++) {
      int s = 0;
      for (int v = 0; v < 8; v++)
        for (int l = 0; l < 4; l++) s += (int8_t)b[Q8R8_QS + 32 * v + 4 * r + l] * x[i].qs[4 * v + l];
      uint16_t d;
      memcpy(&d, b + 2 * r, 2);
      acc[r] = fmaf((float)s, fp16_to_f32(d) * dx, acc[r]);
    }
  }
  for (int r = 0; r < 8; r++) out[r] = acc[r];
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

// NT activation rows (1 or 4) against one Q8_0_R8 group: |w| as unsigned bytes against the activation chunk with
// w's sign moved onto it, summed exactly into int32 per row, then one multiply-add per block by d_w * d_x.
#define Q8_0_R8_N(NT, IDOT)                                                                                      \
  const uint8_t *wb = vw;                                                                                        \
  __m256 acc[NT];                                                                                                \
  for (int u = 0; u < NT; u++) acc[u] = _mm256_setzero_ps();                                                     \
  for (int i = 0; i < n / QK8_0; i++) {                                                                          \
    const uint8_t *b = wb + (size_t)i * Q8R8_BLOCK;                                                              \
    const block_q8_0 *x[NT];                                                                                     \
    for (int u = 0; u < NT; u++) x[u] = (const block_q8_0 *)((const uint8_t *)vx + u * xstride) + i;             \
    __m256i isum[NT];                                                                                            \
    for (int u = 0; u < NT; u++) isum[u] = _mm256_setzero_si256();                                               \
    for (int v = 0; v < 8; v++) {                                                                                \
      const __m256i q = _mm256_loadu_si256((const __m256i *)(b + Q8R8_QS + 32 * v));                            \
      const __m256i aq = _mm256_sign_epi8(q, q);                                                                 \
      for (int u = 0; u < NT; u++) {                                                                             \
        int32_t a4;                                                                                              \
        memcpy(&a4, x[u]->qs + 4 * v, 4);                                                                        \
        isum[u] = IDOT(isum[u], aq, _mm256_sign_epi8(_mm256_set1_epi32(a4), q));                                 \
      }                                                                                                          \
    }                                                                                                            \
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));                                      \
    for (int u = 0; u < NT; u++)                                                                                 \
      acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[u]), _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(x[u]->d))), acc[u]); \
  }                                                                                                              \
  for (int u = 0; u < NT; u++) _mm256_storeu_ps(out + u * ostride, acc[u]);

// Running sums: AVX2 widens each maddubs (at most 2 * 128 * 127, no saturation) to int32 with madd; VNNI adds in one.
#define R8_IDOT_AVX2(s, aw, sx) _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), _mm256_set1_epi16(1)))
#define R8_IDOT_VNNI(s, aw, sx) _mm256_dpbusd_epi32(s, aw, sx)
TARGET_AVX2 void gemv8_q8_0_r8_avx2(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  Q8_0_R8_N(1, R8_IDOT_AVX2)
}
TARGET_AVX2 void gemv8x4_q8_0_r8_avx2(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  Q8_0_R8_N(4, R8_IDOT_AVX2)
}
TARGET_AVX512 void gemv8_q8_0_r8_avx512(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  Q8_0_R8_N(1, R8_IDOT_VNNI)
}
TARGET_AVX512 void gemv8x4_q8_0_r8_avx512(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  Q8_0_R8_N(4, R8_IDOT_VNNI)
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
