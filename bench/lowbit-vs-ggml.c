// Paired kernel timing: moestream's native low-bit dots vs ggml's own CPU vec_dot (dlopen'ed libggml-cpu from
// node-llama-cpp), same weights, same Q8_K/Q8_0 activations, one thread, alternated rounds, best of R each.
// Run by `npm run bench -- kernels-ggml` (bench/kernels-ggml.ts compiles this with native/src's kernel files).
// Usage: lowbit-vs-ggml CPULIBDIR TYPE K N EXPERTS ROUNDS: of CPULIBDIR's libggml-cpu-*.so, the one llama.cpp's
// backend loader would pick here (highest ggml_backend_score).
#include <dlfcn.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../native/src/k_quants_lo.h"
#include "../native/src/matmul.h"

typedef void (*from_float_fn)(const float *, void *, int64_t);
typedef void (*vec_dot_fn)(int, float *, size_t, const void *, size_t, const void *, size_t, int);
typedef struct { from_float_fn from_float; vec_dot_fn vec_dot; int vec_dot_type; int64_t nrows; } traits_cpu;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void) { rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17; return rng; }

// Offset of the f16 super-block scale(s) to tame (random bytes could make NaN/inf/subnormal scales).
static void fix_scales(int type, uint8_t *b, size_t bb) {
  int off[2] = {-1, -1};
  switch (type) {
    case GGML_Q2_K: off[0] = 80, off[1] = 82; break;
    case GGML_Q3_K: off[0] = 108; break;
    case GGML_Q5_K: case GGML_Q4_K: off[0] = 0, off[1] = 2; break;
    case GGML_Q6_K: off[0] = 208; break;
    case GGML_IQ1_M: return;
    default: off[0] = 0;
  }
  for (int k = 0; k < 2; k++)
    if (off[k] >= 0) b[off[k]] = 0x00, b[off[k] + 1] = 0x1c + (next() & 1) * 0x80; // +-2^-8
  (void)bb;
}

int main(int argc, char **argv) {
  if (argc != 7) { fprintf(stderr, "usage: %s CPULIB TYPE K N EXPERTS ROUNDS\n", argv[0]); return 2; }
  char pattern[4096];
  snprintf(pattern, sizeof pattern, "%s/libggml-cpu-*.so", argv[1]);
  glob_t g;
  void *lib = NULL;
  int best = 0;
  const char *picked = "";
  if (glob(pattern, 0, NULL, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; i++) {
      void *l = dlopen(g.gl_pathv[i], RTLD_NOW | RTLD_LOCAL);
      int (*score)(void) = l ? (int (*)(void))dlsym(l, "ggml_backend_score") : NULL;
      const int sc = score ? score() : 0;
      if (sc > best) best = sc, lib = l, picked = g.gl_pathv[i];
    }
  }
  if (!lib) { fprintf(stderr, "no usable libggml-cpu-*.so in %s\n", argv[1]); return 3; }
  fprintf(stderr, "ggml: %s (score %d)\n", strrchr(picked, '/') ? strrchr(picked, '/') + 1 : picked, best);
  const traits_cpu *(*traits)(int) = (const traits_cpu *(*)(int))dlsym(lib, "ggml_get_type_traits_cpu");
  void (*init)(void) = (void (*)(void))dlsym(lib, "ggml_cpu_init");
  size_t (*row_size)(int, int64_t) = (size_t (*)(int, int64_t))dlsym(lib, "ggml_row_size");
  init();
  const int type = atoi(argv[2]), K = atoi(argv[3]), N = atoi(argv[4]), E = atoi(argv[5]), R = atoi(argv[6]);
  const traits_cpu *tr = traits(type);
  const size_t wrow = row_size(type, K), xrow = (row_size(tr->vec_dot_type, K) + 63) / 64 * 64; // rows 64-byte aligned
  if (wrow != type_row_bytes(type, K)) { fprintf(stderr, "row bytes differ: ggml %zu ours %zu\n", wrow, type_row_bytes(type, K)); return 4; }
  const size_t rows = (size_t)N * E, bpb = wrow / (K / (type == GGML_Q4_0 || type == GGML_IQ4_NL || type == GGML_Q5_0 || type == GGML_Q4_1 || type == GGML_Q5_1 ? 32 : 256));
  uint8_t *w = aligned_alloc(64, (rows * wrow + 63) / 64 * 64);
  for (size_t i = 0; i < rows * wrow; i++) w[i] = (uint8_t)next();
  for (size_t b = 0; b < rows * wrow / bpb; b++) fix_scales(type, w + b * bpb, bpb);
  // 4 activation rows, quantised by ggml's from_float (the same block layouts as ours).
  float *x = malloc((size_t)4 * K * 4);
  for (int i = 0; i < 4 * K; i++) x[i] = (float)((int64_t)(next() % 2001) - 1000) / 1000.0f;
  uint8_t *xq = aligned_alloc(64, (4 * xrow + 63) / 64 * 64);
  for (int t = 0; t < 4; t++) traits(tr->vec_dot_type)->from_float(x + (size_t)t * K, xq + t * xrow, K);
  float *o1 = malloc(rows * 5 * 4), *o2 = malloc(rows * 5 * 4);
  const char *levels[] = {"avx512", "avx2"};
  for (int li = 0; li < 2; li++) {
    const kernels_t *kt = kernels_by_name(levels[li]);
    if (!kt) continue;
    dot_fn dot = lowbit_dot(kt, type);
    dot4_fn dot4 = lowbit_dot4(kt, type);
    if (!dot) { dot = type == GGML_Q4_K ? kt->dot_q4_K : type == GGML_Q6_K ? kt->dot_q6_K : type == GGML_Q8_0 ? kt->dot_q8_0 : NULL; dot4 = type == GGML_Q4_K ? kt->dot4_q4_K : type == GGML_Q6_K ? kt->dot4_q6_K : type == GGML_Q8_0 ? kt->dot4_q8_0 : NULL; }
    if (!dot) { fprintf(stderr, "no dot for type %d\n", type); return 5; }
    double best[4] = {1e9, 1e9, 1e9, 1e9}; // ours 1 token, ggml 1 token, ours 4 tokens, ggml 4 tokens
    for (int r = 0; r < R; r++) {
      double t0 = now();
      for (size_t n = 0; n < rows; n++) o1[n] = dot(K, w + n * wrow, xq);
      double t1 = now();
      for (size_t n = 0; n < rows; n++) tr->vec_dot(K, &o2[n], 0, w + n * wrow, 0, xq, 0, 1);
      double t2 = now();
      if (dot4) for (size_t n = 0; n < rows; n++) dot4(K, w + n * wrow, xq, xrow, o1 + rows + n, rows);
      else for (size_t n = 0; n < rows; n++) for (int t = 0; t < 4; t++) o1[rows + t * rows + n] = dot(K, w + n * wrow, xq + t * xrow);
      double t3 = now();
      for (size_t n = 0; n < rows; n++) for (int t = 0; t < 4; t++) tr->vec_dot(K, &o2[rows + t * rows + n], 0, w + n * wrow, 0, xq + t * xrow, 0, 1);
      double t4 = now();
      double d[4] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3};
      for (int k = 0; k < 4; k++) if (d[k] < best[k]) best[k] = d[k];
    }
    double err = 0, ref = 0;
    for (size_t n = 0; n < rows; n++) err += (o1[n] - o2[n]) * (double)(o1[n] - o2[n]), ref += (double)o2[n] * o2[n];
    const double gb = rows * wrow / 1e9;
    printf("%-8s %-6s K=%d N=%d x%d  1 tok: ours %6.2f GB/s  ggml %6.2f GB/s  (%.2fx)   4 tok: ours %6.2f  ggml %6.2f GB/s (%.2fx)%s  nmse %.1e\n",
           argv[2], levels[li], K, N, E, gb / best[0], gb / best[1], best[1] / best[0], gb / best[2], gb / best[3], best[3] / best[2], dot4 ? "" : " [no dot4]", err / (ref + 1e-30));
  }
  return 0;
}
