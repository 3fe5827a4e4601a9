// A persistent thread pool: created once, the calling thread is worker 0, idle workers spin briefly then block.
// Runs are work-pulling: fn takes its work from a shared counter, so it must be safe to call from any subset of
// the threads, any number of times. A worker that wakes late (sleeping, or preempted by another process) finds
// no work left instead of stalling the run; the caller waits only for workers that actually joined.
#pragma once

/** A spin-wait's pause (eases the sibling hyperthread and the memory bus). */
#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

typedef void (*pool_fn)(void *arg, int ith, int nth);

/** Use n threads in total (the caller included); starts or stops workers only when n changes. Returns n. */
int pool_set_threads(int n);
int pool_threads(void);
/** How long an idle worker (or the caller waiting for stragglers) spins before it blocks, in microseconds. */
void pool_set_spin_us(int us);
/** Run fn(arg, ith, nth) on the caller (ith 0) and on every worker that joins in time; returns when all are done. */
void pool_run(pool_fn fn, void *arg);
/** Begin fn's run on the workers and return at once: this thread may do other work, then must pool_join() it (its
 *  share, the wait for the workers, then finish(finish_arg)). Until then other threads' runs wait; this thread's
 *  next run (or begin) joins it first. Returns the run's ticket. */
unsigned pool_begin(pool_fn fn, void *arg, void (*finish)(void *), void *finish_arg);
/** Join the run this thread began with `ticket`: 1, or 0 where it was joined already (or another thread's). */
int pool_join(unsigned ticket);
/** Join the run this thread began, if any. Call before taking a lock another thread may hold while it waits for the
 *  pool (matmul.c's mm_mu): else that thread waits on this one's run, and this one on its lock. */
void pool_join_own(void);
/** A run is near: sleeping workers wake now and spin for it (for `us`, or spin_us if longer) instead of the run
 *  waiting for their wake-ups. */
void pool_poke(int us);
typedef void (*range_fn)(void *ctx, int ith, int i0, int i1);
/** fn(ctx, ith, i0, i1) over [0, n) in chunks of `chunk` taken from a shared counter: on the pool when `parallel`
 *  and there is more than one chunk, else on the caller as one range. */
void pool_for(range_fn fn, void *ctx, int n, int chunk, int parallel);
/** Stop and join the workers (the next pool_run runs on the caller alone until pool_set_threads). */
void pool_shutdown(void);
