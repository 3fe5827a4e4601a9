// CRC-32C (Castagnoli) of expert records and dense tensors (crc32c.c).
#pragma once
#include <stddef.h>
#include <stdint.h>

/** CRC-32C of n bytes at p, continuing from `crc` (0 to start; a previous result to go on over following bytes). */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);
/** The same on the portable slicing-by-8 path, whatever the CPU has (tests hold the hardware path to it). */
uint32_t crc32c_portable(uint32_t crc, const void *p, size_t n);
/** Which path crc32c() takes on this CPU: "sse4.2", "armv8-crc" or "slicing-by-8". */
const char *crc32c_impl(void);
