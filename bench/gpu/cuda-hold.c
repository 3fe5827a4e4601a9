/* Holds a CUDA context on GPU 0 for argv[1] seconds (clock-probe.mjs: does the driver's clock policy change while a
   CUDA context exists?). Loads libcuda.so.1 at run time: built anywhere with `cc -O2 -o cuda-hold cuda-hold.c -ldl`,
   no CUDA toolkit needed. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef int (*init_t)(unsigned);
typedef int (*devget_t)(int *, int);
typedef int (*ctx_t)(void **, unsigned, int);

int main(int argc, char **argv) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW);
  if (!lib) { fprintf(stderr, "cuda-hold: %s\n", dlerror()); return 1; }
  init_t cuInit = (init_t)dlsym(lib, "cuInit");
  devget_t cuDeviceGet = (devget_t)dlsym(lib, "cuDeviceGet");
  ctx_t cuCtxCreate = (ctx_t)dlsym(lib, "cuCtxCreate_v2");
  int dev = 0, rc;
  void *ctx = 0;
  if (!cuInit || !cuDeviceGet || !cuCtxCreate) { fprintf(stderr, "cuda-hold: missing symbols\n"); return 1; }
  if ((rc = cuInit(0)) || (rc = cuDeviceGet(&dev, 0)) || (rc = cuCtxCreate(&ctx, 0, dev))) { fprintf(stderr, "cuda-hold: CUDA error %d\n", rc); return 1; }
  fprintf(stderr, "cuda-hold: context held\n");
  sleep(argc > 1 ? atoi(argv[1]) : 30);
  return 0;
}
