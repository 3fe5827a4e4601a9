// Node-API bindings of the non-matmul ops (rmsNorm, rope, add, swiglu, attention, scatter-add): arguments
// checked, then the op runs in place on the JS memory.
#include <stdlib.h>
#include <string.h>

#include "napi_args.h"
#include "ops.h"

// rmsNorm(out, x, w, eps, rowLen, nRows): w is f32 weight bytes (any alignment), at least rowLen values.
napi_value js_rms_norm(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *out, *x;
  void *w;
  size_t olen, xlen, wlen;
  double eps;
  int64_t len, rows;
  if (!f32_arg(env, a[0], "out", &out, &olen) || !f32_arg(env, a[1], "x", &x, &xlen) || !bytes_arg(env, a[2], "w", &w, &wlen) ||
      !num_arg(env, a[3], "eps", &eps) || !int_arg(env, a[4], "rowLen", 1, INT32_MAX, &len) ||
      !int_arg(env, a[5], "nRows", 0, INT32_MAX, &rows))
    return NULL;
  const size_t n = (size_t)len * (size_t)rows;
  if (!need_len(env, "rmsNorm", "x", xlen, n) || !need_len(env, "rmsNorm", "out", olen, n) ||
      !need_len(env, "rmsNorm", "w", wlen / 4, (size_t)len))
    return NULL;
  if (out != x && overlap(out, n * 4, x, n * 4)) return fail(env, "R", "native rmsNorm: out partly overlaps x");
  float *g = malloc((size_t)len * 4);
  if (!g) return fail(env, "E", "native rmsNorm: out of memory");
  memcpy(g, w, (size_t)len * 4);
  op_rmsnorm(out, x, g, (float)eps, (int)len, (int)rows);
  free(g);
  return undefined(env);
}

// rope(x, pos, nHead, headDim, freqBase): NeoX rotation in place on x[pos.length, nHead, headDim].
napi_value js_rope(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *x;
  int32_t *pos;
  size_t xlen, np;
  int64_t nh, hd;
  double base;
  if (!f32_arg(env, a[0], "x", &x, &xlen) || !i32_arg(env, a[1], "pos", &pos, &np) || !int_arg(env, a[2], "nHead", 1, 1 << 20, &nh) ||
      !int_arg(env, a[3], "headDim", 2, 1 << 16, &hd) || !num_arg(env, a[4], "freqBase", &base))
    return NULL;
  if (hd % 2) return fail(env, "R", "native rope: headDim %lld is odd", (long long)hd);
  if (np > INT32_MAX || !need_len(env, "rope", "x", xlen, np * (size_t)nh * (size_t)hd)) return NULL;
  if (op_rope(x, pos, (int)np, (int)nh, (int)hd, base) != 0) return fail(env, "E", "native rope: out of memory");
  return undefined(env);
}

// gatedDeltaNet(out, q, k, v, g, beta, state, stateOut, nTokens, nHeadK, nHeadV, headDim, tile): see ops.h.
napi_value js_gated_delta_net(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *out, *q, *k, *v, *g, *beta, *st, *so;
  size_t ol, ql, kl, vl, gl, bl, sl, sol;
  int64_t nt, nk, nv, s, tile;
  if (!f32_arg(env, a[0], "out", &out, &ol) || !f32_arg(env, a[1], "q", &q, &ql) || !f32_arg(env, a[2], "k", &k, &kl) ||
      !f32_arg(env, a[3], "v", &v, &vl) || !f32_arg(env, a[4], "g", &g, &gl) || !f32_arg(env, a[5], "beta", &beta, &bl) ||
      !f32_arg(env, a[6], "state", &st, &sl) || !f32_arg(env, a[7], "stateOut", &so, &sol) || !int_arg(env, a[8], "nTokens", 0, 1 << 24, &nt) ||
      !int_arg(env, a[9], "nHeadK", 1, 1 << 16, &nk) || !int_arg(env, a[10], "nHeadV", 1, 1 << 16, &nv) ||
      !int_arg(env, a[11], "headDim", 1, 1 << 12, &s) || !int_arg(env, a[12], "tile", 0, 1, &tile))
    return NULL;
  if (nv % nk) return fail(env, "R", "native gatedDeltaNet: %lld value heads not a multiple of %lld key heads", (long long)nv, (long long)nk);
  const size_t T = (size_t)nt, S = (size_t)s;
  if (!need_len(env, "gatedDeltaNet", "q", ql, T * nk * S) || !need_len(env, "gatedDeltaNet", "k", kl, T * nk * S) ||
      !need_len(env, "gatedDeltaNet", "v", vl, T * nv * S) || !need_len(env, "gatedDeltaNet", "out", ol, T * nv * S) ||
      !need_len(env, "gatedDeltaNet", "g", gl, T * nv) || !need_len(env, "gatedDeltaNet", "beta", bl, T * nv) ||
      !need_len(env, "gatedDeltaNet", "state", sl, (size_t)nv * S * S) || !need_len(env, "gatedDeltaNet", "stateOut", sol, (size_t)nv * S * S))
    return NULL;
  const size_t sb = (size_t)nv * S * S * 4;
  if (overlap(out, T * nv * S * 4, so, sb) || (so != st && overlap(so, sb, st, sb)))
    return fail(env, "R", "native gatedDeltaNet: stateOut overlaps out, or state without being it");
  op_gated_delta_net(out, q, k, v, g, beta, st, so, (int)nt, (int)nk, (int)nv, (int)s, (int)tile);
  return undefined(env);
}

// add(out, a, b, n) / swiglu(out, gate, up, n): elementwise; out may alias an input exactly.
static napi_value elementwise(napi_env env, napi_callback_info info, int which) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *out, *x, *y;
  size_t ol, xl, yl;
  int64_t n;
  const char *op = which ? "swiglu" : "add";
  if (!f32_arg(env, a[0], "out", &out, &ol) || !f32_arg(env, a[1], which ? "gate" : "a", &x, &xl) ||
      !f32_arg(env, a[2], which ? "up" : "b", &y, &yl) || !int_arg(env, a[3], "n", 0, INT64_C(1) << 50, &n))
    return NULL;
  if (!need_len(env, op, "out", ol, (size_t)n) || !need_len(env, op, "inputs", xl < yl ? xl : yl, (size_t)n)) return NULL;
  const size_t b = (size_t)n * 4;
  if ((out != x && overlap(out, b, x, b)) || (out != y && overlap(out, b, y, b)))
    return fail(env, "R", "native %s: out partly overlaps an input", op);
  (which ? op_swiglu : op_add)(out, x, y, (size_t)n);
  return undefined(env);
}
napi_value js_add(napi_env env, napi_callback_info info) { return elementwise(env, info, 0); }
napi_value js_swiglu(napi_env env, napi_callback_info info) { return elementwise(env, info, 1); }

// attention(out, q, kCache, vCache, nTokens, startPos, nHead, nHeadKv, headDim, scale)
napi_value js_attention(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *out, *q, *k, *v;
  size_t ol, ql, kl, vl;
  int64_t T, start, nh, nkv, hd;
  double scale;
  if (!f32_arg(env, a[0], "out", &out, &ol) || !f32_arg(env, a[1], "q", &q, &ql) || !f32_arg(env, a[2], "kCache", &k, &kl) ||
      !f32_arg(env, a[3], "vCache", &v, &vl) || !int_arg(env, a[4], "nTokens", 0, INT32_MAX, &T) ||
      !int_arg(env, a[5], "startPos", 0, INT32_MAX, &start) || !int_arg(env, a[6], "nHead", 1, 1 << 16, &nh) ||
      !int_arg(env, a[7], "nHeadKv", 1, 1 << 16, &nkv) || !int_arg(env, a[8], "headDim", 1, 1 << 16, &hd) ||
      !num_arg(env, a[9], "scale", &scale))
    return NULL;
  if (nh % nkv) return fail(env, "R", "native attention: nHead %lld is not a multiple of nHeadKv %lld", (long long)nh, (long long)nkv);
  if (start + T > INT32_MAX || T * nh > INT32_MAX) return fail(env, "R", "native attention: too many positions");
  const size_t qn = (size_t)T * nh * hd, kvn = (size_t)(start + T) * nkv * hd;
  if (!need_len(env, "attention", "q", ql, qn) || !need_len(env, "attention", "out", ol, qn) ||
      !need_len(env, "attention", "kCache", kl, kvn) || !need_len(env, "attention", "vCache", vl, kvn))
    return NULL;
  if (overlap(out, qn * 4, k, kvn * 4) || overlap(out, qn * 4, v, kvn * 4) || (out != q && overlap(out, qn * 4, q, qn * 4)))
    return fail(env, "R", "native attention: out overlaps q or the cache");
  if (T == 0) return undefined(env);
  if (op_attention(out, q, k, v, (int)T, (int)start, (int)nh, (int)nkv, (int)hd, (float)scale) != 0)
    return fail(env, "E", "native attention: out of memory");
  return undefined(env);
}

// scatterAddRows(out, x, rows, scales, rowLen): out[rows[i], :] += scales[i] * x[i, :].
napi_value js_scatter_add(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *out, *x, *sc;
  int32_t *rows;
  size_t ol, xl, nr, ns;
  int64_t len;
  if (!f32_arg(env, a[0], "out", &out, &ol) || !f32_arg(env, a[1], "x", &x, &xl) || !i32_arg(env, a[2], "rows", &rows, &nr) ||
      !f32_arg(env, a[3], "scales", &sc, &ns) || !int_arg(env, a[4], "rowLen", 0, INT32_MAX, &len))
    return NULL;
  if (nr > INT32_MAX || !need_len(env, "scatterAddRows", "scales", ns, nr) || !need_len(env, "scatterAddRows", "x", xl, nr * (size_t)len))
    return NULL;
  for (size_t i = 0; i < nr; i++)
    if (rows[i] < 0 || (size_t)(rows[i] + 1) * (size_t)len > ol)
      return fail(env, "R", "native scatterAddRows: row %d out of range", (int)rows[i]);
  if (overlap(out, ol * 4, x, nr * (size_t)len * 4)) return fail(env, "R", "native scatterAddRows: out overlaps x");
  op_scatter_add(out, x, rows, sc, (int)nr, (int)len);
  return undefined(env);
}
