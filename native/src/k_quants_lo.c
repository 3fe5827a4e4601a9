// Low-bit weight types against quantised activations, as ggml pairs them (vec_dot_type): Q2_K, Q3_K and Q5_K with
// Q8_K, Q4_0 with Q8_0. Scalar C (the oracle), AVX2 (also used by the avx512 table) and NEON. Every K-quant kernel
// reduces a super-block to S_g = sum over a group g of 16 values of u * q8, where u is the weight's unsigned quant,
// and applies the scales and offsets to those sums:
//   Q2_K: d * sum_g (sc_g & 15) S_g - dmin * sum_g (sc_g >> 4) bsum_g            (u in 0..3)
//   Q3_K: d * sum_g (sc_g - 32) (S_g - 4 bsum_g)                                (u in 0..7: a clear hmask bit is -4)
//   Q5_K: d * sum_j sc_j (S_2j + S_2j+1) - dmin * sum_j m_j (bsum_2j + bsum_2j+1) (u in 0..31, j a sub-block of 32)
// all times the activation block's d. Layouts follow ggml (ggml-common.h); the code is our own.
#include "k_quants_lo.h"

#include "simd.h"

typedef struct __attribute__((packed)) {
  uint8_t scales[QK_K / 16]; // low nibble: scale, high nibble: min, per 16 values
  uint8_t qs[QK_K / 4];      // value 128h + 32s + l: bits 2s..2s+1 of qs[32h + l]
  uint16_t d, dmin;
} block_q2_K;

typedef struct __attribute__((packed)) {
  uint8_t hmask[QK_K / 8]; // value 128h + 32s + l: bit 4h + s of hmask[l]
  uint8_t qs[QK_K / 4];    // low 2 bits, as Q2_K
  uint8_t scales[12];      // 16 6-bit scales, + 32
  uint16_t d;
} block_q3_K;

typedef struct __attribute__((packed)) {
  uint16_t d, dmin;
  uint8_t scales[12];   // as Q4_K
  uint8_t qh[QK_K / 8]; // value 32j + l: bit j of qh[l]
  uint8_t qs[QK_K / 2]; // sub-blocks 2k, 2k+1: low, high nibbles of qs[32k..32k+31]
} block_q5_K;

typedef struct __attribute__((packed)) {
  uint16_t d;
  uint8_t qs[QK8_0 / 2]; // value j: low nibble of qs[j], value j + 16: high nibble; minus 8
} block_q4_0;

_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");
_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");

size_t lowbit_row_bytes(int type, int K) {
  switch (type) {
    case GGML_Q2_K: return K % QK_K ? 0 : (size_t)(K / QK_K) * sizeof(block_q2_K);
    case GGML_Q3_K: return K % QK_K ? 0 : (size_t)(K / QK_K) * sizeof(block_q3_K);
    case GGML_Q5_K: return K % QK_K ? 0 : (size_t)(K / QK_K) * sizeof(block_q5_K);
    case GGML_Q4_0: return K % QK8_0 ? 0 : (size_t)(K / QK8_0) * sizeof(block_q4_0);
    case GGML_MXFP4: return mxfp4_row_bytes(K);
    default: return type == GGML_Q4_1 || type == GGML_Q5_0 || type == GGML_Q5_1 ? legacy_row_bytes(type, K) : iq_row_bytes(type, K);
  }
}

/** The 16 Q3_K scales, minus 32. */
static inline void q3_K_scales(const uint8_t *s, int8_t out[16]) {
  for (int j = 0; j < 16; j++) {
    const int low = j < 8 ? s[j] & 0xf : s[j - 8] >> 4;
    out[j] = (int8_t)((low | (((s[8 + (j & 3)] >> (2 * (j >> 2))) & 3) << 4)) - 32);
  }
}

// The block's total from its group sums (the formulas above); S[g] for the 16 groups of 16 values.
static inline float q2_K_total(const block_q2_K *w, const block_q8_K *x, const int32_t S[16]) {
  int isum = 0, msum = 0;
  for (int g = 0; g < 16; g++) isum += (w->scales[g] & 0xf) * S[g], msum += (w->scales[g] >> 4) * x->bsums[g];
  return x->d * (fp16_to_f32(w->d) * (float)isum - fp16_to_f32(w->dmin) * (float)msum);
}
static inline float q3_K_total(const block_q3_K *w, const block_q8_K *x, const int32_t S[16]) {
  int8_t sc[16];
  q3_K_scales(w->scales, sc);
  int isum = 0;
  for (int g = 0; g < 16; g++) isum += sc[g] * (S[g] - 4 * x->bsums[g]);
  return x->d * fp16_to_f32(w->d) * (float)isum;
}
static inline float q5_K_total(const block_q5_K *w, const block_q8_K *x, const int32_t S[16]) {
  uint8_t sc[8], mn[8];
  q4_K_scales(w->scales, sc, mn);
  int isum = 0, msum = 0;
  for (int j = 0; j < 8; j++) isum += sc[j] * (S[2 * j] + S[2 * j + 1]), msum += mn[j] * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
  return x->d * (fp16_to_f32(w->d) * (float)isum - fp16_to_f32(w->dmin) * (float)msum);
}

// ---------------------------------------------------------------------------------------------------- scalar C

/** The 256 unsigned quants of a block, in value order. */
static void q2_K_unpack(const block_q2_K *w, uint8_t u[QK_K]) {
  for (int i = 0; i < QK_K; i++) u[i] = (w->qs[32 * (i >> 7) + (i & 31)] >> (2 * ((i >> 5) & 3))) & 3;
}
static void q3_K_unpack(const block_q3_K *w, uint8_t u[QK_K]) {
  for (int i = 0; i < QK_K; i++) {
    const int h = i >> 7, s = (i >> 5) & 3, l = i & 31;
    u[i] = (uint8_t)(((w->qs[32 * h + l] >> (2 * s)) & 3) | (((w->hmask[l] >> (4 * h + s)) & 1) << 2));
  }
}
static void q5_K_unpack(const block_q5_K *w, uint8_t u[QK_K]) {
  for (int i = 0; i < QK_K; i++) {
    const int j = i >> 5, l = i & 31;
    u[i] = (uint8_t)(((w->qs[32 * (j >> 1) + l] >> (4 * (j & 1))) & 0xf) | (((w->qh[l] >> j) & 1) << 4));
  }
}

static void group_sums_scalar(const uint8_t u[QK_K], const int8_t *q8, int32_t S[16]) {
  for (int g = 0; g < 16; g++) {
    int s = 0;
    for (int l = 0; l < 16; l++) s += u[16 * g + l] * q8[16 * g + l];
    S[g] = s;
  }
}

#define SCALAR_DOT(T)                                                   \
  float dot_##T##_scalar(int n, const void *restrict vw, const void *restrict vx) { \
    const block_##T *w = vw;                                             \
    const block_q8_K *x = vx;                                            \
    float sum = 0;                                                       \
    for (int i = 0; i < n / QK_K; i++) {                                 \
      uint8_t u[QK_K];                                                   \
      int32_t S[16];                                                     \
      T##_unpack(&w[i], u);                                              \
      group_sums_scalar(u, x[i].qs, S);                                  \
      sum += T##_total(&w[i], &x[i], S);                                 \
    }                                                                    \
    return sum;                                                          \
  }
SCALAR_DOT(q2_K)
SCALAR_DOT(q3_K)
SCALAR_DOT(q5_K)

float dot_q4_0_scalar(int n, const void *restrict vw, const void *restrict vx) {
  const block_q4_0 *w = vw;
  const block_q8_0 *x = vx;
  float sum = 0;
  for (int i = 0; i < n / QK8_0; i++) {
    int s = 0;
    for (int j = 0; j < 16; j++) s += ((w[i].qs[j] & 0xf) - 8) * x[i].qs[j] + ((w[i].qs[j] >> 4) - 8) * x[i].qs[j + 16];
    sum += fp16_to_f32(w[i].d) * fp16_to_f32(x[i].d) * (float)s;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------------- AVX2
#if defined(__x86_64__) || defined(__i386__)

/** Group sums of 32 unsigned quants u (groups 2k, 2k+1) against 32 int8 activations into S[2k], S[2k+1]. */
TARGET_AVX2 static inline void sums32_avx2(__m256i u, const int8_t *q8, int32_t *S) {
  const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)q8)), _mm256_set1_epi16(1));
  S[0] = hsum_i32x4(_mm256_castsi256_si128(p));
  S[1] = hsum_i32x4(_mm256_extracti128_si256(p, 1));
}

// Q2_K / Q3_K: the integer block sums stay in vectors. Each 32-byte load of quants covers 32 values = two groups of
// 16 (one per 128-bit lane), so one shuffle of the group scales (as int16, both lanes holding the 8 scales of a
// 128-value half) gives the pair; maddubs + madd leave sc_g * S_g per lane, and the scalar code's integer isum
// falls out of one horizontal sum per block: the same integers, then the same f32 operations, so the same bits.
// The dot4 variants decode each block once for 4 tokens.

/** Shuffle controls: the int16 scale of group 2s in the low lane, 2s+1 in the high lane (8 scales per lane); a table
 *  in memory, as the compiler rebuilt set1 constants inside the loop. */
static const uint8_t SCALE_PAIR_CTRL[4][32] __attribute__((aligned(32))) = {
    {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3},
    {4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7},
    {8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11},
    {12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15},
};
TARGET_AVX2 static inline __m256i scale_pair_ctrl(int s) { return _mm256_load_si256((const __m256i *)SCALE_PAIR_CTRL[s]); }

/** The 16 group scales as int16 (sc16, 16 lanes) into the two halves' broadcast forms. */
TARGET_AVX2 static inline void scale_halves(__m256i sc16, __m256i half[2]) {
  half[0] = _mm256_permute2x128_si256(sc16, sc16, 0x00);
  half[1] = _mm256_permute2x128_si256(sc16, sc16, 0x11);
}

/** The 16 Q3_K scales minus 32, as int8 (ggml's aux-word trick; equal to q3_K_scales). */
TARGET_AVX2 static inline __m128i q3_K_scales_avx2(const uint8_t *s) {
  uint32_t a[3];
  memcpy(a, s, 12);
  const uint32_t m2 = 0x0f0f0f0f, m1 = 0x03030303;
  const __m128i v = _mm_set_epi32((int)(((a[1] >> 4) & m2) | (((a[2] >> 6) & m1) << 4)), (int)(((a[0] >> 4) & m2) | (((a[2] >> 4) & m1) << 4)),
                                  (int)((a[1] & m2) | (((a[2] >> 2) & m1) << 4)), (int)((a[0] & m2) | ((a[2] & m1) << 4)));
  return _mm_sub_epi8(v, _mm_set1_epi8(32));
}

// Shared by both: f32 sums per token, the tokens' activation blocks and two integer accumulators per block (h = 0
// and h = 1: two dependency chains).
#define LO_BLOCK_BEGIN(NT)                                                                                        \
  __m256 sum[NT];                                                                                                 \
  for (int u = 0; u < NT; u++) sum[u] = _mm256_setzero_ps();                                                      \
  for (int i = 0; i < n / QK_K; i++) {                                                                            \
    const block_q8_K *x[NT];                                                                                      \
    __m256i acc[NT], acc2[NT];                                                                                    \
    for (int u = 0; u < NT; u++) x[u] = (const block_q8_K *)((const uint8_t *)vx + u * xstride) + i, acc[u] = acc2[u] = _mm256_setzero_si256();

// The block's 8 sub-blocks of 32: unsigned quants UQ (of q, the 32 quant bytes of half h, at shift s) times the
// tokens' activations, times the pair of group scales from half[h].
#define LO_BLOCK_SUMS(NT, MADD_ACC, UQ)                                                                           \
    for (int h = 0; h < 2; h++) {                                                                                 \
      const __m256i q = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * h));                                  \
      for (int s = 0; s < 4; s++) {                                                                               \
        const __m256i uq = UQ;                                                                                    \
        const __m256i sc = _mm256_shuffle_epi8(half[h], scale_pair_ctrl(s));                                      \
        for (int u = 0; u < NT; u++) {                                                                            \
          const __m256i p = _mm256_maddubs_epi16(uq, _mm256_loadu_si256((const __m256i *)(x[u]->qs + 128 * h + 32 * s))); \
          if (h) acc2[u] = MADD_ACC(acc2[u], p, sc);                                                              \
          else acc[u] = MADD_ACC(acc[u], p, sc);                                                                  \
        }                                                                                                         \
      }                                                                                                           \
    }

// NT tokens (xstride bytes apart) against one Q2_K row; out[u * ostride].
#define Q2K_DOTN(NT, MADD_ACC)                                                                                    \
  const block_q2_K *w = vw;                                                                                       \
  const __m256i m3 = _mm256_set1_epi8(3);                                                                         \
  LO_BLOCK_BEGIN(NT)                                                                                              \
    const __m128i sb = _mm_loadu_si128((const __m128i *)w[i].scales);                                             \
    __m256i half[2];                                                                                              \
    scale_halves(_mm256_cvtepu8_epi16(_mm_and_si128(sb, _mm_set1_epi8(15))), half);                               \
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sb, 4), _mm_set1_epi8(15)));           \
    LO_BLOCK_SUMS(NT, MADD_ACC, _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3))                                \
    const float d = _cvtsh_ss(w[i].d), dmin = _cvtsh_ss(w[i].dmin);                                               \
    for (int u = 0; u < NT; u++) {                                                                                \
      const __m256i m = _mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)x[u]->bsums));                \
      sum[u] = _mm256_fmadd_ps(_mm256_set1_ps(x[u]->d * d), _mm256_cvtepi32_ps(_mm256_add_epi32(acc[u], acc2[u])), sum[u]); \
      sum[u] = _mm256_fnmadd_ps(_mm256_set1_ps(x[u]->d * dmin), _mm256_cvtepi32_ps(m), sum[u]);                   \
    }                                                                                                             \
  }                                                                                                               \
  for (int u = 0; u < NT; u++) out[u * ostride] = hsum_ps(sum[u]);

// Likewise Q3_K: u = low 2 bits | hmask bit << 2 (0..7), then - 4 * sum_g sc_g bsum_g.
#define Q3K_DOTN(NT, MADD_ACC)                                                                                    \
  const block_q3_K *w = vw;                                                                                       \
  const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(4);                                               \
  LO_BLOCK_BEGIN(NT)                                                                                              \
    const __m256i sc16 = _mm256_cvtepi8_epi16(q3_K_scales_avx2(w[i].scales));                                     \
    __m256i half[2];                                                                                              \
    scale_halves(sc16, half);                                                                                     \
    const __m256i hm = _mm256_loadu_si256((const __m256i *)w[i].hmask);                                           \
    LO_BLOCK_SUMS(NT, MADD_ACC, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3),                \
                                                _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(hm, 4 * h + s), 2), m4))) \
    const float d = _cvtsh_ss(w[i].d);                                                                            \
    for (int u = 0; u < NT; u++) {                                                                                \
      const __m256i bs = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)x[u]->bsums));               \
      const __m256i t = _mm256_sub_epi32(_mm256_add_epi32(acc[u], acc2[u]), _mm256_slli_epi32(bs, 2));            \
      sum[u] = _mm256_fmadd_ps(_mm256_set1_ps(x[u]->d * d), _mm256_cvtepi32_ps(t), sum[u]);                       \
    }                                                                                                             \
  }                                                                                                               \
  for (int u = 0; u < NT; u++) out[u * ostride] = hsum_ps(sum[u]);

// Q5_K as Q4_K (one 6-bit scale and min per 32 values, k_quants.c's Q4_K kernel) with the fifth bit from qh: the
// sub-block sums stay in vectors, the mins' products with the bsums in f32 lanes beside them.
#define Q5K_DOTN(NT, MADD_ACC)                                                                                    \
  const block_q5_K *w = vw;                                                                                       \
  const __m256i m15 = _mm256_set1_epi8(15), m16 = _mm256_set1_epi8(16);                                           \
  LO_BLOCK_BEGIN(NT)                                                                                              \
    uint32_t sm[4];                                                                                               \
    q4_K_scales_mins(w[i].scales, sm);                                                                            \
    const __m256i sm16 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)sm)); /* sc | mn as int16 */       \
    const __m256i scb = _mm256_permute2x128_si256(sm16, sm16, 0x00);                   /* scales in both lanes */ \
    const __m256i qh = _mm256_loadu_si256((const __m256i *)w[i].qh);                                              \
    for (int j = 0; j < 4; j++) { /* sub-blocks 2j (low nibbles, qh bit 2j) and 2j+1 (high, bit 2j+1) */          \
      const __m256i q = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * j));                                  \
      const __m256i u0 = _mm256_or_si256(_mm256_and_si256(q, m15), _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(qh, 2 * j), 4), m16)); \
      const __m256i u1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m15),                          \
                                         _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(qh, 2 * j + 1), 4), m16)); \
      const __m256i s0 = _mm256_shuffle_epi8(scb, _mm256_set1_epi16((short)(((4 * j + 1) << 8) | (4 * j))));      \
      const __m256i s1 = _mm256_shuffle_epi8(scb, _mm256_set1_epi16((short)(((4 * j + 3) << 8) | (4 * j + 2))));  \
      for (int u = 0; u < NT; u++) {                                                                              \
        const __m256i *a = (const __m256i *)(x[u]->qs + 64 * j);                                                  \
        acc[u] = MADD_ACC(acc[u], _mm256_maddubs_epi16(u0, _mm256_loadu_si256(a)), s0);                           \
        acc2[u] = MADD_ACC(acc2[u], _mm256_maddubs_epi16(u1, _mm256_loadu_si256(a + 1)), s1);                     \
      }                                                                                                           \
    }                                                                                                             \
    const __m128i mn = _mm256_extracti128_si256(sm16, 1);                                                         \
    const float d = _cvtsh_ss(w[i].d), dmin = _cvtsh_ss(w[i].dmin);                                               \
    for (int u = 0; u < NT; u++) {                                                                                \
      /* mins: sum_j mn[j] * (sum of the activations of sub-block j), in the low 4 lanes */                       \
      const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)x[u]->bsums), _mm_loadu_si128((const __m128i *)(x[u]->bsums + 8))); \
      const __m256 m = _mm256_castps128_ps256(_mm_cvtepi32_ps(_mm_madd_epi16(mn, bs)));                           \
      sum[u] = _mm256_fmadd_ps(_mm256_set1_ps(x[u]->d * d), _mm256_cvtepi32_ps(_mm256_add_epi32(acc[u], acc2[u])), sum[u]); \
      sum[u] = _mm256_fnmadd_ps(_mm256_set1_ps(x[u]->d * dmin), _mm256_insertf128_ps(m, _mm_setzero_ps(), 1), sum[u]); \
    }                                                                                                             \
  }                                                                                                               \
  for (int u = 0; u < NT; u++) out[u * ostride] = hsum_ps(sum[u]);

// MADD_ACC(acc, p16, s16) = acc + madd(p16, s16): two instructions on AVX2, one vpdpwssd with AVX-512 VNNI (the
// avx512 table's variant: same integers, so the same bits as the AVX2 code).
#define MADD_ACC_AVX2(acc, p, s) _mm256_add_epi32(acc, _mm256_madd_epi16(p, s))
#define MADD_ACC_VNNI(acc, p, s) _mm256_dpwssd_epi32(acc, p, s)
#define LO_DOTS(T, BODY, TARGET, SUFFIX, MADD)                                                                    \
  TARGET float dot_##T##_##SUFFIX(int n, const void *restrict vw, const void *restrict vx) {                      \
    float r;                                                                                                       \
    const size_t xstride = 0, ostride = 0;                                                                         \
    float *out = &r;                                                                                               \
    BODY(1, MADD)                                                                                                  \
    return r;                                                                                                      \
  }                                                                                                                \
  TARGET void dot4_##T##_##SUFFIX(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) { \
    BODY(4, MADD)                                                                                                  \
  }
LO_DOTS(q2_K, Q2K_DOTN, TARGET_AVX2, avx2, MADD_ACC_AVX2)
LO_DOTS(q3_K, Q3K_DOTN, TARGET_AVX2, avx2, MADD_ACC_AVX2)
LO_DOTS(q5_K, Q5K_DOTN, TARGET_AVX2, avx2, MADD_ACC_AVX2)
LO_DOTS(q2_K, Q2K_DOTN, TARGET_AVX512, avx512, MADD_ACC_VNNI)
LO_DOTS(q5_K, Q5K_DOTN, TARGET_AVX512, avx512, MADD_ACC_VNNI)
LO_DOTS(q3_K, Q3K_DOTN, TARGET_AVX512, avx512, MADD_ACC_VNNI)
#undef LO_DOTS
#undef Q2K_DOTN
#undef Q3K_DOTN
#undef Q5K_DOTN
#undef LO_BLOCK_SUMS
#undef LO_BLOCK_BEGIN

TARGET_AVX2 float dot_q4_0_avx2(int n, const void *restrict vw, const void *restrict vx) {
  const block_q4_0 *w = vw;
  const block_q8_0 *x = vx;
  const __m128i m15 = _mm_set1_epi8(15);
  const __m256i m8 = _mm256_set1_epi8(8);
  __m256 acc = _mm256_setzero_ps();
  for (int i = 0; i < n / QK8_0; i++) {
    const __m128i q = _mm_loadu_si128((const __m128i *)w[i].qs);
    const __m256i u = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m15)), _mm_and_si128(_mm_srli_epi16(q, 4), m15), 1);
    acc = acc_q8_0_signed(acc, _mm256_sub_epi8(u, m8), &x[i], fp16_to_f32(w[i].d)); // -8..7
  }
  return hsum_ps(acc);
}
#endif

// ---------------------------------------------------------------------------------------------------- NEON
#if defined(__ARM_NEON) && defined(__aarch64__)

/** Sum of 16 unsigned quants u times 16 int8 activations. */
static inline int32_t sum16_neon(uint8x16_t u, const int8_t *q8) {
  return vaddvq_s32(dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(u), vld1q_s8(q8)));
}

float dot_q2_K_neon(int n, const void *restrict vw, const void *restrict vx) {
  const block_q2_K *w = vw;
  const block_q8_K *x = vx;
  const uint8x16_t m3 = vdupq_n_u8(3);
  float sum = 0;
  for (int i = 0; i < n / QK_K; i++) {
    int32_t S[16];
    for (int h = 0; h < 2; h++) {
      for (int half = 0; half < 2; half++) {
        const uint8x16_t q = vld1q_u8(w[i].qs + 32 * h + 16 * half);
        for (int s = 0; s < 4; s++) {
          const uint8x16_t u = vandq_u8(vshlq_u8(q, vdupq_n_s8((int8_t)(-2 * s))), m3);
          S[8 * h + 2 * s + half] = sum16_neon(u, x[i].qs + 128 * h + 32 * s + 16 * half);
        }
      }
    }
    sum += q2_K_total(&w[i], &x[i], S);
  }
  return sum;
}

float dot_q3_K_neon(int n, const void *restrict vw, const void *restrict vx) {
  const block_q3_K *w = vw;
  const block_q8_K *x = vx;
  const uint8x16_t m3 = vdupq_n_u8(3), m1 = vdupq_n_u8(1);
  float sum = 0;
  for (int i = 0; i < n / QK_K; i++) {
    int32_t S[16];
    for (int half = 0; half < 2; half++) {
      const uint8x16_t hm = vld1q_u8(w[i].hmask + 16 * half);
      for (int h = 0; h < 2; h++) {
        const uint8x16_t q = vld1q_u8(w[i].qs + 32 * h + 16 * half);
        for (int s = 0; s < 4; s++) {
          const uint8x16_t lo = vandq_u8(vshlq_u8(q, vdupq_n_s8((int8_t)(-2 * s))), m3);
          const uint8x16_t hi = vandq_u8(vshlq_u8(hm, vdupq_n_s8((int8_t)(-(4 * h + s)))), m1);
          S[8 * h + 2 * s + half] = sum16_neon(vorrq_u8(lo, vshlq_n_u8(hi, 2)), x[i].qs + 128 * h + 32 * s + 16 * half);
        }
      }
    }
    sum += q3_K_total(&w[i], &x[i], S);
  }
  return sum;
}

float dot_q5_K_neon(int n, const void *restrict vw, const void *restrict vx) {
  const block_q5_K *w = vw;
  const block_q8_K *x = vx;
  const uint8x16_t m15 = vdupq_n_u8(15), m1 = vdupq_n_u8(1);
  float sum = 0;
  for (int i = 0; i < n / QK_K; i++) {
    int32_t S[16];
    for (int half = 0; half < 2; half++) {
      const uint8x16_t qh = vld1q_u8(w[i].qh + 16 * half);
      for (int k = 0; k < 4; k++) {
        const uint8x16_t q = vld1q_u8(w[i].qs + 32 * k + 16 * half);
        const uint8x16_t h0 = vandq_u8(vshlq_u8(qh, vdupq_n_s8((int8_t)(-2 * k))), m1);
        const uint8x16_t h1 = vandq_u8(vshlq_u8(qh, vdupq_n_s8((int8_t)(-2 * k - 1))), m1);
        S[4 * k + half] = sum16_neon(vorrq_u8(vandq_u8(q, m15), vshlq_n_u8(h0, 4)), x[i].qs + 64 * k + 16 * half);
        S[4 * k + 2 + half] = sum16_neon(vorrq_u8(vshrq_n_u8(q, 4), vshlq_n_u8(h1, 4)), x[i].qs + 64 * k + 32 + 16 * half);
      }
    }
    sum += q5_K_total(&w[i], &x[i], S);
  }
  return sum;
}

float dot_q4_0_neon(int n, const void *restrict vw, const void *restrict vx) {
  const block_q4_0 *w = vw;
  const block_q8_0 *x = vx;
  const uint8x16_t m15 = vdupq_n_u8(15);
  const int8x16_t m8 = vdupq_n_s8(8);
  float sum = 0;
  for (int i = 0; i < n / QK8_0; i++) {
    const uint8x16_t q = vld1q_u8(w[i].qs);
    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, m15)), m8);
    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), m8);
    const int32x4_t acc = dot16(dot16(vdupq_n_s32(0), lo, vld1q_s8(x[i].qs)), hi, vld1q_s8(x[i].qs + 16));
    sum += fp16_to_f32(w[i].d) * fp16_to_f32(x[i].d) * (float)vaddvq_s32(acc);
  }
  return sum;
}
#endif

/** 0 scalar, 1 avx2 (and avx512), 2 neon. */
static int level_of(const kernels_t *k) {
#if defined(__x86_64__) || defined(__i386__)
  if (k == &KERNELS_AVX2 || k == &KERNELS_AVX512) return 1;
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
  if (k == &KERNELS_NEON) return 2;
#endif
  return 0;
}

/** The kernel level of the i-quants and MXFP4: level_of, with the avx512 table apart (3: their VNNI variants). */
static int iq_level(const kernels_t *k) {
#if defined(__x86_64__) || defined(__i386__)
  if (k == &KERNELS_AVX512) return 3;
#endif
  return level_of(k);
}

quant_fn lowbit_quant_q8_1(const kernels_t *k) { return legacy_quant_q8_1(level_of(k) == 1); }

dot4_fn lowbit_dot4(const kernels_t *k, int type) {
  if (type == GGML_MXFP4) return mxfp4_dot4(iq_level(k));
#if defined(__x86_64__) || defined(__i386__)
  const int avx512 = k == &KERNELS_AVX512;
  if (level_of(k) == 1 && type == GGML_Q2_K) return avx512 ? dot4_q2_K_avx512 : dot4_q2_K_avx2;
  if (level_of(k) == 1 && type == GGML_Q3_K) return avx512 ? dot4_q3_K_avx512 : dot4_q3_K_avx2;
  if (level_of(k) == 1 && type == GGML_Q5_K) return avx512 ? dot4_q5_K_avx512 : dot4_q5_K_avx2;
#endif
  return iq_dot4(iq_level(k), type);
}

const panel_kernels *lowbit_panel(const kernels_t *k, int type) { return iq_panel(iq_level(k), type); }

dot_fn lowbit_dot(const kernels_t *k, int type) {
  const int level = level_of(k);
  switch (type) {
#if defined(__x86_64__) || defined(__i386__)
#define PICK(T) return level == 1 ? dot_##T##_avx2 : dot_##T##_scalar
#elif defined(__ARM_NEON) && defined(__aarch64__)
#define PICK(T) return level == 2 ? dot_##T##_neon : dot_##T##_scalar
#else
#define PICK(T) (void)level; return dot_##T##_scalar
#endif
#if defined(__x86_64__) || defined(__i386__)
    case GGML_Q2_K: if (k == &KERNELS_AVX512) return dot_q2_K_avx512; PICK(q2_K);
    case GGML_Q3_K: if (k == &KERNELS_AVX512) return dot_q3_K_avx512; PICK(q3_K);
    case GGML_Q5_K: if (k == &KERNELS_AVX512) return dot_q5_K_avx512; PICK(q5_K);
#else
    case GGML_Q2_K: PICK(q2_K);
    case GGML_Q3_K: PICK(q3_K);
    case GGML_Q5_K: PICK(q5_K);
#endif
    case GGML_Q4_0: PICK(q4_0);
#undef PICK
    case GGML_Q4_1:
    case GGML_Q5_0:
    case GGML_Q5_1: return legacy_dot(level == 1, type);
    case GGML_MXFP4: return mxfp4_dot(iq_level(k));
    default: return iq_dot(iq_level(k), type);
  }
}
