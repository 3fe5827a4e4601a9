// What the WebGPU readers of the grid i-quants (IQ2_XXS, IQ3_XXS) share: a grid as a WGSL module constant of u32
// words (its bytes little-endian, as ggml's uint64/uint32 entries), and ksigns_iq2xs computed instead of looked up.

/** WGSL `const name: array<u32, N>` holding the grid's bytes 4 to a word. */
export function gridConst(name: string, grid: Uint8Array): string {
  const words = Array.from({ length: grid.length / 4 }, (_, i) => `0x${((grid[4 * i] | (grid[4 * i + 1] << 8) | (grid[4 * i + 2] << 16) | (grid[4 * i + 3] << 24)) >>> 0).toString(16)}u`);
  return `const ${name}: array<u32, ${words.length}> = array<u32, ${words.length}>(${words.join(", ")});`;
}

/**
 * ksigns_iq2xs[s] (s: 7 bits) = s with bit 7 making the count of set bits even; sgn4(g, m): the 4 bytes of grid word
 * g as values, negated where bits 0-3 of m are set.
 */
export const IQ_SIGNS = /* wgsl */ `
fn ksigns(s: u32) -> u32 { return s | ((countOneBits(s) & 1u) << 7u); }
fn sgn4(g: u32, m: u32) -> vec4f {
  let v = vec4f(f32(g & 0xffu), f32((g >> 8u) & 0xffu), f32((g >> 16u) & 0xffu), f32(g >> 24u));
  return select(v, -v, vec4<bool>((m & 1u) != 0u, (m & 2u) != 0u, (m & 4u) != 0u, (m & 8u) != 0u));
}`;
