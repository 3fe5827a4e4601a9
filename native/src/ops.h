// The per-token ops besides matmul: rmsNorm, NeoX rope, add, swiglu, causal GQA attention over an f32 KV
// cache, scatter-add of expert rows, and the fused expert FFN. Rows split across the pool where there are enough.
#pragma once
#include <stddef.h>
#include <stdint.h>

/** out[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) * w (f64 sums, like the scalar reference). out may alias x. */
void op_rmsnorm(float *out, const float *x, const float *w, float eps, int row_len, int n_rows);
/** NeoX rope in place on x[T, n_head, head_dim]; angles pos[t] * base^(-2i/head_dim) in double. -1: out of memory. */
int op_rope(float *x, const int32_t *pos, int n_tok, int n_head, int head_dim, double freq_base);
/** out = a + b (out may alias a or b). */
void op_add(float *out, const float *a, const float *b, size_t n);
/** out = silu(g) * u (out may alias g or u). */
void op_swiglu(float *out, const float *g, const float *u, size_t n);
/** The gated delta rule over n_tok tokens (Backend.gatedDeltaNet): q, k [n_tok, n_k, s], v, out [n_tok, n_v, s], g,
 *  beta [n_tok, n_v], state [n_v, s (value), s (key)] read, the final states written to state_out (== state: in
 *  place); value head j reads key head j % n_k (tile) or j / (n_v / n_k). Value heads run in parallel. */
void op_gated_delta_net(float *out, const float *q, const float *k, const float *v, const float *g, const float *beta, const float *state,
                        float *state_out, int n_tok, int n_k, int n_v, int s, int tile);
/** Causal GQA attention: q[T, n_head, hd], caches [start + T, n_head_kv * hd]; out[T, n_head * hd]. -1: out of memory. */
int op_attention(float *out, const float *q, const float *k, const float *v, int n_tok, int start, int n_head, int n_head_kv,
                 int hd, float scale);
/** out[rows[i], :] += scales[i] * x[i, :]. */
void op_scatter_add(float *out, const float *x, const int32_t *rows, const float *scales, int n, int row_len);
/** Attention with V heads of the first vd values of each cache head row (vd <= hd: MLA), when f16_probs the
 *  normalised probabilities rounded to f16 before they weight V, sinks ([n_head] logits in each softmax denominator)
 *  unless NULL, and a sliding window of `window` keys per token (0: none); out[T, n_head * vd] must not overlap q
 *  or the cache. -1: out of memory. */
int op_attention_ext(float *out, const float *q, const float *k, const float *v, int n_tok, int start, int n_head, int n_head_kv,
                     int hd, int vd, float scale, int f16_probs, const float *sinks, int window);
/** gpt-oss's clamped SwiGLU: g = min(g, limit), u = clamp(u, ±limit), out = g · σ(alpha · g) · (u + 1) (out may alias g or u). */
void op_swiglu_oai(float *out, const float *g, const float *u, size_t n, double alpha, double limit);
/** out[r, :] += bias for r < n_rows rows of row_len values (bias: row_len f32 at any alignment). */
void op_add_rows(float *out, const uint8_t *bias, int row_len, int n_rows);
/** Causal depthwise conv1d then SiLU (Backend.convSilu): x[T, C], state [C, taps - 1] updated, w f32 [C, taps]. */
void op_conv_silu(float *out, const float *x, float *state, const uint8_t *w, int n_tok, int channels, int taps);
/** out = x / sqrt(sum(x²) + eps) per row (out may alias x). */
void op_l2norm(float *out, const float *x, float eps, int row_len, int n_rows);
/** out = x / sqrt(mean(x²) + eps) * w * silu(gate) per row, w f32 [row_len] (out may alias x). */
void op_rmsnorm_gated(float *out, const float *x, const uint8_t *w, const float *gate, float eps, int row_len, int n_rows);
/** out = x * sigmoid(gate) (out may alias x). */
void op_sigmoid_mul(float *out, const float *x, const float *gate, int n);
/** Per (row, head): g = softplus(alpha + dt_bias[h]) * a[h], beta = sigmoid(beta_raw); g may alias alpha, beta beta_raw. */
void op_delta_gates(float *g, float *beta, const float *alpha, const float *beta_raw, const uint8_t *dt_bias, const uint8_t *a, int n_head,
                    int n_rows);
/** rows rows of n values: out[dst_off + r * dst_stride + i] = x[src_off + r * src_stride + i], rounded to f16 when asked. */
void op_copy_rows(float *out, const float *x, int rows, int n, size_t src_off, size_t src_stride, size_t dst_off, size_t dst_stride,
                  int round_f16);
/** Rope in place on x[T, n_head, head_dim] over values [offset, offset + n_rot) of each head, from cos / sin pairs
 *  cs[T][n_rot / 2][2] (any rope's angles: YaRN, scaled); pairs (i, i + n_rot/2) (NeoX) or (2i, 2i + 1) when norm. */
void op_rope_table(float *x, const double *cs, int n_tok, int n_head, int head_dim, int n_rot, int offset, int norm);
