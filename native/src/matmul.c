// Matmul driver: quantise the activations once (Q8_0 or Q8_K, as the weight type wants), then split output
// rows across the pool in chunks taken from an atomic counter (any thread that joins takes the next chunk). Inside a chunk a tile of weight rows stays in
// L1 while every token's activation row passes by, so prefill reads each weight row from memory once.
#include "matmul.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>

#include "pool.h"
#include "k_quants_lo.h"

// A panel decodes 8 rows once for all of a chunk's tokens; below this many tokens the 4-token dots cost less.
#define PANEL_MIN_TOKENS 8

const kernels_t KERNELS_SCALAR = {"scalar", quant_q8_0_scalar, quant_q8_K_scalar, dot_q8_0_scalar, dot_q4_K_scalar,
                                  dot_q6_K_scalar, dot_f32_scalar, dot_f16_scalar, dot_bf16_scalar,
                                  NULL, NULL, NULL, gemv8_q4_K_r8_scalar, NULL, gemv8_q8_0_r8_scalar, NULL};
#if defined(__x86_64__) || defined(__i386__)
const kernels_t KERNELS_AVX2 = {"avx2", quant_q8_0_avx2, quant_q8_K_avx2, dot_q8_0_avx2, dot_q4_K_avx2,
                                dot_q6_K_avx2, dot_f32_avx2, dot_f16_avx2, dot_bf16_avx2,
                                dot4_q8_0_avx2, dot4_q4_K_avx2, dot4_q6_K_avx2, gemv8_q4_K_r8_avx2, gemv8x4_q4_K_r8_avx2,
                                gemv8_q8_0_r8_avx2, gemv8x4_q8_0_r8_avx2};
// AVX-512 VNNI on 256-bit vectors where it saves instructions (the integer dots); the float dots are the AVX2 code.
const kernels_t KERNELS_AVX512 = {"avx512", quant_q8_0_avx2, quant_q8_K_avx2, dot_q8_0_avx512, dot_q4_K_avx512,
                                  dot_q6_K_avx512, dot_f32_avx2, dot_f16_avx2, dot_bf16_avx2,
                                  dot4_q8_0_avx512, dot4_q4_K_avx512, dot4_q6_K_avx512, gemv8_q4_K_r8_avx512, gemv8x4_q4_K_r8_avx512,
                                  gemv8_q8_0_r8_avx512, gemv8x4_q8_0_r8_avx512};
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
const kernels_t KERNELS_NEON = {"neon", quant_q8_0_neon, quant_q8_K_neon, dot_q8_0_neon, dot_q4_K_neon,
                                dot_q6_K_neon, dot_f32_neon, dot_f16_neon, dot_bf16_neon,
                                NULL, NULL, NULL, gemv8_q4_K_r8_scalar, NULL, gemv8_q8_0_r8_scalar, NULL};
#endif

static const kernels_t *active;

#if defined(__x86_64__) || defined(__i386__)
static int has_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
static int has_avx512(void) {
  return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
#endif

int cpu_features(const char **out, int max) {
  int n = 0;
#define ADD(name) \
  if (n < max) out[n++] = name;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) ADD("avx2");
  if (__builtin_cpu_supports("fma")) ADD("fma");
  if (__builtin_cpu_supports("f16c")) ADD("f16c");
  if (__builtin_cpu_supports("avx512f")) ADD("avx512f");
  if (__builtin_cpu_supports("avx512bw")) ADD("avx512bw");
  if (__builtin_cpu_supports("avx512vl")) ADD("avx512vl");
  if (__builtin_cpu_supports("avx512vnni")) ADD("avx512vnni");
#elif defined(__ARM_NEON) && defined(__aarch64__)
  ADD("neon");
#if defined(__ARM_FEATURE_DOTPROD)
  ADD("dotprod");
#endif
#endif
#undef ADD
  return n;
}

const kernels_t *kernels_best(void) {
#if defined(__x86_64__) || defined(__i386__)
  if (has_avx512()) return &KERNELS_AVX512;
  if (has_avx2()) return &KERNELS_AVX2;
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
  return &KERNELS_NEON;
#endif
  return &KERNELS_SCALAR;
}

const kernels_t *kernels_by_name(const char *name) {
  if (strcmp(name, "scalar") == 0) return &KERNELS_SCALAR;
#if defined(__x86_64__) || defined(__i386__)
  if (strcmp(name, "avx2") == 0 && has_avx2()) return &KERNELS_AVX2;
  if (strcmp(name, "avx512") == 0 && has_avx512()) return &KERNELS_AVX512;
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
  if (strcmp(name, "neon") == 0) return &KERNELS_NEON;
#endif
  return NULL;
}

const kernels_t *kernels_current(void) {
  if (!active) active = kernels_best();
  return active;
}

void kernels_use(const kernels_t *k) { active = k; }

size_t type_row_bytes(int type, int K) {
  if (K <= 0) return 0;
  switch (type) {
    case GGML_F32: return (size_t)K * 4;
    case GGML_F16:
    case GGML_BF16: return (size_t)K * 2;
    case GGML_Q8_0:
    case GGML_Q8_0_R8: return K % QK8_0 ? 0 : (size_t)(K / QK8_0) * sizeof(block_q8_0);
    case GGML_Q4_K:
    case GGML_Q4_K_R8: return K % QK_K ? 0 : (size_t)(K / QK_K) * sizeof(block_q4_K);
    case GGML_Q6_K: return K % QK_K ? 0 : (size_t)(K / QK_K) * sizeof(block_q6_K);
    default: return lowbit_row_bytes(type, K);
  }
}

int type_rows_ok(int type, int N) { return (type != GGML_Q4_K_R8 && type != GGML_Q8_0_R8) || N % 8 == 0; }

#include "mm_task.h"

/** Per pool thread (ith), the panel it decodes into: worker ith is one thread at a time (runs hold mm_mu). */
#define PANEL_SLOTS 256
static uint8_t *panel_slot[PANEL_SLOTS];
static size_t panel_cap[PANEL_SLOTS];

/** ith's panel scratch of at least `bytes`, or NULL (out of memory, or ith past the slots: the dots run instead). */
static uint8_t *panel_scratch(int ith, size_t bytes) {
  if (ith >= PANEL_SLOTS) return NULL;
  if (bytes > panel_cap[ith]) {
    free(panel_slot[ith]);
    panel_cap[ith] = (bytes + 4095) & ~(size_t)4095;
    panel_slot[ith] = aligned_alloc(64, panel_cap[ith]);
    if (!panel_slot[ith]) panel_cap[ith] = 0;
  }
  return panel_slot[ith];
}

/** Rows [rs, re) x tokens [ts, te) of one weight, tile by tile. */
static inline void mm_block(const mm_task *t, const uint8_t *w, size_t wrow, const uint8_t *xb, size_t xrow, dot_fn dot,
                            dot4_fn dot4, gemv8_fn r8, gemv8_fn r84, const panel_kernels *pk, int ith, float *out, int rs,
                            int re, int ts, int te) {
  if (pk && te - ts >= PANEL_MIN_TOKENS) { // whole groups of 8 rows as panels; any rest below (the same bits)
    const int nb = t->K / QK_K;
    const size_t pbytes = (size_t)nb * pk->bytes;
    uint8_t *panel = panel_scratch(ith, pbytes + (size_t)(te - ts) * nb * QK_K), *u = NULL;
    if (panel) pk->prep(xb + (size_t)ts * xrow, xrow, te - ts, nb, u = panel + pbytes);
    for (; panel && rs + 8 <= re; rs += 8) {
      pk->decode(w + (size_t)rs * wrow, wrow, nb, panel);
      pk->gemm(nb, panel, xb + (size_t)ts * xrow, xrow, u, te - ts, pk->mult, out + (size_t)ts * t->ldo + rs, t->ldo);
    }
  }
  if (r8) { // 8-row layouts: rs, re and the tile are whole groups of 8 rows; group g starts at row 8g's offset
    for (int r0 = rs; r0 < re; r0 += t->tile) {
      const int r1 = r0 + t->tile < re ? r0 + t->tile : re;
      int tok = ts;
      for (; r84 && tok + 4 <= te; tok += 4) {
        const uint8_t *xr = xb + (size_t)tok * xrow;
        float *o = out + (size_t)tok * t->ldo;
        for (int r = r0; r < r1; r += 8) r84(t->K, w + (size_t)r * wrow, xr, xrow, o + r, t->ldo);
      }
      for (; tok < te; tok++) {
        const uint8_t *xr = xb + (size_t)tok * xrow;
        float *o = out + (size_t)tok * t->ldo;
        for (int r = r0; r < r1; r += 8) r8(t->K, w + (size_t)r * wrow, xr, 0, o + r, 0);
      }
    }
    return;
  }
  for (int r0 = rs; r0 < re; r0 += t->tile) {
    const int r1 = r0 + t->tile < re ? r0 + t->tile : re;
    int tok = ts;
    for (; dot4 && tok + 4 <= te; tok += 4) { // 4 tokens share each weight block's unpacking
      const uint8_t *xr = xb + (size_t)tok * xrow;
      float *o = out + (size_t)tok * t->ldo;
      for (int r = r0; r < r1; r++) dot4(t->K, w + (size_t)r * wrow, xr, xrow, o + r, t->ldo);
    }
    for (; tok < te; tok++) {
      const uint8_t *xr = xb + (size_t)tok * xrow;
      float *o = out + (size_t)tok * t->ldo;
      for (int r = r0; r < r1; r++) o[r] = dot(t->K, w + (size_t)r * wrow, xr);
    }
  }
}

/** Chunk c of a task: a block of rows (and tokens); for a fused gate/up task also silu(gate) * up over it. */
void mm_chunk(const mm_task *t, int c, int ith) {
    const int rs = (c % t->n_rc) * t->rows_per_chunk, ts = (c / t->n_rc) * t->toks_per_chunk;
    const int re = rs + t->rows_per_chunk < t->N ? rs + t->rows_per_chunk : t->N;
    const int te = ts + t->toks_per_chunk < t->T ? ts + t->toks_per_chunk : t->T;
    mm_block(t, t->w, t->wrow, t->xb, t->xrow, t->dot, t->dot4, t->r8, t->r84, t->pk, ith, t->out, rs, re, ts, te);
    if (t->w2) {
      mm_block(t, t->w2, t->wrow2, t->xb2, t->xrow2, t->dot2, t->dot42, t->r82, t->r842, t->pk2, ith, t->out2, rs, re, ts, te);
      for (int tok = ts; tok < te; tok++) { // silu(gate) * up, as op_swiglu computes it
        float *g = t->out + (size_t)tok * t->N;
        const float *u = t->out2 + (size_t)tok * t->N;
        for (int r = rs; r < re; r++) {
          const double gv = g[r];
          g[r] = (float)(gv / (1.0 + exp(-gv)) * (double)u[r]);
        }
      }
    }
}

static void mm_worker(void *arg, int ith, int nth) {
  (void)nth;
  mm_task *t = arg;
  for (;;) {
    const int c = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
    if (c >= t->n_rc * t->n_tc) break;
    mm_chunk(t, c, ith);
  }
}

/** Several tasks in one pool run: chunks numbered across all of them, so threads never wait between tasks. */
typedef struct {
  const mm_task *tasks;
  const int *first; // first[i]: number of the task's first chunk; first[n]: total
  int n;
  atomic_int next;
} mm_multi;

static void mm_multi_worker(void *arg, int ith, int nth) {
  (void)nth;
  mm_multi *m = arg;
  int i = 0;
  for (;;) {
    const int c = atomic_fetch_add_explicit(&m->next, 1, memory_order_relaxed);
    if (c >= m->first[m->n]) break;
    while (c >= m->first[i + 1]) i++; // chunks are taken in increasing order
    mm_chunk(&m->tasks[i], c - m->first[i], ith);
  }
}

static pthread_mutex_t mm_mu = PTHREAD_MUTEX_INITIALIZER; // guards the scratch (worker_threads share the process)
/** mm_mu, this thread's begun run joined first (pool_join_own: that run holds the pool while mm_mu's holder may wait for it). */
void mm_lock(void) {
  pool_join_own();
  pthread_mutex_lock(&mm_mu);
}
void mm_unlock(void) { pthread_mutex_unlock(&mm_mu); }
static uint8_t *scratch;
static size_t scratch_cap;

uint8_t *scratch_get(size_t bytes) {
  if (bytes > scratch_cap) {
    free(scratch);
    scratch_cap = (bytes + 4095) & ~(size_t)4095;
    scratch = aligned_alloc(64, scratch_cap);
    if (!scratch) scratch_cap = 0;
  }
  return scratch;
}

/** The kernels for one weight type: activation quantiser (NULL: f32 rows), dots, activation row bytes. */
int mm_kernels(int type, int K, quant_fn *quant, dot_fn *dot, dot4_fn *dot4, gemv8_fn *r8, gemv8_fn *r84, const panel_kernels **pk,
               size_t *xrow) {
  const kernels_t *k = kernels_current();
  *quant = NULL, *dot = NULL, *dot4 = NULL, *r8 = NULL, *r84 = NULL, *pk = NULL;
  switch (type) {
    case GGML_Q4_K_R8: *quant = k->quant_q8_K, *r8 = k->r8_q4_K, *r84 = k->r8x4_q4_K, *xrow = (size_t)(K / QK_K) * sizeof(block_q8_K); break;
    case GGML_Q8_0: *quant = k->quant_q8_0, *dot = k->dot_q8_0, *dot4 = k->dot4_q8_0, *xrow = (size_t)(K / QK8_0) * sizeof(block_q8_0); break;
    case GGML_Q8_0_R8: *quant = k->quant_q8_0, *r8 = k->r8_q8_0, *r84 = k->r8x4_q8_0, *xrow = (size_t)(K / QK8_0) * sizeof(block_q8_0); break;
    case GGML_Q4_K: *quant = k->quant_q8_K, *dot = k->dot_q4_K, *dot4 = k->dot4_q4_K, *xrow = (size_t)(K / QK_K) * sizeof(block_q8_K); break;
    case GGML_Q6_K: *quant = k->quant_q8_K, *dot = k->dot_q6_K, *dot4 = k->dot4_q6_K, *xrow = (size_t)(K / QK_K) * sizeof(block_q8_K); break;
    case GGML_F32: *dot = k->dot_f32, *xrow = (size_t)K * 4; break;
    case GGML_F16: *dot = k->dot_f16, *xrow = (size_t)K * 4; break;
    case GGML_BF16: *dot = k->dot_bf16, *xrow = (size_t)K * 4; break;
    default: // the low-bit types of k_quants_lo.c
      if (!(*dot = lowbit_dot(k, type))) return -1;
      *dot4 = lowbit_dot4(k, type);
      *pk = lowbit_panel(k, type);
      switch (lowbit_act(type)) {
        case ACT_Q8_K: *quant = k->quant_q8_K, *xrow = (size_t)(K / QK_K) * sizeof(block_q8_K); break;
        case ACT_Q8_1: *quant = lowbit_quant_q8_1(k), *xrow = (size_t)(K / QK8_0) * sizeof(block_q8_1); break;
        default: *quant = k->quant_q8_0, *xrow = (size_t)(K / QK8_0) * sizeof(block_q8_0);
      }
  }
  return 0;
}

/** Row / token chunks and the L1 tile for N rows of `wrow` bytes (the larger of the fused pair) and T tokens. */
void mm_plan(mm_task *t, size_t wrow) {
  const int nth = pool_threads(), N = t->N, T = t->T;
  if (!t->ldo) t->ldo = (size_t)N;
  // A few chunks per thread so a descheduled thread's share is picked up by the others.
  // 8-row layouts: chunks and tiles of whole groups; panels: chunks of whole groups
  const int group = t->r8 || t->r82 || ((t->pk || t->pk2) && T >= PANEL_MIN_TOKENS) ? 8 : 1;
  int rpc = (N + nth * 4 - 1) / (nth * 4);
  if (rpc < 16) rpc = 16;
  rpc = (rpc + group - 1) / group * group;
  t->rows_per_chunk = rpc;
  t->n_rc = (N + rpc - 1) / rpc;
  t->toks_per_chunk = T;
  t->n_tc = 1;
  if (t->n_rc < nth * 2 && T > 1) { // few rows, several tokens (a small expert batch): split tokens too
    int want = (nth * 4 + t->n_rc - 1) / t->n_rc;
    if (want > T) want = T;
    t->toks_per_chunk = ((T + want - 1) / want + 3) & ~3; // whole groups of 4 for the multi-token kernels
    t->n_tc = (T + t->toks_per_chunk - 1) / t->toks_per_chunk;
  }
  size_t tile = 16384 / wrow; // ~16 KiB of weight rows stay in L1
  t->tile = tile < 1 ? 1 : tile > 16 ? 16 : (int)tile;
  if (t->r8 || t->r82) t->tile = t->tile < group ? group : t->tile / group * group;
  atomic_init(&t->next, 0);
}


int matmul_run(int type, const void *w, const float *x, float *out, int K, int N, int T) {
  if (N <= 0 || T <= 0) return 0;
  mm_task t = {.w = w, .wrow = type_row_bytes(type, K), .out = out, .K = K, .N = N, .T = T};
  quant_fn quant;
  if (mm_kernels(type, K, &quant, &t.dot, &t.dot4, &t.r8, &t.r84, &t.pk, &t.xrow) != 0) return -1;
  mm_plan(&t, t.wrow);
  mm_lock();
  t.xb = (const uint8_t *)x;
  if (quant) {
    uint8_t *xq = scratch_get((size_t)T * t.xrow);
    if (!xq) {
      pthread_mutex_unlock(&mm_mu);
      return -1;
    }
    // On the caller, before the run: microseconds per row next to the matmul's milliseconds, and no barrier.
    for (int i = 0; i < T; i++) quant(x + (size_t)i * K, xq + (size_t)i * t.xrow, K);
    t.xb = xq;
  }
  pool_run(mm_worker, &t);
  pthread_mutex_unlock(&mm_mu);
  return 0;
}

int matmul_set_run(int n, const int *types, const void *const *ws, const int *Ns, float *const *outs, const float *x, int K, int T) {
  if (n <= 0 || T <= 0) return 0;
  mm_task *t = calloc((size_t)n, sizeof(mm_task));
  quant_fn *q = malloc(sizeof(quant_fn) * (size_t)n);
  int *first = malloc(sizeof(int) * (size_t)(n + 1)), *src = malloc(sizeof(int) * (size_t)n);
  size_t *at = malloc(sizeof(size_t) * (size_t)n);
  int rc = -1;
  if (!t || !q || !first || !src || !at) goto done;
  size_t total = 0;
  first[0] = 0;
  for (int i = 0; i < n; i++) {
    t[i] = (mm_task){.w = ws[i], .wrow = type_row_bytes(types[i], K), .out = outs[i], .K = K, .N = Ns[i], .T = T};
    if (mm_kernels(types[i], K, &q[i], &t[i].dot, &t[i].dot4, &t[i].r8, &t[i].r84, &t[i].pk, &t[i].xrow) != 0) goto done;
    mm_plan(&t[i], t[i].wrow);
    first[i + 1] = first[i] + t[i].n_rc * t[i].n_tc;
    // Weights wanting the same activation format share one quantised copy of x.
    src[i] = i;
    for (int j = 0; j < i; j++)
      if (q[j] == q[i] && t[j].xrow == t[i].xrow) src[i] = src[j];
    if (q[i] && src[i] == i) at[i] = total, total += round64((size_t)T * t[i].xrow);
  }
  mm_lock();
  uint8_t *s = total ? scratch_get(total) : NULL;
  if (total && !s) {
    pthread_mutex_unlock(&mm_mu);
    goto done;
  }
  for (int i = 0; i < n; i++) {
    if (!q[i]) {
      t[i].xb = (const uint8_t *)x;
      continue;
    }
    if (src[i] == i)
      for (int r = 0; r < T; r++) q[i](x + (size_t)r * K, s + at[i] + (size_t)r * t[i].xrow, K);
    t[i].xb = s + at[src[i]];
  }
  mm_multi run = {.tasks = t, .first = first, .n = n};
  atomic_init(&run.next, 0);
  pool_run(mm_multi_worker, &run);
  pthread_mutex_unlock(&mm_mu);
  rc = 0;
done:
  free(t), free(q), free(first), free(src), free(at);
  return rc;
}

int matmul_heads_run(int type, const void *w, const float *x, float *out, int K, int N, int H, int T) {
  if (N <= 0 || T <= 0 || H <= 0) return 0;
  mm_task *t = calloc((size_t)H, sizeof(mm_task));
  int *first = malloc(sizeof(int) * (size_t)(H + 1));
  const size_t wrow = type_row_bytes(type, K);
  quant_fn quant = NULL;
  int rc = -1;
  if (!t || !first) goto done;
  first[0] = 0;
  for (int h = 0; h < H; h++) {
    t[h] = (mm_task){.w = (const uint8_t *)w + (size_t)h * N * wrow, .wrow = wrow, .out = out + (size_t)h * N, .K = K, .N = N, .T = T,
                     .ldo = (size_t)H * N};
    if (mm_kernels(type, K, &quant, &t[h].dot, &t[h].dot4, &t[h].r8, &t[h].r84, &t[h].pk, &t[h].xrow) != 0) goto done;
    mm_plan(&t[h], wrow);
    first[h + 1] = first[h] + t[h].n_rc * t[h].n_tc;
  }
  mm_lock();
  // Head h's rows of x (token stride H * K) gathered as the dot reads them, quantised or f32: [H][T] rows.
  const size_t xrow = t[0].xrow;
  uint8_t *s = scratch_get((size_t)H * T * xrow);
  if (!s) {
    pthread_mutex_unlock(&mm_mu);
    goto done;
  }
  for (int h = 0; h < H; h++) {
    for (int i = 0; i < T; i++) {
      const float *xr = x + ((size_t)i * H + h) * K;
      uint8_t *dst = s + ((size_t)h * T + i) * xrow;
      if (quant) quant(xr, dst, K);
      else memcpy(dst, xr, (size_t)K * 4);
    }
    t[h].xb = s + (size_t)h * T * xrow;
  }
  mm_multi run = {.tasks = t, .first = first, .n = H};
  atomic_init(&run.next, 0);
  pool_run(mm_multi_worker, &run);
  pthread_mutex_unlock(&mm_mu);
  rc = 0;
done:
  free(t), free(first);
  return rc;
}

int expert_ffn_run(int tg, const void *gate, int tu, const void *up, int td, const void *down, const float *x, float *out, int D,
                   int F, int T) {
  if (T <= 0) return 0;
  quant_fn qg, qu, qd;
  mm_task a = {.w = gate, .wrow = type_row_bytes(tg, D), .K = D, .N = F, .T = T, .w2 = up, .wrow2 = type_row_bytes(tu, D)};
  mm_task b = {.w = down, .wrow = type_row_bytes(td, F), .out = out, .K = F, .N = D, .T = T};
  if (mm_kernels(tg, D, &qg, &a.dot, &a.dot4, &a.r8, &a.r84, &a.pk, &a.xrow) != 0 ||
      mm_kernels(tu, D, &qu, &a.dot2, &a.dot42, &a.r82, &a.r842, &a.pk2, &a.xrow2) != 0 ||
      mm_kernels(td, F, &qd, &b.dot, &b.dot4, &b.r8, &b.r84, &b.pk, &b.xrow) != 0)
    return -1;
  const int share = qg == qu; // same activation format for gate and up (both quantised alike, or both f32): one copy
  const size_t hbytes = round64((size_t)T * F * 4);
  const size_t xg = qg ? round64((size_t)T * a.xrow) : 0, xu = qu && !share ? round64((size_t)T * a.xrow2) : 0;
  const size_t hq = qd ? round64((size_t)T * b.xrow) : 0;
  mm_plan(&a, a.wrow > a.wrow2 ? a.wrow : a.wrow2);
  mm_plan(&b, b.wrow);
  mm_lock();
  uint8_t *s = scratch_get(2 * hbytes + xg + xu + hq);
  if (!s) {
    pthread_mutex_unlock(&mm_mu);
    return -1;
  }
  float *h = (float *)s, *u = (float *)(s + hbytes);
  uint8_t *pxg = s + 2 * hbytes, *pxu = pxg + xg, *phq = pxu + xu;
  a.out = h, a.out2 = u;
  a.xb = (const uint8_t *)x, a.xb2 = (const uint8_t *)x;
  if (qg) {
    for (int i = 0; i < T; i++) qg(x + (size_t)i * D, pxg + (size_t)i * a.xrow, D);
    a.xb = pxg;
  }
  if (qu) {
    if (!share)
      for (int i = 0; i < T; i++) qu(x + (size_t)i * D, pxu + (size_t)i * a.xrow2, D);
    a.xb2 = share ? pxg : pxu;
  }
  pool_run(mm_worker, &a); // h = silu(gate x) * up x
  b.xb = (const uint8_t *)h;
  if (qd) {
    for (int i = 0; i < T; i++) qd(h + (size_t)i * F, phq + (size_t)i * b.xrow, F);
    b.xb = phq;
  }
  pool_run(mm_worker, &b);
  pthread_mutex_unlock(&mm_mu);
  return 0;
}

typedef struct {
  uint8_t *w, *tmp; // tmp: one group's bytes per thread
  size_t gbytes;    // one group of 8 rows
  int nb;
  void (*group)(uint8_t *g, int nb, uint8_t *tmp);
} rp_task;

static void rp_range(void *arg, int ith, int g0, int g1) {
  const rp_task *t = arg;
  for (int g = g0; g < g1; g++) t->group(t->w + (size_t)g * t->gbytes, t->nb, t->tmp + (size_t)ith * t->gbytes);
}

int repack_r8_run(int type, void *w, int K, int N, int undo) {
  const int blk = type == GGML_Q4_K ? QK_K : QK8_0;
  if ((type != GGML_Q4_K && type != GGML_Q8_0) || K <= 0 || K % blk || N % 8) return -1;
  mm_lock();
  rp_task t = {.w = w, .nb = K / blk};
  t.gbytes = (size_t)8 * type_row_bytes(type, K);
  t.group = type == GGML_Q4_K ? (undo ? unrepack_q4_K_r8_group : repack_q4_K_r8_group) : (undo ? unrepack_q8_0_r8_group : repack_q8_0_r8_group);
  t.tmp = scratch_get((size_t)pool_threads() * t.gbytes);
  if (!t.tmp) {
    pthread_mutex_unlock(&mm_mu);
    return -1;
  }
  pool_for(rp_range, &t, N / 8, 1, 1);
  pthread_mutex_unlock(&mm_mu);
  return 0;
}

void quantize_act(int kind, const float *x, void *y, int n) {
  const kernels_t *k = kernels_current();
  (kind == 0 ? k->quant_q8_0 : k->quant_q8_K)(x, y, n);
}
