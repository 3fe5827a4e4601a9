// Weight memory helpers: transparent huge pages for the buffers the kernels stream, and a read-bandwidth probe.
#include "memory.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "pool.h"

long advise_huge_pages(void *p, size_t len) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const uintptr_t huge = (uintptr_t)2 << 20, b = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + len) & ~(huge - 1);
  if (e <= b || madvise((void *)b, e - b, MADV_HUGEPAGE) != 0) return -1;
  return (long)(b - (uintptr_t)p);
#else
  (void)p, (void)len;
  return -1;
#endif
}

#define MR_CHUNK (4u << 20)

typedef struct {
  const uint8_t *p;
  size_t bytes;
  atomic_size_t next;
  _Atomic uint64_t sum;
} mr_task;

static void mr_worker(void *arg, int ith, int nth) {
  (void)ith, (void)nth;
  mr_task *t = arg;
  for (;;) {
    const size_t b = atomic_fetch_add(&t->next, MR_CHUNK);
    if (b >= t->bytes) break;
    const size_t e = b + MR_CHUNK < t->bytes ? b + MR_CHUNK : t->bytes;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = b; i + 32 <= e; i += 32) { // plain C: the compiler vectorises it; memory is the limit
      uint64_t v[4];
      memcpy(v, t->p + i, 32);
      s0 += v[0], s1 += v[1], s2 += v[2], s3 += v[3];
    }
    atomic_fetch_add(&t->sum, s0 + s1 + s2 + s3);
  }
}

double memread_run(const void *p, size_t bytes) {
  mr_task t = {.p = p, .bytes = bytes};
  atomic_init(&t.next, 0);
  atomic_init(&t.sum, 0);
  pool_run(mr_worker, &t);
  return (double)atomic_load(&t.sum);
}

// copy_run: memcpy in 256 KiB pieces taken by every pool thread. One thread writes ~10 GB/s into the mapped staging
// memory a GPU upload goes through (H100 host, session 15); the pool's threads together move several times that.
typedef struct {
  uint8_t *dst;
  const uint8_t *src;
  size_t bytes;
} cp_task;

#define CP_PIECE ((size_t)256 << 10)

static void cp_range(void *ctx, int ith, int i0, int i1) {
  (void)ith;
  const cp_task *t = ctx;
  const size_t a = (size_t)i0 * CP_PIECE, b = (size_t)i1 * CP_PIECE < t->bytes ? (size_t)i1 * CP_PIECE : t->bytes;
  memcpy(t->dst + a, t->src + a, b - a);
}

void copy_run(void *dst, const void *src, size_t bytes) {
  cp_task t = {.dst = dst, .src = src, .bytes = bytes};
  const size_t pieces = (bytes + CP_PIECE - 1) / CP_PIECE;
  pool_for(cp_range, &t, (int)pieces, 1, pieces > 1);
}
