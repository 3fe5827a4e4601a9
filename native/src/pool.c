// Persistent thread pool. A run bumps a generation counter; workers spin on it for spin_us (a decode step issues
// many short matmuls back to back, and waking a blocked thread costs tens of microseconds), then block on a
// condition variable. The caller does its share, closes the run and waits (spin, then block) for the workers
// that joined; late ones see the run closed and skip it. One pool per process; runs are serialised by a mutex.
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
  int ith;
  unsigned gen0; // the generation current when the worker was created
} wstart;

static struct {
  int nth; // threads of the pool, caller included
  pthread_t *tids;
  wstart *starts;
  pool_fn fn; // stable while any worker is inside the run (the caller waits for active == 0)
  void *arg;
  atomic_uint gen;   // bumped to start a run (or to stop)
  atomic_int stop;
  atomic_int closed; // set when the caller ran out of work: late workers skip the run
  atomic_int active; // workers inside the current run
  atomic_int sleepers;
  atomic_uint poke;    // bumped by pool_poke(): sleeping workers wake and spin again, a run being near
  atomic_long poke_ns; // how long a poked worker spins
  long spin_ns;
  pthread_mutex_t mu; // guards the condition variable; one for all waits, each sleeper rechecks its own condition
  pthread_cond_t cv;
  pthread_mutex_t run_mu; // one run (or resize) at a time; a begun run holds it until joined
  // A begun run (pool_begin): its thread, ticket and finish; the workers run it until that thread joins.
  atomic_int begun;
  pthread_t begun_by;
  unsigned ticket;
  void (*finish)(void *);
  void *finish_arg;
} P = {.nth = 1, .closed = 1, .spin_ns = 200000, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
       .run_mu = PTHREAD_MUTEX_INITIALIZER};

static long elapsed_ns(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

typedef struct {
  unsigned gen, poke; // the generation and poke count a worker has seen
} wseen;
static int gen_or_poke(const void *p) {
  const wseen *w = p;
  return atomic_load(&P.gen) != w->gen || atomic_load(&P.poke) != w->poke;
}
static int run_idle(const void *unused) { return (void)unused, atomic_load(&P.active) == 0; }

/** Return once done(arg) holds: spin for spin_ns, then block until a notify(). */
static void spin_then_block(int (*done)(const void *), const void *arg, long spin_ns) {
  if (done(arg)) return;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (unsigned i = 1;; i++) {
    cpu_relax();
    if (done(arg)) return;
    if ((i & 255) == 0 && elapsed_ns(&t0) > spin_ns) break;
  }
  // Dekker pairing with notify(): a sleeper publishes itself before re-checking; a waker changes state first.
  pthread_mutex_lock(&P.mu);
  atomic_fetch_add(&P.sleepers, 1);
  while (!done(arg)) pthread_cond_wait(&P.cv, &P.mu);
  atomic_fetch_sub(&P.sleepers, 1);
  pthread_mutex_unlock(&P.mu);
}

/** Call after changing state that others may be waiting on. */
static void notify(void) {
  if (atomic_load(&P.sleepers) > 0) {
    pthread_mutex_lock(&P.mu);
    pthread_cond_broadcast(&P.cv);
    pthread_mutex_unlock(&P.mu);
  }
}

static void *worker_main(void *p) {
  const wstart *s = p;
  wseen seen = {.gen = s->gen0, .poke = atomic_load(&P.poke)};
  long spin = P.spin_ns;
  for (;;) {
    spin_then_block(gen_or_poke, &seen, spin);
    const unsigned poke = atomic_load(&P.poke);
    const long poke_ns = atomic_load(&P.poke_ns);
    spin = poke != seen.poke && poke_ns > P.spin_ns ? poke_ns : P.spin_ns; // a poked worker spins the longer
    seen.poke = poke;
    if (atomic_load(&P.gen) == seen.gen) continue; // poked: spin again for the run to come
    seen.gen = atomic_load(&P.gen);
    if (atomic_load(&P.stop)) return NULL;
    // Join before looking at closed (Dekker with the caller): either it waits for us, or we see it closed.
    atomic_fetch_add(&P.active, 1);
    if (!atomic_load(&P.closed)) P.fn(P.arg, s->ith, P.nth);
    if (atomic_fetch_sub(&P.active, 1) == 1) notify();
  }
}

static void stop_workers(void) {
  if (P.nth > 1) {
    atomic_store(&P.stop, 1);
    atomic_fetch_add(&P.gen, 1);
    notify();
    for (int i = 1; i < P.nth; i++) pthread_join(P.tids[i], NULL);
    atomic_store(&P.stop, 0);
  }
  free(P.tids);
  free(P.starts);
  P.tids = NULL;
  P.starts = NULL;
  P.nth = 1;
}

static void start_workers(int n) {
  P.tids = calloc((size_t)n, sizeof(pthread_t));
  P.starts = calloc((size_t)n, sizeof(wstart));
  if (!P.tids || !P.starts) return; // stay single-threaded
  unsigned g = atomic_load(&P.gen);
  int made = 1;
  for (int i = 1; i < n; i++, made++) {
    P.starts[i] = (wstart){.ith = i, .gen0 = g};
    if (pthread_create(&P.tids[i], NULL, worker_main, &P.starts[i]) != 0) break;
  }
  P.nth = made;
}

void pool_join_own(void) {
  if (P.begun && pthread_equal(P.begun_by, pthread_self())) pool_join(P.ticket);
}

/** Lock run_mu, first finishing a run this thread began (it holds run_mu until joined). */
static void lock_runs(void) {
  pool_join_own();
  pthread_mutex_lock(&P.run_mu);
}

int pool_set_threads(int n) {
  if (n < 1) n = 1;
  if (n > 256) n = 256;
  lock_runs();
  if (n != P.nth) {
    stop_workers();
    if (n > 1) start_workers(n);
  }
  n = P.nth;
  pthread_mutex_unlock(&P.run_mu);
  return n;
}

int pool_threads(void) { return P.nth; }

void pool_set_spin_us(int us) { P.spin_ns = us < 0 ? 0 : (long)us * 1000L; }

/** Publish a run to the workers (run_mu held). */
static void open_run(pool_fn fn, void *arg) {
  P.fn = fn;
  P.arg = arg;
  atomic_store(&P.closed, 0); // after fn and arg: a worker that sees the run open sees them
  atomic_fetch_add(&P.gen, 1);
  notify();
}

/** The caller's share of the open run, then wait for the workers that joined it (run_mu held). */
static void close_run(void) {
  P.fn(P.arg, 0, P.nth);
  atomic_store(&P.closed, 1);
  spin_then_block(run_idle, NULL, P.spin_ns);
}

void pool_run(pool_fn fn, void *arg) {
  lock_runs();
  if (P.nth <= 1) {
    fn(arg, 0, 1);
  } else {
    open_run(fn, arg);
    close_run();
  }
  pthread_mutex_unlock(&P.run_mu);
}

unsigned pool_begin(pool_fn fn, void *arg, void (*finish)(void *), void *finish_arg) {
  lock_runs();
  if (P.nth > 1) open_run(fn, arg);
  else P.fn = fn, P.arg = arg;
  P.finish = finish, P.finish_arg = finish_arg;
  P.begun_by = pthread_self();
  atomic_store(&P.begun, 1);
  if (++P.ticket == 0) ++P.ticket; // 0: no run
  return P.ticket;
}

int pool_join(unsigned ticket) {
  if (!P.begun || !pthread_equal(P.begun_by, pthread_self()) || P.ticket != ticket) return 0; // joined already
  atomic_store(&P.begun, 0);
  if (P.nth > 1) close_run();
  else P.fn(P.arg, 0, 1);
  P.finish(P.finish_arg);
  pthread_mutex_unlock(&P.run_mu);
  return 1;
}

void pool_poke(int us) {
  if (P.nth <= 1) return;
  atomic_store(&P.poke_ns, us < 0 ? 0 : (long)us * 1000L);
  atomic_fetch_add(&P.poke, 1); // spinning workers restart their spin; sleeping ones wake
  notify();
}

void pool_shutdown(void) {
  lock_runs();
  stop_workers();
  pthread_mutex_unlock(&P.run_mu);
}

typedef struct {
  range_fn fn;
  void *ctx;
  int n, chunk;
  atomic_int next;
} pfor_t;

static void pfor_worker(void *arg, int ith, int nth) {
  (void)nth;
  pfor_t *p = arg;
  for (;;) {
    const int c = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
    if ((long)c * p->chunk >= p->n) break;
    const int i0 = c * p->chunk, i1 = i0 + p->chunk < p->n ? i0 + p->chunk : p->n;
    p->fn(p->ctx, ith, i0, i1);
  }
}

void pool_for(range_fn fn, void *ctx, int n, int chunk, int parallel) {
  if (n <= 0) return;
  if (chunk < 1) chunk = 1;
  if (!parallel || pool_threads() <= 1 || n <= chunk) {
    fn(ctx, 0, 0, n);
    return;
  }
  pfor_t p = {.fn = fn, .ctx = ctx, .n = n, .chunk = chunk};
  atomic_init(&p.next, 0);
  pool_run(pfor_worker, &p);
}
