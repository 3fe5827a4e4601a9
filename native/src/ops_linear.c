// The gated DeltaNet's small ops (Qwen3-Next / Qwen3.5; Backend.convSilu, l2Norm, rmsNormGated, sigmoidMul,
// deltaGates) and the f16-rounding row copy of the MLA cache: plain loops in f64 like the scalar reference, so the
// results match it to the last bit or nearly; channels or rows split across the pool where there are enough.
#include <math.h>

#include "ops.h"
#include "pool.h"
#include "vec_f32.h"

#define PAR_MIN (1 << 15) // values below which an op runs on the caller alone (a pool wake-up costs more)

static int chunk_of(int n, int min) {
  const int nth = pool_threads();
  int c = (n + nth * 4 - 1) / (nth * 4);
  return c < min ? min : c;
}

static inline double silu(double x) { return x / (1.0 + exp(-x)); }

// ---- causal conv1d + SiLU -------------------------------------------------------------------------------------

typedef struct {
  float *out, *state;
  const float *x;
  const uint8_t *w; // f32 [C, taps] at any alignment
  int T, C, taps;
} conv_ctx;

static void conv_range(void *vc, int ith, int c0, int c1) {
  (void)ith;
  const conv_ctx *c = vc;
  const int keep = c->taps - 1, T = c->T, C = c->C;
  for (int ch = c0; ch < c1; ch++) {
    const uint8_t *w = c->w + (size_t)ch * c->taps * 4;
    float *st = c->state + (size_t)ch * keep;
    // Window position i: the state's values first (oldest first), then x's rows.
#define WIN(i) ((i) < keep ? st[i] : c->x[(size_t)((i) - keep) * C + ch])
    for (int t = 0; t < T; t++) {
      double s = 0;
      for (int j = 0; j < c->taps; j++) s += (double)load_f32(w + 4 * (size_t)j) * WIN(t + j);
      c->out[(size_t)t * C + ch] = (float)silu(s);
    }
    for (int j = 0; j < keep; j++) st[j] = WIN(T + j); // reads index T + j >= j: not yet overwritten
#undef WIN
  }
}

void op_conv_silu(float *out, const float *x, float *state, const uint8_t *w, int n_tok, int channels, int taps) {
  conv_ctx c = {.out = out, .state = state, .x = x, .w = w, .T = n_tok, .C = channels, .taps = taps};
  pool_for(conv_range, &c, channels, chunk_of(channels, 256), (long)n_tok * channels * taps >= PAR_MIN);
}

// ---- row norms ------------------------------------------------------------------------------------------------

typedef struct {
  float *out;
  const float *x, *gate;
  const uint8_t *w; // f32 [len] at any alignment (rmsNormGated)
  double eps;
  int len;
} norm_ctx;

static double sumsq(const float *x, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
  return s;
}

static void l2_range(void *vc, int ith, int r0, int r1) {
  (void)ith;
  const norm_ctx *c = vc;
  for (int r = r0; r < r1; r++) {
    const float *x = c->x + (size_t)r * c->len;
    float *o = c->out + (size_t)r * c->len;
    const double inv = 1.0 / sqrt(sumsq(x, c->len) + c->eps);
    for (int i = 0; i < c->len; i++) o[i] = (float)(x[i] * inv);
  }
}

static void rms_gated_range(void *vc, int ith, int r0, int r1) {
  (void)ith;
  const norm_ctx *c = vc;
  for (int r = r0; r < r1; r++) {
    const float *x = c->x + (size_t)r * c->len, *z = c->gate + (size_t)r * c->len;
    float *o = c->out + (size_t)r * c->len;
    const double inv = 1.0 / sqrt(sumsq(x, c->len) / c->len + c->eps);
    for (int i = 0; i < c->len; i++) o[i] = (float)(x[i] * inv * load_f32(c->w + 4 * (size_t)i) * silu(z[i]));
  }
}

void op_l2norm(float *out, const float *x, float eps, int row_len, int n_rows) {
  norm_ctx c = {.out = out, .x = x, .eps = eps, .len = row_len};
  pool_for(l2_range, &c, n_rows, chunk_of(n_rows, (4096 + row_len - 1) / row_len), (long)row_len * n_rows >= PAR_MIN);
}

void op_rmsnorm_gated(float *out, const float *x, const uint8_t *w, const float *gate, float eps, int row_len, int n_rows) {
  norm_ctx c = {.out = out, .x = x, .gate = gate, .w = w, .eps = eps, .len = row_len};
  pool_for(rms_gated_range, &c, n_rows, chunk_of(n_rows, (4096 + row_len - 1) / row_len), (long)row_len * n_rows >= PAR_MIN);
}

// ---- gates ----------------------------------------------------------------------------------------------------

typedef struct {
  float *out;
  const float *x, *gate;
} sg_ctx;

static void sigmoid_mul_range(void *vc, int ith, int i0, int i1) {
  (void)ith;
  const sg_ctx *c = vc;
  for (int i = i0; i < i1; i++) c->out[i] = (float)(c->x[i] / (1.0 + exp(-(double)c->gate[i])));
}

void op_sigmoid_mul(float *out, const float *x, const float *gate, int n) {
  sg_ctx c = {out, x, gate};
  pool_for(sigmoid_mul_range, &c, n, chunk_of(n, 4096), n >= PAR_MIN);
}

void op_delta_gates(float *g, float *beta, const float *alpha, const float *beta_raw, const uint8_t *dt_bias, const uint8_t *a, int n_head,
                    int n_rows) {
  for (int r = 0; r < n_rows; r++)
    for (int h = 0; h < n_head; h++) {
      const size_t i = (size_t)r * n_head + h;
      const double z = (double)alpha[i] + load_f32(dt_bias + 4 * (size_t)h);
      const double softplus = z > 20 ? z : log1p(exp(z)); // ggml's softplus threshold
      g[i] = (float)(softplus * load_f32(a + 4 * (size_t)h));
      beta[i] = (float)(1.0 / (1.0 + exp(-(double)beta_raw[i])));
    }
}

// ---- strided row copy -----------------------------------------------------------------------------------------

void op_copy_rows(float *out, const float *x, int rows, int n, size_t src_off, size_t src_stride, size_t dst_off, size_t dst_stride,
                  int round_f16) {
  for (int r = 0; r < rows; r++) {
    const float *s = x + src_off + (size_t)r * src_stride;
    float *d = out + dst_off + (size_t)r * dst_stride;
    if (round_f16)
      for (int i = 0; i < n; i++) d[i] = fp16_to_f32(fp16_from_f32(s[i]));
    else memcpy(d, s, sizeof(float) * (size_t)n);
  }
}

// ---- rope from a table of angles --------------------------------------------------------------------------------

void op_rope_table(float *x, const double *cs, int n_tok, int n_head, int head_dim, int n_rot, int offset, int norm) {
  const int half = n_rot / 2, step = norm ? 2 : 1, other = norm ? 1 : half;
  for (int t = 0; t < n_tok; t++) {
    const double *ct = cs + (size_t)t * half * 2;
    for (int h = 0; h < n_head; h++) {
      float *xh = x + ((size_t)t * n_head + h) * head_dim + offset;
      for (int i = 0; i < half; i++) {
        const double c = ct[2 * i], s = ct[2 * i + 1], a = xh[i * step], b = xh[i * step + other];
        xh[i * step] = (float)(a * c - b * s);
        xh[i * step + other] = (float)(a * s + b * c);
      }
    }
  }
}
