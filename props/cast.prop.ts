// Casts f32 ↔ bf16/fp16 against an independent reference: rounding done in float64 arithmetic
// (x / spacing, round half even, × spacing), never the bit tricks of dsl/float.ts.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { fromBf16, fromFp16, toBf16, toFp16 } from '../runtime/codecs.ts';
import { anyF32, bitsOfF32, f32FromBits, prng } from './f32.ts';

const types = {
  bf16: { M: 7, minExp: -126, maxExp: 127, expBits: 8 },
  fp16: { M: 10, minExp: -14, maxExp: 15, expBits: 5 },
} as const;
type Name = keyof typeof types;
const to = { bf16: toBf16, fp16: toFp16 },
  from = { bf16: fromBf16, fp16: fromFp16 };

function roundHalfEven(q: number): number {
  const f = Math.floor(q),
    d = q - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** Exponent ⌊log2 a⌋ for a > 0, corrected so 2^e ≤ a < 2^(e+1) exactly. */
function exponentOf(a: number): number {
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  return e;
}

/** Reference value of a narrow bit pattern, by its fields. */
function refValue(t: Name, h: number): number {
  const { M, expBits, minExp } = types[t];
  const sign = h >> 15 ? -1 : 1,
    F = (h >> M) & ((1 << expBits) - 1),
    m = h & ((1 << M) - 1);
  if (F === (1 << expBits) - 1) return m ? NaN : sign * Infinity;
  return sign * (F === 0 ? m * 2 ** (minExp - M) : (1 + m / 2 ** M) * 2 ** (F + minExp - 1));
}

/**
 * Reference bits of the RNE cast of x. NaN payloads are not part of the semantics (V8 itself gives
 * 0x7fc00000 or 0xffc00000 for 0/0 depending on the tier; compiler/ir/semantics.ts), so any NaN casts
 * to the canonical quiet NaN: positive, top mantissa bit set.
 */
function refCast(t: Name, x: number): number {
  const { M, minExp, maxExp, expBits } = types[t];
  const signBit = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const expAll = ((1 << expBits) - 1) << M;
  if (x !== x) return expAll | (1 << (M - 1));
  const a = Math.abs(x);
  if (a === Infinity) return signBit | expAll;
  const spacing = 2 ** (Math.max(a === 0 ? minExp : exponentOf(a), minExp) - M);
  const v = roundHalfEven(a / spacing) * spacing;
  if (v >= 2 ** (maxExp + 1)) return signBit | expAll;
  if (v < 2 ** minExp) return signBit | (v / 2 ** (minExp - M)); // subnormal (or zero)
  const e = exponentOf(v);
  return signBit | ((e - minExp + 1) << M) | (v / 2 ** (e - M) - 2 ** M);
}

describe.each(['bf16', 'fp16'] as const)('%s casts', (t) => {
  test('all 2^16 narrow values decode to the reference value, bit for bit', () => {
    const h = new Uint16Array(65536).map((_, i) => i);
    const x = from[t](h);
    let bad = 0;
    for (let i = 0; i < 65536; i++) {
      const want = refValue(t, i);
      if (want !== want) {
        // NaN: sign and payload are kept, only widened. JS quiets a signalling NaN whenever an f32
        // becomes a number (the f32 → f64 conversion sets the quiet bit), so compare with it set.
        const w = t === 'bf16' ? i << 16 : ((i & 0x8000) << 16) | 0x7f800000 | ((i & 0x3ff) << 13);
        if ((bitsOfF32(x[i]!) | 0x400000) >>> 0 !== (w | 0x400000) >>> 0) bad++;
      } else if (!Object.is(x[i], want)) bad++;
    }
    expect(bad).toBe(0);
  });

  test('all 2^16 narrow values, and every tie between neighbours, cast back by the reference', () => {
    const h = new Uint16Array(65536).map((_, i) => i);
    const x = from[t](h);
    expect(Array.from(to[t](x)).filter((b, i) => b !== refCast(t, x[i]!)).length).toBe(0);
    // Ties: the f32 exactly halfway between consecutive finite narrow values (same sign).
    const mids: number[] = [];
    for (let i = 0; i < 65535; i++) {
      const a = refValue(t, i),
        b = refValue(t, i + 1);
      if (Number.isFinite(a) && Number.isFinite(b) && (i & 0x7fff) !== 0x7fff) {
        const m = Math.fround((a + b) / 2);
        if (m === (a + b) / 2) mids.push(m);
      }
    }
    const mx = Float32Array.from(mids);
    expect(mids.length).toBeGreaterThan(60000);
    expect(Array.from(to[t](mx)).filter((b, i) => b !== refCast(t, mx[i]!)).length).toBe(0);
  });

  test('10^6 random f32 (uniform over bit patterns) cast bit-identically to the reference', () => {
    const rand = prng(t === 'bf16' ? 11 : 12);
    const x = new Float32Array(1_000_000);
    const bits = new Uint32Array(x.buffer);
    for (let i = 0; i < x.length; i++) bits[i] = Math.floor(rand() * 2 ** 32);
    const h = to[t](x);
    let bad = 0;
    for (let i = 0; i < x.length; i++) if (h[i] !== refCast(t, x[i]!)) bad++;
    expect(bad).toBe(0);
    // And the decode of the cast is the reference value of those bits.
    const back = from[t](h);
    for (let i = 0; i < x.length; i++) {
      const want = refValue(t, h[i]!);
      if (want !== want ? back[i] === back[i] : !Object.is(back[i], want)) bad++;
    }
    expect(bad).toBe(0);
  });

  test('fast-check: any f32 (10^4 cases) casts like the reference; NaN stays NaN; overflow is ±Inf', () => {
    fc.assert(
      fc.property(anyF32(), (v) => {
        const x = Float32Array.of(v);
        const h = to[t](x)[0]!;
        expect(h).toBe(refCast(t, v));
        const back = from[t](Uint16Array.of(h))[0]!;
        if (v !== v) expect(back).toBeNaN();
        else if (Math.abs(v) >= (t === 'bf16' ? 3.3961775292304046e38 : 65520))
          expect(back).toBe(v > 0 ? Infinity : -Infinity);
      }),
      { numRuns: 10_000 },
    );
  });
});

test('reference sanity: known values', () => {
  expect(refCast('fp16', 65519)).toBe(0x7bff);
  expect(refCast('fp16', 65520)).toBe(0x7c00);
  expect(refCast('fp16', 2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal → even (0)
  expect(refCast('fp16', Math.fround(2 ** -25 * 1.5))).toBe(1);
  expect(refCast('bf16', 1 + 2 ** -8)).toBe(0x3f80); // tie → even
  expect(refCast('bf16', Math.fround(1 + 3 * 2 ** -8))).toBe(0x3f82);
  expect(refCast('bf16', f32FromBits(0x7f7fffff))).toBe(0x7f80);
  expect(refValue('fp16', 0x3c00)).toBe(1);
  expect(refValue('bf16', 0x0001)).toBe(2 ** -133);
});
