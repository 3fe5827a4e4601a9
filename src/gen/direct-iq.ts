// Random i-quant weights sampled in the quantised domain: random grid indices, signs and sub-block scales (any
// bytes are a valid i-quant block), with the f16 super-block scale set so the decoded values have the asked-for
// standard deviation and a random sign per block (mean 0). moestream cannot quantise to the i-quants (ggml needs
// an importance matrix), so this is how the generator writes IQ-typed expert tensors.
import { f32ToF16 } from "../util/f16.js";
import { IQ1_M, IQ_FORMATS, type QuantFormat } from "../quant/index.js";
import { Stream } from "./random.js";

/** Random bytes: successive 32-bit outputs of the stream, each stored little-endian. */
export function randomBytes(s: Stream, out: Uint8Array): void {
  const n4 = out.length & ~3;
  if (LITTLE_ENDIAN && out.byteOffset % 4 === 0) {
    s.fillU32(new Uint32Array(out.buffer, out.byteOffset, n4 / 4));
  } else {
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let i = 0; i < n4; i += 4) view.setUint32(i, s.nextU32(), true);
  }
  for (let i = n4; i < out.length; i++) out[i] = s.nextU32() & 255;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Write the block's f16 scale: bytes 0..1, except IQ1_M, which keeps it in the top nibbles of its 4 u16 scale words. */
function setScale(f: QuantFormat, out: Uint8Array, o: number, d: number): void {
  const h = f32ToF16(d);
  if (f === IQ1_M) {
    for (let k = 0; k < 4; k++) out[o + 49 + 2 * k] = (out[o + 49 + 2 * k] & 0x0f) | (((h >> (4 * k)) & 15) << 4);
  } else {
    out[o] = h & 255;
    out[o + 1] = h >> 8;
  }
}

const unit = new Map<number, number>();

/** RMS of decoded random blocks with scale 1 (fixed by the tables, so computed once from a fixed-seed sample). */
function unitRms(f: QuantFormat): number {
  let r = unit.get(f.type);
  if (r === undefined) {
    const nb = 4096 / f.blockSize * 16, bytes = new Uint8Array(nb * f.bytesPerBlock), y = new Float32Array(nb * f.blockSize);
    randomBytes(new Stream(1, `iq-unit-${f.name}`), bytes);
    for (let b = 0; b < nb; b++) setScale(f, bytes, b * f.bytesPerBlock, 1);
    f.dequantRow(bytes, y, y.length);
    let ss = 0;
    for (const v of y) ss += v * v;
    unit.set(f.type, (r = Math.sqrt(ss / y.length)));
  }
  return r;
}

export function hasDirectIq(type: number): boolean {
  return IQ_FORMATS.some((f) => f.type === type);
}

/** Encoded random matrix of `nValues` values (whole blocks) of i-quant `type` with decoded std `std`. */
export function directFillIq(type: number, nValues: number, std: number, s: Stream): Uint8Array {
  const f = IQ_FORMATS.find((q) => q.type === type);
  if (!f) throw new Error(`no direct i-quant sampler for ggml type ${type}`);
  const nb = nValues / f.blockSize, out = new Uint8Array(nb * f.bytesPerBlock);
  randomBytes(s, out);
  const d = std / unitRms(f);
  for (let b = 0; b < nb; b++) setScale(f, out, b * f.bytesPerBlock, s.nextU32() & 1 ? -d : d);
  return out;
}
