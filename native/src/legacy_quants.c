// Legacy 32-value block types against quantised activations, as ggml pairs them (vec_dot_type): Q5_0 with Q8_0,
// Q4_1 and Q5_1 with Q8_1 (Q8_0's quants plus s = d * sum(q), so a weight's min m costs one multiply per block:
// block total = d_w * d_x * sum(u * q) + m * s, u the unsigned 4- or 5-bit quant). Scalar C (the oracle) and AVX2
// (also used by the avx512 table); other CPUs run the scalar C. Layouts follow ggml; the code is our own.
#include "k_quants_lo.h"

#include "simd.h"

typedef struct __attribute__((packed)) {
  uint16_t d, m;
  uint8_t qs[16]; // value j: low nibble of qs[j], j + 16: high nibble
} block_q4_1;

typedef struct __attribute__((packed)) {
  uint16_t d;
  uint8_t qh[4];  // bit j: 5th bit of value j
  uint8_t qs[16]; // as Q4_1; value = d * (u - 16)
} block_q5_0;

typedef struct __attribute__((packed)) {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16]; // value = d * u + m
} block_q5_1;

_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 size");

size_t legacy_row_bytes(int type, int K) {
  if (K % QK8_0) return 0;
  switch (type) {
    case GGML_Q4_1: return (size_t)(K / QK8_0) * sizeof(block_q4_1);
    case GGML_Q5_0: return (size_t)(K / QK8_0) * sizeof(block_q5_0);
    case GGML_Q5_1: return (size_t)(K / QK8_0) * sizeof(block_q5_1);
    default: return 0;
  }
}

/** Q8_1 from a Q8_0 quantiser q0 (same d and quants, so the x86 rounding ggml's quantize_row_q8_1 uses), plus
 *  s = f16(d * sum(q)) with d = amax / 127 before its f16 rounding, as ggml computes it. */
static inline void quant_q8_1_with(quant_fn q0, const float *restrict x, void *restrict vy, int n) {
  block_q8_1 *y = vy;
  for (int i = 0; i < n / QK8_0; i++, x += QK8_0) {
    block_q8_0 b;
    q0(x, &b, QK8_0);
    float amax = 0; // as quant_q8_0_scalar finds it (a fused amax-and-sum loop crashed aarch64 GCC 12's vectoriser)
    for (int j = 0; j < QK8_0; j++) {
      const float a = x[j] < 0 ? -x[j] : x[j];
      if (a > amax) amax = a;
    }
    int sum = 0;
    for (int j = 0; j < QK8_0; j++) sum += b.qs[j];
    y[i].d = b.d;
    y[i].s = fp16_from_f32(amax / 127.f * (float)sum);
    memcpy(y[i].qs, b.qs, QK8_0);
  }
}

void quant_q8_1_scalar(const float *restrict x, void *restrict y, int n) { quant_q8_1_with(quant_q8_0_scalar, x, y, n); }

// ---------------------------------------------------------------------------------------------------- scalar C

/** sum of u * q over a block: u low nibble (+16 where bit j of qh is set, if qh) for j < 16, high nibble for j >= 16. */
static inline int usum_scalar(const uint8_t *qs, uint32_t qh, const int8_t *q) {
  int s = 0;
  for (int j = 0; j < 16; j++)
    s += ((qs[j] & 0xf) | ((qh >> j & 1) << 4)) * q[j] + ((qs[j] >> 4) | ((qh >> (j + 16) & 1) << 4)) * q[j + 16];
  return s;
}

static inline int qsum(const int8_t *q) {
  int s = 0;
  for (int j = 0; j < QK8_0; j++) s += q[j];
  return s;
}

static inline uint32_t qh32(const uint8_t *qh) {
  uint32_t v;
  memcpy(&v, qh, 4);
  return v;
}

// Q4_1 and Q5_1 (a min m, Q8_1 activations); QH: the block's 5th bits (0 for Q4_1).
#define DOT_MIN_SCALAR(T, QH)                                                                                         \
  float dot_##T##_scalar(int n, const void *restrict vw, const void *restrict vx) {                                   \
    const block_##T *w = vw;                                                                                           \
    const block_q8_1 *x = vx;                                                                                          \
    float sum = 0;                                                                                                     \
    for (int i = 0; i < n / QK8_0; i++)                                                                                \
      sum += fp16_to_f32(w[i].d) * fp16_to_f32(x[i].d) * (float)usum_scalar(w[i].qs, QH, x[i].qs) + fp16_to_f32(w[i].m) * fp16_to_f32(x[i].s); \
    return sum;                                                                                                        \
  }
DOT_MIN_SCALAR(q4_1, 0)
DOT_MIN_SCALAR(q5_1, qh32(w[i].qh))
#undef DOT_MIN_SCALAR

float dot_q5_0_scalar(int n, const void *restrict vw, const void *restrict vx) {
  const block_q5_0 *w = vw;
  const block_q8_0 *x = vx;
  float sum = 0;
  for (int i = 0; i < n / QK8_0; i++) // sum (u - 16) q = sum u q - 16 sum q
    sum += fp16_to_f32(w[i].d) * fp16_to_f32(x[i].d) * (float)(usum_scalar(w[i].qs, qh32(w[i].qh), x[i].qs) - 16 * qsum(x[i].qs));
  return sum;
}

// ---------------------------------------------------------------------------------------------------- AVX2
#if defined(__x86_64__) || defined(__i386__)

void quant_q8_1_avx2(const float *restrict x, void *restrict y, int n) { quant_q8_1_with(quant_q8_0_avx2, x, y, n); }

/** The 32 unsigned 4-bit quants of 16 bytes (low nibbles first), with 16 added where bit j of qh is set. */
TARGET_AVX2 static inline __m256i unpack_u(const uint8_t *qs, uint32_t qh) {
  const __m128i q = _mm_loadu_si128((const __m128i *)qs), m15 = _mm_set1_epi8(15);
  const __m256i u = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m15)), _mm_and_si128(_mm_srli_epi16(q, 4), m15), 1);
  return _mm256_or_si256(u, _mm256_and_si256(bytes_of_bits(qh), _mm256_set1_epi8(16)));
}

/** Sum of u * q (u unsigned <= 31, q int8) as 8 int32 lanes. */
TARGET_AVX2 static inline __m256i usum8(__m256i u, const int8_t *q) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)q)), _mm256_set1_epi16(1));
}

#define DOT_MIN_AVX2(T, QH)                                                                                            \
  TARGET_AVX2 float dot_##T##_avx2(int n, const void *restrict vw, const void *restrict vx) {                         \
    const block_##T *w = vw;                                                                                           \
    const block_q8_1 *x = vx;                                                                                          \
    __m256 acc = _mm256_setzero_ps();                                                                                  \
    float mins = 0;                                                                                                    \
    for (int i = 0; i < n / QK8_0; i++) {                                                                              \
      const __m256i p = usum8(unpack_u(w[i].qs, QH), x[i].qs);                                                         \
      acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_to_f32(w[i].d) * fp16_to_f32(x[i].d)), _mm256_cvtepi32_ps(p), acc);  \
      mins += fp16_to_f32(w[i].m) * fp16_to_f32(x[i].s);                                                               \
    }                                                                                                                  \
    return hsum_ps(acc) + mins;                                                                                        \
  }
DOT_MIN_AVX2(q4_1, 0)
DOT_MIN_AVX2(q5_1, qh32(w[i].qh))
#undef DOT_MIN_AVX2

TARGET_AVX2 float dot_q5_0_avx2(int n, const void *restrict vw, const void *restrict vx) {
  const block_q5_0 *w = vw;
  const block_q8_0 *x = vx;
  __m256 acc = _mm256_setzero_ps();
  for (int i = 0; i < n / QK8_0; i++) {
    const __m256i v = _mm256_sub_epi8(unpack_u(w[i].qs, qh32(w[i].qh)), _mm256_set1_epi8(16)); // -16..15
    acc = acc_q8_0_signed(acc, v, &x[i], fp16_to_f32(w[i].d));
  }
  return hsum_ps(acc);
}

#endif

dot_fn legacy_dot(int avx2, int type) {
  switch (type) {
#define PICK(T) PICK_AVX2(T, avx2)
    case GGML_Q4_1: PICK(q4_1);
    case GGML_Q5_0: PICK(q5_0);
    case GGML_Q5_1: PICK(q5_1);
#undef PICK
    default: return NULL;
  }
}

quant_fn legacy_quant_q8_1(int avx2) {
#if defined(__x86_64__) || defined(__i386__)
  if (avx2) return quant_q8_1_avx2;
#endif
  (void)avx2;
  return quant_q8_1_scalar;
}
