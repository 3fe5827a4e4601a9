import { test } from "node:test";
import assert from "node:assert/strict";
import { F16_TO_F32, bf16ToF32, f16ToF32, f32Bits, f32FromBits, f32ToBf16, f32ToF16, roundToF16 } from "../../src/util/f16.js";
import { rng } from "./data.js";

const hex = (h: number) => "0x" + h.toString(16).padStart(4, "0");

// Independent reference: the value of f16 bit pattern h from the IEEE binary16 definition.
function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 31) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// Independent reference: the f16 value nearest to x (round half to even), by f64 arithmetic on the value.
function nearestF16(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a === 0) return x; // keeps -0
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  if (e < -14) e = -14; // subnormal range: fixed quantum 2^-24
  const ulp = 2 ** (e - 10);
  const m = a / ulp; // exact (power-of-two scaling)
  let r = Math.floor(m);
  const frac = m - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r++;
  const v = r * ulp;
  // Largest finite f16 is 65504; halfway to the next binade step (65520) and above round to infinity.
  return Math.sign(x) * (v > 65504 ? Infinity : v);
}

test("f16: known bit patterns", () => {
  const cases: Array<[number, number]> = [
    [1.0, 0x3c00],
    [-2.0, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite
    [65519.99, 0x7bff], // below the halfway point to 65536
    [65520, 0x7c00], // halfway: ties to even -> overflow to inf
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and 2^-24 -> even (0)
    [2 ** -25 * 1.0001, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 quanta -> 2
    [0, 0x0000],
    [-0, 0x8000],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10 -> even mantissa (0)
    [1 + 3 * 2 ** -11, 0x3c02], // tie between mantissa 1 and 2 -> 2
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
  ];
  for (const [x, h] of cases) assert.equal(hex(f32ToF16(x)), hex(h), `f32ToF16(${x})`);
  assert.equal(f32ToF16(NaN), 0x7e00);
  assert.equal(f32ToF16(f32FromBits(0xffc00000)), 0xfe00); // negative NaN keeps its sign
  assert.equal(f32ToF16(f32FromBits(0x7f800001)), 0x7e00); // signalling NaN -> quiet
});

test("f16 -> f32: all 65536 patterns match the IEEE binary16 definition", () => {
  for (let h = 0; h < 65536; h++) {
    const want = f16Value(h);
    const got = f16ToF32(h);
    if (Number.isNaN(want)) {
      assert.ok(Number.isNaN(got), hex(h));
      continue;
    }
    assert.ok(Object.is(got, want), `${hex(h)}: got ${got}, want ${want}`);
    assert.equal(F16_TO_F32[h], got);
  }
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0x7bff), 65504);
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(f16ToF32(0x7c00), Infinity);
  assert.ok(Object.is(f16ToF32(0x8000), -0));
});

test("f16: every finite pattern round-trips, NaNs stay NaN", () => {
  for (let h = 0; h < 65536; h++) {
    const v = f16ToF32(h);
    if (Number.isNaN(v)) assert.ok(Number.isNaN(f16ToF32(f32ToF16(v))));
    else assert.equal(hex(f32ToF16(v)), hex(h));
  }
});

test("f16: random f32 values round to the nearest f16, ties to even", () => {
  const u = rng(99);
  const check = (x: number) => {
    const want = nearestF16(x);
    const got = roundToF16(x);
    assert.ok(Object.is(got, want), `x=${x} (bits ${f32Bits(x).toString(16)}): got ${got}, want ${want}`);
  };
  for (let i = 0; i < 100000; i++) {
    // Exponents around the whole f16 range (subnormals, normals, overflow), random mantissa and sign.
    const exp = 100 + Math.floor(u() * 50); // 2^-27 .. 2^22
    const bits = ((u() < 0.5 ? 0x80000000 : 0) | (exp << 23) | Math.floor(u() * 0x800000)) >>> 0;
    check(f32FromBits(bits));
  }
  // Exact halfway points between neighbouring f16 values (ties), across binades and subnormals.
  for (let h = 0; h < 0x7bff; h += 7) {
    const lo = f16ToF32(h);
    const hi = f16ToF32(h + 1);
    const mid = (lo + hi) / 2; // exact in f32 (one more mantissa bit)
    assert.equal(Math.fround(mid), mid);
    const even = (h & 1) === 0 ? h : h + 1;
    assert.equal(hex(f32ToF16(mid)), hex(even), `tie ${mid}`);
    assert.equal(hex(f32ToF16(-mid)), hex(even | 0x8000), `tie ${-mid}`);
  }
});

test("bf16: known bit patterns, ties to even, NaN forced quiet", () => {
  const fromBits = (b: number) => f32FromBits(b);
  const cases: Array<[number, number]> = [
    [1.0, 0x3f80],
    [-1.0, 0xbf80],
    [0, 0x0000],
    [-0, 0x8000],
    [Infinity, 0x7f80],
    [-Infinity, 0xff80],
    [fromBits(0x3f808000), 0x3f80], // exactly halfway between 0x3f80 and 0x3f81 -> even
    [fromBits(0x3f818000), 0x3f82], // halfway between 0x3f81 and 0x3f82 -> even
    [fromBits(0x3f808001), 0x3f81], // just above halfway
    [fromBits(0x3f807fff), 0x3f80], // just below halfway
    [fromBits(0x7f7fffff), 0x7f80], // largest f32 rounds up to inf
    [fromBits(0x00000001), 0x0000], // smallest f32 subnormal rounds to 0
    [fromBits(0x00018000), 0x0002], // subnormal tie -> even
    [3.140625, 0x4049], // exactly representable
  ];
  for (const [x, h] of cases) assert.equal(hex(f32ToBf16(x)), hex(h), `f32ToBf16(${x})`);
  assert.equal(hex(f32ToBf16(fromBits(0x7f800001))), "0x7fc0"); // signalling NaN -> top half | 0x40
  assert.equal(hex(f32ToBf16(fromBits(0xffc12345))), "0xffc1");
  assert.equal(bf16ToF32(0x3f80), 1);
  assert.equal(bf16ToF32(0xc049), -3.140625);
});

test("bf16: every finite pattern round-trips; random values round to nearest", () => {
  for (let h = 0; h < 65536; h++) {
    const v = bf16ToF32(h);
    const e = (h >> 7) & 0xff;
    if (e === 0xff && (h & 0x7f) !== 0) {
      assert.ok(Number.isNaN(v), hex(h));
      continue;
    }
    assert.equal(f32Bits(v), (h << 16) >>> 0);
    assert.equal(f32ToBf16(v), h);
  }
  const u = rng(5);
  for (let i = 0; i < 100000; i++) {
    const bits = Math.floor(u() * 0x7f800000);
    const x = f32FromBits(bits);
    const lo = bf16ToF32(bits >>> 16);
    const hiBf = bf16ToF32((bits >>> 16) + 1);
    const hi = hiBf === Infinity ? 2 ** 128 : hiBf; // next step above the largest finite bf16 (rounds to inf)
    const got = bf16ToF32(f32ToBf16(x));
    const dl = x - lo;
    const dh = hi - x;
    const want = dl < dh ? lo : dh < dl ? hiBf : ((bits >>> 16) & 1) === 0 ? lo : hiBf;
    assert.equal(got, want, `bits ${bits.toString(16)}`);
  }
});
