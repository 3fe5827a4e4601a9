// Weight quantisers for the model generator: C ports of ggml's reference row quantisers (ggml-quants.c, MIT):
// quantize_row_{q4_0,q4_1,q5_0,q5_1,q8_0,q2_K,q3_K,q4_K,q5_K,q6_K}_ref with their helpers (make_qx_quants,
// make_q3_quants, make_qkx2_quants), statement for statement (make_qx_quants and make_qkx2_quants on 4 groups at
// once, each in its own vector lane), so the bytes match ggml's and the JS quantisers (src/quant/*) exactly.
// Bit-exactness needs every f32 operation rounded as written: binding.gyp builds this file alone with
// -ffp-contract=off (no fused multiply-add), and nothing here may be reassociated (no -ffast-math).
#include "quant_ref.h"

#include <float.h>
#include <math.h>

#include "common.h"
#include "pool.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define GROUP_MAX_EPS 1e-15f
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define QK4_0 32
#define QK5_0 32

// The block layouts not in common.h (ggml-common.h), packed: blocks sit at any byte offset of a JS buffer.
typedef struct __attribute__((packed)) { uint16_t d; uint8_t qs[16]; } block_q4_0;
typedef struct __attribute__((packed)) { uint16_t d, m; uint8_t qs[16]; } block_q4_1;
typedef struct __attribute__((packed)) { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } block_q5_0;
typedef struct __attribute__((packed)) { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } block_q5_1;
typedef struct __attribute__((packed)) { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } block_q2_K;
typedef struct __attribute__((packed)) { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } block_q3_K;
typedef struct __attribute__((packed)) { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } block_q5_K;
_Static_assert(sizeof(block_q2_K) == 84 && sizeof(block_q3_K) == 110 && sizeof(block_q5_K) == 176, "K block sizes");
_Static_assert(sizeof(block_q4_0) == 18 && sizeof(block_q4_1) == 20 && sizeof(block_q5_0) == 22 && sizeof(block_q5_1) == 24,
               "legacy block sizes");

/** The value of largest magnitude among x[0..n) (the first on ties), 0 if all are 0: Q4_0's and Q5_0's max. */
static inline float signed_absmax(const float *x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; j++) {
    const float v = x[j];
    if (amax < fabsf(v)) {
      amax = fabsf(v);
      max = v;
    }
  }
  return max;
}

/** Q4_1's and Q5_1's min and max of x[0..n). */
static inline void min_max(const float *x, int n, float *min_out, float *max_out) {
  float min = FLT_MAX, max = -FLT_MAX;
  for (int j = 0; j < n; j++) {
    const float v = x[j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  *min_out = min;
  *max_out = max;
}

static void q4_0_ref(const float *restrict x, block_q4_0 *restrict y, int64_t k) {
  const int qk = QK4_0, nb = (int)(k / qk);
  for (int i = 0; i < nb; i++) {
    const float max = signed_absmax(x + i * qk, qk);
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp16_from_f32(d);
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = x[i * qk + 0 + j] * id;
      const float x1 = x[i * qk + qk / 2 + j] * id;
      const uint8_t xi0 = MIN(15, (int8_t)(x0 + 8.5f));
      const uint8_t xi1 = MIN(15, (int8_t)(x1 + 8.5f));
      y[i].qs[j] = xi0;
      y[i].qs[j] |= xi1 << 4;
    }
  }
}

static void q4_1_ref(const float *restrict x, block_q4_1 *restrict y, int64_t k) {
  const int qk = QK4_0, nb = (int)(k / qk);
  for (int i = 0; i < nb; i++) {
    float min, max;
    min_max(x + i * qk, qk, &min, &max);
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp16_from_f32(d);
    y[i].m = fp16_from_f32(min);
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = (x[i * qk + 0 + j] - min) * id;
      const float x1 = (x[i * qk + qk / 2 + j] - min) * id;
      const uint8_t xi0 = MIN(15, (int8_t)(x0 + 0.5f));
      const uint8_t xi1 = MIN(15, (int8_t)(x1 + 0.5f));
      y[i].qs[j] = xi0;
      y[i].qs[j] |= xi1 << 4;
    }
  }
}

static void q5_0_ref(const float *restrict x, block_q5_0 *restrict y, int64_t k) {
  const int qk = QK5_0, nb = (int)(k / qk);
  for (int i = 0; i < nb; i++) {
    const float max = signed_absmax(x + i * qk, qk);
    const float d = max / -16;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp16_from_f32(d);
    uint32_t qh = 0;
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = x[i * qk + 0 + j] * id;
      const float x1 = x[i * qk + qk / 2 + j] * id;
      const uint8_t xi0 = MIN(31, (int8_t)(x0 + 16.5f));
      const uint8_t xi1 = MIN(31, (int8_t)(x1 + 16.5f));
      y[i].qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
      qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
      qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
    }
    memcpy(&y[i].qh, &qh, sizeof qh);
  }
}

static void q5_1_ref(const float *restrict x, block_q5_1 *restrict y, int64_t k) {
  const int qk = QK5_0, nb = (int)(k / qk);
  for (int i = 0; i < nb; i++) {
    float min, max;
    min_max(x + i * qk, qk, &min, &max);
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp16_from_f32(d);
    y[i].m = fp16_from_f32(min);
    uint32_t qh = 0;
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = (x[i * qk + 0 + j] - min) * id;
      const float x1 = (x[i * qk + qk / 2 + j] - min) * id;
      const uint8_t xi0 = (uint8_t)(x0 + 0.5f);
      const uint8_t xi1 = (uint8_t)(x1 + 0.5f);
      y[i].qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
      qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
      qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
    }
    memcpy(&y[i].qh, &qh, sizeof qh);
  }
}

static void q8_0_ref(const float *restrict x, block_q8_0 *restrict y, int64_t k) {
  const int nb = (int)(k / QK8_0);
  for (int i = 0; i < nb; i++) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; j++) amax = MAX(amax, fabsf(x[i * QK8_0 + j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp16_from_f32(d);
    for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = (int8_t)roundf(x[i * QK8_0 + j] * id);
  }
}

static float make_q3_quants(int n, int nmax, const float *restrict x, int8_t *restrict L, bool do_rmse) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    float ax = fabsf(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = -nmax / max;
  if (do_rmse) {
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * x[i]);
      l = MAX(-nmax, MIN(nmax - 1, l));
      L[i] = l;
      float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
      int n_changed = 0;
      for (int i = 0; i < n; ++i) {
        float w = x[i] * x[i];
        float slx = sumlx - w * x[i] * L[i];
        if (slx > 0) {
          float sl2 = suml2 - w * L[i] * L[i];
          int new_l = nearest_int(x[i] * sl2 / slx);
          new_l = MAX(-nmax, MIN(nmax - 1, new_l));
          if (new_l != L[i]) {
            slx += w * x[i] * new_l;
            sl2 += w * new_l * new_l;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
              L[i] = new_l;
              sumlx = slx;
              suml2 = sl2;
              ++n_changed;
            }
          }
        }
      }
      if (!n_changed) break;
    }
    for (int i = 0; i < n; ++i) L[i] += nmax;
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
  }
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = MAX(-nmax, MIN(nmax - 1, l));
    L[i] = l + nmax;
  }
  return 1 / iscale;
}

// make_qkx2_quants on 4 groups at once, one per vector lane: x, weights and L hold value i of group g at [4 * i + g].
// Each lane runs ggml's statements for its group in ggml's order (the same f32 roundings, the sums in the same
// order), so the results are those of 4 calls; only the data-dependent branches became per-lane selects, and a lane
// whose group is flat (max == min: ggml's early return) takes ggml's early results at the end. The lanes break the
// long chains of dependent f32 additions that bound the one-group code (2.5x faster; 8 lanes of 32 bytes are
// slower where the baseline x86-64 build has no AVX).
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f vsel(v4i m, v4f a, v4f b) { return (v4f)(((v4i)a & m) | ((v4i)b & ~m)); }
static inline v4i vseli(v4i m, v4i a, v4i b) { return (a & m) | (b & ~m); }
static inline v4f vabs(v4f a) { return (v4f)((v4i)a & 0x7fffffff); }
static inline v4f vload(const float *p) {
  v4f v;
  memcpy(&v, p, sizeof v);
  return v;
}
/** nearest_int per lane, then MAX(0, MIN(nmax, l)). */
static inline v4i vquant(v4f f, int nmax) {
  const v4f v = f + 12582912.f;
  v4i l = ((v4i)v & 0x007fffff) - 0x00400000;
  l = vseli(l > nmax, (v4i){0} + nmax, l);
  return vseli(l < 0, (v4i){0}, l);
}

static void make_qkx2_quants_x4(int n, int nmax, const float *restrict x, const float *restrict weights, uint8_t *restrict L,
                                float *restrict scales, float *restrict the_mins, float rmin, float rdelta, int nstep, bool use_mad) {
  v4i Li[32], Laux[32]; // n <= 32
  v4f min = vload(x), max = min;
  v4f sum_w = vload(weights);
  v4f sum_x = sum_w * min;
  for (int i = 1; i < n; ++i) {
    const v4f xi = vload(x + 4 * i), w = vload(weights + 4 * i);
    min = vsel(xi < min, xi, min);
    max = vsel(xi > max, xi, max);
    sum_w += w;
    sum_x += w * xi;
  }
  min = vsel(min > 0, (v4f){0}, min);
  const v4i flat = max == min;
  const v4f min0 = min;
  v4f iscale = (float)nmax / (max - min);
  v4f scale = 1 / iscale;
  v4f best_error = {0};
  for (int i = 0; i < n; ++i) {
    const v4f xi = vload(x + 4 * i), w = vload(weights + 4 * i);
    Li[i] = vquant(iscale * (xi - min), nmax);
    v4f diff = scale * __builtin_convertvector(Li[i], v4f) + min - xi;
    diff = use_mad ? vabs(diff) : diff * diff;
    best_error += w * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    v4f sum_l = {0}, sum_l2 = {0}, sum_xl = {0};
    for (int i = 0; i < n; ++i) {
      const v4f xi = vload(x + 4 * i), w = vload(weights + 4 * i);
      Laux[i] = vquant(iscale * (xi - min), nmax);
      const v4f l = __builtin_convertvector(Laux[i], v4f);
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * xi;
    }
    const v4f D = sum_w * sum_l2 - sum_l * sum_l;
    v4f this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    v4f this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    const v4i pos = this_min > 0;
    this_min = vsel(pos, (v4f){0}, this_min);
    this_scale = vsel(pos, sum_xl / sum_l2, this_scale);
    v4f cur_error = {0};
    for (int i = 0; i < n; ++i) {
      const v4f xi = vload(x + 4 * i), w = vload(weights + 4 * i);
      v4f diff = this_scale * __builtin_convertvector(Laux[i], v4f) + this_min - xi;
      diff = use_mad ? vabs(diff) : diff * diff;
      cur_error += w * diff;
    }
    const v4i take = (D > 0) & (cur_error < best_error);
    for (int i = 0; i < n; ++i) Li[i] = vseli(take, Laux[i], Li[i]);
    best_error = vsel(take, cur_error, best_error);
    scale = vsel(take, this_scale, scale);
    min = vsel(take, this_min, min);
  }
  // ggml's early return for a flat group: L all 0, scale 0, the min as clamped above.
  scale = vsel(flat, (v4f){0}, scale);
  min = vsel(flat, min0, min);
  for (int i = 0; i < n; ++i) {
    const v4i l = vseli(flat, (v4i){0}, Li[i]);
    for (int g = 0; g < 4; g++) L[4 * i + g] = (uint8_t)l[g];
  }
  for (int g = 0; g < 4; g++) {
    scales[g] = scale[g];
    the_mins[g] = -min[g];
  }
}

// make_qx_quants(n, nmax, x, L, rmse_type 1, qw NULL) (Q6_K's) on 4 groups at once, laid out and run as
// make_qkx2_quants_x4 is; L gets ggml's int8 quants (0..2 nmax - 1). A flat lane (amax < GROUP_MAX_EPS) ends as
// ggml's early return does.
static void make_qx_quants_x4(int n, int nmax, const float *restrict x, int8_t *restrict L, float *restrict scales) {
  v4i Li[16]; // n <= 16
  v4f max = {0}, amax = {0};
  for (int i = 0; i < n; ++i) {
    const v4f xi = vload(x + 4 * i), ax = vabs(xi);
    const v4i m = ax > amax;
    amax = vsel(m, ax, amax);
    max = vsel(m, xi, max);
  }
  const v4i flat = amax < GROUP_MAX_EPS;
  v4f iscale = (float)-nmax / max;
  v4f sumlx = {0}, suml2 = {0};
  for (int i = 0; i < n; ++i) {
    const v4f xi = vload(x + 4 * i);
    v4i l = ((v4i)(iscale * xi + 12582912.f) & 0x007fffff) - 0x00400000;
    l = vseli(l > nmax - 1, (v4i){0} + (nmax - 1), l);
    l = vseli(l < -nmax, (v4i){0} - nmax, l);
    Li[i] = l + nmax;
    const v4f w = xi * xi, lf = __builtin_convertvector(l, v4f);
    sumlx += w * xi * lf;
    suml2 += w * lf * lf;
  }
  v4f scale = vsel(suml2 != 0, sumlx / suml2, (v4f){0});
  v4f best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    v4i Laux[16];
    sumlx = suml2 = (v4f){0};
    for (int i = 0; i < n; ++i) {
      const v4f xi = vload(x + 4 * i);
      v4i l = ((v4i)(iscale * xi + 12582912.f) & 0x007fffff) - 0x00400000;
      l = vseli(l > nmax - 1, (v4i){0} + (nmax - 1), l);
      l = vseli(l < -nmax, (v4i){0} - nmax, l);
      Laux[i] = l + nmax;
      const v4f w = xi * xi, lf = __builtin_convertvector(l, v4f);
      sumlx += w * xi * lf;
      suml2 += w * lf * lf;
    }
    const v4i take = (suml2 > 0) & (sumlx * sumlx > best * suml2);
    for (int i = 0; i < n; ++i) Li[i] = vseli(take, Laux[i], Li[i]);
    scale = vsel(take, sumlx / suml2, scale);
    best = vsel(take, scale * sumlx, best);
  }
  scale = vsel(flat, (v4f){0}, scale);
  for (int i = 0; i < n; ++i) {
    const v4i l = vseli(flat, (v4i){0}, Li[i]);
    for (int g = 0; g < 4; g++) L[4 * i + g] = (int8_t)l[g];
  }
  for (int g = 0; g < 4; g++) scales[g] = scale[g];
}

/** 4 groups of n values from x (group g at x + n * g) into [4 * i + g] order, and back (quants). */
static void transpose4(const float *restrict x, int n, float *restrict xt) {
  for (int g = 0; g < 4; g++)
    for (int i = 0; i < n; i++) xt[4 * i + g] = x[n * g + i];
}
static void untranspose4(const uint8_t *restrict Lt, int n, uint8_t *restrict L) {
  for (int g = 0; g < 4; g++)
    for (int i = 0; i < n; i++) L[n * g + i] = Lt[4 * i + g];
}

static inline void get_scale_min_k4(int j, const uint8_t *restrict q, uint8_t *restrict d, uint8_t *restrict m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

static void q2_K_ref(const float *restrict x, block_q2_K *restrict y, int64_t k) {
  const int nb = (int)(k / QK_K);
  uint8_t L[QK_K], Lt[128];
  float xt[128], weights[128], mins[QK_K / 16], scales[QK_K / 16];
  const float q4scale = 15.f;
  for (int i = 0; i < nb; i++) {
    float max_scale = 0, max_min = 0;
    for (int h = 0; h < 4; h++) {
      transpose4(x + 64 * h, 16, xt);
      for (int l = 0; l < 64; ++l) weights[l] = fabsf(xt[l]);
      make_qkx2_quants_x4(16, 3, xt, weights, Lt, scales + 4 * h, mins + 4 * h, -0.5f, 0.1f, 15, true);
      untranspose4(Lt, 16, L + 64 * h);
    }
    for (int j = 0; j < QK_K / 16; ++j) {
      float scale = scales[j];
      if (scale > max_scale) max_scale = scale;
      float min = mins[j];
      if (min > max_min) max_min = min;
    }
    if (max_scale > 0) {
      float iscale = q4scale / max_scale;
      for (int j = 0; j < QK_K / 16; ++j) {
        int l = nearest_int(iscale * scales[j]);
        y[i].scales[j] = l;
      }
      y[i].d = fp16_from_f32(max_scale / q4scale);
    } else {
      for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = 0;
      y[i].d = fp16_from_f32(0.f);
    }
    if (max_min > 0) {
      float iscale = q4scale / max_min;
      for (int j = 0; j < QK_K / 16; ++j) {
        int l = nearest_int(iscale * mins[j]);
        y[i].scales[j] |= (l << 4);
      }
      y[i].dmin = fp16_from_f32(max_min / q4scale);
    } else {
      y[i].dmin = fp16_from_f32(0.f);
    }
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = fp16_to_f32(y[i].d) * (y[i].scales[j] & 0xF);
      if (!d) continue;
      const float dm = fp16_to_f32(y[i].dmin) * (y[i].scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        int l = nearest_int((x[16 * j + ii] + dm) / d);
        l = MAX(0, MIN(3, l));
        L[16 * j + ii] = l;
      }
    }
    for (int j = 0; j < QK_K; j += 128) {
      for (int l = 0; l < 32; ++l) y[i].qs[j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
    }
    x += QK_K;
  }
}

static void q3_K_ref(const float *restrict x, block_q3_K *restrict y, int64_t k) {
  const int nb = (int)(k / QK_K);
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (int i = 0; i < nb; i++) {
    float max_scale = 0, amax = 0;
    for (int j = 0; j < QK_K / 16; ++j) {
      scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j, true);
      float scale = fabsf(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }
    memset(y[i].scales, 0, 12);
    if (max_scale) {
      float iscale = -32.f / max_scale;
      for (int j = 0; j < QK_K / 16; ++j) {
        int8_t l = nearest_int(iscale * scales[j]);
        l = MAX(-32, MIN(31, l)) + 32;
        if (j < 8) {
          y[i].scales[j] = l & 0xF;
        } else {
          y[i].scales[j - 8] |= ((l & 0xF) << 4);
        }
        l >>= 4;
        y[i].scales[j % 4 + 8] |= (l << (2 * (j / 4)));
      }
      y[i].d = fp16_from_f32(1 / iscale);
    } else {
      y[i].d = fp16_from_f32(0.f);
    }
    int8_t sc;
    for (int j = 0; j < QK_K / 16; ++j) {
      sc = j < 8 ? y[i].scales[j] & 0xF : y[i].scales[j - 8] >> 4;
      sc = (sc | (((y[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
      float d = fp16_to_f32(y[i].d) * sc;
      if (!d) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = nearest_int(x[16 * j + ii] / d);
        l = MAX(-4, MIN(3, l));
        L[16 * j + ii] = l + 4;
      }
    }
    memset(y[i].hmask, 0, QK_K / 8);
    // The high bit of quants 0-31 goes to bit 0 of hmask[0..31], of 32-63 to bit 1, and so on.
    int m = 0;
    uint8_t hm = 1;
    for (int j = 0; j < QK_K; ++j) {
      if (L[j] > 3) {
        y[i].hmask[m] |= hm;
        L[j] -= 4;
      }
      if (++m == QK_K / 8) {
        m = 0;
        hm <<= 1;
      }
    }
    for (int j = 0; j < QK_K; j += 128) {
      for (int l = 0; l < 32; ++l) y[i].qs[j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
    }
    x += QK_K;
  }
}

/** Q4_K (nmax 15, 20 trial scales from rmin -1) and Q5_K (nmax 31, 15 from -0.5) share everything up to packing. */
static void k_scale_min_quants(const float *restrict x, uint8_t *restrict L, uint16_t *d_out, uint16_t *dmin_out, uint8_t *restrict sc12,
                               int nmax, float rmin, int nstep) {
  uint8_t Lt[QK_K];
  float xt[QK_K], weights[QK_K], mins[QK_K / 32], scales[QK_K / 32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < QK_K / 32; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    float av_x = sqrtf(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[128 * (j / 4) + 4 * l + j % 4] = av_x + fabsf(x[32 * j + l]);
  }
  for (int h = 0; h < 2; h++) {
    transpose4(x + 128 * h, 32, xt + 128 * h);
    make_qkx2_quants_x4(32, nmax, xt + 128 * h, weights + 128 * h, Lt, scales + 4 * h, mins + 4 * h, rmin, 0.1f, nstep, false);
    untranspose4(Lt, 32, L + 128 * h);
  }
  for (int j = 0; j < QK_K / 32; ++j) {
    float scale = scales[j];
    if (scale > max_scale) max_scale = scale;
    float min = mins[j];
    if (min > max_min) max_min = min;
  }
  float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < QK_K / 32; ++j) {
    uint8_t ls = nearest_int(inv_scale * scales[j]);
    uint8_t lm = nearest_int(inv_min * mins[j]);
    ls = MIN(63, ls);
    lm = MIN(63, lm);
    if (j < 4) {
      sc12[j] = ls;
      sc12[j + 4] = lm;
    } else {
      sc12[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
      sc12[j - 4] |= ((ls >> 4) << 6);
      sc12[j - 0] |= ((lm >> 4) << 6);
    }
  }
  const uint16_t dh = fp16_from_f32(max_scale / 63.f), dminh = fp16_from_f32(max_min / 63.f);
  *d_out = dh;
  *dmin_out = dminh;
  uint8_t sc, m;
  for (int j = 0; j < QK_K / 32; ++j) {
    get_scale_min_k4(j, sc12, &sc, &m);
    const float d = fp16_to_f32(dh) * sc;
    if (!d) continue;
    const float dm = fp16_to_f32(dminh) * m;
    for (int ii = 0; ii < 32; ++ii) {
      int l = nearest_int((x[32 * j + ii] + dm) / d);
      l = MAX(0, MIN(nmax, l));
      L[32 * j + ii] = l;
    }
  }
}

static void q4_K_ref(const float *restrict x, block_q4_K *restrict y, int64_t k) {
  const int nb = (int)(k / QK_K);
  uint8_t L[QK_K];
  for (int i = 0; i < nb; i++) {
    uint16_t d, dmin;
    k_scale_min_quants(x, L, &d, &dmin, y[i].scales, 15, -1.f, 20);
    y[i].d = d;
    y[i].dmin = dmin;
    uint8_t *q = y[i].qs;
    for (int j = 0; j < QK_K; j += 64) {
      for (int l = 0; l < 32; ++l) q[l] = L[j + l] | (L[j + l + 32] << 4);
      q += 32;
    }
    x += QK_K;
  }
}

static void q5_K_ref(const float *restrict x, block_q5_K *restrict y, int64_t k) {
  const int nb = (int)(k / QK_K);
  uint8_t L[QK_K];
  for (int i = 0; i < nb; i++) {
    uint16_t d, dmin;
    k_scale_min_quants(x, L, &d, &dmin, y[i].scales, 31, -0.5f, 15);
    y[i].d = d;
    y[i].dmin = dmin;
    uint8_t *restrict qh = y[i].qh, *restrict ql = y[i].qs;
    memset(qh, 0, QK_K / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < QK_K; n += 64) {
      for (int j = 0; j < 32; ++j) {
        int l1 = L[n + j];
        if (l1 > 15) {
          l1 -= 16;
          qh[j] |= m1;
        }
        int l2 = L[n + j + 32];
        if (l2 > 15) {
          l2 -= 16;
          qh[j] |= m2;
        }
        ql[j] = l1 | (l2 << 4);
      }
      m1 <<= 2;
      m2 <<= 2;
      ql += 32;
    }
    x += QK_K;
  }
}

static void q6_K_ref(const float *restrict x, block_q6_K *restrict y, int64_t k) {
  const int nb = (int)(k / QK_K);
  int8_t L[QK_K], Lt[64];
  float xt[64], scales[QK_K / 16];
  for (int i = 0; i < nb; i++) {
    float max_scale = 0, max_abs_scale = 0;
    for (int h = 0; h < 4; h++) {
      transpose4(x + 64 * h, 16, xt);
      make_qx_quants_x4(16, 32, xt, Lt, scales + 4 * h);
      untranspose4((const uint8_t *)Lt, 16, (uint8_t *)L + 64 * h);
    }
    for (int ib = 0; ib < QK_K / 16; ++ib) {
      const float scale = scales[ib];
      const float abs_scale = fabsf(scale);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scale;
      }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
      memset(&y[i], 0, sizeof(block_q6_K));
      y[i].d = fp16_from_f32(0.f);
      x += QK_K;
      continue;
    }
    float iscale = -128.f / max_scale;
    y[i].d = fp16_from_f32(1 / iscale);
    for (int ib = 0; ib < QK_K / 16; ++ib) y[i].scales[ib] = MIN(127, nearest_int(iscale * scales[ib]));
    for (int j = 0; j < QK_K / 16; ++j) {
      float d = fp16_to_f32(y[i].d) * y[i].scales[j];
      if (!d) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = nearest_int(x[16 * j + ii] / d);
        l = MAX(-32, MIN(31, l));
        L[16 * j + ii] = l + 32;
      }
    }
    uint8_t *restrict ql = y[i].ql, *restrict qh = y[i].qh;
    for (int j = 0; j < QK_K; j += 128) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
        ql[l + 0] = q1 | (q3 << 4);
        ql[l + 32] = q2 | (q4 << 4);
        qh[l] = (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6);
      }
      ql += 64;
      qh += 32;
    }
    x += QK_K;
  }
}

typedef void (*ref_fn)(const float *restrict x, void *restrict y, int64_t k);
static const struct {
  int type, qk, bytes;
  ref_fn fn;
} REFS[] = {
    {2, QK4_0, sizeof(block_q4_0), (ref_fn)q4_0_ref},  {3, QK4_0, sizeof(block_q4_1), (ref_fn)q4_1_ref},
    {6, QK5_0, sizeof(block_q5_0), (ref_fn)q5_0_ref},  {7, QK5_0, sizeof(block_q5_1), (ref_fn)q5_1_ref},
    {8, QK8_0, sizeof(block_q8_0), (ref_fn)q8_0_ref},  {10, QK_K, sizeof(block_q2_K), (ref_fn)q2_K_ref},
    {11, QK_K, sizeof(block_q3_K), (ref_fn)q3_K_ref},  {12, QK_K, sizeof(block_q4_K), (ref_fn)q4_K_ref},
    {13, QK_K, sizeof(block_q5_K), (ref_fn)q5_K_ref},  {14, QK_K, sizeof(block_q6_K), (ref_fn)q6_K_ref},
};

int quant_ref_block(int type, int *bytes) {
  for (size_t i = 0; i < sizeof REFS / sizeof REFS[0]; i++)
    if (REFS[i].type == type) {
      if (bytes) *bytes = REFS[i].bytes;
      return REFS[i].qk;
    }
  return 0;
}

int quant_ref_types(int *types, int max) {
  int n = 0;
  for (size_t i = 0; i < sizeof REFS / sizeof REFS[0] && n < max; i++) types[n++] = REFS[i].type;
  return n;
}

typedef struct {
  ref_fn fn;
  int qk, bytes;
  const float *x;
  uint8_t *y;
} qctx;

static void quant_range(void *arg, int ith, int b0, int b1) {
  (void)ith;
  const qctx *c = arg;
  c->fn(c->x + (size_t)b0 * c->qk, c->y + (size_t)b0 * c->bytes, (int64_t)(b1 - b0) * c->qk);
}

int quant_ref_run(int type, const float *x, void *y, int64_t nblocks) {
  for (size_t i = 0; i < sizeof REFS / sizeof REFS[0]; i++) {
    if (REFS[i].type != type) continue;
    qctx c = {.fn = REFS[i].fn, .qk = REFS[i].qk, .bytes = REFS[i].bytes, .x = x, .y = y};
    // Blocks encode independently, so any split gives the same bytes; ~16K values per chunk (a K-quant chunk of
    // 64 super-blocks takes some 100 us) keeps the pool's work-pulling overhead small.
    const int chunk = 16384 / REFS[i].qk;
    pool_for(quant_range, &c, (int)nblocks, chunk, nblocks > chunk);
    return 0;
  }
  return -1;
}
