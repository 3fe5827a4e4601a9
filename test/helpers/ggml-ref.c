// ggml's own row (de)quantisers, called from libggml-base.so for the bit-exactness tests (test/helpers/ggml-ref.ts).
// Usage: ggml-ref LIB deq|quant FN N OUTBYTES  (input on stdin, output on stdout)
//   deq:   dequantize_row_FN(blocks, float y[N], N)      stdin: the blocks, stdout: N f32
//   quant: quantize_row_FN_ref(float x[N], blocks, N)    stdin: N f32,      stdout: OUTBYTES bytes
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*row_fn)(const void *, void *, int64_t);

static void *read_all(size_t *len) {
  size_t cap = 1 << 20, n = 0;
  char *buf = malloc(cap);
  size_t r;
  while (buf && (r = fread(buf + n, 1, cap - n, stdin)) > 0) {
    n += r;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  *len = n;
  return buf;
}

int main(int argc, char **argv) {
  if (argc != 6) { fprintf(stderr, "usage: ggml-ref LIB deq|quant FN N OUTBYTES\n"); return 2; }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) { fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror()); return 3; }
  char sym[128];
  int deq = strcmp(argv[2], "deq") == 0;
  snprintf(sym, sizeof sym, deq ? "dequantize_row_%s" : "quantize_row_%s_ref", argv[3]);
  row_fn fn = (row_fn)dlsym(lib, sym);
  if (!fn) { fprintf(stderr, "%s does not export %s\n", argv[1], sym); return 4; }
  int64_t n = strtoll(argv[4], NULL, 10);
  size_t outBytes = (size_t)strtoull(argv[5], NULL, 10);
  size_t inLen;
  void *in = read_all(&inLen);
  void *out = calloc(outBytes ? outBytes : 1, 1);
  if (!in || !out) { fprintf(stderr, "out of memory\n"); return 5; }
  fn(in, out, n);
  if (fwrite(out, 1, outBytes, stdout) != outBytes) return 6;
  return 0;
}
