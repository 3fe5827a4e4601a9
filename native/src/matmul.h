// Matmul driver and kernel selection: out[T, N] = x[T, K] · Wᵀ for a ggml-encoded W of N rows of K values.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common.h"

/** The fastest kernel table this CPU runs. */
const kernels_t *kernels_best(void);
/** The table named "scalar", "avx2", "avx512" or "neon", or NULL if unknown or unsupported on this CPU. */
const kernels_t *kernels_by_name(const char *name);
const kernels_t *kernels_current(void);
void kernels_use(const kernels_t *k);
/** Names of the SIMD features this CPU has (of those the kernels use); returns how many were written. */
int cpu_features(const char **out, int max);

/** Bytes of one row of K values of a ggml type, or 0 if the type is unsupported or K is not whole blocks. */
size_t type_row_bytes(int type, int K);
/** Whether N rows suit the type's layout (Q4_K_R8, Q8_0_R8: whole groups of 8 rows). */
int type_rows_ok(int type, int N);
/** Repacks N Q4_K or Q8_0 rows of K values (N a multiple of 8) into Q4_K_R8 / Q8_0_R8 in place, on the pool.
 *  -1: another type, bad sizes or out of memory. */
/* undo: the inverse (R8 rows back into plain blocks). */
int repack_r8_run(int type, void *w, int K, int N, int undo);
/** Runs the matmul on the thread pool; sizes must already be checked (see type_row_bytes). -1 if out of memory. */
int matmul_run(int type, const void *w, const float *x, float *out, int K, int N, int T);
/** A 3-D weight applied per head in one pool run: W holds H heads of N rows of K values (head h's rows follow head
 *  h-1's); out[t, h, :] = x[t, h, :] · W_hᵀ for x[T, H, K], out[T, H, N]. Sizes must be checked. -1: out of memory. */
int matmul_heads_run(int type, const void *w, const float *x, float *out, int K, int N, int H, int T);
/** Several weights over the same activations x[T, K] in one pool run: outs[i][T, Ns[i]] = x · Wiᵀ; x is quantised
 *  once per activation format. Sizes must be checked. -1: out of memory or an unsupported type. */
int matmul_set_run(int n, const int *types, const void *const *ws, const int *Ns, float *const *outs, const float *x, int K, int T);
/** Expert FFN: out[T, D] = down(silu(gate x) * up x) for x[T, D]; gate/up hold F rows of D values, down D rows of F.
 *  x is quantised once for gate and up, the intermediate once for down. Sizes must be checked. -1: out of memory. */
int expert_ffn_run(int tg, const void *gate, int tu, const void *up, int td, const void *down, const float *x, float *out, int D,
                   int F, int T);
/** One routed expert of a MoE layer: its weights (ggml types and bytes), the token rows it serves and their weights. */
typedef struct {
  int tg, tu, td;
  const void *gate, *up, *down;
  const int32_t *rows;
  const float *scales;
  int n;
} moe_expert;
/** A MoE layer's routed experts in one pool run (every gate/up chunk, then every down chunk):
 *  out[rows[i]] += scales[i] * down(silu(gate x[rows[i]]) * up x[rows[i]]) for every expert, in order. Takes ex (an
 *  array of ne from malloc: freed here). -1: out of memory. */
int moe_ffn_run(int ne, moe_expert *ex, const float *x, float *out, int D, int F);
/** moe_ffn_run begun on the pool's workers (pool_begin): returns once x is quantised; out holds the sum after this
 *  thread's pool_join(*ticket) (0: nothing to join). ex, the weights, rows, scales and out must stay until then.
 *  -1: out of memory. */
int moe_ffn_begin(int ne, moe_expert *ex, const float *x, float *out, int D, int F, unsigned *ticket);
/** Quantise n activations to Q8_0 (kind 0) or Q8_K (kind 1) blocks with the current kernels. */
void quantize_act(int kind, const float *x, void *y, int n);
