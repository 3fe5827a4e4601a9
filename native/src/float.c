// F32 / F16 / BF16 weights x f32 activations (no activation quantisation). Rows may start at any byte offset
// and have any length, so loads are unaligned and there is a scalar tail.
#include "simd.h"

static inline float ld_f32(const uint8_t *p) {
  float v;
  memcpy(&v, p, 4);
  return v;
}

// Four partial sums, as the SIMD paths keep several accumulators.
#define SCALAR_DOT(LOAD)                                                       \
  const uint8_t *w = vw;                                                       \
  const float *x = vx;                                                         \
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                        \
  int i = 0;                                                                   \
  for (; i + 4 <= n; i += 4) {                                                 \
    s0 += LOAD(i) * x[i];                                                      \
    s1 += LOAD(i + 1) * x[i + 1];                                              \
    s2 += LOAD(i + 2) * x[i + 2];                                              \
    s3 += LOAD(i + 3) * x[i + 3];                                              \
  }                                                                            \
  for (; i < n; i++) s0 += LOAD(i) * x[i];                                     \
  return (s0 + s1) + (s2 + s3);

#define LD_F32(i) ld_f32(w + 4 * (size_t)(i))
#define LD_F16(i) fp16_to_f32(load_u16(w + 2 * (size_t)(i)))
#define LD_BF16(i) bf16_to_f32(load_u16(w + 2 * (size_t)(i)))

float dot_f32_scalar(int n, const void *restrict vw, const void *restrict vx) { SCALAR_DOT(LD_F32) }
float dot_f16_scalar(int n, const void *restrict vw, const void *restrict vx) { SCALAR_DOT(LD_F16) }
float dot_bf16_scalar(int n, const void *restrict vw, const void *restrict vx) { SCALAR_DOT(LD_BF16) }

#if defined(__x86_64__) || defined(__i386__)

// 32 values per step in four accumulators, then 8 at a time, then the scalar tail.
#define AVX2_DOT(ESIZE, LOAD8, LOAD1)                                                            \
  const uint8_t *w = vw;                                                                         \
  const float *x = vx;                                                                           \
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps(); \
  int i = 0;                                                                                     \
  for (; i + 32 <= n; i += 32) {                                                                 \
    a0 = _mm256_fmadd_ps(LOAD8(w + (size_t)(i)*ESIZE), _mm256_loadu_ps(x + i), a0);              \
    a1 = _mm256_fmadd_ps(LOAD8(w + (size_t)(i + 8) * ESIZE), _mm256_loadu_ps(x + i + 8), a1);    \
    a2 = _mm256_fmadd_ps(LOAD8(w + (size_t)(i + 16) * ESIZE), _mm256_loadu_ps(x + i + 16), a2);  \
    a3 = _mm256_fmadd_ps(LOAD8(w + (size_t)(i + 24) * ESIZE), _mm256_loadu_ps(x + i + 24), a3);  \
  }                                                                                              \
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(LOAD8(w + (size_t)(i)*ESIZE), _mm256_loadu_ps(x + i), a0); \
  float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));               \
  for (; i < n; i++) s += LOAD1(i) * x[i];                                                       \
  return s;

#define L8_F32(p) _mm256_loadu_ps((const float *)(p))
#define L8_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define L8_BF16(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))

TARGET_AVX2 float dot_f32_avx2(int n, const void *restrict vw, const void *restrict vx) { AVX2_DOT(4, L8_F32, LD_F32) }
TARGET_AVX2 float dot_f16_avx2(int n, const void *restrict vw, const void *restrict vx) { AVX2_DOT(2, L8_F16, LD_F16) }
TARGET_AVX2 float dot_bf16_avx2(int n, const void *restrict vw, const void *restrict vx) { AVX2_DOT(2, L8_BF16, LD_BF16) }
#endif

#if defined(__ARM_NEON) && defined(__aarch64__)

#define NEON_DOT(ESIZE, LOAD4, LOAD1)                                                          \
  const uint8_t *w = vw;                                                                       \
  const float *x = vx;                                                                         \
  float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;                                  \
  int i = 0;                                                                                   \
  for (; i + 16 <= n; i += 16) {                                                               \
    a0 = vfmaq_f32(a0, LOAD4(w + (size_t)(i)*ESIZE), vld1q_f32(x + i));                        \
    a1 = vfmaq_f32(a1, LOAD4(w + (size_t)(i + 4) * ESIZE), vld1q_f32(x + i + 4));              \
    a2 = vfmaq_f32(a2, LOAD4(w + (size_t)(i + 8) * ESIZE), vld1q_f32(x + i + 8));              \
    a3 = vfmaq_f32(a3, LOAD4(w + (size_t)(i + 12) * ESIZE), vld1q_f32(x + i + 12));            \
  }                                                                                            \
  for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, LOAD4(w + (size_t)(i)*ESIZE), vld1q_f32(x + i)); \
  float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));                       \
  for (; i < n; i++) s += LOAD1(i) * x[i];                                                     \
  return s;

// Byte loads: weight rows carry no alignment guarantee.
#define L4_F32(p) vreinterpretq_f32_u8(vld1q_u8(p))
#define L4_F16(p) vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p)))
#define L4_BF16(p) vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u8(vld1_u8(p)), 16))

float dot_f32_neon(int n, const void *restrict vw, const void *restrict vx) { NEON_DOT(4, L4_F32, LD_F32) }
float dot_f16_neon(int n, const void *restrict vw, const void *restrict vx) { NEON_DOT(2, L4_F16, LD_F16) }
float dot_bf16_neon(int n, const void *restrict vw, const void *restrict vx) { NEON_DOT(2, L4_BF16, LD_BF16) }
#endif
