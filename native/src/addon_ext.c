// Node-API bindings of the MLA, gpt-oss and linear-attention ops (attentionExt, attentionMasked, swigluOai, addRows,
// matmulHeads, convSilu, l2Norm, rmsNormGated, sigmoidMul, deltaGates, copyRows, ropeTable): arguments checked, then
// the op runs in place on the JS memory.
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "napi_args.h"
#include "ops.h"

// attentionExt(out, q, kCache, vCache, nTokens, startPos, nHead, nHeadKv, headDim, vDim, scale, f16Probs) and
// attentionMasked(..., f16Probs, sinks, window): sinks f32 bytes [nHead] or null, window 0 (none) or the keys a token sees.
static napi_value attention_ext(napi_env env, napi_callback_info info, bool masked) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *out, *q, *k, *v, *sinks = NULL;
  size_t ol, ql, kl, vl;
  int64_t T, start, nh, nkv, hd, vd, f16, window = 0;
  double scale;
  if (!f32_arg(env, a[0], "out", &out, &ol) || !f32_arg(env, a[1], "q", &q, &ql) || !f32_arg(env, a[2], "kCache", &k, &kl) ||
      !f32_arg(env, a[3], "vCache", &v, &vl) || !int_arg(env, a[4], "nTokens", 0, INT32_MAX, &T) ||
      !int_arg(env, a[5], "startPos", 0, INT32_MAX, &start) || !int_arg(env, a[6], "nHead", 1, 1 << 16, &nh) ||
      !int_arg(env, a[7], "nHeadKv", 1, 1 << 16, &nkv) || !int_arg(env, a[8], "headDim", 1, 1 << 16, &hd) ||
      !int_arg(env, a[9], "vDim", 1, hd, &vd) || !num_arg(env, a[10], "scale", &scale) || !int_arg(env, a[11], "f16Probs", 0, 1, &f16) ||
      (masked && !int_arg(env, a[13], "window", 0, INT32_MAX, &window)))
    return NULL;
  if (nh % nkv) return fail(env, "R", "native attention: nHead %lld is not a multiple of nHeadKv %lld", (long long)nh, (long long)nkv);
  if (start + T > INT32_MAX || T * nh > INT32_MAX) return fail(env, "R", "native attention: too many positions");
  const size_t qn = (size_t)T * nh * hd, on = (size_t)T * nh * vd, kvn = (size_t)(start + T) * nkv * hd;
  if (!need_len(env, "attention", "q", ql, qn) || !need_len(env, "attention", "out", ol, on) ||
      !need_len(env, "attention", "kCache", kl, kvn) || !need_len(env, "attention", "vCache", vl, kvn))
    return NULL;
  if (overlap(out, on * 4, k, kvn * 4) || overlap(out, on * 4, v, kvn * 4) || overlap(out, on * 4, q, qn * 4))
    return fail(env, "R", "native attention: out overlaps q or the cache");
  napi_valuetype st = napi_undefined;
  if (masked) napi_typeof(env, a[12], &st);
  if (st != napi_undefined && st != napi_null) {
    void *sb;
    size_t sl;
    if (!bytes_arg(env, a[12], "sinks", &sb, &sl) || !need_len(env, "attention", "sinks", sl / 4, (size_t)nh)) return NULL;
    if (!(sinks = malloc(sizeof(float) * (size_t)nh))) return fail(env, "E", "native attention: out of memory");
    memcpy(sinks, sb, sizeof(float) * (size_t)nh); // f32 bytes at any alignment (a weight in a file buffer)
  }
  const int rc = op_attention_ext(out, q, k, v, (int)T, (int)start, (int)nh, (int)nkv, (int)hd, (int)vd, (float)scale, (int)f16, sinks, (int)window);
  free(sinks);
  if (rc != 0) return fail(env, "E", "native attention: out of memory");
  return undefined(env);
}
napi_value js_attention_ext(napi_env env, napi_callback_info info) { return attention_ext(env, info, false); }
napi_value js_attention_masked(napi_env env, napi_callback_info info) { return attention_ext(env, info, true); }

// swigluOai(out, gate, up, n, alpha, limit): out may alias gate or up exactly.
napi_value js_swiglu_oai(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *out, *g, *u;
  size_t ol, gl, ul;
  int64_t n;
  double alpha, limit;
  if (!f32_arg(env, a[0], "out", &out, &ol) || !f32_arg(env, a[1], "gate", &g, &gl) || !f32_arg(env, a[2], "up", &u, &ul) ||
      !int_arg(env, a[3], "n", 0, INT64_C(1) << 50, &n) || !num_arg(env, a[4], "alpha", &alpha) || !num_arg(env, a[5], "limit", &limit))
    return NULL;
  if (!need_len(env, "swigluOai", "out", ol, (size_t)n) || !need_len(env, "swigluOai", "gate", gl, (size_t)n) ||
      !need_len(env, "swigluOai", "up", ul, (size_t)n))
    return NULL;
  const size_t b = (size_t)n * 4;
  if ((out != g && overlap(out, b, g, b)) || (out != u && overlap(out, b, u, b))) return fail(env, "R", "native swigluOai: out partly overlaps an input");
  op_swiglu_oai(out, g, u, (size_t)n, alpha, limit);
  return undefined(env);
}

// addRows(out, bias, rowLen, nRows): bias f32 bytes [rowLen].
napi_value js_add_rows(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *out;
  void *bias;
  size_t ol, bl;
  int64_t len, rows;
  if (!f32_arg(env, a[0], "out", &out, &ol) || !bytes_arg(env, a[1], "bias", &bias, &bl) || !int_arg(env, a[2], "rowLen", 1, INT32_MAX, &len) ||
      !int_arg(env, a[3], "nRows", 0, INT32_MAX, &rows))
    return NULL;
  if (!need_len(env, "addRows", "out", ol, (size_t)len * rows) || !need_len(env, "addRows", "bias", bl / 4, (size_t)len)) return NULL;
  if (overlap(out, (size_t)len * rows * 4, bias, (size_t)len * 4)) return fail(env, "R", "native addRows: out overlaps bias");
  op_add_rows(out, bias, (int)len, (int)rows);
  return undefined(env);
}

// matmulHeads(type, w, x, out, K, N, nHead, T): out[T, nHead, N] = per head x[T, nHead, K] · W_hᵀ.
napi_value js_matmul_heads(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  int64_t type, K, N, H, T;
  void *w;
  size_t wlen, xlen, olen;
  float *x, *out;
  if (!int_arg(env, a[0], "type", 0, 65535, &type) || !bytes_arg(env, a[1], "w", &w, &wlen) || !f32_arg(env, a[2], "x", &x, &xlen) ||
      !f32_arg(env, a[3], "out", &out, &olen) || !int_arg(env, a[4], "K", 1, INT32_MAX, &K) || !int_arg(env, a[5], "N", 0, INT32_MAX, &N) ||
      !int_arg(env, a[6], "nHead", 1, 1 << 20, &H) || !int_arg(env, a[7], "T", 0, INT32_MAX, &T))
    return NULL;
  const size_t rb = type_row_bytes((int)type, (int)K);
  if (rb == 0 || type == GGML_Q4_K_R8 || type == GGML_Q8_0_R8)
    return fail(env, "R", "native matmulHeads: ggml type %lld with rows of K = %lld values is not supported", (long long)type, (long long)K);
  const size_t rows = (size_t)N * H, xn = (size_t)T * H * K, on = (size_t)T * H * N;
  if (wlen < rb * rows) return fail(env, "R", "native matmulHeads: w has %zu bytes, %zu rows of %lld values need %zu", wlen, rows, (long long)K, rb * rows);
  if (!need_len(env, "matmulHeads", "x", xlen, xn) || !need_len(env, "matmulHeads", "out", olen, on)) return NULL;
  if (overlap(out, on * 4, x, xn * 4) || overlap(out, on * 4, w, rb * rows)) return fail(env, "R", "native matmulHeads: out overlaps x or w");
  if (matmul_heads_run((int)type, w, x, out, (int)K, (int)N, (int)H, (int)T) != 0) return fail(env, "E", "native matmulHeads: out of memory");
  return undefined(env);
}

// convSilu(out, x, state, w, nTokens, channels, taps): w f32 bytes [channels, taps].
napi_value js_conv_silu(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *out, *x, *st;
  void *w;
  size_t ol, xl, sl, wl;
  int64_t T, C, taps;
  if (!f32_arg(env, a[0], "out", &out, &ol) || !f32_arg(env, a[1], "x", &x, &xl) || !f32_arg(env, a[2], "state", &st, &sl) ||
      !bytes_arg(env, a[3], "w", &w, &wl) || !int_arg(env, a[4], "nTokens", 0, INT32_MAX, &T) ||
      !int_arg(env, a[5], "channels", 1, INT32_MAX, &C) || !int_arg(env, a[6], "taps", 1, 64, &taps))
    return NULL;
  const size_t n = (size_t)T * C, sn = (size_t)C * (taps - 1);
  if (!need_len(env, "convSilu", "x", xl, n) || !need_len(env, "convSilu", "out", ol, n) || !need_len(env, "convSilu", "state", sl, sn) ||
      !need_len(env, "convSilu", "w", wl / 4, (size_t)C * taps))
    return NULL;
  if (overlap(out, n * 4, x, n * 4) || overlap(out, n * 4, st, sn * 4) || overlap(st, sn * 4, x, n * 4))
    return fail(env, "R", "native convSilu: out, x and state must not overlap");
  op_conv_silu(out, x, st, w, (int)T, (int)C, (int)taps);
  return undefined(env);
}

/** out, x (and gate) of rows x len values; out may alias x (and gate) exactly. */
static bool rows_args(napi_env env, const char *op, napi_value *a, int gate_at, float **out, float **x, float **gate, size_t n) {
  size_t ol, xl, gl = n;
  if (!f32_arg(env, a[0], "out", out, &ol) || !f32_arg(env, a[1], "x", x, &xl) || (gate_at >= 0 && !f32_arg(env, a[gate_at], "gate", gate, &gl)))
    return false;
  if (!need_len(env, op, "x", xl, n) || !need_len(env, op, "out", ol, n) || !need_len(env, op, "gate", gl, n)) return false;
  if ((*out != *x && overlap(*out, n * 4, *x, n * 4)) || (gate_at >= 0 && *out != *gate && overlap(*out, n * 4, *gate, n * 4))) {
    fail(env, "R", "native %s: out partly overlaps an input", op);
    return false;
  }
  return true;
}

// l2Norm(out, x, eps, rowLen, nRows)
napi_value js_l2_norm(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *out, *x;
  double eps;
  int64_t len, rows;
  if (!num_arg(env, a[2], "eps", &eps) || !int_arg(env, a[3], "rowLen", 1, INT32_MAX, &len) || !int_arg(env, a[4], "nRows", 0, INT32_MAX, &rows) ||
      !rows_args(env, "l2Norm", a, -1, &out, &x, NULL, (size_t)len * rows))
    return NULL;
  op_l2norm(out, x, (float)eps, (int)len, (int)rows);
  return undefined(env);
}

// rmsNormGated(out, x, w, gate, eps, rowLen, nRows): w f32 bytes [rowLen].
napi_value js_rms_norm_gated(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *out, *x, *gate;
  void *w;
  size_t wl;
  double eps;
  int64_t len, rows;
  if (!bytes_arg(env, a[2], "w", &w, &wl) || !num_arg(env, a[4], "eps", &eps) || !int_arg(env, a[5], "rowLen", 1, INT32_MAX, &len) ||
      !int_arg(env, a[6], "nRows", 0, INT32_MAX, &rows) || !rows_args(env, "rmsNormGated", a, 3, &out, &x, &gate, (size_t)len * rows) ||
      !need_len(env, "rmsNormGated", "w", wl / 4, (size_t)len))
    return NULL;
  op_rmsnorm_gated(out, x, w, gate, (float)eps, (int)len, (int)rows);
  return undefined(env);
}

// sigmoidMul(out, x, gate, n)
napi_value js_sigmoid_mul(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *out, *x, *gate;
  int64_t n;
  if (!int_arg(env, a[3], "n", 0, INT32_MAX, &n) || !rows_args(env, "sigmoidMul", a, 2, &out, &x, &gate, (size_t)n)) return NULL;
  op_sigmoid_mul(out, x, gate, (int)n);
  return undefined(env);
}

// deltaGates(g, beta, alpha, betaRaw, dtBias, a, nHead, nRows): dtBias and a f32 bytes [nHead].
napi_value js_delta_gates(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *g, *beta, *alpha, *br;
  void *dt, *av;
  size_t gl, bl, al, brl, dtl, avl;
  int64_t nh, rows;
  if (!f32_arg(env, a[0], "g", &g, &gl) || !f32_arg(env, a[1], "beta", &beta, &bl) || !f32_arg(env, a[2], "alpha", &alpha, &al) ||
      !f32_arg(env, a[3], "betaRaw", &br, &brl) || !bytes_arg(env, a[4], "dtBias", &dt, &dtl) || !bytes_arg(env, a[5], "a", &av, &avl) ||
      !int_arg(env, a[6], "nHead", 1, INT32_MAX, &nh) || !int_arg(env, a[7], "nRows", 0, INT32_MAX, &rows))
    return NULL;
  const size_t n = (size_t)nh * rows;
  if (!need_len(env, "deltaGates", "g", gl, n) || !need_len(env, "deltaGates", "beta", bl, n) || !need_len(env, "deltaGates", "alpha", al, n) ||
      !need_len(env, "deltaGates", "betaRaw", brl, n) || !need_len(env, "deltaGates", "dtBias", dtl / 4, (size_t)nh) ||
      !need_len(env, "deltaGates", "a", avl / 4, (size_t)nh))
    return NULL;
  const size_t b = n * 4;
  if ((g != alpha && overlap(g, b, alpha, b)) || (beta != br && overlap(beta, b, br, b)) || overlap(g, b, beta, b) || overlap(g, b, br, b) ||
      overlap(beta, b, alpha, b))
    return fail(env, "R", "native deltaGates: g and beta must not overlap each other or the other's input");
  op_delta_gates(g, beta, alpha, br, dt, av, (int)nh, (int)rows);
  return undefined(env);
}

// copyRows(out, x, rows, n, srcOffset, srcStride, dstOffset, dstStride, roundF16)
napi_value js_copy_rows(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *out, *x;
  size_t ol, xl;
  int64_t rows, n, so, ss, dof, ds, rf;
  if (!f32_arg(env, a[0], "out", &out, &ol) || !f32_arg(env, a[1], "x", &x, &xl) || !int_arg(env, a[2], "rows", 0, INT32_MAX, &rows) ||
      !int_arg(env, a[3], "n", 0, INT32_MAX, &n) || !int_arg(env, a[4], "srcOffset", 0, INT64_C(1) << 50, &so) ||
      !int_arg(env, a[5], "srcStride", 0, INT64_C(1) << 40, &ss) || !int_arg(env, a[6], "dstOffset", 0, INT64_C(1) << 50, &dof) ||
      !int_arg(env, a[7], "dstStride", 0, INT64_C(1) << 40, &ds) || !int_arg(env, a[8], "roundF16", 0, 1, &rf))
    return NULL;
  if (rows == 0 || n == 0) return undefined(env);
  const size_t send = (size_t)so + (size_t)(rows - 1) * ss + n, dend = (size_t)dof + (size_t)(rows - 1) * ds + n;
  if (send > xl || dend > ol)
    return fail(env, "R", "native copy: %lld rows of %lld (src stride %lld from %lld, dst stride %lld from %lld) overrun %zu -> %zu values",
                (long long)rows, (long long)n, (long long)ss, (long long)so, (long long)ds, (long long)dof, xl, ol);
  if (overlap(out + dof, (dend - dof) * 4, x + so, (send - so) * 4)) return fail(env, "R", "native copy: out and x overlap");
  op_copy_rows(out, x, (int)rows, (int)n, (size_t)so, (size_t)ss, (size_t)dof, (size_t)ds, (int)rf);
  return undefined(env);
}

// ropeTable(x, cs, nHead, headDim, nRot, offset, norm): cs a Float64Array of pos.length * nRot/2 (cos, sin) pairs.
napi_value js_rope_table(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *x;
  void *cs;
  size_t xl, csl;
  int64_t nh, hd, nrot, off, norm;
  if (!f32_arg(env, a[0], "x", &x, &xl) || !typed_arg(env, a[1], "cs", napi_float64_array, "a Float64Array", &cs, &csl) ||
      !int_arg(env, a[2], "nHead", 1, 1 << 20, &nh) || !int_arg(env, a[3], "headDim", 2, 1 << 16, &hd) || !int_arg(env, a[4], "nRot", 2, hd, &nrot) ||
      !int_arg(env, a[5], "offset", 0, hd - nrot, &off) || !int_arg(env, a[6], "norm", 0, 1, &norm))
    return NULL;
  if (nrot % 2) return fail(env, "R", "native rope: nRot %lld is odd", (long long)nrot);
  const size_t pairs = (size_t)nrot / 2, T = csl / (2 * pairs);
  if (csl != T * 2 * pairs) return fail(env, "R", "native rope: cs has %zu values, not whole tokens of %zu (cos, sin) pairs", csl, pairs);
  if (T > INT32_MAX || !need_len(env, "rope", "x", xl, T * (size_t)nh * (size_t)hd)) return NULL;
  op_rope_table(x, cs, (int)T, (int)nh, (int)hd, (int)nrot, (int)off, (int)norm);
  return undefined(env);
}
