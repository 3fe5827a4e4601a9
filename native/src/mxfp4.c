// MXFP4 (gpt-oss's expert weights) against Q8_0 activations, as ggml pairs them (vec_dot_type Q8_0): per block of
// 32 values an E8M0 scale byte e and 16 bytes of E2M1 codes (value j: low nibble of qs[j], j + 16: high nibble),
// decoded through kvalues_mxfp4 (the E2M1 values doubled, so they are int8) with scale 2^(e - 128):
//   block total = fp16(x.d) * 2^(e - 128) * sum_j kvalues[q_j] * x.qs[j]
// exactly ggml's ggml_vec_dot_mxfp4_q8_0 (the integer sum is exact; only the f32 order of block totals may differ).
// Scalar C (the oracle), AVX2, AVX-512 VNNI on 256-bit vectors (vpdpbusd for maddubs + madd), NEON.
// 1- and 4-token dots (the 4-token one decodes each weight block once for 4 activation rows, as prefill wants);
// per token the arithmetic is identical, so the two agree bit for bit. Layout follows ggml; the code is our own.
#include "k_quants_lo.h"

#include "simd.h"

typedef struct __attribute__((packed)) {
  uint8_t e;      // E8M0 exponent
  uint8_t qs[16]; // E2M1 codes, split halves
} block_mxfp4;

_Static_assert(sizeof(block_mxfp4) == 17, "block_mxfp4 size");

static const int8_t kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/** ggml's GGML_E8M0_TO_FP32_HALF: 2^(e - 128) (subnormal for e < 2). */
static inline float e8m0_half(uint8_t e) { return f32_from_bits(e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23); }

size_t mxfp4_row_bytes(int K) { return K % QK8_0 ? 0 : (size_t)(K / QK8_0) * sizeof(block_mxfp4); }

float dot_mxfp4_scalar(int n, const void *restrict vw, const void *restrict vx) {
  const block_mxfp4 *w = vw;
  const block_q8_0 *x = vx;
  float sum = 0;
  for (int i = 0; i < n / QK8_0; i++) {
    int s = 0;
    for (int j = 0; j < 16; j++) s += kvalues_mxfp4[w[i].qs[j] & 0xf] * x[i].qs[j] + kvalues_mxfp4[w[i].qs[j] >> 4] * x[i].qs[j + 16];
    sum += fp16_to_f32(x[i].d) * e8m0_half(w[i].e) * (float)s;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------------- AVX2 / AVX-512
#if defined(__x86_64__) || defined(__i386__)
// |v| as unsigned bytes times the activations with v's sign moved onto them: 8 int32 partial sums per block.
#define MX_IDOT_AVX2(aw, sx) _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), _mm256_set1_epi16(1))
#define MX_IDOT_VNNI(aw, sx) _mm256_dpbusd_epi32(_mm256_setzero_si256(), aw, sx) // |v| <= 12: cannot saturate

// NT activation rows (xstride bytes apart) against one weight row, each block decoded once; even and odd blocks in
// two chains (hides FMA latency), the same order for NT 1 and 4, so dot and dot4 agree bit for bit.
#define MX_DOTN(IDOT, NT)                                                                                            \
  const block_mxfp4 *w = vw;                                                                                        \
  __m256 acc0[NT], acc1[NT];                                                                                        \
  for (int u = 0; u < NT; u++) acc0[u] = acc1[u] = _mm256_setzero_ps();                                             \
  for (int i = 0; i < n / QK8_0; i++) {                                                                             \
    const __m256i v = nibble_values(kvalues_mxfp4, w[i].qs), av = _mm256_sign_epi8(v, v);                           \
    const float dw = e8m0_half(w[i].e);                                                                             \
    for (int u = 0; u < NT; u++) {                                                                                  \
      const block_q8_0 *xu = (const block_q8_0 *)((const uint8_t *)vx + u * xstride) + i;                           \
      const __m256i sx = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)xu->qs), v);                         \
      const __m256 p = _mm256_cvtepi32_ps(IDOT(av, sx)), d = _mm256_set1_ps(_cvtsh_ss(xu->d) * dw);                \
      if (i & 1) acc1[u] = _mm256_fmadd_ps(d, p, acc1[u]);                                                          \
      else acc0[u] = _mm256_fmadd_ps(d, p, acc0[u]);                                                                \
    }                                                                                                               \
  }                                                                                                                 \
  for (int u = 0; u < NT; u++) out[u * ostride] = hsum_ps(_mm256_add_ps(acc0[u], acc1[u]));

// The 1- and 4-token dots of one SIMD level.
#define MX_KERNELS(SUFFIX, TARGET, IDOT)                                                                             \
  TARGET float dot_mxfp4_##SUFFIX(int n, const void *restrict vw, const void *restrict vx) {                        \
    float r, *out = &r;                                                                                             \
    const size_t xstride = 0, ostride = 0;                                                                          \
    MX_DOTN(IDOT, 1)                                                                                                \
    return r;                                                                                                       \
  }                                                                                                                 \
  TARGET void dot4_mxfp4_##SUFFIX(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) { \
    MX_DOTN(IDOT, 4)                                                                                                \
  }
MX_KERNELS(avx2, TARGET_AVX2, MX_IDOT_AVX2)
MX_KERNELS(avx512, TARGET_AVX512, MX_IDOT_VNNI)
#undef MX_KERNELS
#undef MX_DOTN
#endif

// ---------------------------------------------------------------------------------------------------- NEON
#if defined(__ARM_NEON) && defined(__aarch64__)
// The scalar C's block sums as int8 dot products (the same integers) and its f32 accumulation order: the same bits.
float dot_mxfp4_neon(int n, const void *restrict vw, const void *restrict vx) {
  const block_mxfp4 *w = vw;
  const block_q8_0 *x = vx;
  const int8x16_t kv = vld1q_s8(kvalues_mxfp4);
  float sum = 0;
  for (int i = 0; i < n / QK8_0; i++) sum += fp16_to_f32(x[i].d) * e8m0_half(w[i].e) * (float)nibble_dot32(kv, w[i].qs, x[i].qs);
  return sum;
}
#endif

dot_fn mxfp4_dot(int level) {
#if defined(__x86_64__) || defined(__i386__)
  if (level == 3) return dot_mxfp4_avx512;
  if (level == 1) return dot_mxfp4_avx2;
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
  if (level == 2) return dot_mxfp4_neon;
#endif
  (void)level;
  return dot_mxfp4_scalar;
}

dot4_fn mxfp4_dot4(int level) {
#if defined(__x86_64__) || defined(__i386__)
  if (level == 3) return dot4_mxfp4_avx512;
  if (level == 1) return dot4_mxfp4_avx2;
#endif
  (void)level;
  return NULL; // scalar C and NEON: the driver loops over the single-row dot
}
