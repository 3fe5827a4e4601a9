// Weight memory helpers (memory.c).
#pragma once
#include <stddef.h>

/** madvise(MADV_HUGEPAGE) on the 2 MiB pages inside [p, p + len) (Linux); returns the offset of the first one, -1 if none. */
long advise_huge_pages(void *p, size_t len);
/** Sum of a buffer as 64-bit words, read by all pool threads: a memory read bandwidth probe. */
double memread_run(const void *p, size_t bytes);
/** memcpy(dst, src, bytes) on the pool's threads, 256 KiB a piece (the ranges must not overlap). */
void copy_run(void *dst, const void *src, size_t bytes);
