// LD_PRELOAD shim for the stream bench: llama.cpp's --no-repack (use_extra_bufts = false) is a CLI flag that
// node-llama-cpp does not expose. llama.cpp looks up the CPU backend's extra buffer types (the Q4_K/Q8_0
// "repack" copies into anonymous memory) through ggml_backend_reg_get_proc_address; answering NULL for that
// one name makes it skip them, exactly as --no-repack does, so weights stay in the mmap.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

typedef void *(*get_proc_fn)(void *reg, const char *name);

void *ggml_backend_reg_get_proc_address(void *reg, const char *name) {
  static get_proc_fn real;
  if (!real) real = (get_proc_fn)dlsym(RTLD_NEXT, "ggml_backend_reg_get_proc_address");
  if (!real) {
    void *h = dlopen("libggml-base.so", RTLD_NOW | RTLD_NOLOAD);
    if (h) real = (get_proc_fn)dlsym(h, "ggml_backend_reg_get_proc_address");
  }
  if (name && strcmp(name, "ggml_backend_dev_get_extra_bufts") == 0) return NULL;
  return real ? real(reg, name) : NULL;
}
