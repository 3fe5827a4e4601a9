// The signed-grid step every iq2/iq3 decoder shares: out[y + j] = +-fround(db * grid[g + j]), sign bit j of `signs`
// (ggml's `db * grid[j] * (signs & kmask_iq2xs[j] ? -1.f : 1.f)`; the product by +-1 is exact).
const fr = Math.fround;

/** 8 values from one 8-byte grid entry at byte g. */
export function signed8(out: Float32Array, y: number, grid: Uint8Array, g: number, db: number, signs: number): void {
  for (let j = 0; j < 8; j++) {
    const v = fr(db * grid[g + j]);
    out[y + j] = signs & (1 << j) ? -v : v;
  }
}

/** 8 values from two 4-byte grid entries at bytes g1 and g2 (sign bits 0-3, then 4-7). */
export function signed4x2(out: Float32Array, y: number, grid: Uint8Array, g1: number, g2: number, db: number, signs: number): void {
  for (let j = 0; j < 4; j++) {
    const v1 = fr(db * grid[g1 + j]);
    const v2 = fr(db * grid[g2 + j]);
    out[y + j] = signs & (1 << j) ? -v1 : v1;
    out[y + j + 4] = signs & (16 << j) ? -v2 : v2;
  }
}
