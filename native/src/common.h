// Shared declarations of the native kernels: ggml block layouts, fp16/bf16 helpers, the per-ISA kernel tables.
// Layouts follow ggml (ggml-common.h); the code is our own.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define QK8_0 32
#define QK_K 256

// Weight blocks sit at any byte offset inside a JS Uint8Array, so they are packed (unaligned-safe).
typedef struct __attribute__((packed)) {
  uint16_t d; // f16 scale
  int8_t qs[QK8_0];
} block_q8_0;

typedef struct __attribute__((packed)) {
  uint16_t d, dmin;    // f16 super-block scale for the 6-bit scales and mins
  uint8_t scales[12];  // 8 (scale, min) pairs of 6 bits
  uint8_t qs[QK_K / 2]; // 4-bit quants; bytes 32k..32k+31 hold sub-blocks 2k (low nibble) and 2k+1 (high)
} block_q4_K;

typedef struct __attribute__((packed)) {
  uint8_t ql[QK_K / 2];     // low 4 bits
  uint8_t qh[QK_K / 4];     // high 2 bits
  int8_t scales[QK_K / 16]; // one per 16 values
  uint16_t d;               // f16
} block_q6_K;

// Activation blocks for K-quant weights; they live in our own aligned scratch (ggml's block_q8_K).
typedef struct {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16]; // sum of each 16 quants, for the weights' min / -32 offsets
} block_q8_K;

// Q8_0 plus s = d * sum(qs) (f16), for weights with a min (Q4_1, Q5_1): ggml's block_q8_1.
typedef struct __attribute__((packed)) {
  uint16_t d, s;
  int8_t qs[QK8_0];
} block_q8_1;

_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K size");

// ggml type ids.
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q8_0 = 8, GGML_Q4_K = 12, GGML_Q6_K = 14, GGML_BF16 = 30 };
// Private (not ggml): Q4_K / Q8_0 rows repacked in place into groups of 8 interleaved rows (k_quants.c, q8_0.c),
// same byte size.
enum { GGML_Q4_K_R8 = 1012, GGML_Q8_0_R8 = 1008 };

/** Dot product of n values: one weight row (ggml encoding) with one activation row (quantised or f32). */
typedef float (*dot_fn)(int n, const void *restrict w, const void *restrict x);
/** Quantise n f32 values (a multiple of the block size) into activation blocks. */
typedef void (*quant_fn)(const float *restrict x, void *restrict y, int n);

/** One weight row against 4 activation rows xstride bytes apart; writes out[0], out[ostride], ... out[3*ostride].
 *  Each result equals the single-row dot bit for bit (same per-row arithmetic), so how tokens are grouped
 *  never changes an output. */
typedef void (*dot4_fn)(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);

/** 8 interleaved weight rows (one Q4_K_R8 or Q8_0_R8 group) against NT activation rows (NT = 1 or 4, xstride bytes
 *  apart): writes out[u * ostride + r] for row r of the group. Per row the arithmetic is the same for NT 1 and 4. */
typedef void (*gemv8_fn)(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);

typedef struct {
  const char *name;
  quant_fn quant_q8_0, quant_q8_K;
  dot_fn dot_q8_0, dot_q4_K, dot_q6_K, dot_f32, dot_f16, dot_bf16;
  dot4_fn dot4_q8_0, dot4_q4_K, dot4_q6_K; // NULL: the driver loops over dot
  gemv8_fn r8_q4_K, r8x4_q4_K;             // Q4_K_R8 groups, 1 and 4 tokens (r8x4 NULL: the driver loops over r8)
  gemv8_fn r8_q8_0, r8x4_q8_0;             // Q8_0_R8 groups, likewise
} kernels_t;

// Portable C, always built; the oracle the SIMD paths are tested against.
extern const kernels_t KERNELS_SCALAR;
#if defined(__x86_64__) || defined(__i386__)
extern const kernels_t KERNELS_AVX2, KERNELS_AVX512;
#define TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
extern const kernels_t KERNELS_NEON;
#endif

// Kernel functions, one family per file (quantize.c, q8_0.c, k_quants.c, float.c).
void quant_q8_0_scalar(const float *restrict x, void *restrict y, int n);
void quant_q8_K_scalar(const float *restrict x, void *restrict y, int n);
float dot_q8_0_scalar(int n, const void *restrict w, const void *restrict x);
float dot_q4_K_scalar(int n, const void *restrict w, const void *restrict x);
float dot_q6_K_scalar(int n, const void *restrict w, const void *restrict x);
float dot_f32_scalar(int n, const void *restrict w, const void *restrict x);
float dot_f16_scalar(int n, const void *restrict w, const void *restrict x);
float dot_bf16_scalar(int n, const void *restrict w, const void *restrict x);
void gemv8_q4_K_r8_scalar(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
/** Repack one group of 8 Q4_K rows of nb blocks (8 * nb * 144 bytes at g) into Q4_K_R8 in place; tmp holds as much. */
void repack_q4_K_r8_group(uint8_t *g, int nb, uint8_t *tmp);
void unrepack_q4_K_r8_group(uint8_t *g, int nb, uint8_t *tmp);
void gemv8_q8_0_r8_scalar(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
/** Repack one group of 8 Q8_0 rows of nb blocks (8 * nb * 34 bytes at g) into Q8_0_R8 in place; tmp holds as much. */
void repack_q8_0_r8_group(uint8_t *g, int nb, uint8_t *tmp);
void unrepack_q8_0_r8_group(uint8_t *g, int nb, uint8_t *tmp);
#if defined(__x86_64__) || defined(__i386__)
void gemv8_q4_K_r8_avx2(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
void gemv8x4_q4_K_r8_avx2(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
void gemv8_q4_K_r8_avx512(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
void gemv8x4_q4_K_r8_avx512(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
void gemv8_q8_0_r8_avx2(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
void gemv8x4_q8_0_r8_avx2(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
void gemv8_q8_0_r8_avx512(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
void gemv8x4_q8_0_r8_avx512(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
void quant_q8_0_avx2(const float *restrict x, void *restrict y, int n);
void quant_q8_K_avx2(const float *restrict x, void *restrict y, int n);
float dot_q8_0_avx2(int n, const void *restrict w, const void *restrict x);
float dot_q8_0_avx512(int n, const void *restrict w, const void *restrict x);
float dot_q4_K_avx2(int n, const void *restrict w, const void *restrict x);
float dot_q4_K_avx512(int n, const void *restrict w, const void *restrict x);
float dot_q6_K_avx2(int n, const void *restrict w, const void *restrict x);
float dot_q6_K_avx512(int n, const void *restrict w, const void *restrict x);
float dot_f32_avx2(int n, const void *restrict w, const void *restrict x);
float dot_f16_avx2(int n, const void *restrict w, const void *restrict x);
float dot_bf16_avx2(int n, const void *restrict w, const void *restrict x);
void dot4_q8_0_avx2(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
void dot4_q8_0_avx512(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
void dot4_q4_K_avx2(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
void dot4_q4_K_avx512(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
void dot4_q6_K_avx2(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
void dot4_q6_K_avx512(int n, const void *restrict w, const void *restrict x, size_t xstride, float *out, size_t ostride);
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
void quant_q8_0_neon(const float *restrict x, void *restrict y, int n);
void quant_q8_K_neon(const float *restrict x, void *restrict y, int n);
float dot_q8_0_neon(int n, const void *restrict w, const void *restrict x);
float dot_q4_K_neon(int n, const void *restrict w, const void *restrict x);
float dot_q6_K_neon(int n, const void *restrict w, const void *restrict x);
float dot_f32_neon(int n, const void *restrict w, const void *restrict x);
float dot_f16_neon(int n, const void *restrict w, const void *restrict x);
float dot_bf16_neon(int n, const void *restrict w, const void *restrict x);
#endif

static inline float f32_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static inline uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static inline float fp16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0) { // zero or subnormal: man * 2^-24
    return f32_from_bits(f32_bits((float)man * 5.9604644775390625e-8f) | sign);
  }
  if (exp == 31) return f32_from_bits(sign | 0x7f800000u | (man << 13));
  return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

/** Round to nearest even, like F16C's vcvtps2ph and moestream's f32ToF16. */
static inline uint16_t fp16_from_f32(float f) {
  uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000, a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (a > 0x7f800000u ? 0x200 : 0));
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); // >= 65520 rounds to infinity
  if (a < 0x38800000u) { // below 2^-14: a multiple of 2^-24; adding 0.5 (2^-1) rounds it in the f32 add
    float v = f32_from_bits(a) + 0.5f;
    return (uint16_t)(sign | (f32_bits(v) - 0x3f000000u));
  }
  uint32_t r = a + 0xfff + ((a >> 13) & 1) - (112u << 23);
  return (uint16_t)(sign | (r >> 13));
}

static inline float bf16_to_f32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

static inline uint16_t load_u16(const void *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

/** ggml's nearest_int: round half to even via the f32 mantissa, for |f| < 2^22. */
static inline int nearest_int(float f) {
  float v = f + 12582912.f;
  return (int)(f32_bits(v) & 0x007fffff) - 0x00400000;
}

/** Unpack the 8 (scale, min) 6-bit pairs of a Q4_K block (ggml's get_scale_min_k4 for all j). */
static inline void q4_K_scales(const uint8_t *s, uint8_t sc[8], uint8_t mn[8]) {
  for (int j = 0; j < 4; j++) {
    sc[j] = s[j] & 63;
    mn[j] = s[j + 4] & 63;
    sc[j + 4] = (s[j + 8] & 0xf) | ((s[j] >> 6) << 4);
    mn[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
  }
}

/** The 8 scales (bytes 0-7) and 8 mins (bytes 8-15) of a Q4_K block, with 32-bit word operations. */
static inline void q4_K_scales_mins(const uint8_t *s, uint32_t out[4]) {
  uint32_t u0, u1, u2;
  memcpy(&u0, s, 4);
  memcpy(&u1, s + 4, 4);
  memcpy(&u2, s + 8, 4);
  out[0] = u0 & 0x3f3f3f3f;                                            // sc 0-3
  out[1] = (u2 & 0x0f0f0f0f) | (((u0 >> 6) & 0x03030303) << 4);        // sc 4-7
  out[2] = u1 & 0x3f3f3f3f;                                            // mn 0-3
  out[3] = ((u2 >> 4) & 0x0f0f0f0f) | (((u1 >> 6) & 0x03030303) << 4); // mn 4-7
}
