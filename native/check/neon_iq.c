// Every NEON i-quant dot (and MXFP4's) equals the scalar C bit for bit on random blocks (scripts/check-neon.sh runs it under
// qemu-aarch64; not part of CI, which runs on x86).
#include <stdio.h>
#include <stdlib.h>
#include "k_quants_lo.h"
#define T(name) float dot_##name##_scalar(int, const void *, const void *); float dot_##name##_neon(int, const void *, const void *);
T(iq2_xxs) T(iq2_xs) T(iq2_s) T(iq3_xxs) T(iq3_s) T(iq1_s) T(iq1_m) T(iq4_xs) T(iq4_nl) T(mxfp4)
#undef T
static unsigned s = 12345;
static unsigned rnd(void) { s = s * 1103515245u + 12345u; return s >> 8; }
int main(void) {
  struct { const char *name; int type, blk; float (*sc)(int, const void *, const void *), (*ne)(int, const void *, const void *); } t[] = {
#define E(n, ty, b) {#n, ty, b, dot_##n##_scalar, dot_##n##_neon}
    E(iq2_xxs, GGML_IQ2_XXS, 256), E(iq2_xs, GGML_IQ2_XS, 256), E(iq2_s, GGML_IQ2_S, 256), E(iq3_xxs, GGML_IQ3_XXS, 256),
    E(iq3_s, GGML_IQ3_S, 256), E(iq1_s, GGML_IQ1_S, 256), E(iq1_m, GGML_IQ1_M, 256), E(iq4_xs, GGML_IQ4_XS, 256), E(iq4_nl, GGML_IQ4_NL, 32), E(mxfp4, GGML_MXFP4, 32)};
  const int K = 4096, rows = 200;
  int bad = 0;
  for (unsigned k = 0; k < sizeof t / sizeof t[0]; k++) {
    const size_t rb = t[k].type == GGML_MXFP4 ? mxfp4_row_bytes(K) : iq_row_bytes(t[k].type, K);
    uint8_t *w = malloc(rb);
    const int q8k = t[k].blk == 256;
    const size_t xb = q8k ? (size_t)(K / 256) * sizeof(block_q8_K) : (size_t)(K / 32) * sizeof(block_q8_0);
    uint8_t *x = malloc(xb);
    int same = 0;
    for (int r = 0; r < rows; r++) {
      for (size_t i = 0; i < rb; i++) w[i] = rnd();
      const size_t bb = rb / (K / t[k].blk);
      for (int b = 0; b < K / t[k].blk; b++) { // f16 scale ~0.01 (IQ1_M: top nibbles of its scale words)
        uint16_t h = 0x2000 | (rnd() & 0x3ff);
        uint8_t *o = w + b * bb;
        if (t[k].type == GGML_MXFP4) o[0] = 120 + rnd() % 16; // E8M0 exponent: scale 2^-8 .. 2^7
        else if (t[k].type == GGML_IQ1_M) for (int j = 0; j < 4; j++) o[49 + 2 * j] = (o[49 + 2 * j] & 15) | (((h >> 4 * j) & 15) << 4);
        else o[0] = h & 255, o[1] = h >> 8;
      }
      if (q8k) {
        block_q8_K *y = (block_q8_K *)x;
        for (int b = 0; b < K / 256; b++) { y[b].d = 0.01f + (rnd() % 100) * 1e-4f; for (int j = 0; j < 256; j++) y[b].qs[j] = (int8_t)((int)(rnd() % 255) - 127); }
      } else {
        block_q8_0 *y = (block_q8_0 *)x;
        for (int b = 0; b < K / 32; b++) { y[b].d = 0x2000 | (rnd() & 0x3ff); for (int j = 0; j < 32; j++) y[b].qs[j] = (int8_t)((int)(rnd() % 255) - 127); }
      }
      const float a = t[k].sc(K, w, x), c = t[k].ne(K, w, x);
      same += a == c;
      if (a != c && bad++ < 5) printf("%s row %d: scalar %.9g neon %.9g\n", t[k].name, r, a, c);
    }
    printf("%-8s %d/%d rows bit-identical\n", t[k].name, same, rows);
  }
  return bad != 0;
}
