// f32 row helpers shared by the attention kernels (ops.c, attn_ext.c): a dot product and y += p * x, in portable
// C (8 lanes of partial sums: vectorises without reassociating, NEON included) and in AVX2 intrinsics.
#pragma once
#include "common.h"

/** Dot product of two f32 rows in 8 lanes of partial sums (vectorises without reassociating). */
static inline float dot_plain(const float *restrict a, const float *restrict b, int n) {
  float a8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) a8[l] += a[i + l] * b[i + l];
  for (; i < n; i++) a8[0] += a[i] * b[i];
  return ((a8[0] + a8[4]) + (a8[1] + a8[5])) + ((a8[2] + a8[6]) + (a8[3] + a8[7]));
}
static inline void axpy_plain(float *restrict y, float p, const float *restrict x, int n) {
  for (int i = 0; i < n; i++) y[i] += p * x[i];
}

#if defined(__x86_64__) || defined(__i386__)
#include "simd.h"
TARGET_AVX2 static inline float dot_avx2(const float *restrict a, const float *restrict b, int n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum_ps(_mm256_add_ps(s0, s1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}
TARGET_AVX2 static inline void axpy_avx2(float *restrict y, float p, const float *restrict x, int n) {
  const __m256 pv = _mm256_set1_ps(p);
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(pv, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += p * x[i];
}
#endif

/** An f32 stored at any byte offset (weight bytes inside a JS Uint8Array). */
static inline float load_f32(const uint8_t *p) {
  float f;
  memcpy(&f, p, 4);
  return f;
}
