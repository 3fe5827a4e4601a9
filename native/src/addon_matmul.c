// Node-API bindings of the matmul family (matmul, matmulSet, fused expert FFN, MoE layer, Q4_K / Q8_0 8-row repack,
// activation quantisers): shapes and byte lengths checked against the weight types, then the pool runs.
#include <stdlib.h>

#include "napi_args.h"
#include "matmul.h"
#include "pool.h"

// matmul(type, w, x, out, K, N, T): out[T, N] = x[T, K] · Wᵀ, W = N rows of K values of ggml type `type`.
napi_value js_matmul(napi_env env, napi_callback_info info) {
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
      return fail(env, "T", "native matmul: unsupported ggml type %lld (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL, IQ4_XS, MXFP4)", (long long)type);
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

// repackR8(type, bytes, K, N, undo): N Q4_K or Q8_0 rows of K values (N a multiple of 8) rewritten in place as
// Q4_K_R8 (type 1012) or Q8_0_R8 (type 1008); with undo (optional), such rows back into plain blocks.
napi_value js_repack_r8(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  void *w;
  size_t wlen;
  int64_t type, K, N;
  if (!int_arg(env, a[0], "type", 0, 65535, &type) || !bytes_arg(env, a[1], "bytes", &w, &wlen) ||
      !int_arg(env, a[2], "K", 1, INT32_MAX, &K) || !int_arg(env, a[3], "N", 0, INT32_MAX, &N))
    return NULL;
  int64_t undo = 0;
  napi_valuetype ut;
  if (napi_typeof(env, a[4], &ut) == napi_ok && ut != napi_undefined && !int_arg(env, a[4], "undo", 0, 1, &undo)) return NULL;
  if (type != GGML_Q4_K && type != GGML_Q8_0) return fail(env, "R", "native repackR8: type %lld is not Q4_K (12) or Q8_0 (8)", (long long)type);
  const int blk = type == GGML_Q4_K ? QK_K : QK8_0;
  if (K % blk || N % 8) return fail(env, "R", "native repackR8: K = %lld must be a multiple of %d and N = %lld of 8", (long long)K, blk, (long long)N);
  const size_t want = type_row_bytes((int)type, (int)K) * (size_t)N;
  if (wlen != want)
    return fail(env, "R", "native repackR8: bytes has %zu bytes, %lld rows of %lld values are %zu", wlen, (long long)N, (long long)K, want);
  if (repack_r8_run((int)type, w, (int)K, (int)N, (int)undo) != 0) return fail(env, "E", "native repackR8: out of memory");
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
napi_value js_expert_ffn(napi_env env, napi_callback_info info) {
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
napi_value js_matmul_set(napi_env env, napi_callback_info info) {
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

// moeFfn(types, weights, x, out, rows, offsets, scales, D, F): a MoE layer's routed experts in one pool run.
// Expert e has ggml types types[3e..3e+2] and weights weights[3e..3e+2] (gate, up, down); it serves token rows
// rows[offsets[e]..offsets[e+1]) of x[T, D] with weights scales[...]; out[T, D] += the weighted results.
typedef struct {
  moe_expert *ex; // ne experts (malloc'd, at least one entry)
  size_t ne;
  float *x, *out;
  int D, F;
} moe_args;

// The arguments checked and gathered (what; the op's name in errors); false with a JS error pending on failure.
static bool moe_parse(napi_env env, napi_value *a, const char *what, moe_args *m) {
  int32_t *types, *rows, *offs;
  size_t nt, nr, no, xl, ol, ns;
  float *x, *out, *scales;
  int64_t D, F;
  if (!i32_arg(env, a[0], "types", &types, &nt) || !f32_arg(env, a[2], "x", &x, &xl) || !f32_arg(env, a[3], "out", &out, &ol) ||
      !i32_arg(env, a[4], "rows", &rows, &nr) || !i32_arg(env, a[5], "offsets", &offs, &no) || !f32_arg(env, a[6], "scales", &scales, &ns) ||
      !int_arg(env, a[7], "D", 1, INT32_MAX, &D) || !int_arg(env, a[8], "F", 1, INT32_MAX, &F))
    return false;
  const size_t ne = no == 0 ? 0 : no - 1;
  if (nt != 3 * ne) return fail(env, "R", "native %s: %zu types for %zu experts (need 3 each)", what, nt, ne), false;
  if (ns < nr) return fail(env, "R", "native %s: %zu scales for %zu rows", what, ns, nr), false;
  if (ne > 0 && (offs[0] != 0 || (size_t)offs[ne] != nr)) return fail(env, "R", "native %s: offsets must run from 0 to the row count %zu", what, nr), false;
  bool isArr = false;
  uint32_t nw = 0;
  if (napi_is_array(env, a[1], &isArr) != napi_ok || !isArr || napi_get_array_length(env, a[1], &nw) != napi_ok || nw != 3 * ne)
    return fail(env, "T", "native %s: weights must be an array of %zu byte arrays", what, 3 * ne), false;
  const size_t T = (ol < xl ? ol : xl) / (size_t)D; // rows present in both x and out
  if (overlap(out, ol * 4, x, xl * 4)) return fail(env, "R", "native %s: out overlaps x", what), false;
  moe_expert *ex = calloc(ne ? ne : 1, sizeof(moe_expert));
  if (!ex) return fail(env, "E", "native %s: out of memory", what), false;
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
        return false;
      }
      w[k] = data;
    }
    if (offs[e + 1] < offs[e]) {
      free(ex);
      return fail(env, "R", "native %s: offsets decrease at expert %zu", what, e), false;
    }
    for (int32_t i = offs[e]; i < offs[e + 1]; i++)
      if (rows[i] < 0 || (size_t)rows[i] >= T) {
        free(ex);
        return fail(env, "R", "native %s: expert %zu row %d out of range (x and out have %zu rows)", what, e, (int)rows[i], T), false;
      }
    ex[e] = (moe_expert){.tg = types[3 * e], .tu = types[3 * e + 1], .td = types[3 * e + 2], .gate = w[0], .up = w[1], .down = w[2],
                         .rows = rows + offs[e], .scales = scales + offs[e], .n = offs[e + 1] - offs[e]};
  }
  *m = (moe_args){.ex = ex, .ne = ne, .x = x, .out = out, .D = (int)D, .F = (int)F};
  return true;
}

napi_value js_moe_ffn(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  moe_args m;
  if (!moe_parse(env, a, "moeFfn", &m)) return NULL;
  const int rc = moe_ffn_run((int)m.ne, m.ex, m.x, m.out, m.D, m.F); // takes m.ex
  if (rc != 0) return fail(env, "E", "native moeFfn: out of memory");
  return undefined(env);
}

// moeFfnBegin(...moeFfn's arguments): the run begun on the pool's worker threads; returns its ticket for moeFfnJoin
// once x is quantised. The caller keeps every argument alive and unchanged, and this thread joins it (moeFfnJoin,
// or its next native run, which joins it first). A split GPU tier records the GPU's work meanwhile, then joins: no
// libuv thread to wake, and no completion to come back through the event loop.
napi_value js_moe_ffn_begin(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS], v;
  args(env, info, a);
  moe_args m;
  if (!moe_parse(env, a, "moeFfnBegin", &m)) return NULL;
  unsigned ticket;
  if (moe_ffn_begin((int)m.ne, m.ex, m.x, m.out, m.D, m.F, &ticket) != 0) return fail(env, "E", "native moeFfnBegin: out of memory");
  napi_create_uint32(env, ticket, &v);
  return v;
}

// moeFfnJoin(ticket): this thread's share of the run moeFfnBegin began, then its end (out holds the sum). True, or
// false where it had ended already (joined by a later native run on this thread, or ticket 0).
napi_value js_moe_ffn_join(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS], v;
  args(env, info, a);
  int64_t t;
  if (!int_arg(env, a[0], "ticket", 0, UINT32_MAX, &t)) return NULL;
  napi_get_boolean(env, pool_join((unsigned)t) != 0, &v);
  return v;
}

// moeFfnAsync(...moeFfn's arguments): the same run from a libuv thread (it drives the pool while the JS thread goes
// on: a split GPU tier records the GPU's work meanwhile); a promise that settles when out holds the sum. Every
// argument stays referenced, and must stay unchanged, until then.
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep; // an array holding the arguments: their memory stays in place until the work completes
  moe_args m;
  int rc;
} moe_job;

static void moe_execute(napi_env env, void *data) {
  (void)env;
  moe_job *j = data;
  j->rc = moe_ffn_run((int)j->m.ne, j->m.ex, j->m.x, j->m.out, j->m.D, j->m.F);
  j->m.ex = NULL; // taken by the run
}

static void moe_complete(napi_env env, napi_status status, void *data) {
  moe_job *j = data;
  napi_value v;
  if (status == napi_ok && j->rc == 0) {
    napi_get_undefined(env, &v);
    napi_resolve_deferred(env, j->deferred, v);
  } else reject_with(env, j->deferred, j->rc != 0 ? "native moeFfnAsync: out of memory" : "native moeFfnAsync: the work was cancelled");
  napi_delete_reference(env, j->keep);
  napi_delete_async_work(env, j->work);
  free(j->m.ex);
  free(j);
}

napi_value js_moe_ffn_async(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  moe_job *j = calloc(1, sizeof *j);
  if (!j) return fail(env, "E", "native moeFfnAsync: out of memory");
  if (!moe_parse(env, a, "moeFfnAsync", &j->m)) {
    free(j);
    return NULL;
  }
  napi_value keep, name, promise;
  bool ok = napi_create_array_with_length(env, 7, &keep) == napi_ok;
  for (uint32_t i = 0; ok && i < 7; i++) ok = napi_set_element(env, keep, i, a[i]) == napi_ok;
  if (!ok || napi_create_reference(env, keep, 1, &j->keep) != napi_ok) {
    free(j->m.ex);
    free(j);
    return fail(env, "E", "native moeFfnAsync: cannot reference the arguments");
  }
  napi_create_string_utf8(env, "moestream.moeFfnAsync", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, moe_execute, moe_complete, j, &j->work) != napi_ok) {
    napi_delete_reference(env, j->keep);
    free(j->m.ex);
    free(j);
    return fail(env, "E", "native moeFfnAsync: cannot create the work");
  }
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok || napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_async_work(env, j->work);
    napi_delete_reference(env, j->keep);
    free(j->m.ex);
    free(j);
    return fail(env, "E", "native moeFfnAsync: cannot queue the work");
  }
  return promise;
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
napi_value js_quantize_q8_0(napi_env env, napi_callback_info info) { return quantize(env, info, 0); }
napi_value js_quantize_q8_K(napi_env env, napi_callback_info info) { return quantize(env, info, 1); }
