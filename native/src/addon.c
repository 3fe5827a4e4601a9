// Node-API module: registers the bindings (ops in addon_ops.c, the matmul family in addon_matmul.c) and holds the
// pool, kernel-level and memory controls. Weights, activations and outputs are views of JS memory (no copies);
// every kernel call is synchronous and the JS thread works as pool thread 0, so the memory cannot move or be collected
// meanwhile. The crc32c calls of addon_crc.c that run on libuv's pool hold a reference to their buffer instead.
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "matmul.h"
#include "memory.h"
#include "napi_args.h"
#include "pool.h"

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

/** fn(us) for a JS call with one argument, microseconds in [0, 1 s]. */
static napi_value with_us(napi_env env, napi_callback_info info, void (*fn)(int)) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  int64_t us;
  if (!int_arg(env, a[0], "microseconds", 0, 1000000, &us)) return NULL;
  fn((int)us);
  return undefined(env);
}
static napi_value js_set_spin(napi_env env, napi_callback_info info) { return with_us(env, info, pool_set_spin_us); }
static napi_value js_poke(napi_env env, napi_callback_info info) { return with_us(env, info, pool_poke); }

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

// memRead(buf): sums buf as 64-bit words on all pool threads; a memory bandwidth probe for benchmarks.
static napi_value js_mem_read(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  void *p;
  size_t len;
  if (!bytes_arg(env, a[0], "buf", &p, &len)) return NULL;
  return number(env, memread_run(p, len));
}

// copyBytes(dst, src): src's bytes into the start of dst (a view no shorter), on all pool threads.
static napi_value js_copy_bytes(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  void *d, *s;
  size_t dl, sl;
  if (!bytes_arg(env, a[0], "dst", &d, &dl) || !bytes_arg(env, a[1], "src", &s, &sl)) return NULL;
  if (dl < sl) return fail(env, "R", "copyBytes: dst holds %zu bytes, fewer than src's %zu", dl, sl);
  if (sl > 0 && (uint8_t *)d < (uint8_t *)s + sl && (uint8_t *)s < (uint8_t *)d + sl) return fail(env, "R", "copyBytes: dst and src overlap");
  copy_run(d, s, sl);
  return NULL;
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
      {"setThreads", js_set_threads},  {"getThreads", js_get_threads},     {"setSpin", js_set_spin}, {"poke", js_poke},
      {"cpuFeatures", js_cpu_features}, {"kernelLevels", js_kernel_levels}, {"kernelLevel", js_kernel_level},
      {"setKernelLevel", js_set_kernel_level}, {"memRead", js_mem_read},
      {"adviseHugePages", js_advise_huge_pages}, {"copyBytes", js_copy_bytes},
      {"rmsNorm", js_rms_norm},        {"rope", js_rope},                  {"add", js_add},
      {"swiglu", js_swiglu},           {"attention", js_attention},        {"scatterAddRows", js_scatter_add},
      {"expertFfn", js_expert_ffn},    {"gatedDeltaNet", js_gated_delta_net},
      {"moeFfn", js_moe_ffn},          {"moeFfnAsync", js_moe_ffn_async},
      {"moeFfnBegin", js_moe_ffn_begin},    {"moeFfnJoin", js_moe_ffn_join},
      {"matmulSet", js_matmul_set},
      {"repackR8", js_repack_r8},
      {"attentionExt", js_attention_ext}, {"matmulHeads", js_matmul_heads}, {"convSilu", js_conv_silu},
      {"l2Norm", js_l2_norm},          {"rmsNormGated", js_rms_norm_gated}, {"sigmoidMul", js_sigmoid_mul},
      {"deltaGates", js_delta_gates},  {"copyRows", js_copy_rows},
      {"ropeTable", js_rope_table},
      {"attentionMasked", js_attention_masked}, {"swigluOai", js_swiglu_oai}, {"addRows", js_add_rows},
      {"crc32c", js_crc32c},           {"crc32cAsync", js_crc32c_async},   {"crc32cImpl", js_crc32c_impl},
      {"preadCrc32c", js_pread_crc32c},   {"holdCudaContexts", js_hold_cuda_contexts},
      {"quantizeRef", js_quantize_ref},  {"quantizeRefTypes", js_quantize_ref_types},
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
