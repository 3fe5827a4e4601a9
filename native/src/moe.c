// A MoE layer's routed experts in one pool run (moe_ffn_run, moe_ffn_begin): every expert's gate/up chunks, then
// its down chunks, the weighted sum after; x quantised once per activation format, shared by every expert.
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "mm_task.h"
#include "pool.h"

/** One activation format of x (a quantiser and its row bytes): each token row quantised once, shared by every expert. */
typedef struct {
  quant_fn q;
  size_t xrow;
  size_t at; // scratch offset of nx rows
} act_fmt;

/** Index of (q, xrow) in fmts, added if new (at most 3 * ne formats, a few in practice). */
static int act_fmt_of(act_fmt *fmts, int *nf, quant_fn q, size_t xrow) {
  for (int i = 0; i < *nf; i++)
    if (fmts[i].q == q && fmts[i].xrow == xrow) return i;
  fmts[*nf] = (act_fmt){.q = q, .xrow = xrow};
  return (*nf)++;
}

/** A MoE layer's run: gate/up chunks numbered first[0..ne], then down chunks firstb[0..ne] after them, in one pool
 *  run; its plan, scratch and expert list, held from moe_plan to moe_done (moe_ffn_begin's outlive the call). */
typedef struct {
  mm_task *a, *b;
  int *first, *firstb;
  int ne, D, F;
  quant_fn *q; // q[3 * e + k]: expert e's activation quantiser for gate, up, down (NULL: f32)
  moe_expert *ex;
  float *out;
  atomic_int *left;  // per expert: gate/up chunks not yet done
  atomic_int *ready; // per expert: its h (quantised for down) is complete
  uint8_t *own;      // scratch of its own (moe_ffn_begin's), else NULL: the shared scratch under mm_mu
  atomic_int next;
} moe_job;

static void moe_worker(void *arg, int ith, int nth) {
  (void)nth;
  moe_job *m = arg;
  const int na = m->first[m->ne], nall = na + m->firstb[m->ne];
  int i = 0, j = 0;
  for (;;) {
    const int c = atomic_fetch_add_explicit(&m->next, 1, memory_order_relaxed);
    if (c >= nall) break;
    if (c < na) {
      while (c >= m->first[i + 1]) i++;
      mm_chunk(&m->a[i], c - m->first[i], ith);
      // acq_rel: the last finisher sees every other chunk's h rows (a release sequence on left[i]).
      if (atomic_fetch_sub_explicit(&m->left[i], 1, memory_order_acq_rel) == 1) {
        const quant_fn qd = m->q[3 * i + 2];
        const mm_task *tb = &m->b[i];
        if (qd)
          for (int r = 0; r < m->ex[i].n; r++)
            qd(m->a[i].out + (size_t)r * m->F, (uint8_t *)tb->xb + (size_t)r * tb->xrow, m->F);
        atomic_store_explicit(&m->ready[i], 1, memory_order_release);
      }
      continue;
    }
    const int cb = c - na;
    while (cb >= m->firstb[j + 1]) j++;
    for (unsigned k = 1; !atomic_load_explicit(&m->ready[j], memory_order_acquire); k++)
      if (k % 4096 == 0) sched_yield(); else cpu_relax(); // the expert's last gate/up chunks are running elsewhere
    mm_chunk(&m->b[j], cb - m->firstb[j], ith);
  }
}

static void moe_free(moe_job *j) {
  if (!j) return;
  free(j->a), free(j->first), free(j->q), free(j->left), free(j->own), free(j->ex);
  free(j);
}

/** Weighted sum into the token rows, experts in the given order (the order the per-expert path adds them); frees j. */
static void moe_done(void *arg) {
  moe_job *j = arg;
  for (int e = 0; e < j->ne; e++) {
    const float *y = j->b[e].out;
    for (int i = 0; i < j->ex[e].n; i++) {
      float *o = j->out + (size_t)j->ex[e].rows[i] * j->D;
      const float sc = j->ex[e].scales[i], *yr = y + (size_t)i * j->D;
      for (int d = 0; d < j->D; d++) o[d] += sc * yr[d];
    }
  }
  moe_free(j);
}

/** Plans every expert's two tasks, lays out the scratch (h, u, gathered activations, down's activations, y per
 *  expert; x once per activation format) and fills it from x: into `scratch` if given (mm_mu held), else into
 *  scratch of its own. Takes ex (freed with the job). NULL: out of memory or an unsupported type (ex freed). */
static moe_job *moe_plan(int ne, moe_expert *ex, const float *x, float *out, int D, int F, int shared) {
  moe_job *j = calloc(1, sizeof *j);
  size_t *at = malloc(sizeof(size_t) * (size_t)ne * 6);
  act_fmt *fmts = malloc(sizeof(act_fmt) * (size_t)ne * 2);
  int *fg = malloc(sizeof(int) * (size_t)ne * 2), *fu = fg ? fg + ne : NULL, nf = 0, nx = 0;
  if (!j || !at || !fmts || !fg) goto fail;
  *j = (moe_job){.ne = ne, .D = D, .F = F, .ex = ex, .out = out};
  j->a = calloc((size_t)ne * 2, sizeof(mm_task));
  j->first = malloc(sizeof(int) * (size_t)(ne + 1) * 2);
  j->q = malloc(sizeof(quant_fn) * (size_t)ne * 3);
  j->left = malloc(sizeof(atomic_int) * (size_t)ne * 2);
  if (!j->a || !j->first || !j->q || !j->left) goto fail;
  mm_task *a = j->a, *b = a + ne;
  int *first = j->first, *firstb = first + ne + 1;
  quant_fn *q = j->q;
  j->b = b, j->firstb = firstb, j->ready = j->left + ne;
  for (int e = 0; e < ne; e++)
    for (int i = 0; i < ex[e].n; i++)
      if (ex[e].rows[i] + 1 > nx) nx = ex[e].rows[i] + 1;
  size_t total = 0;
  for (int e = 0; e < ne; e++) {
    const moe_expert *m = &ex[e];
    mm_task *ta = &a[e], *tb = &b[e];
    *ta = (mm_task){.w = m->gate, .wrow = type_row_bytes(m->tg, D), .K = D, .N = F, .T = m->n, .w2 = m->up, .wrow2 = type_row_bytes(m->tu, D)};
    *tb = (mm_task){.w = m->down, .wrow = type_row_bytes(m->td, F), .K = F, .N = D, .T = m->n};
    if (mm_kernels(m->tg, D, &q[3 * e], &ta->dot, &ta->dot4, &ta->r8, &ta->r84, &ta->pk, &ta->xrow) != 0 ||
        mm_kernels(m->tu, D, &q[3 * e + 1], &ta->dot2, &ta->dot42, &ta->r82, &ta->r842, &ta->pk2, &ta->xrow2) != 0 ||
        mm_kernels(m->td, F, &q[3 * e + 2], &tb->dot, &tb->dot4, &tb->r8, &tb->r84, &tb->pk, &tb->xrow) != 0)
      goto fail;
    fg[e] = act_fmt_of(fmts, &nf, q[3 * e], ta->xrow);
    fu[e] = act_fmt_of(fmts, &nf, q[3 * e + 1], ta->xrow2);
    mm_plan(ta, ta->wrow > ta->wrow2 ? ta->wrow : ta->wrow2);
    mm_plan(tb, tb->wrow);
    // A one-row expert reads its activation row in place from the shared copy; more rows are gathered.
    const size_t n = (size_t)m->n, g = n > 1 ? n : 0;
    const size_t sizes[6] = {round64(n * F * 4), round64(n * F * 4), round64(g * ta->xrow), round64(g * ta->xrow2),
                             round64(n * tb->xrow), round64(n * D * 4)};
    for (int k = 0; k < 6; k++) at[6 * e + k] = total, total += sizes[k];
  }
  for (int f = 0; f < nf; f++) fmts[f].at = total, total += round64((size_t)nx * fmts[f].xrow);
  total += round64((size_t)nx); // which rows of x are used
  first[0] = firstb[0] = 0;
  for (int e = 0; e < ne; e++) {
    first[e + 1] = first[e] + a[e].n_rc * a[e].n_tc;
    firstb[e + 1] = firstb[e] + b[e].n_rc * b[e].n_tc;
    atomic_init(&j->left[e], first[e + 1] - first[e]);
    atomic_init(&j->ready[e], 0);
  }
  atomic_init(&j->next, 0);
  uint8_t *s = shared ? scratch_get(total) : (j->own = aligned_alloc(64, round64(total)));
  if (!s) goto fail;
  // Quantise each used row of x once per format (on the caller: microseconds next to the weights' milliseconds),
  // then point or gather each expert's rows.
  uint8_t *used = s + total - round64((size_t)nx);
  memset(used, 0, (size_t)nx);
  for (int e = 0; e < ne; e++)
    for (int i = 0; i < ex[e].n; i++) used[ex[e].rows[i]] = 1;
  for (int f = 0; f < nf; f++)
    for (int r = 0; r < nx; r++) {
      if (!used[r]) continue;
      uint8_t *dst = s + fmts[f].at + (size_t)r * fmts[f].xrow;
      if (fmts[f].q) fmts[f].q(x + (size_t)r * D, dst, D);
      else memcpy(dst, x + (size_t)r * D, (size_t)D * 4);
    }
  for (int e = 0; e < ne; e++) {
    const moe_expert *m = &ex[e];
    mm_task *ta = &a[e], *tb = &b[e];
    const act_fmt *pg = &fmts[fg[e]], *pu = &fmts[fu[e]];
    if (m->n == 1) {
      ta->xb = s + pg->at + (size_t)m->rows[0] * pg->xrow;
      ta->xb2 = s + pu->at + (size_t)m->rows[0] * pu->xrow;
    } else {
      uint8_t *xg = s + at[6 * e + 2], *xu = s + at[6 * e + 3];
      for (int i = 0; i < m->n; i++) {
        memcpy(xg + (size_t)i * pg->xrow, s + pg->at + (size_t)m->rows[i] * pg->xrow, pg->xrow);
        memcpy(xu + (size_t)i * pu->xrow, s + pu->at + (size_t)m->rows[i] * pu->xrow, pu->xrow);
      }
      ta->xb = xg, ta->xb2 = xu;
    }
    ta->out = (float *)(s + at[6 * e]), ta->out2 = (float *)(s + at[6 * e + 1]);
    tb->xb = q[3 * e + 2] ? s + at[6 * e + 4] : (const uint8_t *)ta->out;
    tb->out = (float *)(s + at[6 * e + 5]);
  }
  free(at), free(fmts), free(fg);
  return j;
fail:
  free(at), free(fmts), free(fg);
  if (j) moe_free(j);
  else free(ex);
  return NULL;
}

int moe_ffn_run(int ne, moe_expert *ex, const float *x, float *out, int D, int F) {
  if (ne <= 0) return free(ex), 0;
  mm_lock();
  moe_job *j = moe_plan(ne, ex, x, out, D, F, 1);
  // One pool run: every gate/up chunk, then every down chunk (chunks are taken in order, so a thread that takes an
  // expert's down chunk waits only for that expert's gate/up chunks already in other threads' hands). The thread
  // finishing an expert's last gate/up chunk quantises its h for down. Saves a run's wake and barrier a layer.
  if (j) pool_run(moe_worker, j), moe_done(j);
  mm_unlock();
  return j ? 0 : -1;
}

int moe_ffn_begin(int ne, moe_expert *ex, const float *x, float *out, int D, int F, unsigned *ticket) {
  *ticket = 0;
  if (ne <= 0) return free(ex), 0;
  moe_job *j = moe_plan(ne, ex, x, out, D, F, 0); // scratch of its own: mm_mu is not held past this call
  if (!j) return -1;
  *ticket = pool_begin(moe_worker, j, moe_done, j);
  return 0;
}

