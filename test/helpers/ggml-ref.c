// ggml's own row (de)quantisers, called from libggml-base.so for the bit-exactness tests (test/helpers/ggml-ref.ts),
// and ggml's CPU matmul step from a libggml-cpu-*.so (its type traits: from_float into vec_dot_type, then vec_dot).
// Usage: ggml-ref LIB deq|quant FN N OUTBYTES  (input on stdin, output on stdout)
//   deq:   dequantize_row_FN(blocks, float y[N], N)      stdin: the blocks, stdout: N f32
//   quant: quantize_row_FN_ref(float x[N], blocks, N)    stdin: N f32,      stdout: OUTBYTES bytes
//        ggml-ref CPULIB mm TYPE K N T
//   mm:    out[t][n] = vec_dot(K, row n, from_float(x[t]))  stdin: N weight rows, then T x K f32; stdout: T x N f32
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

typedef void (*from_float_fn)(const float *, void *, int64_t);
typedef void (*vec_dot_fn)(int, float *, size_t, const void *, size_t, const void *, size_t, int);
typedef struct { from_float_fn from_float; vec_dot_fn vec_dot; int vec_dot_type; int64_t nrows; } traits_cpu; // ggml-cpu.h

static int matmul(void *lib, char **argv) {
  const traits_cpu *(*traits)(int) = (const traits_cpu *(*)(int))dlsym(lib, "ggml_get_type_traits_cpu");
  void (*init)(void) = (void (*)(void))dlsym(lib, "ggml_cpu_init");
  size_t (*row_size)(int, int64_t) = (size_t (*)(int, int64_t))dlsym(lib, "ggml_row_size");
  if (!traits || !init || !row_size) { fprintf(stderr, "%s does not export ggml_get_type_traits_cpu / ggml_cpu_init / ggml_row_size\n", argv[1]); return 4; }
  init();
  const int type = atoi(argv[3]);
  const int64_t K = strtoll(argv[4], NULL, 10), N = strtoll(argv[5], NULL, 10), T = strtoll(argv[6], NULL, 10);
  const traits_cpu *tr = traits(type);
  if (!tr->vec_dot || !traits(tr->vec_dot_type)->from_float) { fprintf(stderr, "type %d has no CPU vec_dot\n", type); return 4; }
  from_float_fn q = traits(tr->vec_dot_type)->from_float;
  const size_t wrow = row_size(type, K), xrow = row_size(tr->vec_dot_type, K);
  size_t inLen;
  char *in = read_all(&inLen);
  if (!in || inLen != (size_t)N * wrow + (size_t)(T * K) * 4) { fprintf(stderr, "stdin has %zu bytes, want %zu\n", inLen, (size_t)N * wrow + (size_t)(T * K) * 4); return 5; }
  const float *x = (const float *)(in + N * wrow);
  void *xq = malloc(xrow);
  float *out = malloc((size_t)(T * N) * 4);
  if (!xq || !out) { fprintf(stderr, "out of memory\n"); return 5; }
  for (int64_t t = 0; t < T; t++) {
    q(x + t * K, xq, K);
    for (int64_t n = 0; n < N; n++) tr->vec_dot((int)K, &out[t * N + n], 0, in + n * wrow, 0, xq, 0, 1);
  }
  return fwrite(out, 4, (size_t)(T * N), stdout) == (size_t)(T * N) ? 0 : 6;
}

int main(int argc, char **argv) {
  if (argc == 7 && strcmp(argv[2], "mm") == 0) {
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror()); return 3; }
    return matmul(lib, argv);
  }
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
