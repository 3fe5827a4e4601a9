// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as the pack manifest stores per expert record and
// dense tensor. Where the CPU has CRC instructions (SSE4.2 crc32, ARMv8 crc32c) three streams run interleaved:
// the instruction takes 3 cycles but issues one per cycle, so one stream would use a third of it. The streams'
// registers are joined by tables that advance a register over LONG (or SHORT) zero bytes, as zlib's
// crc32_combine does with matrices. Elsewhere: slicing-by-8 over eight 256-entry tables.
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82f63b78u
#define LONG 8192 // bytes per stream in the main loop: 24 KiB a round, joined by two table shifts
#define SHORT 256 // the tail's rounds

static uint32_t T8[8][256];         // slicing-by-8: T8[k][b] = b's register after k more zero bytes
static uint32_t shift_long[4][256]; // register -> register after LONG zero bytes, one table per input byte
static uint32_t shift_short[4][256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/** Tables for the linear map "advance the register over n zero bytes": the image of each bit, then of each byte value. */
static void zeros_table(uint32_t out[4][256], size_t n) {
  uint32_t bit[32];
  for (int k = 0; k < 32; k++) {
    uint32_t c = 1u << k;
    for (size_t i = 0; i < n; i++) c = (c >> 8) ^ T8[0][c & 0xff];
    bit[k] = c;
  }
  for (int j = 0; j < 4; j++)
    for (int b = 0; b < 256; b++) {
      uint32_t c = 0;
      for (int k = 0; k < 8; k++)
        if (b >> k & 1) c ^= bit[8 * j + k];
      out[j][b] = c;
    }
}

static void make_tables(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
    T8[0][n] = c;
  }
  for (int n = 0; n < 256; n++)
    for (int k = 1; k < 8; k++) T8[k][n] = (T8[k - 1][n] >> 8) ^ T8[0][T8[k - 1][n] & 0xff];
  zeros_table(shift_long, LONG);
  zeros_table(shift_short, SHORT);
}

static inline uint32_t shift(uint32_t t[4][256], uint32_t c) {
  return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}

static inline uint64_t load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v; // little-endian hosts only (every platform the addon builds for)
}

/** The raw register (no pre/post inversion) after n bytes, slicing-by-8. */
static uint32_t raw_portable(uint32_t c, const uint8_t *p, size_t n) {
  for (; n >= 8; p += 8, n -= 8) {
    const uint64_t v = load64(p) ^ c;
    c = T8[7][v & 0xff] ^ T8[6][(v >> 8) & 0xff] ^ T8[5][(v >> 16) & 0xff] ^ T8[4][(v >> 24) & 0xff] ^
        T8[3][(v >> 32) & 0xff] ^ T8[2][(v >> 40) & 0xff] ^ T8[1][(v >> 48) & 0xff] ^ T8[0][v >> 56];
  }
  for (; n; n--) c = (c >> 8) ^ T8[0][(c ^ *p++) & 0xff];
  return c;
}

// One body for both instruction sets: CRC8 / CRC64 are the byte and 8-byte register updates.
#define RAW_HW(NAME, ATTR, CRC8, CRC64)                                                                         \
  ATTR static uint32_t NAME(uint32_t crc, const uint8_t *p, size_t n) {                                     \
    uint32_t c0 = crc;                                                                                      \
    for (; n && ((uintptr_t)p & 7); n--) c0 = CRC8(c0, *p++);                                               \
    for (size_t blk = LONG; blk >= SHORT; blk = blk == LONG ? SHORT : 0) {                                   \
      uint32_t(*t)[256] = blk == LONG ? shift_long : shift_short;                                           \
      for (; n >= 3 * blk; n -= 3 * blk, p += 3 * blk) {                                                    \
        uint32_t c1 = 0, c2 = 0;                                                                            \
        for (size_t i = 0; i < blk; i += 8) {                                                               \
          c0 = CRC64(c0, load64(p + i));                                                                    \
          c1 = CRC64(c1, load64(p + blk + i));                                                              \
          c2 = CRC64(c2, load64(p + 2 * blk + i));                                                          \
        }                                                                                                   \
        c0 = shift(t, c0) ^ c1;                                                                             \
        c0 = shift(t, c0) ^ c2;                                                                             \
      }                                                                                                     \
    }                                                                                                       \
    for (; n >= 8; n -= 8, p += 8) c0 = CRC64(c0, load64(p));                                               \
    for (; n; n--) c0 = CRC8(c0, *p++);                                                                     \
    return c0;                                                                                              \
  }

typedef uint32_t (*raw_fn)(uint32_t, const uint8_t *, size_t);

#if defined(__x86_64__)
#include <immintrin.h>
#define X86_CRC8(c, b) _mm_crc32_u8(c, b)
#define X86_CRC64(c, v) (uint32_t) _mm_crc32_u64(c, v)
RAW_HW(raw_sse42, __attribute__((target("sse4.2"))), X86_CRC8, X86_CRC64)
static int has_hw(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
static const raw_fn raw_hw = raw_sse42;
static const char *const hw_name = "sse4.2";
#elif defined(__aarch64__)
#include <arm_acle.h>
#if defined(__clang__)
#define ARM_CRC_TARGET __attribute__((target("crc")))
#else
#define ARM_CRC_TARGET __attribute__((target("+crc")))
#endif
#define ARM_CRC8(c, b) __crc32cb(c, b)
#define ARM_CRC64(c, v) __crc32cd(c, v)
RAW_HW(raw_armv8, ARM_CRC_TARGET, ARM_CRC8, ARM_CRC64)
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
static int has_hw(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
#else
static int has_hw(void) { return 1; } // Apple silicon and other ARMv8.1+ targets always have it
#endif
static const raw_fn raw_hw = raw_armv8;
static const char *const hw_name = "armv8-crc";
#else
static int has_hw(void) { return 0; }
static const raw_fn raw_hw = raw_portable;
static const char *const hw_name = "slicing-by-8";
#endif

static raw_fn raw_best = raw_portable;

static void init(void) {
  make_tables();
  if (has_hw()) raw_best = raw_hw;
}

uint32_t crc32c(uint32_t crc, const void *p, size_t n) {
  pthread_once(&tables_once, init);
  return ~raw_best(~crc, p, n);
}

uint32_t crc32c_portable(uint32_t crc, const void *p, size_t n) {
  pthread_once(&tables_once, init);
  return ~raw_portable(~crc, p, n);
}

const char *crc32c_impl(void) {
  pthread_once(&tables_once, init);
  return raw_best == raw_portable ? "slicing-by-8" : hw_name;
}
