// The i-quants against quantised activations, as ggml pairs them (vec_dot_type): IQ4_NL with Q8_0, every other
// i-quant with Q8_K. Scalar C (the oracle), AVX2 (also used by the avx512 table) and NEON (the scalar decoding with
// int8 dot products; bit-identical to the scalar C: scripts/check-neon.sh, by hand under qemu-aarch64).
// Each super-block reduces to signed int8 weights w (grid value times sign, or the IQ4 non-linear value) with a
// small integer scale per 16 or 32 values:
//   block total = d * x.d * mult * sum_g ls_g * sum_{j in g} w_j * q8_j
// with mult 1/8 (IQ2_*), 1/4 (IQ3_XXS), 1 (IQ3_S, IQ4_*). IQ1_S / IQ1_M add delta = +-1/8 to each grid value
// in {-1, 0, 1}: w = 8 * grid + delta stays an exact int8 and mult is 1/8 (= IQ1S_DELTA = IQ1M_DELTA, checked).
// Grids and sign tables come from iq_tables.h (generated from ggml-common.h); layouts follow ggml; the code is ours.
#include "k_quants_lo.h"

#include "iq_tables.h"
#include "simd.h"

_Static_assert((int)(IQ1S_DELTA * 8) == 1 && (int)(IQ1M_DELTA * 8) == 1, "IQ1 deltas are 1/8 (w = 8 * grid + delta)");

typedef struct __attribute__((packed)) {
  uint16_t d;
  uint8_t qs[64]; // per 32 values: 4 grid indices, then a u32 of 4 x 7-bit sign codes and a 4-bit scale on top
} block_iq2_xxs;

typedef struct __attribute__((packed)) {
  uint16_t d;
  uint16_t qs[32];   // per 8 values: 9-bit grid index, 7-bit sign code
  uint8_t scales[8]; // per 32 values: low nibble for the first 16, high for the second
} block_iq2_xs;

typedef struct __attribute__((packed)) {
  uint16_t d;
  uint8_t qs[32];    // low 8 bits of the 10-bit grid indices
  uint8_t signs[32]; // one sign byte per 8 values
  uint8_t qh[8];     // per 32 values: the 4 indices' top 2 bits
  uint8_t scales[8]; // as IQ2_XS
} block_iq2_s;

typedef struct __attribute__((packed)) {
  uint16_t d;
  uint8_t qs[64];  // grid indices, one per 4 values
  uint8_t gas[32]; // per 32 values: u32 of 4 x 7-bit sign codes and a 4-bit scale on top
} block_iq3_xxs;

typedef struct __attribute__((packed)) {
  uint16_t d;
  uint8_t qs[64];    // low 8 bits of the 9-bit grid indices, one per 4 values
  uint8_t qh[8];     // per 32 values: the 8 indices' top bits
  uint8_t signs[32]; // one sign byte per 8 values
  uint8_t scales[4]; // per 64 values: low nibble for the first 32, high for the second
} block_iq3_s;

typedef struct __attribute__((packed)) {
  uint16_t d;
  uint8_t qs[32];  // low 8 bits of the 11-bit grid indices, one per 8 values
  uint16_t qh[8];  // per 32 values: 4 x 3 index bits, 3-bit scale (bits 12-14), delta sign (bit 15)
} block_iq1_s;

typedef struct __attribute__((packed)) {
  uint8_t qs[32];    // low 8 bits of the grid indices
  uint8_t qh[16];    // per 16 values: 3 index bits and a delta sign bit for each 8
  uint8_t scales[8]; // 4 u16: 4 x 3-bit scales (per 16 values) in bits 0-11, the f16 d's nibbles in bits 12-15
} block_iq1_m;

typedef struct __attribute__((packed)) {
  uint16_t d;
  uint8_t qs[16]; // value j: low nibble of qs[j], j + 16: high nibble (indices into kvalues_iq4nl)
} block_iq4_nl;

typedef struct __attribute__((packed)) {
  uint16_t d;
  uint16_t scales_h;  // per 32 values: the 6-bit scale's top 2 bits
  uint8_t scales_l[4]; // low 4 bits, two per byte
  uint8_t qs[128];     // per 32 values: 16 bytes as IQ4_NL
} block_iq4_xs;

_Static_assert(sizeof(block_iq2_xxs) == 66, "block_iq2_xxs size");
_Static_assert(sizeof(block_iq2_xs) == 74, "block_iq2_xs size");
_Static_assert(sizeof(block_iq2_s) == 82, "block_iq2_s size");
_Static_assert(sizeof(block_iq3_xxs) == 98, "block_iq3_xxs size");
_Static_assert(sizeof(block_iq3_s) == 110, "block_iq3_s size");
_Static_assert(sizeof(block_iq1_s) == 50, "block_iq1_s size");
_Static_assert(sizeof(block_iq1_m) == 56, "block_iq1_m size");
_Static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl size");
_Static_assert(sizeof(block_iq4_xs) == 136, "block_iq4_xs size");

size_t iq_row_bytes(int type, int K) {
  size_t b;
  switch (type) {
    case GGML_IQ4_NL: return K % QK8_0 ? 0 : (size_t)(K / QK8_0) * sizeof(block_iq4_nl);
    case GGML_IQ2_XXS: b = sizeof(block_iq2_xxs); break;
    case GGML_IQ2_XS: b = sizeof(block_iq2_xs); break;
    case GGML_IQ2_S: b = sizeof(block_iq2_s); break;
    case GGML_IQ3_XXS: b = sizeof(block_iq3_xxs); break;
    case GGML_IQ3_S: b = sizeof(block_iq3_s); break;
    case GGML_IQ1_S: b = sizeof(block_iq1_s); break;
    case GGML_IQ1_M: b = sizeof(block_iq1_m); break;
    case GGML_IQ4_XS: b = sizeof(block_iq4_xs); break;
    default: return 0;
  }
  return K % QK_K ? 0 : (size_t)(K / QK_K) * b;
}

static inline uint32_t load_u32(const void *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

/** The 32 sign bits of 4 ksigns codes (7 bits each, from bit 0 of `codes`): bit j set = value j negative. */
static inline uint32_t ksigns4(uint32_t codes) {
  return ksigns_iq2xs[codes & 127] | (uint32_t)ksigns_iq2xs[(codes >> 7) & 127] << 8 |
         (uint32_t)ksigns_iq2xs[(codes >> 14) & 127] << 16 | (uint32_t)ksigns_iq2xs[(codes >> 21) & 127] << 24;
}

/** IQ1_M's f16 super-block scale, spread over the top nibbles of its 4 scale words. */
static inline uint16_t iq1_m_d(const block_iq1_m *w) {
  const uint16_t s0 = load_u16(w->scales), s1 = load_u16(w->scales + 2), s2 = load_u16(w->scales + 4), s3 = load_u16(w->scales + 6);
  return (uint16_t)((s0 >> 12) | ((s1 >> 8) & 0x00f0) | ((s2 >> 4) & 0x0f00) | (s3 & 0xf000));
}

/** IQ1_M's 3-bit scale of values 16h..16h+15 of sub-block ib (h 0 or 1), as 2s + 1. */
static inline int iq1_m_ls(const block_iq1_m *w, int ib, int h) {
  return 2 * ((load_u16(w->scales + 2 * (ib / 2)) >> (6 * (ib % 2) + 3 * h)) & 7) + 1;
}

/** IQ4_XS's 6-bit scale of sub-block ib, minus 32. */
static inline int iq4_xs_ls(const block_iq4_xs *w, int ib) {
  return (((w->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) | (((load_u16(&w->scales_h) >> (2 * ib)) & 3) << 4)) - 32;
}

/** A grid index's 8 bytes (the 64-bit grids hold 8 values, the 32-bit ones 4). */
static inline const uint8_t *g8(const uint64_t *grid, int i) { return (const uint8_t *)(grid + i); }
static inline const uint8_t *g4(const uint32_t *grid, int i) { return (const uint8_t *)(grid + i); }

// ---------------------------------------------------------------------------------------------------- scalar C

/** One super-block's weights w[256] (signed), scales ls[16] (per 16 values) and its f16 d. */
typedef void (*iq_unpack_fn)(const void *blk, int8_t w[QK_K], int ls[16], uint16_t *d);

/** The i-quants against Q8_K, each with its mult (see the top). */
#define IQ_Q8K_TYPES(X) \
  X(iq2_xxs, 0.125f) X(iq2_xs, 0.125f) X(iq2_s, 0.125f) X(iq3_xxs, 0.25f) X(iq3_s, 1.0f) X(iq1_s, 0.125f) X(iq1_m, 0.125f) X(iq4_xs, 1.0f)

/** Values 8l..8l+7 from 8 grid bytes and a sign byte. */
static inline void put8(int8_t *w, const uint8_t *grid, uint8_t signs) {
  for (int j = 0; j < 8; j++) w[j] = (int8_t)(signs >> j & 1 ? -grid[j] : grid[j]);
}
static inline void put4x2(int8_t *w, const uint8_t *g1, const uint8_t *g2, uint8_t signs) {
  for (int j = 0; j < 4; j++) {
    w[j] = (int8_t)(signs >> j & 1 ? -g1[j] : g1[j]);
    w[j + 4] = (int8_t)(signs >> (j + 4) & 1 ? -g2[j] : g2[j]);
  }
}

static void iq2_xxs_unpack(const void *blk, int8_t w[QK_K], int ls[16], uint16_t *d) {
  const block_iq2_xxs *b = blk;
  for (int ib = 0; ib < 8; ib++) {
    const uint8_t *q = b->qs + 8 * ib;
    const uint32_t aux = load_u32(q + 4), s = ksigns4(aux);
    for (int l = 0; l < 4; l++) put8(w + 32 * ib + 8 * l, g8(iq2xxs_grid, q[l]), (uint8_t)(s >> 8 * l));
    ls[2 * ib] = ls[2 * ib + 1] = 2 * (int)(aux >> 28) + 1;
  }
  *d = b->d;
}

/** IQ2_XS / IQ2_S: a sub-block's two 4-bit scales (first 16 values: low nibble) as 2s + 1. */
static inline void nibble_scales(uint8_t s, int ls[2]) { ls[0] = 2 * (s & 0xf) + 1, ls[1] = 2 * (s >> 4) + 1; }

static void iq2_xs_unpack(const void *blk, int8_t w[QK_K], int ls[16], uint16_t *d) {
  const block_iq2_xs *b = blk;
  for (int ib = 0; ib < 8; ib++) {
    for (int l = 0; l < 4; l++) {
      const uint16_t q = load_u16(&b->qs[4 * ib + l]);
      put8(w + 32 * ib + 8 * l, g8(iq2xs_grid, q & 511), ksigns_iq2xs[q >> 9]);
    }
    nibble_scales(b->scales[ib], ls + 2 * ib);
  }
  *d = b->d;
}

static void iq2_s_unpack(const void *blk, int8_t w[QK_K], int ls[16], uint16_t *d) {
  const block_iq2_s *b = blk;
  for (int ib = 0; ib < 8; ib++) {
    for (int l = 0; l < 4; l++) {
      const int i = b->qs[4 * ib + l] | ((b->qh[ib] << (8 - 2 * l)) & 0x300);
      put8(w + 32 * ib + 8 * l, g8(iq2s_grid, i), b->signs[4 * ib + l]);
    }
    nibble_scales(b->scales[ib], ls + 2 * ib);
  }
  *d = b->d;
}

static void iq3_xxs_unpack(const void *blk, int8_t w[QK_K], int ls[16], uint16_t *d) {
  const block_iq3_xxs *b = blk;
  for (int ib = 0; ib < 8; ib++) {
    const uint32_t aux = load_u32(b->gas + 4 * ib), s = ksigns4(aux);
    const uint8_t *q = b->qs + 8 * ib;
    for (int l = 0; l < 4; l++) put4x2(w + 32 * ib + 8 * l, g4(iq3xxs_grid, q[2 * l]), g4(iq3xxs_grid, q[2 * l + 1]), (uint8_t)(s >> 8 * l));
    ls[2 * ib] = ls[2 * ib + 1] = 2 * (int)(aux >> 28) + 1;
  }
  *d = b->d;
}

static void iq3_s_unpack(const void *blk, int8_t w[QK_K], int ls[16], uint16_t *d) {
  const block_iq3_s *b = blk;
  for (int ib = 0; ib < 8; ib++) {
    const uint8_t *q = b->qs + 8 * ib;
    for (int l = 0; l < 4; l++) {
      const int i1 = q[2 * l] | ((b->qh[ib] << (8 - 2 * l)) & 256), i2 = q[2 * l + 1] | ((b->qh[ib] << (7 - 2 * l)) & 256);
      put4x2(w + 32 * ib + 8 * l, g4(iq3s_grid, i1), g4(iq3s_grid, i2), b->signs[4 * ib + l]);
    }
    ls[2 * ib] = ls[2 * ib + 1] = 2 * ((b->scales[ib / 2] >> (4 * (ib % 2))) & 0xf) + 1;
  }
  *d = b->d;
}

static void iq1_s_unpack(const void *blk, int8_t w[QK_K], int ls[16], uint16_t *d) {
  const block_iq1_s *b = blk;
  for (int ib = 0; ib < 8; ib++) {
    const uint16_t qh = load_u16(&b->qh[ib]);
    const int delta = qh & 0x8000 ? -1 : 1;
    for (int l = 0; l < 4; l++) {
      const int8_t *g = (const int8_t *)(iq1s_grid + (b->qs[4 * ib + l] | (((qh >> 3 * l) & 7) << 8)));
      for (int j = 0; j < 8; j++) w[32 * ib + 8 * l + j] = (int8_t)(8 * g[j] + delta);
    }
    ls[2 * ib] = ls[2 * ib + 1] = 2 * ((qh >> 12) & 7) + 1;
  }
  *d = b->d;
}

static void iq1_m_unpack(const void *blk, int8_t w[QK_K], int ls[16], uint16_t *d) {
  const block_iq1_m *b = blk;
  for (int ib = 0; ib < 8; ib++) {
    for (int l = 0; l < 4; l++) {
      const uint8_t qh = b->qh[2 * ib + l / 2];
      const int8_t *g = (const int8_t *)(iq1s_grid + (b->qs[4 * ib + l] | ((qh << (8 - 4 * (l % 2))) & 0x700)));
      const int delta = qh & (l % 2 ? 0x80 : 0x08) ? -1 : 1;
      for (int j = 0; j < 8; j++) w[32 * ib + 8 * l + j] = (int8_t)(8 * g[j] + delta);
    }
    ls[2 * ib] = iq1_m_ls(b, ib, 0);
    ls[2 * ib + 1] = iq1_m_ls(b, ib, 1);
  }
  *d = iq1_m_d(b);
}

static void iq4_xs_unpack(const void *blk, int8_t w[QK_K], int ls[16], uint16_t *d) {
  const block_iq4_xs *b = blk;
  for (int ib = 0; ib < 8; ib++) {
    for (int j = 0; j < 16; j++) {
      w[32 * ib + j] = kvalues_iq4nl[b->qs[16 * ib + j] & 0xf];
      w[32 * ib + j + 16] = kvalues_iq4nl[b->qs[16 * ib + j] >> 4];
    }
    ls[2 * ib] = ls[2 * ib + 1] = iq4_xs_ls(b, ib);
  }
  *d = b->d;
}

/** Sum of 16 weights times 16 activations. */
typedef int (*group_sum_fn)(const int8_t *v, const int8_t *q);
static inline int group_sum_scalar(const int8_t *v, const int8_t *q) {
  int s = 0;
  for (int j = 0; j < 16; j++) s += v[j] * q[j];
  return s;
}

/** A row's dot from the type's decoding: per super-block d * x.d * mult * sum_g ls_g * group sum g. */
static inline float iq_dot_unpacked(int n, const uint8_t *w, size_t bytes, const block_q8_K *x, iq_unpack_fn unpack, float mult, group_sum_fn gsum) {
  float sum = 0;
  for (int i = 0; i < n / QK_K; i++) {
    int8_t v[QK_K];
    int ls[16];
    uint16_t d;
    unpack(w + (size_t)i * bytes, v, ls, &d);
    int isum = 0;
    for (int g = 0; g < 16; g++) isum += ls[g] * gsum(v + 16 * g, x[i].qs + 16 * g);
    sum += fp16_to_f32(d) * x[i].d * mult * (float)isum;
  }
  return sum;
}

#define SCALAR_DOT(T, MULT) \
  float dot_##T##_scalar(int n, const void *restrict w, const void *restrict x) { return iq_dot_unpacked(n, w, sizeof(block_##T), x, T##_unpack, MULT, group_sum_scalar); }
IQ_Q8K_TYPES(SCALAR_DOT)
#undef SCALAR_DOT

float dot_iq4_nl_scalar(int n, const void *restrict vw, const void *restrict vx) {
  const block_iq4_nl *w = vw;
  const block_q8_0 *x = vx;
  float sum = 0;
  for (int i = 0; i < n / QK8_0; i++) {
    int s = 0;
    for (int j = 0; j < 16; j++) s += kvalues_iq4nl[w[i].qs[j] & 0xf] * x[i].qs[j] + kvalues_iq4nl[w[i].qs[j] >> 4] * x[i].qs[j + 16];
    sum += fp16_to_f32(w[i].d) * fp16_to_f32(x[i].d) * (float)s;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------------- AVX2
#if defined(__x86_64__) || defined(__i386__)
// Each type decodes sub-block ib (32 values) into magnitudes u (unsigned bytes), signs s (applied to the
// activations with sign_epi8: negative negates, zero zeroes) and the scales of its two halves; one driver then
// serves 1 token (dot) or 4 (dot4, the decoding shared): per token the arithmetic is the same.

typedef struct {
  __m256i u, s;
  __m256i sc; // int16 scale of values 0-15 (low lane) and 16-31 (high lane)
} iq_sub;

/** Sign bytes +-1 from a 32-bit mask (bit j set: value j negative). */
TARGET_AVX2 static inline __m256i signs_of(uint32_t m) { return _mm256_or_si256(bytes_of_bits(m), _mm256_set1_epi8(1)); }

/** The scale vector of a sub-block whose two halves have scales lo and hi, or one scale for all 32 values. */
TARGET_AVX2 static inline __m256i scales2(int lo, int hi) {
  return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)lo)), _mm_set1_epi16((short)hi), 1);
}
TARGET_AVX2 static inline __m256i scale1(int ls) { return _mm256_set1_epi16((short)ls); }

// ksigns_iq2xs as 8 sign bytes (+1 / -1) per 7-bit code: a sub-block's 32 signs are 4 loads instead of 4 lookups
// and a bit spread (built once, at load).
static uint64_t ksigns_bytes[128];
__attribute__((constructor)) static void init_ksigns_bytes(void) {
  for (int i = 0; i < 128; i++) {
    uint64_t v = 0;
    for (int j = 0; j < 8; j++) v |= (uint64_t)(ksigns_iq2xs[i] >> j & 1 ? 0xff : 0x01) << (8 * j);
    ksigns_bytes[i] = v;
  }
}
/** The +-1 sign bytes of 4 ksigns codes (7 bits each, from bit 0 of `codes`). */
TARGET_AVX2 static inline __m256i ksigns4_bytes(uint32_t codes) {
  return _mm256_set_epi64x((long long)ksigns_bytes[(codes >> 21) & 127], (long long)ksigns_bytes[(codes >> 14) & 127],
                           (long long)ksigns_bytes[(codes >> 7) & 127], (long long)ksigns_bytes[codes & 127]);
}

/** Signed weights v (|v| <= 127) as magnitudes and signs. */
TARGET_AVX2 static inline void from_signed(iq_sub *o, __m256i v) { o->u = _mm256_sign_epi8(v, v), o->s = v; }

TARGET_AVX2 static inline void iq2_xxs_sub(const block_iq2_xxs *b, int ib, iq_sub *o) {
  const uint8_t *q = b->qs + 8 * ib;
  const uint32_t aux = load_u32(q + 4);
  o->u = _mm256_set_epi64x((long long)iq2xxs_grid[q[3]], (long long)iq2xxs_grid[q[2]], (long long)iq2xxs_grid[q[1]], (long long)iq2xxs_grid[q[0]]);
  o->s = ksigns4_bytes(aux);
  o->sc = scale1(2 * (int)(aux >> 28) + 1);
}

TARGET_AVX2 static inline void iq2_xs_sub(const block_iq2_xs *b, int ib, iq_sub *o) {
  uint16_t q[4];
  memcpy(q, &b->qs[4 * ib], 8);
  o->u = _mm256_set_epi64x((long long)iq2xs_grid[q[3] & 511], (long long)iq2xs_grid[q[2] & 511], (long long)iq2xs_grid[q[1] & 511], (long long)iq2xs_grid[q[0] & 511]);
  o->s = signs_of(ksigns_iq2xs[q[0] >> 9] | (uint32_t)ksigns_iq2xs[q[1] >> 9] << 8 | (uint32_t)ksigns_iq2xs[q[2] >> 9] << 16 | (uint32_t)ksigns_iq2xs[q[3] >> 9] << 24);
  o->sc = scales2(2 * (b->scales[ib] & 0xf) + 1, 2 * (b->scales[ib] >> 4) + 1);
}

TARGET_AVX2 static inline void iq2_s_sub(const block_iq2_s *b, int ib, iq_sub *o) {
  const uint8_t *q = b->qs + 4 * ib;
  const int h = b->qh[ib];
  o->u = _mm256_set_epi64x((long long)iq2s_grid[q[3] | ((h << 2) & 0x300)], (long long)iq2s_grid[q[2] | ((h << 4) & 0x300)],
                           (long long)iq2s_grid[q[1] | ((h << 6) & 0x300)], (long long)iq2s_grid[q[0] | ((h << 8) & 0x300)]);
  o->s = signs_of(load_u32(b->signs + 4 * ib));
  o->sc = scales2(2 * (b->scales[ib] & 0xf) + 1, 2 * (b->scales[ib] >> 4) + 1);
}

TARGET_AVX2 static inline void iq3_xxs_sub(const block_iq3_xxs *b, int ib, iq_sub *o) {
  const uint8_t *q = b->qs + 8 * ib;
  const uint32_t aux = load_u32(b->gas + 4 * ib);
  o->u = _mm256_set_epi32((int)iq3xxs_grid[q[7]], (int)iq3xxs_grid[q[6]], (int)iq3xxs_grid[q[5]], (int)iq3xxs_grid[q[4]],
                          (int)iq3xxs_grid[q[3]], (int)iq3xxs_grid[q[2]], (int)iq3xxs_grid[q[1]], (int)iq3xxs_grid[q[0]]);
  o->s = ksigns4_bytes(aux);
  o->sc = scale1(2 * (int)(aux >> 28) + 1);
}

TARGET_AVX2 static inline void iq3_s_sub(const block_iq3_s *b, int ib, iq_sub *o) {
  const uint8_t *q = b->qs + 8 * ib;
  const int h = b->qh[ib];
#define IX(k) (int)iq3s_grid[q[k] | ((h << (8 - k)) & 256)]
  o->u = _mm256_set_epi32(IX(7), IX(6), IX(5), IX(4), IX(3), IX(2), IX(1), IX(0));
#undef IX
  o->s = signs_of(load_u32(b->signs + 4 * ib));
  o->sc = scale1(2 * ((b->scales[ib / 2] >> (4 * (ib % 2))) & 0xf) + 1);
}

/** 8 * grid + delta for 4 IQ1 grid entries (values in {-1, 0, 1}) and one delta byte per 8 values. */
TARGET_AVX2 static inline __m256i iq1_weights(int i0, int i1, int i2, int i3, __m256i delta) {
  const __m256i g = _mm256_set_epi64x((long long)iq1s_grid[i3], (long long)iq1s_grid[i2], (long long)iq1s_grid[i1], (long long)iq1s_grid[i0]);
  return _mm256_add_epi8(_mm256_sign_epi8(_mm256_set1_epi8(8), g), delta);
}

TARGET_AVX2 static inline void iq1_s_sub(const block_iq1_s *b, int ib, iq_sub *o) {
  const uint8_t *q = b->qs + 4 * ib;
  const int qh = load_u16(&b->qh[ib]);
  from_signed(o, iq1_weights(q[0] | ((qh << 8) & 0x700), q[1] | ((qh << 5) & 0x700), q[2] | ((qh << 2) & 0x700), q[3] | ((qh >> 1) & 0x700),
                             _mm256_set1_epi8(qh & 0x8000 ? -1 : 1)));
  o->sc = scale1(2 * ((qh >> 12) & 7) + 1);
}

TARGET_AVX2 static inline void iq1_m_sub(const block_iq1_m *b, int ib, iq_sub *o) {
  const uint8_t *q = b->qs + 4 * ib;
  const int h0 = b->qh[2 * ib], h1 = b->qh[2 * ib + 1];
  const long long p = 0x0101010101010101LL, m = -1LL; // delta +1 or -1 in every byte
  const __m256i delta = _mm256_set_epi64x(h1 & 0x80 ? m : p, h1 & 0x08 ? m : p, h0 & 0x80 ? m : p, h0 & 0x08 ? m : p);
  from_signed(o, iq1_weights(q[0] | ((h0 << 8) & 0x700), q[1] | ((h0 << 4) & 0x700), q[2] | ((h1 << 8) & 0x700), q[3] | ((h1 << 4) & 0x700), delta));
  o->sc = scales2(iq1_m_ls(b, ib, 0), iq1_m_ls(b, ib, 1));
}

TARGET_AVX2 static inline void iq4_xs_sub(const block_iq4_xs *b, int ib, iq_sub *o) {
  from_signed(o, nibble_values(kvalues_iq4nl, b->qs + 16 * ib));
  o->sc = scale1(iq4_xs_ls(b, ib));
}

/** acc + per half scale * sum of u * (a with signs s). */
TARGET_AVX2 static inline __m256i acc_sub(__m256i acc, const iq_sub *o, const int8_t *a) {
  const __m256i p = _mm256_maddubs_epi16(o->u, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)a), o->s));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, o->sc));
}
/** The same with AVX-512 VNNI's vpdpwssd (madd and add in one; the same integers). */
TARGET_AVX512 static inline __m256i acc_sub_vnni(__m256i acc, const iq_sub *o, const int8_t *a) {
  const __m256i p = _mm256_maddubs_epi16(o->u, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)a), o->s));
  return _mm256_dpwssd_epi32(acc, p, o->sc);
}

/** sum + (d * xd * mult) * isum per lane, one rounding for the multiply-add (FMA), isum the exact integer block total
 *  (acc + acc2 summed over lanes): every x86 path (dot, dot4, the panels of 8 rows) ends a super-block this way, so
 *  they agree bit for bit. Lane u of sum: token u. */
TARGET_AVX2 static inline __m128 block_totals_1(__m128 sum, float d, const block_q8_K *const *x, float mult, const __m256i *acc, const __m256i *acc2) {
  const __m128 f = _mm_cvtepi32_ps(_mm_cvtsi32_si128(hsum_i32(_mm256_add_epi32(acc[0], acc2[0]))));
  return _mm_fmadd_ss(_mm_set_ss(d * x[0]->d * mult), f, sum);
}
TARGET_AVX2 static inline __m128 block_totals_4(__m128 sum, float d, const block_q8_K *const *x, float mult, const __m256i *acc, const __m256i *acc2) {
  const __m256i a = _mm256_hadd_epi32(_mm256_add_epi32(acc[0], acc2[0]), _mm256_add_epi32(acc[1], acc2[1]));
  const __m256i b = _mm256_hadd_epi32(_mm256_add_epi32(acc[2], acc2[2]), _mm256_add_epi32(acc[3], acc2[3]));
  const __m256i h = _mm256_hadd_epi32(a, b); // per 128-bit lane: partial totals of tokens 0, 1, 2, 3
  const __m128 f = _mm_cvtepi32_ps(_mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
  const __m128 xd = _mm_setr_ps(x[0]->d, x[1]->d, x[2]->d, x[3]->d);
  return _mm_fmadd_ps(_mm_mul_ps(_mm_mul_ps(_mm_set1_ps(d), xd), _mm_set1_ps(mult)), f, sum);
}
TARGET_AVX2 static inline void store_totals_1(__m128 sum, float *out, size_t ostride) { (void)ostride, out[0] = _mm_cvtss_f32(sum); }
TARGET_AVX2 static inline void store_totals_4(__m128 sum, float *out, size_t ostride) {
  float s[4];
  _mm_storeu_ps(s, sum);
  for (int u = 0; u < 4; u++) out[u * ostride] = s[u];
}

static inline float iq1_m_scale(const block_iq1_m *b) { return fp16_to_f32(iq1_m_d(b)); }
#define STD_SCALE(T) \
  static inline float T##_scale(const block_##T *b) { return fp16_to_f32(b->d); }
STD_SCALE(iq2_xxs)
STD_SCALE(iq2_xs)
STD_SCALE(iq2_s)
STD_SCALE(iq3_xxs)
STD_SCALE(iq3_s)
STD_SCALE(iq1_s)
STD_SCALE(iq4_xs)
#undef STD_SCALE

// NT tokens (xstride bytes apart) against one row of type T; out[u * ostride] for token u.
#define IQ_DOTN(T, MULT, NT, ACC)                                                               \
  const block_##T *w = vw;                                                                 \
  __m128 sum = _mm_setzero_ps(); /* token u in lane u: exact block totals, then block_totals_NT */ \
  for (int i = 0; i < n / QK_K; i++) {                                                     \
    __m256i acc[NT], acc2[NT]; /* even and odd sub-blocks: two dependency chains */        \
    const block_q8_K *x[NT];                                                               \
    for (int u = 0; u < NT; u++) acc[u] = acc2[u] = _mm256_setzero_si256(), x[u] = (const block_q8_K *)((const uint8_t *)vx + u * xstride) + i; \
    for (int ib = 0; ib < 8; ib += 2) {                                                    \
      iq_sub o, o2;                                                                        \
      T##_sub(&w[i], ib, &o);                                                              \
      T##_sub(&w[i], ib + 1, &o2);                                                         \
      for (int u = 0; u < NT; u++) {                                                       \
        acc[u] = ACC(acc[u], &o, x[u]->qs + 32 * ib);                                      \
        acc2[u] = ACC(acc2[u], &o2, x[u]->qs + 32 * ib + 32);                              \
      }                                                                                    \
    }                                                                                      \
    sum = block_totals_##NT(sum, T##_scale(&w[i]), x, MULT, acc, acc2);                    \
  }                                                                                        \
  store_totals_##NT(sum, out, ostride);

#define IQ_X86(T, MULT, TARGET, SUFFIX, ACC)                                                                      \
  TARGET float dot_##T##_##SUFFIX(int n, const void *restrict vw, const void *restrict vx) {                       \
    float r;                                                                                                       \
    const size_t xstride = 0, ostride = 0;                                                                         \
    float *out = &r;                                                                                               \
    IQ_DOTN(T, MULT, 1, ACC)                                                                                       \
    return r;                                                                                                      \
  }                                                                                                                \
  TARGET void dot4_##T##_##SUFFIX(int n, const void *restrict vw, const void *restrict vx, size_t xstride, float *out, size_t ostride) { \
    IQ_DOTN(T, MULT, 4, ACC)                                                                                       \
  }
#define IQ_AVX2(T, MULT) IQ_X86(T, MULT, TARGET_AVX2, avx2, acc_sub)
#define IQ_AVX512(T, MULT) IQ_X86(T, MULT, TARGET_AVX512, avx512, acc_sub_vnni)
IQ_Q8K_TYPES(IQ_AVX2)
IQ_Q8K_TYPES(IQ_AVX512)
#undef IQ_AVX512
#undef IQ_X86
#undef IQ_AVX2
#undef IQ_DOTN

// Panels (prefill): a group of 8 weight rows decoded once into int8, rows interleaved by 4 values, then every token of
// the batch runs integer dots against it: 4 values x 8 rows per instruction (VNNI's vpdpbusd), no decoding per token.
// Per row and super-block the integer total is exact and ends as block_totals_NT ends it in the dots: the same bits.

/** One super-block of 8 rows: d (T##_scale), scales per 16 values, signed values interleaved by 4. */
typedef struct {
  float d[8];
  int32_t bias[8];   // VNNI only (panel_bias): 128 * sum_g ls_g * (sum of group g's values)
  int8_t ls[16 * 8]; // ls[g * 8 + r]: row r's scale of values 16g..16g+15
  int8_t qs[QK_K * 8]; // qs[128 g + 32 k + 4 r + j]: row r's value 16g + 4k + j
} iq_panel_block;
_Static_assert(sizeof(iq_panel_block) % 64 == 0, "iq_panel_block keeps the activations after the panel aligned");

#define IQ_PANEL_DECODE(T, MULT)                                                                                     \
  TARGET_AVX2 static void panel_decode_##T(const void *vw, size_t wrow, int nb, void *vp) {                          \
    iq_panel_block *p = vp;                                                                                          \
    for (int i = 0; i < nb; i++, p++) {                                                                              \
      const block_##T *b[8];                                                                                         \
      for (int r = 0; r < 8; r++) b[r] = (const block_##T *)((const uint8_t *)vw + (size_t)r * wrow) + i, p->d[r] = T##_scale(b[r]); \
      for (int ib = 0; ib < 8; ib++) {                                                                               \
        __m256i v[8];                                                                                                \
        for (int r = 0; r < 8; r++) {                                                                                \
          iq_sub o;                                                                                                  \
          T##_sub(b[r], ib, &o);                                                                                     \
          v[r] = _mm256_sign_epi8(o.u, o.s);                                                                         \
          p->ls[(2 * ib) * 8 + r] = (int8_t)_mm256_extract_epi16(o.sc, 0);                                           \
          p->ls[(2 * ib + 1) * 8 + r] = (int8_t)_mm256_extract_epi16(o.sc, 8);                                       \
        }                                                                                                            \
        panel_interleave(p->qs + 256 * ib, v);                                                                       \
      }                                                                                                              \
    }                                                                                                                \
  }
IQ_Q8K_TYPES(IQ_PANEL_DECODE)
#undef IQ_PANEL_DECODE

// The gemm reads the tokens' activation values from u (prep: nb * 256 bytes per token, contiguous), 4 at a time
// broadcast from memory; their scales from the Q8_K rows. VNNI: u = q + 128 (panel_prep_xor: unsigned, as vpdpbusd
// takes them; the panel's bias takes the 128s back out); AVX2: u = q, multiplied as |w| times q with w's signs.
/** The panel's bias (VNNI): per row, 128 * sum_g ls_g * (sum of group g's values), from the interleaved values (lane
 *  r of a vector holds row r's 4 values: a dot with ones sums them). */
TARGET_AVX512 static void panel_bias(int nb, void *vp) {
  iq_panel_block *p = vp;
  const __m256i ones = _mm256_set1_epi8(1);
  for (int i = 0; i < nb; i++, p++) {
    __m256i bias = _mm256_setzero_si256();
    for (int g = 0; g < 16; g++) {
      __m256i s = _mm256_setzero_si256();
      for (int k = 0; k < 4; k++) s = _mm256_dpbusd_epi32(s, ones, _mm256_loadu_si256((const __m256i *)(p->qs + 128 * g + 32 * k)));
      bias = _mm256_add_epi32(bias, _mm256_mullo_epi32(s, _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p->ls + 8 * g)))));
    }
    _mm256_storeu_si256((__m256i *)p->bias, _mm256_slli_epi32(bias, 7));
  }
}

/** acc + the dots of 4 values (u broadcast) with 8 rows' 4 values (w; aw = |w|). */
TARGET_AVX512 static inline __m256i panel_dot4_vnni(__m256i acc, __m256i w, __m256i aw, const uint8_t *u) {
  (void)aw;
  return _mm256_dpbusd_epi32(acc, _mm256_set1_epi32((int)load_u32(u)), w);
}
TARGET_AVX2 static inline __m256i panel_dot4_avx2(__m256i acc, __m256i w, __m256i aw, const uint8_t *u) {
  const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(_mm256_set1_epi32((int)load_u32(u)), w));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

// NT tokens against a panel of nb super-blocks; out[t * ostride + r] for token t, row r. SPAN: sub-blocks of 16 that
// share one scale (2 for the types with one scale per 32 values: half the scale multiplies).
#define IQ_PANEL_GEMM(NT, SPAN, DOT4, BIAS)                                                                           \
  const iq_panel_block *p = vp;                                                                                      \
  const size_t urow = (size_t)nb * QK_K;                                                                             \
  __m256 sum[NT];                                                                                                    \
  for (int t = 0; t < NT; t++) sum[t] = _mm256_setzero_ps();                                                         \
  for (int i = 0; i < nb; i++, p++) {                                                                                \
    __m256i tot[NT];                                                                                                 \
    const uint8_t *ui = u + (size_t)i * QK_K;                                                                        \
    for (int t = 0; t < NT; t++) tot[t] = _mm256_setzero_si256();                                                    \
    for (int g = 0; g < 16; g += SPAN) {                                                                             \
      __m256i acc[NT];                                                                                               \
      for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_si256();                                                  \
      for (int k = 0; k < 4 * SPAN; k++) {                                                                           \
        const __m256i w = _mm256_loadu_si256((const __m256i *)(p->qs + 128 * g + 32 * k));                           \
        const __m256i aw = BIAS ? w : _mm256_sign_epi8(w, w);                                                        \
        for (int t = 0; t < NT; t++) acc[t] = DOT4(acc[t], w, aw, ui + t * urow + 16 * g + 4 * k);                    \
      }                                                                                                              \
      const __m256i ls = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p->ls + 8 * g)));                     \
      for (int t = 0; t < NT; t++) tot[t] = _mm256_add_epi32(tot[t], _mm256_mullo_epi32(acc[t], ls));                \
    }                                                                                                                \
    const __m256 d = _mm256_loadu_ps(p->d);                                                                          \
    const __m256i bias = BIAS ? _mm256_loadu_si256((const __m256i *)p->bias) : _mm256_setzero_si256();                \
    for (int t = 0; t < NT; t++) { /* as block_totals_NT, per lane */                                                 \
      const float xd = ((const block_q8_K *)((const uint8_t *)vx + t * xstride) + i)->d;                             \
      sum[t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(d, _mm256_set1_ps(xd)), _mm256_set1_ps(mult)),            \
                               _mm256_cvtepi32_ps(_mm256_sub_epi32(tot[t], bias)), sum[t]);                           \
    }                                                                                                                \
  }                                                                                                                  \
  for (int t = 0; t < NT; t++) _mm256_storeu_ps(out + t * ostride, sum[t]);

#define IQ_PANEL_NT(TARGET, NAME, NT, SPAN, DOT4, BIAS)                                                               \
  TARGET static void NAME(int nb, const void *vp, const void *vx, size_t xstride, const uint8_t *u, float mult, float *out, size_t ostride) { \
    IQ_PANEL_GEMM(NT, SPAN, DOT4, BIAS)                                                                              \
  }
#define IQ_PANEL_X86(TARGET, SUFFIX, SPAN, DOT4, BIAS)                                                                \
  IQ_PANEL_NT(TARGET, panel_gemm4_##SPAN##_##SUFFIX, 4, SPAN, DOT4, BIAS)                                            \
  IQ_PANEL_NT(TARGET, panel_gemm1_##SPAN##_##SUFFIX, 1, SPAN, DOT4, BIAS)                                            \
  TARGET static void panel_gemm_##SPAN##_##SUFFIX(int nb, const void *vp, const void *vx, size_t xstride, const uint8_t *u, int nt, float mult, \
                                                   float *out, size_t ostride) {                                      \
    const size_t urow = (size_t)nb * QK_K;                                                                           \
    int t = 0;                                                                                                       \
    for (; t + 4 <= nt; t += 4) panel_gemm4_##SPAN##_##SUFFIX(nb, vp, (const uint8_t *)vx + t * xstride, xstride, u + t * urow, mult, out + t * ostride, ostride); \
    for (; t < nt; t++) panel_gemm1_##SPAN##_##SUFFIX(nb, vp, (const uint8_t *)vx + t * xstride, xstride, u + t * urow, mult, out + t * ostride, ostride); \
  }
IQ_PANEL_X86(TARGET_AVX2, avx2, 1, panel_dot4_avx2, 0)
IQ_PANEL_X86(TARGET_AVX2, avx2, 2, panel_dot4_avx2, 0)
IQ_PANEL_X86(TARGET_AVX512, avx512, 1, panel_dot4_vnni, 1)
IQ_PANEL_X86(TARGET_AVX512, avx512, 2, panel_dot4_vnni, 1)
#undef IQ_PANEL_X86
#undef IQ_PANEL_NT
#undef IQ_PANEL_GEMM

/** Sub-blocks of 16 per scale: 2 where the type has one scale per 32 values. */
#define SPAN_iq2_xxs 2
#define SPAN_iq2_xs 1
#define SPAN_iq2_s 1
#define SPAN_iq3_xxs 2
#define SPAN_iq3_s 2
#define SPAN_iq1_s 2
#define SPAN_iq1_m 1
#define SPAN_iq4_xs 2
#define CAT3(a, b, c) a##b##c
#define GEMM_OF(SPAN, SUFFIX) CAT3(panel_gemm_, SPAN, _##SUFFIX)
#define VNNI_DECODE(T, MULT)                                                                    \
  TARGET_AVX512 static void panel_decode_##T##_vnni(const void *vw, size_t wrow, int nb, void *vp) { \
    panel_decode_##T(vw, wrow, nb, vp);                                                           \
    panel_bias(nb, vp);                                                                           \
  }
IQ_Q8K_TYPES(VNNI_DECODE)
#undef VNNI_DECODE
#define PANEL_KERNELS(T, MULT) \
  {panel_decode_##T, panel_prep_copy, GEMM_OF(SPAN_##T, avx2), MULT, sizeof(iq_panel_block)},                        \
      {panel_decode_##T##_vnni, panel_prep_xor, GEMM_OF(SPAN_##T, avx512), MULT, sizeof(iq_panel_block)},
static const panel_kernels PANELS[][2] = {
#define ROW(T, MULT) {PANEL_KERNELS(T, MULT)},
    IQ_Q8K_TYPES(ROW)
#undef ROW
};
#undef PANEL_KERNELS
#undef GEMM_OF
#undef CAT3

TARGET_AVX2 float dot_iq4_nl_avx2(int n, const void *restrict vw, const void *restrict vx) {
  const block_iq4_nl *w = vw;
  const block_q8_0 *x = vx;
  __m256 acc = _mm256_setzero_ps();
  for (int i = 0; i < n / QK8_0; i++) {
    acc = acc_q8_0_signed(acc, nibble_values(kvalues_iq4nl, w[i].qs), &x[i], fp16_to_f32(w[i].d));
  }
  return hsum_ps(acc);
}
#endif

// ---------------------------------------------------------------------------------------------------- NEON
#if defined(__ARM_NEON) && defined(__aarch64__)
// The scalar C's decoding, then its 16-value group sums as int8 dot products: the same integers, so the same bits.

static inline int group_sum_neon(const int8_t *v, const int8_t *q) { return vaddvq_s32(dot16(vdupq_n_s32(0), vld1q_s8(v), vld1q_s8(q))); }

#define NEON_DOT(T, MULT) \
  float dot_##T##_neon(int n, const void *restrict w, const void *restrict x) { return iq_dot_unpacked(n, w, sizeof(block_##T), x, T##_unpack, MULT, group_sum_neon); }
IQ_Q8K_TYPES(NEON_DOT)
#undef NEON_DOT

float dot_iq4_nl_neon(int n, const void *restrict vw, const void *restrict vx) {
  const block_iq4_nl *w = vw;
  const block_q8_0 *x = vx;
  const int8x16_t kv = vld1q_s8(kvalues_iq4nl);
  float sum = 0;
  for (int i = 0; i < n / QK8_0; i++) sum += fp16_to_f32(w[i].d) * fp16_to_f32(x[i].d) * (float)nibble_dot32(kv, w[i].qs, x[i].qs);
  return sum;
}
#endif

dot_fn iq_dot(int level, int type) {
#if defined(__x86_64__) || defined(__i386__)
  if (level == 3) switch (type) {
#define PICK512(T) return dot_##T##_avx512
      case GGML_IQ2_XXS: PICK512(iq2_xxs);
      case GGML_IQ2_XS: PICK512(iq2_xs);
      case GGML_IQ2_S: PICK512(iq2_s);
      case GGML_IQ3_XXS: PICK512(iq3_xxs);
      case GGML_IQ3_S: PICK512(iq3_s);
      case GGML_IQ1_S: PICK512(iq1_s);
      case GGML_IQ1_M: PICK512(iq1_m);
      case GGML_IQ4_XS: PICK512(iq4_xs);
#undef PICK512
      default: level = 1; // IQ4_NL: the AVX2 code
    }
#endif
  switch (type) {
#if defined(__ARM_NEON) && defined(__aarch64__)
#define PICK(T) return level == 2 ? dot_##T##_neon : dot_##T##_scalar
#else
#define PICK(T) PICK_AVX2(T, level == 1)
#endif
    case GGML_IQ2_XXS: PICK(iq2_xxs);
    case GGML_IQ2_XS: PICK(iq2_xs);
    case GGML_IQ2_S: PICK(iq2_s);
    case GGML_IQ3_XXS: PICK(iq3_xxs);
    case GGML_IQ3_S: PICK(iq3_s);
    case GGML_IQ1_S: PICK(iq1_s);
    case GGML_IQ1_M: PICK(iq1_m);
    case GGML_IQ4_NL: PICK(iq4_nl);
    case GGML_IQ4_XS: PICK(iq4_xs);
#undef PICK
    default: return NULL;
  }
}

dot4_fn iq_dot4(int level, int type) {
#if defined(__x86_64__) || defined(__i386__)
  if (level == 3) switch (type) {
      case GGML_IQ2_XXS: return dot4_iq2_xxs_avx512;
      case GGML_IQ2_XS: return dot4_iq2_xs_avx512;
      case GGML_IQ2_S: return dot4_iq2_s_avx512;
      case GGML_IQ3_XXS: return dot4_iq3_xxs_avx512;
      case GGML_IQ3_S: return dot4_iq3_s_avx512;
      case GGML_IQ1_S: return dot4_iq1_s_avx512;
      case GGML_IQ1_M: return dot4_iq1_m_avx512;
      case GGML_IQ4_XS: return dot4_iq4_xs_avx512;
      default: break;
    }
  if (level == 1) switch (type) {
      case GGML_IQ2_XXS: return dot4_iq2_xxs_avx2;
      case GGML_IQ2_XS: return dot4_iq2_xs_avx2;
      case GGML_IQ2_S: return dot4_iq2_s_avx2;
      case GGML_IQ3_XXS: return dot4_iq3_xxs_avx2;
      case GGML_IQ3_S: return dot4_iq3_s_avx2;
      case GGML_IQ1_S: return dot4_iq1_s_avx2;
      case GGML_IQ1_M: return dot4_iq1_m_avx2;
      case GGML_IQ4_XS: return dot4_iq4_xs_avx2;
      default: break;
    }
#endif
  (void)level, (void)type;
  return NULL;
}

const panel_kernels *iq_panel(int level, int type) {
#if defined(__x86_64__) || defined(__i386__)
  if (level != 1 && level != 3) return NULL;
  static const int order[] = {GGML_IQ2_XXS, GGML_IQ2_XS, GGML_IQ2_S, GGML_IQ3_XXS, GGML_IQ3_S, GGML_IQ1_S, GGML_IQ1_M, GGML_IQ4_XS};
  _Static_assert(sizeof(order) / sizeof(order[0]) == sizeof(PANELS) / sizeof(PANELS[0]), "one panel row per type, IQ_Q8K_TYPES' order");
  for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
    if (order[i] == type) return &PANELS[i][level == 3];
#endif
  (void)level, (void)type;
  return NULL;
}
