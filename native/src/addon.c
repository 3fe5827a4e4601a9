// Node-API entry points. Weights, activations and outputs are views of JS memory (no copies); every call is
// synchronous and the JS thread works as pool thread 0, so the memory cannot move or be collected meanwhile.
#include <node_api.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "matmul.h"
#include "pool.h"

#define MAX_ARGS 8

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

/** A Float32Array argument, in place; n is its length in floats. */
static bool f32_arg(napi_env env, napi_value v, const char *name, float **data, size_t *n) {
  bool is = false;
  napi_typedarray_type t;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &t, n, (void **)data, &ab, &off) != napi_ok || t != napi_float32_array) {
    fail(env, "T", "%s must be a Float32Array", name);
    return false;
  }
  return true;
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
  if (!int_arg(env, a[0], "type", 0, 255, &type) || !bytes_arg(env, a[1], "w", &w, &wlen) || !f32_arg(env, a[2], "x", &x, &xlen) ||
      !f32_arg(env, a[3], "out", &out, &olen) || !int_arg(env, a[4], "K", 1, INT32_MAX, &K) ||
      !int_arg(env, a[5], "N", 0, INT32_MAX, &N) || !int_arg(env, a[6], "T", 0, INT32_MAX, &T))
    return NULL;
  const size_t rb = type_row_bytes((int)type, (int)K);
  if (rb == 0) {
    if (type_row_bytes((int)type, 256 * 32) == 0)
      return fail(env, "T", "native matmul: unsupported ggml type %lld (supported: F32, F16, BF16, Q8_0, Q4_K, Q6_K)", (long long)type);
    return fail(env, "R", "native matmul: K = %lld is not a whole number of blocks of ggml type %lld", (long long)K, (long long)type);
  }
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
