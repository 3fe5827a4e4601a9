// Shared helpers for the GGUF tests: temp paths, a seeded PRNG, rich metadata, a raw header builder.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GGMLType, meta, metaMap, planGGUF, tensorByteLength, type GGUFMetadata, type GGUFWriteTensor } from "../../src/format/gguf/index.js";
import { mulberry32 } from "../helpers/numeric.js";

/** A fresh temp directory and a cleanup for it. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "moestream-gguf-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic PRNG (mulberry32). */
export const prng = mulberry32;

export function randomBytes(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 256) | 0;
  return out;
}

/** One value of every metadata type, arrays of each, nested arrays, unicode. */
export function richMetadata(): GGUFMetadata {
  return metaMap({
    "general.architecture": meta.str("qwen3moe"),
    "general.name": meta.str("tëst ✓ 模型 🚀"),
    "t.u8": meta.u8(255),
    "t.i8": meta.i8(-128),
    "t.u16": meta.u16(65535),
    "t.i16": meta.i16(-32768),
    "t.u32": meta.u32(4294967295),
    "t.i32": meta.i32(-2147483648),
    "t.f32": meta.f32(Math.fround(1e-6)),
    "t.f64": meta.f64(Math.PI),
    "t.u64": meta.u64(18446744073709551615n),
    "t.i64": meta.i64(-9223372036854775808n),
    "t.bool.true": meta.bool(true),
    "t.bool.false": meta.bool(false),
    "t.str.empty": meta.str(""),
    "t.arr.u8": meta.u8Array([0, 1, 255]),
    "t.arr.i8": meta.i8Array([-128, 0, 127]),
    "t.arr.u16": meta.u16Array([0, 65535]),
    "t.arr.i16": meta.i16Array([-32768, 32767]),
    "t.arr.u32": meta.u32Array([0, 4294967295]),
    "t.arr.i32": meta.i32Array([-1, 2, -3]),
    "t.arr.f32": meta.f32Array([0.5, -0, Math.fround(3.14159), Infinity]),
    "t.arr.f64": meta.f64Array([Math.E, -1e300, NaN]),
    "t.arr.u64": meta.u64Array([0n, 1n << 63n]),
    "t.arr.i64": meta.i64Array([-5n, 5n]),
    "t.arr.bool": meta.boolArray([true, false, true]),
    "t.arr.str": meta.strArray(["a", "", "ü", "\u0000nul"]),
    "t.arr.empty": meta.i32Array([]),
    "t.arr.nested": meta.arrayArray([meta.i32Array([1, 2]), meta.strArray(["x"]), meta.arrayArray([meta.f32Array([1.5])]), meta.u8Array([])]),
  });
}

/** A few tensors of different types, with deterministic bytes. */
export function sampleTensors(seed = 1): (GGUFWriteTensor & { data: Uint8Array })[] {
  const specs: { name: string; shape: number[]; type: number }[] = [
    { name: "token_embd.weight", shape: [64, 8], type: GGMLType.F16 },
    { name: "blk.0.attn_q.weight", shape: [64, 4], type: GGMLType.Q8_0 },
    { name: "blk.0.ffn_down_exps.weight", shape: [256, 2, 3], type: GGMLType.Q4_K },
    { name: "blk.0.ffn_gate_exps.weight", shape: [256, 2, 3], type: GGMLType.Q6_K },
    { name: "output_norm.weight", shape: [64], type: GGMLType.F32 },
    { name: "blk.0.bias", shape: [32, 3], type: GGMLType.BF16 },
  ];
  return specs.map((s, i) => ({ ...s, data: randomBytes(tensorByteLength(s.type, s.shape), seed * 100 + i) }));
}

/** A whole GGUF file in memory (the writer's layout, without touching disk). */
export function buildFile(opts: { metadata: GGUFMetadata; tensors: (GGUFWriteTensor & { data: Uint8Array })[]; alignment?: number; version?: 2 | 3 }): Uint8Array {
  const plan = planGGUF(opts);
  const out = new Uint8Array(plan.fileSize);
  out.set(plan.header, 0);
  plan.tensors.forEach((t, i) => out.set(opts.tensors[i].data, t.offset));
  return out;
}

/** Hand-built headers, for files our writer refuses to produce. */
export class RawGGUF {
  private parts: number[] = [];
  get length(): number {
    return this.parts.length;
  }
  bytes(...b: number[]): this {
    this.parts.push(...b);
    return this;
  }
  u32(v: number): this {
    return this.bytes(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }
  u64(v: number | bigint): this {
    const b = BigInt.asUintN(64, BigInt(v));
    for (let i = 0n; i < 8n; i++) this.parts.push(Number((b >> (8n * i)) & 0xffn));
    return this;
  }
  str(s: string | Uint8Array): this {
    const b = typeof s === "string" ? new TextEncoder().encode(s) : s;
    this.u64(b.length);
    return this.bytes(...b);
  }
  /** magic, version, tensor count, kv count */
  header(nTensors: number | bigint, nKv: number | bigint, version = 3): this {
    return this.bytes(0x47, 0x47, 0x55, 0x46).u32(version).u64(nTensors).u64(nKv);
  }
  kvU32(key: string, v: number): this {
    return this.str(key).u32(4).u32(v);
  }
  tensor(name: string, shape: (number | bigint)[], type: number, relOffset: number | bigint): this {
    this.str(name).u32(shape.length);
    for (const d of shape) this.u64(d);
    return this.u32(type).u64(relOffset);
  }
  /** Pad to `alignment` and append `dataBytes` zero bytes of tensor data. */
  data(dataBytes: number, alignment = 32): this {
    while (this.parts.length % alignment !== 0) this.parts.push(0);
    for (let i = 0; i < dataBytes; i++) this.parts.push(0);
    return this;
  }
  build(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}
