// K-quant weights (Q4_K, Q6_K) x Q8_K activations. Per 256-value super-block everything is integer until one
// final scale: Q4_K's mins and Q6_K's -32 offset are folded in through the activation block sums (bsums).
#include "simd.h"

#include <math.h>

float dot_q4_K_scalar(int n, const void *restrict vw, const void *restrict vx) {
  const block_q4_K *w = vw;
  const block_q8_K *x = vx;
  float sum = 0;
  for (int i = 0; i < n / QK_K; i++) {
    uint8_t sc[8], mn[8];
    q4_K_scales(w[i].scales, sc, mn);
    int isum = 0, msum = 0;
    for (int j = 0; j < 4; j++) { // 64 values: sub-block 2j in the low nibbles, 2j+1 in the high
      const uint8_t *q = w[i].qs + 32 * j;
      const int8_t *a = x[i].qs + 64 * j;
      int lo = 0, hi = 0;
      for (int l = 0; l < 32; l++) {
        lo += (q[l] & 0xf) * a[l];
        hi += (q[l] >> 4) * a[l + 32];
      }
      isum += lo * sc[2 * j] + hi * sc[2 * j + 1];
    }
    for (int j = 0; j < 8; j++) msum += mn[j] * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
    sum += x[i].d * (fp16_to_f32(w[i].d) * (float)isum - fp16_to_f32(w[i].dmin) * (float)msum);
  }
  return sum;
}

float dot_q6_K_scalar(int n, const void *restrict vw, const void *restrict vx) {
  const block_q6_K *w = vw;
  const block_q8_K *x = vx;
  float sum = 0;
  for (int i = 0; i < n / QK_K; i++) {
    int isum = 0;
    for (int h = 0; h < 2; h++) { // 128 values per half; scale k covers values 16k..16k+15 of the half
      const uint8_t *ql = w[i].ql + 64 * h, *qh = w[i].qh + 32 * h;
      const int8_t *a = x[i].qs + 128 * h, *sc = w[i].scales + 8 * h;
      int g[8] = {0};
      for (int l = 0; l < 32; l++) {
        const int is = l / 16;
        g[is + 0] += (((ql[l] & 0xf) | ((qh[l] & 3) << 4)) - 32) * a[l];
        g[is + 2] += (((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32) * a[l + 32];
        g[is + 4] += (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32) * a[l + 64];
        g[is + 6] += (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32) * a[l + 96];
      }
      for (int k = 0; k < 8; k++) isum += sc[k] * g[k];
    }
    sum += fp16_to_f32(w[i].d) * x[i].d * (float)isum;
  }
  return sum;
}

#if defined(__x86_64__) || defined(__i386__)


// MADD_ACC(acc, p16, s16) = acc + madd(p16, s16): two instructions on AVX2, one vpdpwssd with VNNI.
#define MADD_ACC_AVX2(acc, p, s) _mm256_add_epi32(acc, _mm256_madd_epi16(p, s))
#define MADD_ACC_VNNI(acc, p, s) _mm256_dpwssd_epi32(acc, p, s)

// Q4_K for NT activation rows (1 or 4, xstride bytes apart) against one weight row: the nibbles, scales and
// mins of a weight block are unpacked once for all rows. Per row the arithmetic is the same in dot and dot4.
#define Q4_K_DOT_N(NT, MADD_ACC)                                                                                 \
  const block_q4_K *w = vw;                                                                                      \
  const __m256i m4 = _mm256_set1_epi8(0xf);                                                                      \
  __m256i shuf[8]; /* broadcast int16 scale k: bytes 2k, 2k+1 */                                                 \
  for (int k = 0; k < 8; k++) shuf[k] = _mm256_set1_epi16((short)(((2 * k + 1) << 8) | (2 * k)));               \
  __m256 acc[NT];                                                                                                \
  __m128 accm[NT];                                                                                               \
  for (int u = 0; u < NT; u++) acc[u] = _mm256_setzero_ps(), accm[u] = _mm_setzero_ps();                         \
  for (int i = 0; i < n / QK_K; i++) {                                                                           \
    const block_q8_K *x[NT];                                                                                     \
    for (int u = 0; u < NT; u++) x[u] = (const block_q8_K *)((const uint8_t *)vx + u * xstride) + i;             \
    uint32_t sm[4];                                                                                              \
    q4_K_scales_mins(w[i].scales, sm);                                                                           \
    const __m256i sm16 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)sm)); /* sc | mn as int16 */      \
    const __m256i sc = _mm256_permute2x128_si256(sm16, sm16, 0x00);                 /* scales in both lanes */   \
    __m256i sumi[NT];                                                                                            \
    for (int u = 0; u < NT; u++) sumi[u] = _mm256_setzero_si256();                                               \
    for (int j = 0; j < 4; j++) { /* sub-block 2j in the low nibbles, 2j+1 in the high */                        \
      const __m256i q = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * j));                                 \
      const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);            \
      const __m256i slo = _mm256_shuffle_epi8(sc, shuf[2 * j]), shi = _mm256_shuffle_epi8(sc, shuf[2 * j + 1]);  \
      for (int u = 0; u < NT; u++) {                                                                             \
        const __m256i *a = (const __m256i *)(x[u]->qs + 64 * j);                                                 \
        sumi[u] = MADD_ACC(sumi[u], _mm256_maddubs_epi16(lo, _mm256_loadu_si256(a)), slo);                       \
        sumi[u] = MADD_ACC(sumi[u], _mm256_maddubs_epi16(hi, _mm256_loadu_si256(a + 1)), shi);                   \
      }                                                                                                          \
    }                                                                                                            \
    const __m128i mn = _mm256_extracti128_si256(sm16, 1);                                                       \
    const float dw = _cvtsh_ss(w[i].d), dmin = _cvtsh_ss(w[i].dmin);                                             \
    for (int u = 0; u < NT; u++) {                                                                               \
      /* mins: sum_j mn[j] * (sum of the activations of sub-block j) */                                          \
      const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)x[u]->bsums),                           \
                                        _mm_loadu_si128((const __m128i *)(x[u]->bsums + 8)));                    \
      accm[u] = _mm_fmadd_ps(_mm_set1_ps(x[u]->d * dmin), _mm_cvtepi32_ps(_mm_madd_epi16(mn, bs)), accm[u]);     \
      acc[u] = _mm256_fmadd_ps(_mm256_set1_ps(x[u]->d * dw), _mm256_cvtepi32_ps(sumi[u]), acc[u]);               \
    }                                                                                                            \
  }                                                                                                              \
  float res[NT];                                                                                                 \
  for (int u = 0; u < NT; u++) {                                                                                 \
    __m128 m = _mm_add_ps(accm[u], _mm_movehl_ps(accm[u], accm[u]));                                             \
    m = _mm_add_ss(m, _mm_movehdup_ps(m));                                                                       \
    res[u] = hsum_ps(acc[u]) - _mm_cvtss_f32(m);                                                                 \
  }

// Q6_K: 6-bit quants as unsigned 0..63; the -32 offset comes back through 32 * sum_k sc[k] * bsums[k].
#define Q6_K_DOT_N(NT, MADD_ACC)                                                                                 \
  const block_q6_K *w = vw;                                                                                      \
  const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);                                       \
  /* group g of a half uses int16 scales 2g (low 128-bit lane) and 2g+1 (high lane) */                           \
  __m256i shuf[4];                                                                                               \
  for (int g = 0; g < 4; g++)                                                                                    \
    shuf[g] = _mm256_set_m128i(_mm_set1_epi16((short)(((4 * g + 3) << 8) | (4 * g + 2))),                       \
                               _mm_set1_epi16((short)(((4 * g + 1) << 8) | (4 * g))));                           \
  __m256 acc[NT];                                                                                                \
  for (int u = 0; u < NT; u++) acc[u] = _mm256_setzero_ps();                                                     \
  for (int i = 0; i < n / QK_K; i++) {                                                                           \
    const block_q8_K *x[NT];                                                                                     \
    for (int u = 0; u < NT; u++) x[u] = (const block_q8_K *)((const uint8_t *)vx + u * xstride) + i;             \
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w[i].scales));                   \
    __m256i sumi[NT];                                                                                            \
    for (int u = 0; u < NT; u++)                                                                                 \
      sumi[u] = _mm256_sub_epi32(_mm256_setzero_si256(),                                                         \
                                 _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)x[u]->bsums)), 5)); \
    for (int h = 0; h < 2; h++) {                                                                                \
      const __m256i scb = h == 0 ? _mm256_permute2x128_si256(sc16, sc16, 0x00) : _mm256_permute2x128_si256(sc16, sc16, 0x11); \
      const uint8_t *ql = w[i].ql + 64 * h, *qh = w[i].qh + 32 * h;                                              \
      const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32)); \
      const __m256i hb = _mm256_loadu_si256((const __m256i *)qh);                                                \
      /* 16-bit shifts, then byte masks: each byte keeps bits from itself only */                                \
      __m256i q[4];                                                                                              \
      q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));        \
      q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));        \
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m30));        \
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30)); \
      for (int g = 0; g < 4; g++) {                                                                              \
        const __m256i s = _mm256_shuffle_epi8(scb, shuf[g]);                                                     \
        for (int u = 0; u < NT; u++) {                                                                           \
          const __m256i a = _mm256_loadu_si256((const __m256i *)(x[u]->qs + 128 * h + 32 * g));                  \
          sumi[u] = MADD_ACC(sumi[u], _mm256_maddubs_epi16(q[g], a), s);                                         \
        }                                                                                                        \
      }                                                                                                          \
    }                                                                                                            \
    const float dw = _cvtsh_ss(w[i].d);                                                                          \
    for (int u = 0; u < NT; u++) acc[u] = _mm256_fmadd_ps(_mm256_set1_ps(x[u]->d * dw), _mm256_cvtepi32_ps(sumi[u]), acc[u]); \
  }                                                                                                              \
  float res[NT];                                                                                                 \
  for (int u = 0; u < NT; u++) res[u] = hsum_ps(acc[u]);

#define DOT1(BODY, MADD)   \
  const size_t xstride = 0; \
  BODY(1, MADD)             \
  return res[0];
#define DOT4(BODY, MADD) \
  BODY(4, MADD)          \
  for (int u = 0; u < 4; u++) out[u * ostride] = res[u];

TARGET_AVX2 float dot_q4_K_avx2(int n, const void *restrict vw, const void *restrict vx) { DOT1(Q4_K_DOT_N, MADD_ACC_AVX2) }
TARGET_AVX512 float dot_q4_K_avx512(int n, const void *restrict vw, const void *restrict vx) { DOT1(Q4_K_DOT_N, MADD_ACC_VNNI) }
TARGET_AVX2 float dot_q6_K_avx2(int n, const void *restrict vw, const void *restrict vx) { DOT1(Q6_K_DOT_N, MADD_ACC_AVX2) }
TARGET_AVX512 float dot_q6_K_avx512(int n, const void *restrict vw, const void *restrict vx) { DOT1(Q6_K_DOT_N, MADD_ACC_VNNI) }
TARGET_AVX2 void dot4_q4_K_avx2(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  DOT4(Q4_K_DOT_N, MADD_ACC_AVX2)
}
TARGET_AVX512 void dot4_q4_K_avx512(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  DOT4(Q4_K_DOT_N, MADD_ACC_VNNI)
}
TARGET_AVX2 void dot4_q6_K_avx2(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  DOT4(Q6_K_DOT_N, MADD_ACC_AVX2)
}
TARGET_AVX512 void dot4_q6_K_avx512(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  DOT4(Q6_K_DOT_N, MADD_ACC_VNNI)
}
#endif

#if defined(__ARM_NEON) && defined(__aarch64__)

float dot_q4_K_neon(int n, const void *restrict vw, const void *restrict vx) {
  const block_q4_K *w = vw;
  const block_q8_K *x = vx;
  const uint8x16_t m4 = vdupq_n_u8(0xf);
  const int32x4_t z = vdupq_n_s32(0);
  float sum = 0;
  for (int i = 0; i < n / QK_K; i++) {
    uint8_t sc[8], mn[8];
    q4_K_scales(w[i].scales, sc, mn);
    int isum = 0;
    for (int j = 0; j < 4; j++) {
      const uint8x16_t b0 = vld1q_u8(w[i].qs + 32 * j), b1 = vld1q_u8(w[i].qs + 32 * j + 16);
      const int8_t *a = x[i].qs + 64 * j;
      int32x4_t lo = dot16(dot16(z, vreinterpretq_s8_u8(vandq_u8(b0, m4)), vld1q_s8(a)), vreinterpretq_s8_u8(vandq_u8(b1, m4)), vld1q_s8(a + 16));
      int32x4_t hi = dot16(dot16(z, vreinterpretq_s8_u8(vshrq_n_u8(b0, 4)), vld1q_s8(a + 32)), vreinterpretq_s8_u8(vshrq_n_u8(b1, 4)), vld1q_s8(a + 48));
      isum += vaddvq_s32(lo) * sc[2 * j] + vaddvq_s32(hi) * sc[2 * j + 1];
    }
    const int16x8_t bs = vpaddq_s16(vld1q_s16(x[i].bsums), vld1q_s16(x[i].bsums + 8));
    const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mn)));
    const int msum = vaddvq_s32(vaddq_s32(vmull_s16(vget_low_s16(bs), vget_low_s16(m)), vmull_high_s16(bs, m)));
    sum += x[i].d * (fp16_to_f32(w[i].d) * (float)isum - fp16_to_f32(w[i].dmin) * (float)msum);
  }
  return sum;
}

float dot_q6_K_neon(int n, const void *restrict vw, const void *restrict vx) {
  const block_q6_K *w = vw;
  const block_q8_K *x = vx;
  const uint8x16_t m4 = vdupq_n_u8(0xf), m30 = vdupq_n_u8(0x30);
  const int8x16_t off = vdupq_n_s8(32);
  const int32x4_t z = vdupq_n_s32(0);
  float sum = 0;
  for (int i = 0; i < n / QK_K; i++) {
    int isum = 0;
    for (int h = 0; h < 2; h++) {
      const uint8_t *ql = w[i].ql + 64 * h, *qh = w[i].qh + 32 * h;
      const int8_t *a = x[i].qs + 128 * h, *sc = w[i].scales + 8 * h;
      for (int k = 0; k < 2; k++) { // 16 lanes = one scale group in each of the four 32-value runs
        const uint8x16_t l0 = vld1q_u8(ql + 16 * k), l1 = vld1q_u8(ql + 32 + 16 * k), hb = vld1q_u8(qh + 16 * k);
        const int8x16_t q0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l0, m4), vandq_u8(vshlq_n_u8(hb, 4), m30))), off);
        const int8x16_t q1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l1, m4), vandq_u8(vshlq_n_u8(hb, 2), m30))), off);
        const int8x16_t q2 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(hb, m30))), off);
        const int8x16_t q3 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(vshrq_n_u8(hb, 2), m30))), off);
        isum += vaddvq_s32(dot16(z, q0, vld1q_s8(a + 16 * k))) * sc[k];
        isum += vaddvq_s32(dot16(z, q1, vld1q_s8(a + 32 + 16 * k))) * sc[2 + k];
        isum += vaddvq_s32(dot16(z, q2, vld1q_s8(a + 64 + 16 * k))) * sc[4 + k];
        isum += vaddvq_s32(dot16(z, q3, vld1q_s8(a + 96 + 16 * k))) * sc[6 + k];
      }
    }
    sum += fp16_to_f32(w[i].d) * x[i].d * (float)isum;
  }
  return sum;
}
#endif

// Q4_K_R8: groups of 8 Q4_K rows interleaved per super-block (1152 bytes, the same as 8 plain blocks):
//   d[8], dmin[8] (f16) | scale words u0[8], u1[8], u2[8] (bytes 0-3, 4-7, 8-11 of each row's 12 scale bytes) |
//   qs: for j = 0..3 (64 values, sub-blocks 2j low nibbles / 2j+1 high), k = 0..7: 8 rows x 4 bytes (qs[32j+4k..+3]).
// Every 32-byte vector then has one row per 32-bit lane, so a group's 8 dot products come out in the lanes of one
// register with no horizontal sums, and the 6-bit scale unpack runs once for 8 rows.
enum { R8_D = 0, R8_DMIN = 16, R8_U0 = 32, R8_U1 = 64, R8_U2 = 96, R8_QS = 128, R8_BLOCK = 1152 };
_Static_assert(R8_BLOCK == 8 * sizeof(block_q4_K), "Q4_K_R8 block is 8 Q4_K blocks");

/** One group of 8 rows of nb blocks, in place: plain rows -> the R8 layout (undo 0) or back (undo 1). One map of
 *  where each byte goes serves both ways, so the inverse cannot drift from the repack. */
static void q4_K_r8_move(uint8_t *g, int nb, uint8_t *tmp, int undo) {
  memcpy(tmp, g, (size_t)8 * nb * sizeof(block_q4_K));
  uint8_t *r8s = undo ? tmp : g, *plains = undo ? g : tmp; // the layout read from is the copy in tmp
#define MOVE(r8, plain, n) (undo ? memcpy(plain, r8, n) : memcpy(r8, plain, n))
  for (int i = 0; i < nb; i++) {
    uint8_t *o = r8s + (size_t)i * R8_BLOCK;
    for (int r = 0; r < 8; r++) {
      block_q4_K *b = (block_q4_K *)(plains + ((size_t)r * nb + i) * sizeof(block_q4_K));
      MOVE(o + R8_D + 2 * r, &b->d, 2);
      MOVE(o + R8_DMIN + 2 * r, &b->dmin, 2);
      MOVE(o + R8_U0 + 4 * r, b->scales, 4);
      MOVE(o + R8_U1 + 4 * r, b->scales + 4, 4);
      MOVE(o + R8_U2 + 4 * r, b->scales + 8, 4);
      for (int v = 0; v < 32; v++) MOVE(o + R8_QS + 32 * v + 4 * r, b->qs + 4 * v, 4); // v = 8j + k
    }
  }
#undef MOVE
}

void repack_q4_K_r8_group(uint8_t *g, int nb, uint8_t *tmp) {
  q4_K_r8_move(g, nb, tmp, 0);
}
void unrepack_q4_K_r8_group(uint8_t *g, int nb, uint8_t *tmp) {
  q4_K_r8_move(g, nb, tmp, 1);
}

static inline uint32_t load_u32(const void *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

/** Portable Q4_K_R8 kernel: 8 rows of one group against one activation row; out[0..7]. Per row the arithmetic
 *  (exact integer sums, then two fused multiply-adds per block) is the SIMD kernels' own, so all levels agree. */
void gemv8_q4_K_r8_scalar(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  (void)xstride, (void)ostride;
  const uint8_t *wb = vw;
  const block_q8_K *x = vx;
  float acc[8] = {0};
  for (int i = 0; i < n / QK_K; i++) {
    const uint8_t *b = wb + (size_t)i * R8_BLOCK;
    int bs[8];
    for (int s = 0; s < 8; s++) bs[s] = x[i].bsums[2 * s] + x[i].bsums[2 * s + 1];
    for (int r = 0; r < 8; r++) {
      uint8_t s12[12], sc[8], mn[8];
      memcpy(s12, b + R8_U0 + 4 * r, 4);
      memcpy(s12 + 4, b + R8_U1 + 4 * r, 4);
      memcpy(s12 + 8, b + R8_U2 + 4 * r, 4);
      q4_K_scales(s12, sc, mn);
      int isum = 0, msum = 0;
      for (int j = 0; j < 4; j++) {
        int lo = 0, hi = 0;
        for (int k = 0; k < 8; k++) {
          const uint8_t *q = b + R8_QS + 32 * (8 * j + k) + 4 * r;
          const int8_t *a = x[i].qs + 64 * j + 4 * k;
          for (int l = 0; l < 4; l++) lo += (q[l] & 0xf) * a[l], hi += (q[l] >> 4) * a[l + 32];
        }
        isum += lo * sc[2 * j] + hi * sc[2 * j + 1];
      }
      for (int s = 0; s < 8; s++) msum += mn[s] * bs[s];
      const float d = fp16_to_f32(load_u16(b + R8_D + 2 * r)), dmin = fp16_to_f32(load_u16(b + R8_DMIN + 2 * r));
      acc[r] = fmaf((float)isum, d * x[i].d, acc[r]);
      acc[r] = fmaf(-(float)msum, dmin * x[i].d, acc[r]);
    }
  }
  for (int r = 0; r < 8; r++) out[r] = acc[r];
}

#if defined(__x86_64__) || defined(__i386__)
// NT activation rows (1 or 4, xstride bytes apart) against one group of 8 rows: out[u * ostride + r].
// AVX2: per sub-block, int16 sums of maddubs (at most 8 * 2 * 15 * 128 = 30720), then madd with the row's scale
// in both int16 halves of its lane. VNNI: vpdpbusd sums straight into int32, then one multiply by the scale.
#define Q4_K_R8_N(NT, VNNI)                                                                                       \
  const uint8_t *wb = vw;                                                                                         \
  const __m256i m4 = _mm256_set1_epi8(0xf), m3f = _mm256_set1_epi8(0x3f), m3 = _mm256_set1_epi8(3);             \
  const __m256i m00ff = _mm256_set1_epi32(0x00ff00ff);                                                            \
  __m256i shuf[4]; /* byte s of each lane into its low int16 (VNNI: low int32) and, for AVX2, its high int16 */   \
  for (int s = 0; s < 4; s++) {                                                                                   \
    uint8_t p[32];                                                                                                \
    for (int l = 0; l < 32; l += 4)                                                                               \
      p[l] = (uint8_t)((l & 15) + s), p[l + 1] = 0x80, p[l + 2] = VNNI ? 0x80 : (uint8_t)((l & 15) + s), p[l + 3] = 0x80; \
    shuf[s] = _mm256_loadu_si256((const __m256i *)p);                                                             \
  }                                                                                                               \
  __m256 acc[NT];                                                                                                 \
  for (int u = 0; u < NT; u++) acc[u] = _mm256_setzero_ps();                                                      \
  for (int i = 0; i < n / QK_K; i++) {                                                                            \
    const uint8_t *b = wb + (size_t)i * R8_BLOCK;                                                                 \
    const block_q8_K *x[NT];                                                                                      \
    for (int u = 0; u < NT; u++) x[u] = (const block_q8_K *)((const uint8_t *)vx + u * xstride) + i;              \
    const __m256i u0 = _mm256_loadu_si256((const __m256i *)(b + R8_U0));                                          \
    const __m256i u1 = _mm256_loadu_si256((const __m256i *)(b + R8_U1));                                          \
    const __m256i u2 = _mm256_loadu_si256((const __m256i *)(b + R8_U2));                                          \
    const __m256i sc03 = _mm256_and_si256(u0, m3f);                                                               \
    const __m256i sc47 = _mm256_or_si256(_mm256_and_si256(u2, m4),                                                \
                                         _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(u0, 6), m3), 4));   \
    __m256i isum[NT];                                                                                             \
    for (int u = 0; u < NT; u++) isum[u] = _mm256_setzero_si256();                                                \
    for (int j = 0; j < 4; j++) {                                                                                 \
      __m256i slo[NT], shi[NT];                                                                                   \
      for (int u = 0; u < NT; u++) slo[u] = shi[u] = _mm256_setzero_si256();                                      \
      for (int k = 0; k < 8; k++) {                                                                               \
        const __m256i q = _mm256_loadu_si256((const __m256i *)(b + R8_QS + 32 * (8 * j + k)));                    \
        const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);           \
        for (int u = 0; u < NT; u++) {                                                                            \
          const __m256i alo = _mm256_set1_epi32((int)load_u32(x[u]->qs + 64 * j + 4 * k));                        \
          const __m256i ahi = _mm256_set1_epi32((int)load_u32(x[u]->qs + 64 * j + 32 + 4 * k));                   \
          R8_ACC_##VNNI(slo[u], lo, alo);                                                                         \
          R8_ACC_##VNNI(shi[u], hi, ahi);                                                                         \
        }                                                                                                         \
      }                                                                                                           \
      const __m256i sv = j < 2 ? sc03 : sc47;                                                                     \
      const __m256i slo_sc = _mm256_shuffle_epi8(sv, shuf[(2 * j) & 3]);                                          \
      const __m256i shi_sc = _mm256_shuffle_epi8(sv, shuf[(2 * j + 1) & 3]);                                      \
      for (int u = 0; u < NT; u++) {                                                                              \
        R8_SCALE_##VNNI(isum[u], slo[u], slo_sc);                                                                 \
        R8_SCALE_##VNNI(isum[u], shi[u], shi_sc);                                                                 \
      }                                                                                                           \
    }                                                                                                             \
    /* mins: int16 pairs (m0, m2), (m1, m3), (m4, m6), (m5, m7) against the matching sub-block activation sums */  \
    const __m256i mn03 = _mm256_and_si256(u1, m3f);                                                               \
    const __m256i mn47 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u2, 4), m4),                          \
                                         _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(u1, 6), m3), 4));   \
    const __m256i ma = _mm256_and_si256(mn03, m00ff), mb = _mm256_srli_epi16(mn03, 8);                            \
    const __m256i mc = _mm256_and_si256(mn47, m00ff), md = _mm256_srli_epi16(mn47, 8);                            \
    const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + R8_D)));                             \
    const __m256 dm8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + R8_DMIN)));                         \
    for (int u = 0; u < NT; u++) {                                                                                \
      const int16_t *bs = x[u]->bsums;                                                                            \
      int p[8];                                                                                                   \
      for (int s = 0; s < 8; s++) p[s] = (uint16_t)(bs[2 * s] + bs[2 * s + 1]);                                   \
      __m256i msum = _mm256_madd_epi16(ma, _mm256_set1_epi32(p[0] | p[2] << 16));                                 \
      msum = _mm256_add_epi32(msum, _mm256_madd_epi16(mb, _mm256_set1_epi32(p[1] | p[3] << 16)));                 \
      msum = _mm256_add_epi32(msum, _mm256_madd_epi16(mc, _mm256_set1_epi32(p[4] | p[6] << 16)));                 \
      msum = _mm256_add_epi32(msum, _mm256_madd_epi16(md, _mm256_set1_epi32(p[5] | p[7] << 16)));                 \
      const __m256 dx = _mm256_set1_ps(x[u]->d);                                                                  \
      acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[u]), _mm256_mul_ps(d8, dx), acc[u]);                       \
      acc[u] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(dm8, dx), acc[u]);                        \
    }                                                                                                             \
  }                                                                                                               \
  for (int u = 0; u < NT; u++) _mm256_storeu_ps(out + u * ostride, acc[u]);

#define R8_ACC_0(s, q, a) s = _mm256_add_epi16(s, _mm256_maddubs_epi16(q, a))
#define R8_ACC_1(s, q, a) s = _mm256_dpbusd_epi32(s, q, a)
#define R8_SCALE_0(acc, s, sc) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(s, sc))
#define R8_SCALE_1(acc, s, sc) acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(s, sc))

TARGET_AVX2 void gemv8_q4_K_r8_avx2(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  Q4_K_R8_N(1, 0)
}
TARGET_AVX2 void gemv8x4_q4_K_r8_avx2(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  Q4_K_R8_N(4, 0)
}
TARGET_AVX512 void gemv8_q4_K_r8_avx512(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  Q4_K_R8_N(1, 1)
}
TARGET_AVX512 void gemv8x4_q4_K_r8_avx512(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) {
  Q4_K_R8_N(4, 1)
}
#endif
