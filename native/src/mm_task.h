// Inside the matmul driver (matmul.c) and the MoE layer's run (moe.c): a matmul task cut into chunks of rows (and
// tokens) for the pool's threads, and the helpers both drive tasks with.
#pragma once
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "k_quants_lo.h"

typedef struct {
  const uint8_t *w;
  size_t wrow;
  float *out;
  int K, N, T;
  size_t ldo;        // values between one token's output row and the next (N unless set: per-head outputs)
  const uint8_t *xb; // activations as the dot reads them (quantised, or the f32 rows)
  size_t xrow;       // bytes per activation row as the dot reads it
  dot_fn dot;
  dot4_fn dot4; // NULL: one token at a time
  gemv8_fn r8, r84; // 8-row layouts, Q4_K_R8 / Q8_0_R8 (dot and dot4 NULL): groups of 8 rows, 1 and 4 tokens
  const panel_kernels *pk; // grid i-quants: 8-row panels for batches of PANEL_MIN_TOKENS or more (NULL: none)
  // Fused gate/up (expert FFN): a second weight over the same rows; out = silu(out) * out2 per chunk.
  const uint8_t *w2;
  size_t wrow2;
  const uint8_t *xb2;
  size_t xrow2;
  dot_fn dot2;
  dot4_fn dot42;
  gemv8_fn r82, r842;
  const panel_kernels *pk2;
  float *out2;
  int tile;                 // weight rows kept hot while the tokens pass
  int rows_per_chunk, n_rc; // row chunks
  int toks_per_chunk, n_tc; // token chunks (only when there are too few row chunks)
  atomic_int next;
} mm_task;

/** Chunk c of a task: a block of rows (and tokens); for a fused gate/up task also silu(gate) * up over it. */
void mm_chunk(const mm_task *t, int c, int ith);
/** The kernels for one weight type: activation quantiser (NULL: f32 rows), dots, activation row bytes. -1: unsupported. */
int mm_kernels(int type, int K, quant_fn *quant, dot_fn *dot, dot4_fn *dot4, gemv8_fn *r8, gemv8_fn *r84, const panel_kernels **pk,
               size_t *xrow);
/** Row / token chunks and the L1 tile for N rows of `wrow` bytes (the larger of the fused pair) and T tokens. */
void mm_plan(mm_task *t, size_t wrow);
/** The lock on the shared scratch (worker_threads share the process), this thread's begun pool run joined first. */
void mm_lock(void);
void mm_unlock(void);
/** The shared scratch of at least `bytes` (mm_lock held), or NULL: out of memory. */
uint8_t *scratch_get(size_t bytes);

static inline size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }
