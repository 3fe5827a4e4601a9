// The per-token ops besides matmul (see ops.h). Each is a plain loop the compiler vectorises; the attention
// body is also compiled for AVX2 and chosen when the active kernel set is not "scalar". Row-parallel ops pull
// chunks from an atomic counter on the pool like the matmul, and run on the caller alone when the work is small
// (a pool wake-up costs more than a 2048-wide norm).
#include "ops.h"

#include <math.h>
#include <stdlib.h>

#include "matmul.h"
#include "pool.h"
#include "vec_f32.h"

/** Chunk of n items giving each thread about 4 chunks, at least `min`. */
static int chunk_for(int n, int min) {
  const int nth = pool_threads();
  int c = (n + nth * 4 - 1) / (nth * 4);
  return c < min ? min : c;
}

#define PAR_MIN_ELEMS (1 << 16) // below this many values an elementwise op runs on the caller alone

// ---- rmsNorm -------------------------------------------------------------------------------------------------

typedef struct {
  float *out;
  const float *x, *w;
  double eps;
  int len;
} rms_ctx;

static void rms_range(void *vc, int ith, int r0, int r1) {
  (void)ith;
  const rms_ctx *c = vc;
  const int len = c->len;
  for (int r = r0; r < r1; r++) {
    const float *x = c->x + (size_t)r * len;
    float *o = c->out + (size_t)r * len;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= len; i += 4) {
      s0 += (double)x[i] * x[i], s1 += (double)x[i + 1] * x[i + 1];
      s2 += (double)x[i + 2] * x[i + 2], s3 += (double)x[i + 3] * x[i + 3];
    }
    for (; i < len; i++) s0 += (double)x[i] * x[i];
    const double inv = 1.0 / sqrt(((s0 + s1) + (s2 + s3)) / len + c->eps);
    for (i = 0; i < len; i++) o[i] = (float)((double)x[i] * inv * (double)c->w[i]);
  }
}

void op_rmsnorm(float *out, const float *x, const float *w, float eps, int row_len, int n_rows) {
  rms_ctx c = {.out = out, .x = x, .w = w, .eps = eps, .len = row_len};
  const long total = (long)row_len * n_rows;
  pool_for(rms_range, &c, n_rows, chunk_for(n_rows, (16384 + row_len - 1) / row_len), total >= PAR_MIN_ELEMS);
}

// ---- rope ----------------------------------------------------------------------------------------------------

typedef struct {
  float *x;
  const int32_t *pos;
  const double *freq; // base^(-2i/hd), i < hd/2
  double *cs;         // per thread: hd doubles (cos | sin)
  int n_head, hd, nth;
} rope_ctx;

/** x[i], x[i + half] of every head of token t rotated by the angles whose cos / sin are cs / sn. */
static void rope_token(const rope_ctx *c, int t, const double *cs, const double *sn) {
  const int half = c->hd / 2;
  for (int h = 0; h < c->n_head; h++) {
    float *x = c->x + ((size_t)t * c->n_head + h) * c->hd;
    for (int i = 0; i < half; i++) {
      const double a = x[i], b = x[i + half];
      x[i] = (float)(a * cs[i] - b * sn[i]);
      x[i + half] = (float)(a * sn[i] + b * cs[i]);
    }
  }
}

static void rope_range(void *vc, int ith, int t0, int t1) {
  const rope_ctx *c = vc;
  if (ith >= c->nth) ith = 0; // cannot happen unless the pool was resized meanwhile; thread 0's space then is shared
  const int half = c->hd / 2;
  double *cs = c->cs + (size_t)ith * c->hd, *sn = cs + half;
  for (int t = t0; t < t1; t++) {
    for (int i = 0; i < half; i++) {
      const double th = c->pos[t] * c->freq[i];
      cs[i] = cos(th), sn[i] = sin(th);
    }
    rope_token(c, t, cs, sn);
  }
}

// A decode step ropes q and k of every layer at one position: the angles of the last single position are kept
// (per calling thread), so the 2 x layers calls of a token compute them once. The same cos / sin either way.
#define ROPE_MAX_HALF 512
static _Thread_local struct {
  int pos, hd;
  double base;
  double cs[2 * ROPE_MAX_HALF];
} rope_last = {.hd = 0};

int op_rope(float *x, const int32_t *pos, int n_tok, int n_head, int head_dim, double freq_base) {
  const int half = head_dim / 2, nth = pool_threads();
  if (n_tok == 1 && half <= ROPE_MAX_HALF) {
    rope_ctx c = {.x = x, .n_head = n_head, .hd = head_dim};
    if (rope_last.hd != head_dim || rope_last.pos != pos[0] || rope_last.base != freq_base) {
      for (int i = 0; i < half; i++) {
        const double th = pos[0] * pow(freq_base, (double)(-2 * i) / head_dim);
        rope_last.cs[i] = cos(th), rope_last.cs[half + i] = sin(th);
      }
      rope_last.hd = head_dim, rope_last.pos = pos[0], rope_last.base = freq_base;
    }
    rope_token(&c, 0, rope_last.cs, rope_last.cs + half);
    return 0;
  }
  double *mem = malloc(sizeof(double) * ((size_t)half + (size_t)nth * head_dim));
  if (!mem) return -1;
  for (int i = 0; i < half; i++) mem[i] = pow(freq_base, (double)(-2 * i) / head_dim);
  rope_ctx c = {.x = x, .pos = pos, .freq = mem, .cs = mem + half, .n_head = n_head, .hd = head_dim, .nth = nth};
  const long total = (long)n_tok * n_head * head_dim;
  pool_for(rope_range, &c, n_tok, chunk_for(n_tok, 1), total >= PAR_MIN_ELEMS && n_tok > 1);
  free(mem);
  return 0;
}

// ---- add, swiglu, scatter-add -------------------------------------------------------------------------------

typedef struct {
  float *out;
  const float *a, *b;
} ew_ctx;

static void add_range(void *vc, int ith, int i0, int i1) {
  (void)ith;
  const ew_ctx *c = vc;
  float *o = c->out;
  const float *a = c->a, *b = c->b;
  for (int i = i0; i < i1; i++) o[i] = a[i] + b[i];
}

static void swiglu_range(void *vc, int ith, int i0, int i1) {
  (void)ith;
  const ew_ctx *c = vc;
  float *o = c->out;
  const float *g = c->a, *u = c->b;
  for (int i = i0; i < i1; i++) {
    const double gv = g[i];
    o[i] = (float)(gv / (1.0 + exp(-gv)) * (double)u[i]);
  }
}

void op_add(float *out, const float *a, const float *b, size_t n) {
  ew_ctx c = {out, a, b};
  for (size_t s = 0; s < n; s += (size_t)1 << 30) { // int ranges
    const int m = n - s < ((size_t)1 << 30) ? (int)(n - s) : 1 << 30;
    ew_ctx cs = {c.out + s, c.a + s, c.b + s};
    pool_for(add_range, &cs, m, chunk_for(m, 16384), m >= PAR_MIN_ELEMS * 4);
  }
}

void op_swiglu(float *out, const float *g, const float *u, size_t n) {
  for (size_t s = 0; s < n; s += (size_t)1 << 30) {
    const int m = n - s < ((size_t)1 << 30) ? (int)(n - s) : 1 << 30;
    ew_ctx cs = {out + s, g + s, u + s};
    pool_for(swiglu_range, &cs, m, chunk_for(m, 4096), m >= PAR_MIN_ELEMS / 4);
  }
}

typedef struct {
  float *out;
  const float *g, *u;
  double alpha, limit;
} oai_ctx;

static void swiglu_oai_range(void *vc, int ith, int i0, int i1) {
  (void)ith;
  const oai_ctx *c = vc;
  for (int i = i0; i < i1; i++) {
    const double g = c->g[i] < c->limit ? c->g[i] : c->limit, u0 = c->u[i];
    const double u = u0 > c->limit ? c->limit : u0 < -c->limit ? -c->limit : u0;
    c->out[i] = (float)(g / (1.0 + exp(-c->alpha * g)) * (u + 1.0));
  }
}

void op_swiglu_oai(float *out, const float *g, const float *u, size_t n, double alpha, double limit) {
  for (size_t s = 0; s < n; s += (size_t)1 << 30) {
    const int m = n - s < ((size_t)1 << 30) ? (int)(n - s) : 1 << 30;
    oai_ctx cs = {out + s, g + s, u + s, alpha, limit};
    pool_for(swiglu_oai_range, &cs, m, chunk_for(m, 4096), m >= PAR_MIN_ELEMS / 4);
  }
}

void op_add_rows(float *out, const uint8_t *bias, int row_len, int n_rows) {
  for (int r = 0; r < n_rows; r++) {
    float *o = out + (size_t)r * row_len;
    for (int i = 0; i < row_len; i++) {
      float b; // a bias inside a file buffer may sit at any byte offset: an unaligned load
      memcpy(&b, bias + (size_t)i * 4, 4);
      o[i] += b;
    }
  }
}

void op_scatter_add(float *out, const float *x, const int32_t *rows, const float *scales, int n, int row_len) {
  for (int i = 0; i < n; i++) {
    float *o = out + (size_t)rows[i] * row_len;
    const float *xr = x + (size_t)i * row_len;
    const float s = scales[i];
    for (int j = 0; j < row_len; j++) o[j] += s * xr[j];
  }
}

// ---- attention -----------------------------------------------------------------------------------------------

// Items are (token, kv head, key chunk): the query heads sharing a kv head run together, so each K and V row
// is read once for the whole group. Decode has few (token, kv head) pairs, so its keys split into chunks
// (flash-decoding): each chunk keeps its own max, sum and unnormalised V sum, merged per head afterwards.
typedef struct {
  float *out;
  const float *q, *k, *v;
  int n_tok, start, n_head, n_kv, group, hd, nth;
  int kc, n_ch; // keys per chunk, chunks per (token, kv head)
  size_t kvdim;
  float scale;
  float *scratch; // per thread: group * kc scores + group * hd sums
  float *part;    // n_ch > 1: per (item, head of group): max, sum, hd sums
} attn_ctx;

/** acc[g * hd + i] = sum over keys j < n of p[g * kc + j] * v_j[i] for the G heads of a group, j in order. */
static inline void vsum_plain(float *restrict acc, const float *restrict p, int kc, const float *restrict vb, size_t kvdim, int n, int G, int hd) {
  for (size_t i = 0; i < (size_t)G * hd; i++) acc[i] = 0;
  for (int j = 0; j < n; j++)
    for (int g = 0; g < G; g++) axpy_plain(acc + (size_t)g * hd, p[(size_t)g * kc + j], vb + (size_t)j * kvdim, hd);
}

#if defined(__x86_64__) || defined(__i386__)
/** vsum_plain with the sums in registers: blocks of HB heads x 8 VB values stay in ymm while the keys pass (one V
 *  load serves HB heads), instead of a load and store of acc per key. Per value the same FMAs in the same order as
 *  axpy_avx2, so the same bits. */
#define VSUM_BLOCK(HB, VB)                                                                                         \
  TARGET_AVX2 static inline void vsum_block_##HB##x##VB(float *restrict acc, const float *restrict p, int kc,       \
                                                         const float *restrict vb, size_t kvdim, int n, int hd) {   \
    __m256 s[HB][VB];                                                                                              \
    for (int h = 0; h < HB; h++)                                                                                   \
      for (int b = 0; b < VB; b++) s[h][b] = _mm256_setzero_ps();                                                  \
    for (int j = 0; j < n; j++) {                                                                                  \
      __m256 v[VB];                                                                                                \
      for (int b = 0; b < VB; b++) v[b] = _mm256_loadu_ps(vb + (size_t)j * kvdim + 8 * b);                         \
      for (int h = 0; h < HB; h++) {                                                                               \
        const __m256 pv = _mm256_broadcast_ss(p + (size_t)h * kc + j);                                             \
        for (int b = 0; b < VB; b++) s[h][b] = _mm256_fmadd_ps(pv, v[b], s[h][b]);                                 \
      }                                                                                                            \
    }                                                                                                              \
    for (int h = 0; h < HB; h++)                                                                                   \
      for (int b = 0; b < VB; b++) _mm256_storeu_ps(acc + (size_t)h * hd + 8 * b, s[h][b]);                        \
  }
VSUM_BLOCK(4, 2)
VSUM_BLOCK(1, 1)
#undef VSUM_BLOCK

TARGET_AVX2 static inline void vsum_avx2(float *restrict acc, const float *restrict p, int kc, const float *restrict vb, size_t kvdim, int n, int G, int hd) {
  const int hd8 = hd & ~7;
  int g = 0;
  for (; g + 4 <= G; g += 4) {
    int i = 0;
    for (; i + 16 <= hd8; i += 16) vsum_block_4x2(acc + (size_t)g * hd + i, p + (size_t)g * kc, kc, vb + i, kvdim, n, hd);
    for (int h = 0; h < 4 && i < hd8; h++) vsum_block_1x1(acc + (size_t)(g + h) * hd + i, p + (size_t)(g + h) * kc, kc, vb + i, kvdim, n, hd);
  }
  for (; g < G; g++)
    for (int i = 0; i < hd8; i += 8) vsum_block_1x1(acc + (size_t)g * hd + i, p + (size_t)g * kc, kc, vb + i, kvdim, n, hd);
  if (hd8 == hd) return;
  for (g = 0; g < G; g++) { // the values past the last 8: axpy_avx2's scalar tail, key by key
    float *restrict a = acc + (size_t)g * hd;
    for (int i = hd8; i < hd; i++) a[i] = 0;
    for (int j = 0; j < n; j++) {
      const float pj = p[(size_t)g * kc + j], *restrict x = vb + (size_t)j * kvdim;
      for (int i = hd8; i < hd; i++) a[i] += pj * x[i];
    }
  }
}
#endif

// The item loop, instantiated once per instruction set with its dot and V sum (the AVX2 copy gets intrinsics).
// A chunk past a token's causal end records max -inf, sum 0; with one chunk per pair the result is normalised
// straight into out (which may be q's own rows: q is last read while scoring).
#define ATTN_BODY(NAME, ATTR, DOT, VSUM) \
ATTR static void NAME(void *vctx, int ith, int c0, int c1) { \
  const attn_ctx *c = vctx; \
  if (ith >= c->nth) ith = 0; \
  const int hd = c->hd, G = c->group, kc = c->kc; \
  const size_t kvdim = c->kvdim; \
  float *restrict sc = c->scratch + (size_t)ith * (size_t)G * (kc + hd); \
  float *restrict acc = sc + (size_t)G * kc; \
  for (int it = c0; it < c1; it++) { \
    const int ch = it % c->n_ch, tk = it / c->n_ch, kvh = tk % c->n_kv, t = tk / c->n_kv; \
    const int nk = c->start + t + 1, j0 = ch * kc, j1 = j0 + kc < nk ? j0 + kc : nk, n = j1 - j0; \
    const float *q0 = c->q + ((size_t)t * c->n_head + (size_t)kvh * G) * hd; \
    float *pp = c->part ? c->part + (size_t)it * G * (hd + 2) : NULL; \
    if (n <= 0) { \
      for (int g = 0; g < G; g++) pp[(size_t)g * (hd + 2)] = -INFINITY, pp[(size_t)g * (hd + 2) + 1] = 0; \
      continue; \
    } \
    const float *kb = c->k + (size_t)kvh * hd + (size_t)j0 * kvdim, *vb = c->v + (size_t)kvh * hd + (size_t)j0 * kvdim; \
    for (int j = 0; j < n; j++) { \
      const float *restrict kr = kb + (size_t)j * kvdim; \
      for (int g = 0; g < G; g++) sc[(size_t)g * kc + j] = DOT(kr, q0 + (size_t)g * hd, hd) * c->scale; \
    } \
    float mx[G > 0 ? G : 1]; \
    double sum[G > 0 ? G : 1]; \
    for (int g = 0; g < G; g++) { \
      float *s = sc + (size_t)g * kc, m = -INFINITY; \
      for (int j = 0; j < n; j++) m = s[j] > m ? s[j] : m; \
      double l = 0; \
      for (int j = 0; j < n; j++) { \
        const float e = expf(s[j] - m); \
        s[j] = e; \
        l += e; \
      } \
      mx[g] = m, sum[g] = l; \
    } \
    VSUM(acc, sc, kc, vb, kvdim, n, G, hd); \
    if (!pp) { \
      for (int g = 0; g < G; g++) { \
        float *o = c->out + ((size_t)t * c->n_head + (size_t)kvh * G + g) * hd; \
        const float inv = (float)(1.0 / sum[g]); \
        for (int i = 0; i < hd; i++) o[i] = acc[(size_t)g * hd + i] * inv; \
      } \
    } else { \
      for (int g = 0; g < G; g++) { \
        float *d = pp + (size_t)g * (hd + 2); \
        d[0] = mx[g], d[1] = (float)sum[g]; \
        memcpy(d + 2, acc + (size_t)g * hd, sizeof(float) * hd); \
      } \
    } \
  } \
}

ATTN_BODY(attn_range, , dot_plain, vsum_plain)

#if defined(__x86_64__) || defined(__i386__)
ATTN_BODY(attn_range_avx2, TARGET_AVX2, dot_avx2, vsum_avx2)
#endif


/** Merge the chunks of (token, head) items [h0, h1): out = sum_c e^(m_c - M) acc_c / sum_c e^(m_c - M) l_c. */
static void attn_merge(void *vc, int ith, int h0, int h1) {
  (void)ith;
  const attn_ctx *c = vc;
  const int hd = c->hd, G = c->group;
  for (int th = h0; th < h1; th++) {
    const int t = th / c->n_head, h = th % c->n_head, kvh = h / G, g = h % G;
    const size_t base = ((size_t)t * c->n_kv + kvh) * c->n_ch;
    float m = -INFINITY;
    for (int ch = 0; ch < c->n_ch; ch++) {
      const float mc = c->part[((base + ch) * G + g) * (hd + 2)];
      m = mc > m ? mc : m;
    }
    float *o = c->out + (size_t)th * hd;
    double l = 0;
    for (int i = 0; i < hd; i++) o[i] = 0;
    for (int ch = 0; ch < c->n_ch; ch++) {
      const float *d = c->part + ((base + ch) * G + g) * (hd + 2);
      if (d[1] == 0) continue;
      const float w = expf(d[0] - m);
      l += (double)w * d[1];
      for (int i = 0; i < hd; i++) o[i] += w * d[2 + i];
    }
    const float inv = (float)(1.0 / l);
    for (int i = 0; i < hd; i++) o[i] *= inv;
  }
}

int op_attention(float *out, const float *q, const float *k, const float *v, int n_tok, int start, int n_head, int n_head_kv,
                 int hd, float scale) {
  const kernels_t *kn = kernels_current();
  const int nth = pool_threads(), G = n_head / n_head_kv, pairs = n_tok * n_head_kv, nkeys = start + n_tok;
  // Few (token, kv head) pairs (decode, short batches): chunks of 128 keys give the threads enough items. The split
  // depends on the shapes only, never on the thread count, so every thread count gives the same bits.
  int kc = pairs < 64 ? 128 : nkeys;
  if (kc > nkeys) kc = nkeys;
  const int n_ch = (nkeys + kc - 1) / kc;
  const size_t items = (size_t)pairs * n_ch;
  if (items > INT32_MAX) return -1;
  float *scratch = malloc(sizeof(float) * (size_t)nth * G * (kc + hd));
  float *part = n_ch > 1 ? malloc(sizeof(float) * items * G * (hd + 2)) : NULL;
  if (!scratch || (n_ch > 1 && !part)) {
    free(scratch), free(part);
    return -1;
  }
  attn_ctx c = {.out = out, .q = q, .k = k, .v = v, .n_tok = n_tok, .start = start, .n_head = n_head, .n_kv = n_head_kv,
                .group = G, .hd = hd, .nth = nth, .kc = kc, .n_ch = n_ch, .kvdim = (size_t)n_head_kv * hd, .scale = scale,
                .scratch = scratch, .part = part};
  range_fn fn = attn_range;
#if defined(__x86_64__) || defined(__i386__)
  if (strcmp(kn->name, "scalar") != 0) fn = attn_range_avx2;
#endif
  const long work = (long)n_tok * n_head * nkeys * hd;
  pool_for(fn, &c, (int)items, 1, work >= 32768);
  if (part) pool_for(attn_merge, &c, n_tok * n_head, chunk_for(n_tok * n_head, 8), (long)n_tok * n_head * n_ch * hd >= PAR_MIN_ELEMS);
  free(scratch);
  free(part);
  return 0;
}

// ---- gated delta rule --------------------------------------------------------------------------------------

typedef struct {
  float *out, *state_out;
  const float *state, *q, *k, *v, *g, *beta;
  int n_tok, n_k, n_v, s, tile;
} gdn_ctx;

// Sums of s products in 8 independent f32 lanes (vectorised without reassociating), then added up in f64.
static double dot8(const float *a, const float *b, int s) {
  float acc[8] = {0};
  int x = 0;
  for (; x + 8 <= s; x += 8)
    for (int l = 0; l < 8; l++) acc[l] += a[x + l] * b[x + l];
  double sum = 0;
  for (int l = 0; l < 8; l++) sum += acc[l];
  for (; x < s; x++) sum += (double)a[x] * b[x];
  return sum;
}

// Value heads [j0, j1): each is independent, its tokens in order. Row i of M at a time, as the scalar reference:
// delta = (v_i - exp(g) M_i.k) beta, then M_i = exp(g) M_i + delta k and out_i = M_i.q / sqrt(s).
static void gdn_range(void *vc, int ith, int j0, int j1) {
  (void)ith;
  const gdn_ctx *c = vc;
  const int s = c->s, rep = c->n_v / c->n_k;
  const double scale = 1.0 / sqrt((double)s);
  for (int j = j0; j < j1; j++) {
    const int hk = c->tile ? j % c->n_k : j / rep;
    float *m = c->state_out + (size_t)j * s * s;
    if (c->state_out != c->state) memcpy(m, c->state + (size_t)j * s * s, (size_t)s * s * 4); // then in place, in cache
    for (int t = 0; t < c->n_tok; t++) {
      const float *kt = c->k + ((size_t)t * c->n_k + hk) * s, *qt = c->q + ((size_t)t * c->n_k + hk) * s;
      const float *vt = c->v + ((size_t)t * c->n_v + j) * s;
      float *ot = c->out + ((size_t)t * c->n_v + j) * s;
      const float decay = (float)exp((double)c->g[(size_t)t * c->n_v + j]);
      const double b = c->beta[(size_t)t * c->n_v + j];
      for (int i = 0; i < s; i++) {
        float *row = m + (size_t)i * s;
        const float delta = (float)(((double)vt[i] - decay * dot8(row, kt, s)) * b);
        for (int x = 0; x < s; x++) row[x] = row[x] * decay + delta * kt[x];
        ot[i] = (float)(dot8(row, qt, s) * scale);
      }
    }
  }
}

void op_gated_delta_net(float *out, const float *q, const float *k, const float *v, const float *g, const float *beta, const float *state,
                        float *state_out, int n_tok, int n_k, int n_v, int s, int tile) {
  gdn_ctx c = {out, state_out, state, q, k, v, g, beta, n_tok, n_k, n_v, s, tile};
  pool_for(gdn_range, &c, n_v, 1, (long)n_tok * n_v * s * s >= PAR_MIN_ELEMS);
}
