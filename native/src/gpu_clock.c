// A CUDA context held on every NVIDIA GPU for the process's life: the NVIDIA driver keeps a GPU with a CUDA context
// at its full clock, where it clocks a bursty Vulkan workload (the WebGPU backend's decode) down to a sixth of it
// (bench/gpu/clock.sh on an H100: a split-tier-like load at 345 MHz, 1980 with a context held). The driver's own
// libcuda is loaded at run time, so nothing of CUDA is needed to build and nothing happens where there is none.
#include <stdio.h>
#include <string.h>

#include "napi_args.h"

/** { held, reason }: holdCudaContexts's answer. */
static napi_value hold_result(napi_env env, int held, const char *reason) {
  napi_value o, v, r;
  napi_create_object(env, &o);
  napi_create_int32(env, held, &v);
  napi_set_named_property(env, o, "held", v);
  napi_create_string_utf8(env, reason, NAPI_AUTO_LENGTH, &r);
  napi_set_named_property(env, o, "reason", r);
  return o;
}

#if defined(__linux__)
#include <dlfcn.h>
#include <pthread.h>

typedef int (*cu_init_t)(unsigned);
typedef int (*cu_count_t)(int *);
typedef int (*cu_dev_t)(int *, int);
typedef int (*cu_ctx_t)(void **, unsigned, int);
typedef int (*cu_pop_t)(void **);

static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static int held = -1;        // devices with a context held; -1: not tried yet
static char why[256];        // why none is held

static void hold(void) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(why, sizeof why, "no NVIDIA CUDA driver library here (%s)", dlerror());
    held = 0;
    return;
  }
  cu_init_t cu_init = (cu_init_t)dlsym(lib, "cuInit");
  cu_count_t cu_count = (cu_count_t)dlsym(lib, "cuDeviceGetCount");
  cu_dev_t cu_dev = (cu_dev_t)dlsym(lib, "cuDeviceGet");
  cu_ctx_t cu_ctx = (cu_ctx_t)dlsym(lib, "cuCtxCreate_v2");
  cu_pop_t cu_pop = (cu_pop_t)dlsym(lib, "cuCtxPopCurrent_v2");
  int n = 0, rc;
  held = 0;
  if (!cu_init || !cu_count || !cu_dev || !cu_ctx || !cu_pop) {
    snprintf(why, sizeof why, "libcuda.so.1 lacks the driver API's cuInit/cuCtxCreate_v2");
    return;
  }
  if ((rc = cu_init(0)) != 0 || (rc = cu_count(&n)) != 0) {
    snprintf(why, sizeof why, "the CUDA driver did not start (CUresult %d)", rc);
    return;
  }
  for (int i = 0; i < n; i++) {
    int dev;
    void *ctx, *popped;
    if ((rc = cu_dev(&dev, i)) != 0 || (rc = cu_ctx(&ctx, 0, dev)) != 0) {
      snprintf(why, sizeof why, "CUDA device %d: no context (CUresult %d)", i, rc);
      continue;
    }
    cu_pop(&popped); // held, not current: nothing of this thread's runs through CUDA
    held++;
  }
  if (n == 0) snprintf(why, sizeof why, "the CUDA driver sees no GPU");
  // lib stays loaded and the contexts held until the process exits.
}

// holdCudaContexts(): { held, reason } — the NVIDIA GPUs now holding a context of this process (every one the
// driver sees; once a process: later calls report the first), and why none where none is.
napi_value js_hold_cuda_contexts(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_mutex_lock(&hold_mu);
  if (held < 0) hold();
  const int n = held;
  pthread_mutex_unlock(&hold_mu);
  return hold_result(env, n, why);
}
#else
napi_value js_hold_cuda_contexts(napi_env env, napi_callback_info info) {
  (void)info;
  return hold_result(env, 0, "holding a CUDA context is built for Linux only");
}
#endif
