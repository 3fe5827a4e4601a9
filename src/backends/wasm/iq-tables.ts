// The i-quant tables the wasm kernels read (wasm/assembly/kernels.ts, "i-quant tables"), MXFP4's value table too,
// written into each wasm memory before its first use: ggml's own tables as src/quant/iq-tables.ts generates them
// from ggml-common.h (and src/quant/mxfp4.ts holds), so the wasm module carries no copy of its own.
import { IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, KSIGNS_IQ2XS, KVALUES_IQ4NL } from "../../quant/iq-tables.js";
import { KVALUES_MXFP4 } from "../../quant/mxfp4.js";

/** ksigns_iq2xs as byte masks: entry i holds 8 bytes, 0xff where bit j of ksigns[i] negates value j. */
function signMasks(): Uint8Array {
  const out = new Uint8Array(128 * 8);
  KSIGNS_IQ2XS.forEach((s, i) => {
    for (let j = 0; j < 8; j++) out[8 * i + j] = s & (1 << j) ? 0xff : 0;
  });
  return out;
}

/** Table id (the kernels' iqTable(id)) -> bytes, in id order; iqTable(TABLES.length) is where they end. */
const bytesOf = (a: Int8Array) => new Uint8Array(a.buffer, a.byteOffset, a.length);
const TABLES: readonly Uint8Array[] = [
  bytesOf(KVALUES_IQ4NL), signMasks(), IQ2XXS_GRID, IQ3XXS_GRID, IQ2XS_GRID, IQ2S_GRID, IQ3S_GRID, bytesOf(IQ1S_GRID), bytesOf(KVALUES_MXFP4),
];

/**
 * Writes the tables where `iqTable` says (the kernels' export) through `bytes(ptr, n)`, after `reach(end)` made the
 * memory that large; returns the first byte past them.
 */
export function writeIqTables(iqTable: (id: number) => number, reach: (end: number) => void, bytes: (ptr: number, n: number) => Uint8Array): number {
  const end = iqTable(TABLES.length);
  reach(end);
  TABLES.forEach((t, id) => {
    const at = iqTable(id);
    if (iqTable(id + 1) - at !== t.length) throw new Error(`wasm kernels: i-quant table ${id} has room for ${iqTable(id + 1) - at} bytes, not ${t.length}`);
    bytes(at, t.length).set(t);
  });
  return end;
}
