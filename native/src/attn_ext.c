// Attention beyond op_attention's case (ops.h): V heads narrower than K heads (MLA reads V as the first vd values
// of each K row: DeepSeek's latent cache), probabilities rounded to f16 before they weight V (llama.cpp's V
// product over an f16 cache), and gpt-oss's sinks (a per-head logit in each softmax denominator) and sliding
// window (a token sees only its last `window` keys). Rounding needs each head's whole softmax first. With few
// (token, kv head) pairs (MLA decode: one latent head) a block of tokens runs in three pool passes: scores (items:
// token, kv head, key chunk: each K row read once for the heads sharing it), the softmax per (token, head), then V
// sums (items: token, kv head, column block: each item owns its outputs and adds keys in order, so the bits never
// depend on the thread count); with enough pairs, one pass of (token, kv head) items doing all three (AX_FUSED).
#include <math.h>
#include <stdlib.h>

#include "matmul.h"
#include "ops.h"
#include "pool.h"
#include "vec_f32.h"

#define KEY_CHUNK 64
#ifndef AX_FUSE_MIN
#define AX_FUSE_MIN 8 // (token, kv head) items from which one pass runs; -DAX_FUSE_MIN=1e9 forces three (same bits: checked)
#endif
#define SCORE_CAP ((size_t)1 << 22) // scores held at once (16 MiB): tokens run in blocks that fit

typedef struct {
  float *out, *sc; // sc: [tokens of the block, n_head, nkeys] scores, then probabilities
  float *acc;      // per thread: group x cb V sums
  const float *q, *k, *v;
  const float *sinks; // [n_head] or NULL
  int t0, nt, start, n_head, n_kv, group, hd, vd, nkeys, n_ch, cb, n_cb, f16, nth, window;
  size_t kvdim;
  float scale;
} ax_ctx;

/** Keys token t (absolute in the batch) attends to: [ax_first, ax_keys). */
static inline int ax_keys(const ax_ctx *c, int t) { return c->start + t + 1; }
/** The first key in token t's window (0 without one): llama.cpp masks keys p with (start + t) - p >= window. */
static inline int ax_first(const ax_ctx *c, int t) {
  const int f = ax_keys(c, t) - c->window;
  return c->window > 0 && f > 0 ? f : 0;
}

#define AX_SCORES(NAME, ATTR, DOT) \
ATTR static void NAME(void *vc, int ith, int i0, int i1) { \
  (void)ith; \
  const ax_ctx *c = vc; \
  for (int it = i0; it < i1; it++) { \
    const int ch = it % c->n_ch, tk = it / c->n_ch, kvh = tk % c->n_kv, tb = tk / c->n_kv, t = c->t0 + tb; \
    const int nk = ax_keys(c, t), jf = ax_first(c, t), jc = ch * KEY_CHUNK, j0 = jc > jf ? jc : jf; \
    const int j1 = jc + KEY_CHUNK < nk ? jc + KEY_CHUNK : nk; \
    const float *q0 = c->q + ((size_t)t * c->n_head + (size_t)kvh * c->group) * c->hd; \
    float *s0 = c->sc + ((size_t)tb * c->n_head + (size_t)kvh * c->group) * c->nkeys; \
    for (int j = j0; j < j1; j++) { \
      const float *kr = c->k + (size_t)j * c->kvdim + (size_t)kvh * c->hd; \
      for (int g = 0; g < c->group; g++) s0[(size_t)g * c->nkeys + j] = DOT(kr, q0 + (size_t)g * c->hd, c->hd) * c->scale; \
    } \
  } \
}

/** Softmax of head h's scores s[j0, nk) in place: f64 sum, the head's sink (if any) in the max and the denominator
 *  only; the probability rounded to f16 when asked. */
static inline void ax_softmax_row(const ax_ctx *c, float *s, int h, int j0, int nk) {
  float m = c->sinks ? c->sinks[h] : -INFINITY;
  for (int j = j0; j < nk; j++) m = s[j] > m ? s[j] : m;
  double l = c->sinks ? exp((double)c->sinks[h] - m) : 0;
  for (int j = j0; j < nk; j++) {
    const double e = exp((double)s[j] - m);
    s[j] = (float)e;
    l += e;
  }
  const double inv = 1.0 / l;
  for (int j = j0; j < nk; j++) {
    const float p = (float)(s[j] * inv);
    s[j] = c->f16 ? fp16_to_f32(fp16_from_f32(p)) : p;
  }
}

/** Softmax of each (token, head) row of scores. */
static void ax_softmax(void *vc, int ith, int i0, int i1) {
  (void)ith;
  const ax_ctx *c = vc;
  for (int it = i0; it < i1; it++) {
    const int t = c->t0 + it / c->n_head;
    ax_softmax_row(c, c->sc + (size_t)it * c->nkeys, it % c->n_head, ax_first(c, t), ax_keys(c, t));
  }
}

// One pass where there are enough (token, kv head) items (gpt-oss's 8 kv heads, prefill): each item scores its
// group's heads (K rows read once), softmaxes them, and sums V rows into out, keys in order. Per value the same
// arithmetic as the three passes (same dots, softmax, axpy column split at multiples of 8), so the same bits,
// without two pool hand-offs. sc is per thread: group x nkeys.
#define AX_FUSED(NAME, ATTR, DOT, AXPY) \
ATTR static void NAME(void *vc, int ith, int i0, int i1) { \
  const ax_ctx *c = vc; \
  if (ith >= c->nth) ith = 0; /* only if the pool was resized meanwhile */ \
  float *restrict s0 = c->sc + (size_t)ith * c->group * c->nkeys; \
  for (int it = i0; it < i1; it++) { \
    const int kvh = it % c->n_kv, t = c->t0 + it / c->n_kv, nk = ax_keys(c, t), j0 = ax_first(c, t); \
    const float *q0 = c->q + ((size_t)t * c->n_head + (size_t)kvh * c->group) * c->hd; \
    for (int j = j0; j < nk; j++) { \
      const float *kr = c->k + (size_t)j * c->kvdim + (size_t)kvh * c->hd; \
      for (int g = 0; g < c->group; g++) s0[(size_t)g * c->nkeys + j] = DOT(kr, q0 + (size_t)g * c->hd, c->hd) * c->scale; \
    } \
    for (int g = 0; g < c->group; g++) ax_softmax_row(c, s0 + (size_t)g * c->nkeys, kvh * c->group + g, j0, nk); \
    float *o0 = c->out + ((size_t)t * c->n_head + (size_t)kvh * c->group) * c->vd; \
    for (size_t i = 0; i < (size_t)c->group * c->vd; i++) o0[i] = 0; \
    for (int j = j0; j < nk; j++) { \
      const float *vr = c->v + (size_t)j * c->kvdim + (size_t)kvh * c->hd; \
      for (int g = 0; g < c->group; g++) AXPY(o0 + (size_t)g * c->vd, s0[(size_t)g * c->nkeys + j], vr, c->vd); \
    } \
  } \
}

#define AX_VSUM(NAME, ATTR, AXPY) \
ATTR static void NAME(void *vc, int ith, int i0, int i1) { \
  const ax_ctx *c = vc; \
  if (ith >= c->nth) ith = 0; /* only if the pool was resized meanwhile */ \
  float *restrict acc = c->acc + (size_t)ith * c->group * c->cb; \
  for (int it = i0; it < i1; it++) { \
    const int cbi = it % c->n_cb, tk = it / c->n_cb, kvh = tk % c->n_kv, tb = tk / c->n_kv, t = c->t0 + tb; \
    const int nk = ax_keys(c, t), c0 = cbi * c->cb, w = c0 + c->cb < c->vd ? c->cb : c->vd - c0; \
    const float *p0 = c->sc + ((size_t)tb * c->n_head + (size_t)kvh * c->group) * c->nkeys; \
    for (int i = 0; i < c->group * c->cb; i++) acc[i] = 0; \
    for (int j = ax_first(c, t); j < nk; j++) { \
      const float *vr = c->v + (size_t)j * c->kvdim + (size_t)kvh * c->hd + c0; \
      for (int g = 0; g < c->group; g++) AXPY(acc + (size_t)g * c->cb, p0[(size_t)g * c->nkeys + j], vr, w); \
    } \
    for (int g = 0; g < c->group; g++) \
      memcpy(c->out + ((size_t)t * c->n_head + (size_t)kvh * c->group + g) * c->vd + c0, acc + (size_t)g * c->cb, sizeof(float) * w); \
  } \
}

AX_SCORES(ax_scores, , dot_plain)
AX_VSUM(ax_vsum, , axpy_plain)
AX_FUSED(ax_fused, , dot_plain, axpy_plain)
#if defined(__x86_64__) || defined(__i386__)
AX_SCORES(ax_scores_avx2, TARGET_AVX2, dot_avx2)
AX_VSUM(ax_vsum_avx2, TARGET_AVX2, axpy_avx2)
AX_FUSED(ax_fused_avx2, TARGET_AVX2, dot_avx2, axpy_avx2)
#endif

/** The one-pass form: items (token, kv head), per-thread scores. */
static int attention_fused(ax_ctx *c, int n_tok, int simd) {
  const int span = c->window > 0 && c->window < c->nkeys ? c->window : c->nkeys;
  if (!(c->sc = malloc(sizeof(float) * (size_t)c->nth * c->group * c->nkeys))) return -1;
  range_fn fn = ax_fused;
#if defined(__x86_64__) || defined(__i386__)
  if (simd) fn = ax_fused_avx2;
#endif
  (void)simd;
  c->t0 = 0;
  pool_for(fn, c, n_tok * c->n_kv, 1, (long)n_tok * c->n_head * span * c->hd >= 32768);
  free(c->sc);
  return 0;
}

int op_attention_ext(float *out, const float *q, const float *k, const float *v, int n_tok, int start, int n_head, int n_head_kv,
                     int hd, int vd, float scale, int f16_probs, const float *sinks, int window) {
  const int nkeys = start + n_tok, G = n_head / n_head_kv, nth = pool_threads();
  if (n_tok <= 0) return 0;
  int simd = 0;
#if defined(__x86_64__) || defined(__i386__)
  simd = strcmp(kernels_current()->name, "scalar") != 0;
#endif
  if ((long)n_tok * n_head_kv >= AX_FUSE_MIN) { // enough items for one pass (shapes decide, never the thread count)
    ax_ctx c = {.out = out, .q = q, .k = k, .v = v, .start = start, .n_head = n_head, .n_kv = n_head_kv, .group = G, .hd = hd, .vd = vd,
                .nkeys = nkeys, .f16 = f16_probs, .nth = nth, .kvdim = (size_t)n_head_kv * hd, .scale = scale, .sinks = sinks, .window = window};
    return attention_fused(&c, n_tok, simd);
  }
  // Tokens per block: their scores fit SCORE_CAP (at least one token).
  const size_t per_tok = (size_t)n_head * nkeys;
  int tb = per_tok >= SCORE_CAP ? 1 : (int)(SCORE_CAP / per_tok);
  if (tb > n_tok) tb = n_tok;
  // Column blocks of 32 (16 items per MLA head group of 512), fewer where the group's accumulators (G x cb floats)
  // would pass 32 KiB. Shapes alone decide it, never the thread count, so every thread count gives the same bits.
  int cb = 32;
  while (cb > 8 && (size_t)G * cb > 8192) cb -= 8;
  float *sc = malloc(sizeof(float) * per_tok * tb), *acc = malloc(sizeof(float) * (size_t)nth * G * cb);
  if (!sc || !acc) {
    free(sc), free(acc);
    return -1;
  }
  range_fn scores = ax_scores, vsum = ax_vsum;
#if defined(__x86_64__) || defined(__i386__)
  if (simd) scores = ax_scores_avx2, vsum = ax_vsum_avx2;
#endif
  for (int t0 = 0; t0 < n_tok; t0 += tb) {
    const int nt = t0 + tb < n_tok ? tb : n_tok - t0;
    ax_ctx c = {.out = out, .sc = sc, .q = q, .k = k, .v = v, .t0 = t0, .nt = nt, .start = start, .n_head = n_head, .n_kv = n_head_kv,
                .group = G, .hd = hd, .vd = vd, .nkeys = nkeys, .cb = cb, .f16 = f16_probs, .nth = nth, .acc = acc, .kvdim = (size_t)n_head_kv * hd, .scale = scale,
                .sinks = sinks, .window = window};
    c.n_ch = (start + t0 + nt + KEY_CHUNK - 1) / KEY_CHUNK; // chunks past a token's causal end are empty
    c.n_cb = (vd + cb - 1) / cb;
    const int span = window > 0 && window < start + t0 + nt ? window : start + t0 + nt; // keys a token sees at most
    const long work = (long)nt * n_head * span * hd;
    const int par = work >= 32768;
    pool_for(scores, &c, nt * n_head_kv * c.n_ch, 1, par);
    pool_for(ax_softmax, &c, nt * n_head, 1, par && nt * n_head > 1);
    pool_for(vsum, &c, nt * n_head_kv * c.n_cb, 1, par);
  }
  free(sc), free(acc);
  return 0;
}
