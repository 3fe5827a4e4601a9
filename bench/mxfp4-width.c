// Paired kernel timing: the MXFP4 x Q8_0 dots of the avx512 level on 256-bit vectors (as shipped) against the same
// sums on 512-bit vectors (two blocks a vector), one thread, one process, ABBA rounds, same weights and activations.
// Usage: mxfp4-width K N ROUNDS (N rows of K values; N x K large: a matvec streaming from DRAM, small: from cache).
// Built with native/src's kernel files by hand: cc -O3 -std=gnu11 bench/mxfp4-width.c native/src/{mxfp4,float}.c -lm
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../native/src/k_quants_lo.h"

float dot_mxfp4_avx512(int n, const void *vw, const void *vx);
float dot_mxfp4_avx512w(int n, const void *vw, const void *vx);
void dot4_mxfp4_avx512(int n, const void *vw, const void *vx, size_t xstride, float *out, size_t ostride);
void dot4_mxfp4_avx512w(int n, const void *vw, const void *vx, size_t xstride, float *out, size_t ostride);

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void) { rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17; return rng; }
static int cmp(const void *a, const void *b) { return *(const double *)a < *(const double *)b ? -1 : *(const double *)a > *(const double *)b; }

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: %s K N ROUNDS\n", argv[0]); return 2; }
  const int K = atoi(argv[1]), N = atoi(argv[2]), R = atoi(argv[3]), nb = K / 32;
  const size_t rb = (size_t)nb * 17, xb = (size_t)nb * 34;
  uint8_t *w = malloc(rb * N), *x = malloc(xb * 4);
  float *o = malloc(sizeof(float) * N * 4), *o2 = malloc(sizeof(float) * N * 4);
  for (size_t i = 0; i < rb * N; i++) w[i] = (uint8_t)next();
  for (size_t b = 0; b < (size_t)nb * N; b++) w[b * 17] = 118 + next() % 16; // E8M0 scales near 2^-10 .. 2^5
  for (size_t i = 0; i < xb * 4; i++) x[i] = (uint8_t)next();
  for (int b = 0; b < nb * 4; b++) x[b * 34] = 0x00, x[b * 34 + 1] = 0x1c + (next() & 1) * 0x80; // d = +-2^-8
  typedef struct { const char *name; int four; } variant;
  double t[2][2][64];
  double maxrel = 0;
  for (int r = 0; r < R && r < 64; r++) {
    for (int four = 0; four < 2; four++) {
      for (int k = 0; k < 4; k++) {
        const int wide = k == 1 || k == 2; // ABBA
        const double t0 = now();
        for (int row = 0; row < N; row++) {
          const uint8_t *wr = w + rb * row;
          if (four) (wide ? dot4_mxfp4_avx512w : dot4_mxfp4_avx512)(K, wr, x, xb, (wide ? o2 : o) + row, N);
          else (wide ? o2 : o)[row] = (wide ? dot_mxfp4_avx512w : dot_mxfp4_avx512)(K, wr, x);
        }
        const double dt = now() - t0;
        if (k < 2) t[four][wide][r] = dt;
        else t[four][wide][r] = fmin(t[four][wide][r], dt);
      }
      for (int i = 0; i < N * (four ? 4 : 1); i++) {
        const double rel = fabs(o[i] - o2[i]) / (fabs(o[i]) + 1e-3);
        if (rel > maxrel) maxrel = rel;
      }
    }
  }
  // dot and dot4 of the 512-bit kernel agree bit for bit on row 0's first token.
  float a = dot_mxfp4_avx512w(K, w, x), b4[4];
  dot4_mxfp4_avx512w(K, w, x, xb, b4, 1);
  const double gb = (double)rb * N / 1e9;
  for (int four = 0; four < 2; four++) {
    double *t256 = t[four][0], *t512 = t[four][1], ratio[64];
    for (int r = 0; r < R; r++) ratio[r] = t256[r] / t512[r];
    qsort(t256, R, sizeof(double), cmp), qsort(t512, R, sizeof(double), cmp), qsort(ratio, R, sizeof(double), cmp);
    printf("MXFP4 %s K %d N %d (%.1f MB): 256-bit median %.2f GB/s (best %.2f), 512-bit median %.2f GB/s (best %.2f); 256/512 time per pair median %.3f\n",
           four ? "dot4" : "dot ", K, N, gb * 1e3, gb / t256[R / 2], gb / t256[0], gb / t512[R / 2], gb / t512[0], ratio[R / 2]);
  }
  printf("max relative difference 256 vs 512: %.2e; 512 dot == dot4 token 0: %s\n", maxrel, memcmp(&a, &b4[0], 4) == 0 ? "yes" : "NO");
  return 0;
}
