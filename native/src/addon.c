// Node-API entry points. Weights, activations and outputs are views of JS memory (no copies); every call is
// synchronous and the JS thread works as pool thread 0, so the memory cannot move or be collected meanwhile.
#include <node_api.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "matmul.h"
#include "ops.h"
#include "pool.h"

#define MAX_ARGS 12

static napi_value fail(napi_env env, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static napi_value fail(napi_env env, const char *code, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return NULL;
  if (code[0] == 'T') napi_throw_type_error(env, NULL, msg);
  else if (code[0] == 'R') napi_throw_range_error(env, NULL, msg);
  else napi_throw_error(env, NULL, msg);
  return NULL;
}

static size_t args(napi_env env, napi_callback_info info, napi_value *argv) {
  size_t argc = MAX_ARGS;
  napi_value undef;
  napi_get_undefined(env, &undef);
  for (int i = 0; i < MAX_ARGS; i++) argv[i] = undef;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  return argc;
}

/** An integer argument in [lo, hi]; throws a RangeError naming it otherwise. */
static bool int_arg(napi_env env, napi_value v, const char *name, int64_t lo, int64_t hi, int64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != (double)(int64_t)d || d < (double)lo || d > (double)hi) {
    fail(env, "R", "%s must be an integer in [%lld, %lld]", name, (long long)lo, (long long)hi);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

static size_t elem_size(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array: return 1;
    case napi_int16_array:
    case napi_uint16_array: return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: return 4;
    default: return 8;
  }
}

/** The bytes of a TypedArray, DataView or ArrayBuffer, in place. */
static bool bytes_arg(napi_env env, napi_value v, const char *name, void **data, size_t *len) {
  bool is = false;
  napi_value ab;
  size_t off, n;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type t;
    if (napi_get_typedarray_info(env, v, &t, &n, data, &ab, &off) != napi_ok) goto bad;
    *len = n * elem_size(t);
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    if (napi_get_dataview_info(env, v, len, data, &ab, &off) != napi_ok) goto bad;
    return true;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    if (napi_get_arraybuffer_info(env, v, data, len) != napi_ok) goto bad;
    return true;
  }
bad:
  fail(env, "T", "%s must be a TypedArray, DataView or ArrayBuffer", name);
  return false;
}

/** A TypedArray argument of one element type (`what` names it in the error), in place; n is its length in elements. */
static bool typed_arg(napi_env env, napi_value v, const char *name, napi_typedarray_type want, const char *what, void **data, size_t *n) {
  bool is = false;
  napi_typedarray_type t;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is || napi_get_typedarray_info(env, v, &t, n, data, &ab, &off) != napi_ok || t != want) {
    fail(env, "T", "%s must be %s", name, what);
    return false;
  }
  return true;
}

/** A Float32Array argument, in place; n is its length in floats. */
static bool f32_arg(napi_env env, napi_value v, const char *name, float **data, size_t *n) {
  return typed_arg(env, v, name, napi_float32_array, "a Float32Array", (void **)data, n);
}

static bool overlap(const void *a, size_t an, const void *b, size_t bn) {
  const char *p = a, *q = b;
  return an && bn && p < q + bn && q < p + an;
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static napi_value number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

static napi_value string_array(napi_env env, const char **names, int n) {
  napi_value arr, s;
  napi_create_array_with_length(env, (size_t)n, &arr);
  for (int i = 0; i < n; i++) {
    napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, arr, (uint32_t)i, s);
  }
  return arr;
}

// matmul(type, w, x, out, K, N, T): out[T, N] = x[T, K] · Wᵀ, W = N rows of K values of ggml type `type`.
static napi_value js_matmul(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  int64_t type, K, N, T;
  void *w;
  size_t wlen, xlen, olen;
  float *x, *out;
  if (!int_arg(env, a[0], "type", 0, 65535, &type) || !bytes_arg(env, a[1], "w", &w, &wlen) || !f32_arg(env, a[2], "x", &x, &xlen) ||
      !f32_arg(env, a[3], "out", &out, &olen) || !int_arg(env, a[4], "K", 1, INT32_MAX, &K) ||
      !int_arg(env, a[5], "N", 0, INT32_MAX, &N) || !int_arg(env, a[6], "T", 0, INT32_MAX, &T))
    return NULL;
  const size_t rb = type_row_bytes((int)type, (int)K);
  if (rb == 0) {
    if (type_row_bytes((int)type, 256 * 32) == 0)
      return fail(env, "T", "native matmul: unsupported ggml type %lld (supported: F32, F16, BF16, Q8_0, Q4_K, Q6_K)", (long long)type);
    return fail(env, "R", "native matmul: K = %lld is not a whole number of blocks of ggml type %lld", (long long)K, (long long)type);
  }
  if (!type_rows_ok((int)type, (int)N))
    return fail(env, "R", "native matmul: %lld rows are not whole groups of ggml type %lld", (long long)N, (long long)type);
  if (wlen < rb * (size_t)N)
    return fail(env, "R", "native matmul: w has %zu bytes, %lld rows of %lld values need %zu", wlen, (long long)N, (long long)K, rb * (size_t)N);
  if (xlen < (size_t)T * (size_t)K)
    return fail(env, "R", "native matmul: x has %zu values, T*K = %zu", xlen, (size_t)T * (size_t)K);
  if (olen < (size_t)T * (size_t)N)
    return fail(env, "R", "native matmul: out has %zu values, T*N = %zu", olen, (size_t)T * (size_t)N);
  const size_t obytes = (size_t)T * (size_t)N * 4;
  if (overlap(out, obytes, x, (size_t)T * (size_t)K * 4) || overlap(out, obytes, w, rb * (size_t)N))
    return fail(env, "R", "native matmul: out overlaps x or w");
  if (matmul_run((int)type, w, x, out, (int)K, (int)N, (int)T) != 0) return fail(env, "E", "native matmul: out of memory");
  return undefined(env);
}

// repackQ4KR8(bytes, K, N): N Q4_K rows of K values (N a multiple of 8) rewritten in place as Q4_K_R8 (type 1012).
static napi_value js_repack_q4k_r8(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  void *w;
  size_t wlen;
  int64_t K, N;
  if (!bytes_arg(env, a[0], "bytes", &w, &wlen) || !int_arg(env, a[1], "K", 1, INT32_MAX, &K) || !int_arg(env, a[2], "N", 0, INT32_MAX, &N))
    return NULL;
  if (K % 256 || N % 8) return fail(env, "R", "native repackQ4KR8: K = %lld must be a multiple of 256 and N = %lld of 8", (long long)K, (long long)N);
  if (wlen != type_row_bytes(GGML_Q4_K, (int)K) * (size_t)N)
    return fail(env, "R", "native repackQ4KR8: bytes has %zu bytes, %lld rows of %lld values are %zu", wlen, (long long)N, (long long)K,
                type_row_bytes(GGML_Q4_K, (int)K) * (size_t)N);
  if (repack_q4_K_r8_run(w, (int)K, (int)N) != 0) return fail(env, "E", "native repackQ4KR8: out of memory");
  return undefined(env);
}

/** An Int32Array argument, in place. */
static bool i32_arg(napi_env env, napi_value v, const char *name, int32_t **data, size_t *n) {
  return typed_arg(env, v, name, napi_int32_array, "an Int32Array", (void **)data, n);
}

static bool num_arg(napi_env env, napi_value v, const char *name, double *out) {
  if (napi_get_value_double(env, v, out) != napi_ok) {
    fail(env, "T", "%s must be a number", name);
    return false;
  }
  return true;
}

static bool need_len(napi_env env, const char *op, const char *name, size_t have, size_t want) {
  if (have >= want) return true;
  fail(env, "R", "native %s: %s has %zu values, needs %zu", op, name, have, want);
  return false;
}

// rmsNorm(out, x, w, eps, rowLen, nRows): w is f32 weight bytes (any alignment), at least rowLen values.
static napi_value js_rms_norm(napi_env env, napi_callback_info info) {
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
static napi_value js_rope(napi_env env, napi_callback_info info) {
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
static napi_value js_add(napi_env env, napi_callback_info info) { return elementwise(env, info, 0); }
static napi_value js_swiglu(napi_env env, napi_callback_info info) { return elementwise(env, info, 1); }

// attention(out, q, kCache, vCache, nTokens, startPos, nHead, nHeadKv, headDim, scale)
static napi_value js_attention(napi_env env, napi_callback_info info) {
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
static napi_value js_scatter_add(napi_env env, napi_callback_info info) {
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

/** Checks one FFN weight: type supported, K whole blocks, enough bytes for N rows. Returns the row bytes or 0 (thrown). */
static size_t ffn_weight(napi_env env, const char *name, int64_t type, size_t wlen, int64_t K, int64_t N) {
  const size_t rb = type_row_bytes((int)type, (int)K);
  if (rb == 0) {
    if (type_row_bytes((int)type, 256 * 32) == 0) fail(env, "T", "native expertFfn: %s has unsupported ggml type %lld", name, (long long)type);
    else fail(env, "R", "native expertFfn: %s rows of %lld values are not whole blocks of ggml type %lld", name, (long long)K, (long long)type);
    return 0;
  }
  if (!type_rows_ok((int)type, (int)N)) {
    fail(env, "R", "native expertFfn: %s has %lld rows, not whole groups of ggml type %lld", name, (long long)N, (long long)type);
    return 0;
  }
  if (wlen < rb * (size_t)N) {
    fail(env, "R", "native expertFfn: %s has %zu bytes, %lld rows of %lld values need %zu", name, wlen, (long long)N, (long long)K, rb * (size_t)N);
    return 0;
  }
  return rb;
}

// expertFfn(gateType, gate, upType, up, downType, down, x, out, D, F, T): out[T, D] = down(silu(gate x) * up x).
static napi_value js_expert_ffn(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  int64_t tg, tu, td, D, F, T;
  void *g, *u, *d;
  size_t gl, ul, dl, xl, ol;
  float *x, *out;
  if (!int_arg(env, a[0], "gateType", 0, 65535, &tg) || !bytes_arg(env, a[1], "gate", &g, &gl) || !int_arg(env, a[2], "upType", 0, 65535, &tu) ||
      !bytes_arg(env, a[3], "up", &u, &ul) || !int_arg(env, a[4], "downType", 0, 65535, &td) || !bytes_arg(env, a[5], "down", &d, &dl) ||
      !f32_arg(env, a[6], "x", &x, &xl) || !f32_arg(env, a[7], "out", &out, &ol) || !int_arg(env, a[8], "D", 1, INT32_MAX, &D) ||
      !int_arg(env, a[9], "F", 1, INT32_MAX, &F) || !int_arg(env, a[10], "T", 0, INT32_MAX, &T))
    return NULL;
  if (!ffn_weight(env, "gate", tg, gl, D, F) || !ffn_weight(env, "up", tu, ul, D, F) || !ffn_weight(env, "down", td, dl, F, D)) return NULL;
  if (!need_len(env, "expertFfn", "x", xl, (size_t)T * D) || !need_len(env, "expertFfn", "out", ol, (size_t)T * D)) return NULL;
  if (overlap(out, (size_t)T * D * 4, x, (size_t)T * D * 4)) return fail(env, "R", "native expertFfn: out overlaps x");
  if (expert_ffn_run((int)tg, g, (int)tu, u, (int)td, d, x, out, (int)D, (int)F, (int)T) != 0)
    return fail(env, "E", "native expertFfn: out of memory");
  return undefined(env);
}

// matmulSet(types, weights, outs, x, K, T): outs[i][T, N_i] = x[T, K] · W_iᵀ for several weights over the same x,
// in one pool run (attention's q, k and v); N_i comes from outs[i]'s length / T.
#define MAX_SET 16
static napi_value js_matmul_set(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  int32_t *types;
  size_t nt, xlen;
  float *x;
  int64_t K, T;
  if (!i32_arg(env, a[0], "types", &types, &nt) || !f32_arg(env, a[3], "x", &x, &xlen) || !int_arg(env, a[4], "K", 1, INT32_MAX, &K) ||
      !int_arg(env, a[5], "T", 1, INT32_MAX, &T))
    return NULL;
  uint32_t nw = 0, no = 0;
  bool wa = false, oa = false;
  if (nt == 0 || nt > MAX_SET) return fail(env, "R", "native matmulSet: 1 to %d weights, got %zu", MAX_SET, nt);
  if (napi_is_array(env, a[1], &wa) != napi_ok || !wa || napi_get_array_length(env, a[1], &nw) != napi_ok || nw != nt ||
      napi_is_array(env, a[2], &oa) != napi_ok || !oa || napi_get_array_length(env, a[2], &no) != napi_ok || no != nt)
    return fail(env, "T", "native matmulSet: weights and outs must be arrays of %zu entries", nt);
  if (xlen < (size_t)T * (size_t)K) return fail(env, "R", "native matmulSet: x has %zu values, T*K = %zu", xlen, (size_t)T * (size_t)K);
  const void *ws[MAX_SET];
  float *outs[MAX_SET];
  int Ns[MAX_SET], ty[MAX_SET];
  for (uint32_t i = 0; i < nt; i++) {
    napi_value wv, ov;
    void *w;
    size_t wlen, olen;
    if (napi_get_element(env, a[1], i, &wv) != napi_ok || !bytes_arg(env, wv, "weight", &w, &wlen) || napi_get_element(env, a[2], i, &ov) != napi_ok ||
        !f32_arg(env, ov, "out", &outs[i], &olen))
      return NULL;
    const size_t rb = type_row_bytes(types[i], (int)K);
    if (rb == 0) return fail(env, "T", "native matmulSet: weight %u: unsupported ggml type %d or K = %lld not whole blocks", i, (int)types[i], (long long)K);
    const size_t N = olen / (size_t)T;
    if (N * (size_t)T != olen || N == 0 || N > INT32_MAX || !type_rows_ok(types[i], (int)N))
      return fail(env, "R", "native matmulSet: out %u has %zu values, not whole rows of T = %lld (in whole row groups of its type)", i, olen, (long long)T);
    if (wlen < rb * N) return fail(env, "R", "native matmulSet: weight %u has %zu bytes, %zu rows need %zu", i, wlen, N, rb * N);
    if (overlap(outs[i], olen * 4, x, (size_t)T * (size_t)K * 4) || overlap(outs[i], olen * 4, w, rb * N))
      return fail(env, "R", "native matmulSet: out %u overlaps x or its weight", i);
    for (uint32_t j = 0; j < i; j++)
      if (overlap(outs[i], olen * 4, outs[j], (size_t)Ns[j] * (size_t)T * 4)) return fail(env, "R", "native matmulSet: outs %u and %u overlap", j, i);
    ws[i] = w, Ns[i] = (int)N, ty[i] = types[i];
  }
  if (matmul_set_run((int)nt, ty, ws, Ns, outs, x, (int)K, (int)T) != 0) return fail(env, "E", "native matmulSet: out of memory");
  return undefined(env);
}

// moeFfn(types, weights, x, out, rows, offsets, scales, D, F): a MoE layer's routed experts in two pool runs.
// Expert e has ggml types types[3e..3e+2] and weights weights[3e..3e+2] (gate, up, down); it serves token rows
// rows[offsets[e]..offsets[e+1]) of x[T, D] with weights scales[...]; out[T, D] += the weighted results.
static napi_value js_moe_ffn(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  int32_t *types, *rows, *offs;
  size_t nt, nr, no, xl, ol, ns;
  float *x, *out, *scales;
  int64_t D, F;
  if (!i32_arg(env, a[0], "types", &types, &nt) || !f32_arg(env, a[2], "x", &x, &xl) || !f32_arg(env, a[3], "out", &out, &ol) ||
      !i32_arg(env, a[4], "rows", &rows, &nr) || !i32_arg(env, a[5], "offsets", &offs, &no) || !f32_arg(env, a[6], "scales", &scales, &ns) ||
      !int_arg(env, a[7], "D", 1, INT32_MAX, &D) || !int_arg(env, a[8], "F", 1, INT32_MAX, &F))
    return NULL;
  const size_t ne = no == 0 ? 0 : no - 1;
  if (nt != 3 * ne) return fail(env, "R", "native moeFfn: %zu types for %zu experts (need 3 each)", nt, ne);
  if (ns < nr) return fail(env, "R", "native moeFfn: %zu scales for %zu rows", ns, nr);
  if (ne > 0 && (offs[0] != 0 || (size_t)offs[ne] != nr)) return fail(env, "R", "native moeFfn: offsets must run from 0 to the row count %zu", nr);
  bool isArr = false;
  uint32_t nw = 0;
  if (napi_is_array(env, a[1], &isArr) != napi_ok || !isArr || napi_get_array_length(env, a[1], &nw) != napi_ok || nw != 3 * ne)
    return fail(env, "T", "native moeFfn: weights must be an array of %zu byte arrays", 3 * ne);
  const size_t T = (ol < xl ? ol : xl) / (size_t)D; // rows present in both x and out
  if (overlap(out, ol * 4, x, xl * 4)) return fail(env, "R", "native moeFfn: out overlaps x");
  moe_expert *ex = calloc(ne ? ne : 1, sizeof(moe_expert));
  if (!ex) return fail(env, "E", "native moeFfn: out of memory");
  static const char *part[3] = {"gate", "up", "down"};
  for (size_t e = 0; e < ne; e++) {
    const void *w[3];
    for (int k = 0; k < 3; k++) {
      napi_value v;
      void *data;
      size_t len;
      if (napi_get_element(env, a[1], (uint32_t)(3 * e + k), &v) != napi_ok || !bytes_arg(env, v, part[k], &data, &len) ||
          !ffn_weight(env, part[k], types[3 * e + k], len, k == 2 ? F : D, k == 2 ? D : F)) {
        free(ex);
        return NULL;
      }
      w[k] = data;
    }
    if (offs[e + 1] < offs[e]) {
      free(ex);
      return fail(env, "R", "native moeFfn: offsets decrease at expert %zu", e);
    }
    for (int32_t i = offs[e]; i < offs[e + 1]; i++)
      if (rows[i] < 0 || (size_t)rows[i] >= T) {
        free(ex);
        return fail(env, "R", "native moeFfn: expert %zu row %d out of range (x and out have %zu rows)", e, (int)rows[i], T);
      }
    ex[e] = (moe_expert){.tg = types[3 * e], .tu = types[3 * e + 1], .td = types[3 * e + 2], .gate = w[0], .up = w[1], .down = w[2],
                         .rows = rows + offs[e], .scales = scales + offs[e], .n = offs[e + 1] - offs[e]};
  }
  const int rc = moe_ffn_run((int)ne, ex, x, out, (int)D, (int)F);
  free(ex);
  if (rc != 0) return fail(env, "E", "native moeFfn: out of memory");
  return undefined(env);
}

// quantizeQ8_0(x, out) / quantizeQ8K(x, out): the activation quantisers, for tests.
static napi_value quantize(napi_env env, napi_callback_info info, int kind) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  float *x;
  size_t n, olen;
  void *out;
  if (!f32_arg(env, a[0], "x", &x, &n) || !bytes_arg(env, a[1], "out", &out, &olen)) return NULL;
  const size_t qk = kind == 0 ? QK8_0 : QK_K, bs = kind == 0 ? sizeof(block_q8_0) : sizeof(block_q8_K);
  if (n % qk || n > INT32_MAX) return fail(env, "R", "x has %zu values, not a multiple of %zu", n, qk);
  if (olen < n / qk * bs) return fail(env, "R", "out has %zu bytes, need %zu", olen, n / qk * bs);
  void *tmp = malloc(n / qk * bs + 1); // Q8_K blocks hold a float: quantise into aligned memory, then copy
  if (!tmp) return fail(env, "E", "out of memory");
  quantize_act(kind, x, tmp, (int)n);
  memcpy(out, tmp, n / qk * bs);
  free(tmp);
  return undefined(env);
}
static napi_value js_quantize_q8_0(napi_env env, napi_callback_info info) { return quantize(env, info, 0); }
static napi_value js_quantize_q8_K(napi_env env, napi_callback_info info) { return quantize(env, info, 1); }

static napi_value js_set_threads(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  int64_t n;
  if (!int_arg(env, a[0], "threads", 1, 256, &n)) return NULL;
  return number(env, pool_set_threads((int)n));
}

static napi_value js_get_threads(napi_env env, napi_callback_info info) {
  (void)info;
  return number(env, pool_threads());
}

static napi_value js_set_spin(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  int64_t us;
  if (!int_arg(env, a[0], "microseconds", 0, 1000000, &us)) return NULL;
  pool_set_spin_us((int)us);
  return undefined(env);
}

static napi_value js_cpu_features(napi_env env, napi_callback_info info) {
  (void)info;
  const char *names[16];
  return string_array(env, names, cpu_features(names, 16));
}

static napi_value js_kernel_levels(napi_env env, napi_callback_info info) {
  (void)info;
  static const char *all[] = {"scalar", "neon", "avx2", "avx512"};
  const char *names[4];
  int n = 0;
  for (int i = 0; i < 4; i++)
    if (kernels_by_name(all[i])) names[n++] = all[i];
  return string_array(env, names, n);
}

static napi_value js_kernel_level(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value s;
  napi_create_string_utf8(env, kernels_current()->name, NAPI_AUTO_LENGTH, &s);
  return s;
}

static napi_value js_set_kernel_level(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  char name[32];
  size_t len;
  if (napi_get_value_string_utf8(env, a[0], name, sizeof name, &len) != napi_ok) return fail(env, "T", "level must be a string");
  const kernels_t *k = kernels_by_name(name);
  if (!k) return fail(env, "R", "kernel level '%s' is unknown or not supported by this CPU", name);
  kernels_use(k);
  return undefined(env);
}

// memRead(buf): sums buf as 64-bit words on all pool threads; a memory bandwidth probe for benchmarks.
/** madvise(MADV_HUGEPAGE) over the whole 2 MiB pages inside buf: weights streamed every token then need a
 *  512th of the TLB entries. Call before the pages are first written (a fault then maps a huge page); returns
 *  the offset in buf of the first 2 MiB boundary advised, -1 if none (no room, or no transparent huge pages). */
static napi_value js_advise_huge_pages(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  void *p;
  size_t len;
  if (!bytes_arg(env, a[0], "buf", &p, &len)) return NULL;
  const long at = advise_huge_pages(p, len);
  return number(env, (double)at);
}

static napi_value js_mem_read(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  void *p;
  size_t len;
  if (!bytes_arg(env, a[0], "buf", &p, &len)) return NULL;
  return number(env, memread_run(p, len));
}

static pthread_mutex_t env_mu = PTHREAD_MUTEX_INITIALIZER;
static int env_refs; // environments (main thread, workers) that loaded the addon; the pool outlives all but the last

static void env_cleanup(void *arg) {
  (void)arg;
  pthread_mutex_lock(&env_mu);
  if (--env_refs == 0) pool_shutdown();
  pthread_mutex_unlock(&env_mu);
}

NAPI_MODULE_INIT() {
  const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"matmul", js_matmul},           {"quantizeQ8_0", js_quantize_q8_0}, {"quantizeQ8K", js_quantize_q8_K},
      {"setThreads", js_set_threads},  {"getThreads", js_get_threads},     {"setSpin", js_set_spin},
      {"cpuFeatures", js_cpu_features}, {"kernelLevels", js_kernel_levels}, {"kernelLevel", js_kernel_level},
      {"setKernelLevel", js_set_kernel_level}, {"memRead", js_mem_read},
      {"adviseHugePages", js_advise_huge_pages},
      {"rmsNorm", js_rms_norm},        {"rope", js_rope},                  {"add", js_add},
      {"swiglu", js_swiglu},           {"attention", js_attention},        {"scatterAddRows", js_scatter_add},
      {"expertFfn", js_expert_ffn},
      {"moeFfn", js_moe_ffn},
      {"matmulSet", js_matmul_set},
      {"repackQ4KR8", js_repack_q4k_r8},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok ||
        napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
      return NULL;
  }
  pthread_mutex_lock(&env_mu);
  env_refs++;
  pthread_mutex_unlock(&env_mu);
  napi_add_env_cleanup_hook(env, env_cleanup, NULL);
  return exports;
}
