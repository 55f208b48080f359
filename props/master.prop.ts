// Master-weight split (spec §1): the error bound of the corrected value, checked against the scale
// S = ½·ULP_T(n) computed here in float64 from the stored narrow value (not with the codec's bits).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { computeErrorBits, fromBf16, fromFp16, reconstructFp32, toBf16, toFp16 } from '../runtime/codecs.ts';
import { master, narrowTypes, type NarrowName } from './bounds.ts';
import { f32FromBits, f32InBinades, finiteF32, prng } from './f32.ts';

const configs = [
  ['bf16', 24],
  ['bf16', 32],
  ['fp16', 24],
  ['fp16', 32],
] as const;
const castOf = { bf16: toBf16, fp16: toFp16 },
  valueOf = { bf16: fromBf16, fp16: fromFp16 };

/** ½ ULP of the narrow value n: 2^(max(⌊log2|n|⌋, 1−B) − M − 1), Inf handled by the caller. */
function halfUlp(t: NarrowName, n: number): number {
  const { mantissa: M, bias: B } = narrowTypes[t];
  const a = Math.abs(n);
  let e = a === 0 ? 1 - B : Math.floor(Math.log2(a));
  while (a !== 0 && 2 ** e > a) e--;
  while (a !== 0 && 2 ** (e + 1) <= a) e++;
  return 2 ** (Math.max(e, 1 - B) - M - 1);
}

function roundTrip(t: NarrowName, bits: 24 | 32, x: Float32Array) {
  const h = castOf[t](x);
  const q = computeErrorBits(x, h, { narrow: t, masterWeightBits: bits });
  return { h, q, n: valueOf[t](h), y: reconstructFp32(h, q, { narrow: t, masterWeightBits: bits }) };
}

/** Finite f32 arrays whose narrow cast is finite. */
const finiteCastArrays = (t: NarrowName) =>
  fc.array(
    fc
      .oneof(finiteF32(), f32InBinades(t === 'bf16' ? -140 : -30, t === 'bf16' ? 127 : 16))
      .filter((v) => Math.abs(v) < (t === 'bf16' ? 3.3961775292304046e38 : 65520)),
    { minLength: 1, maxLength: 64 },
  );

describe.each(configs)('%s + %i-bit master', (t, bits) => {
  const Q = master.Q[bits];
  const { mantissa: M, bias: B } = narrowTypes[t];

  test('absolute bound |θ̂ − θ| ≤ S/(2Q) + ½·ulp32(θ) for every finite θ with a finite cast (10^4 arrays)', () => {
    fc.assert(
      fc.property(finiteCastArrays(t), (xs) => {
        const x = Float32Array.from(xs);
        const { q, n, y } = roundTrip(t, bits, x);
        for (let i = 0; i < x.length; i++) {
          expect(Math.abs(q[i]!)).toBeLessThanOrEqual(Q);
          const err = Math.abs(y[i]! - x[i]!),
            bound = master.absolute(halfUlp(t, n[i]!), Q, x[i]!);
          if (!(err <= bound))
            throw new Error(`θ = ${x[i]} (n = ${n[i]}, q = ${q[i]}) decodes to ${y[i]}: error ${err} > ${bound}`);
        }
      }),
      { numRuns: 10_000 },
    );
  });

  test('relative bound in the narrow-normal range (10^4 arrays)', () => {
    const rel = master.relative(M, Q);
    fc.assert(
      fc.property(fc.array(f32InBinades(1 - B, t === 'bf16' ? 127 : 16), { minLength: 1, maxLength: 64 }), (xs) => {
        const x = Float32Array.from(xs.filter((v) => Math.abs(v) < (t === 'bf16' ? 3.3961775292304046e38 : 65520)));
        const { n, y } = roundTrip(t, bits, x);
        for (let i = 0; i < x.length; i++) {
          if (Math.abs(n[i]!) < 2 ** (1 - B)) continue; // rounded down into the subnormal range
          const r = Math.abs(y[i]! - x[i]!) / Math.abs(x[i]!);
          if (!(r <= rel)) throw new Error(`θ = ${x[i]}: relative error ${r} > ${rel}`);
        }
      }),
      { numRuns: 10_000 },
    );
  });

  test('max relative error over 10^6 random normal values (printed)', () => {
    const rand = prng(bits * 100 + M);
    const x = new Float32Array(1_000_000);
    const lo = 1 - B,
      hi = t === 'bf16' ? 120 : 15;
    for (let i = 0; i < x.length; i++)
      x[i] = (rand() < 0.5 ? -1 : 1) * (1 + rand()) * 2 ** (lo + Math.floor(rand() * (hi - lo)));
    const { n, y } = roundTrip(t, bits, x);
    let worst = 0,
      worstNo = 0,
      exact = 0;
    for (let i = 0; i < x.length; i++) {
      worst = Math.max(worst, Math.abs(y[i]! - x[i]!) / Math.abs(x[i]!));
      worstNo = Math.max(worstNo, Math.abs(n[i]! - x[i]!) / Math.abs(x[i]!));
      if (y[i] === x[i]) exact++;
    }
    console.log(
      `${t}+int${bits === 24 ? 8 : 16}: max rel error ${worst.toExponential(3)} (no ECC ${worstNo.toExponential(3)}), bit-exact ${(exact / 1e4).toFixed(2)}%`,
    );
    expect(worst).toBeLessThanOrEqual(master.relative(M, Q));
    if (t === 'bf16' && bits === 24) expect(worst).toBeLessThanOrEqual(master.maxRelBf16Int8);
    if (t === 'fp16' && bits === 32) expect(exact).toBe(x.length); // exact in the fp16-normal range
  });

  test('re-encoding a decoded value is stable: same θ̂, or within one correction quantum at a binade edge (10^4 arrays)', () => {
    let moved = 0;
    fc.assert(
      fc.property(finiteCastArrays(t), (xs) => {
        const first = roundTrip(t, bits, Float32Array.from(xs));
        const again = roundTrip(t, bits, first.y);
        for (let i = 0; i < xs.length; i++) {
          if (!Number.isFinite(first.y[i]!) || Object.is(again.y[i], first.y[i]) || again.y[i] === first.y[i]) continue;
          moved++;
          const quantum = halfUlp(t, first.n[i]!) / Q;
          if (!(Math.abs(again.y[i]! - first.y[i]!) <= quantum))
            throw new Error(`θ̂ = ${first.y[i]} re-encodes to ${again.y[i]} (quantum ${quantum})`);
        }
      }),
      { numRuns: 10_000 },
    );
    console.log(`${t}+int${bits === 24 ? 8 : 16}: ${moved} values moved on re-encoding (each by at most one quantum)`);
  });

  test('special values: ±0, ±Inf, NaN, overflow, fp32 subnormals', () => {
    const big = t === 'bf16' ? f32FromBits(0x7f7fffff) : 65520;
    const x = Float32Array.of(0, -0, Infinity, -Infinity, NaN, big, -big, 2 ** -149, -(2 ** -140));
    const { h, q, y } = roundTrip(t, bits, x);
    expect(Array.from(y.slice(0, 4))).toEqual([0, 0, Infinity, -Infinity]);
    expect(Object.is(y[1], 0)).toBe(true); // −0 with q = 0 decodes to +0, as the reference does
    expect(y[4]).toBeNaN();
    expect(q[4]).toBe(0); // NaN stores q = 0
    expect(q[2]).toBe(0);
    expect([y[5], y[6]]).toEqual([Infinity, -Infinity]); // overflow of the cast is unrecoverable
    expect([q[5], q[6]]).toEqual([-Q, Q]); // e = ∓Inf clamps r to ∓1
    expect(h[7]).toBe(0);
    // fp32 subnormals: only the absolute bound holds (S is the narrow subnormal half-spacing).
    for (const i of [7, 8])
      expect(Math.abs(y[i]! - x[i]!)).toBeLessThanOrEqual(master.absolute(2 ** (1 - B - M - 1), Q, x[i]!));
  });
});

test('length mismatch throws a RangeError naming both arrays', () => {
  expect(() =>
    computeErrorBits(new Float32Array(3), new Uint16Array(2), { narrow: 'bf16', masterWeightBits: 24 }),
  ).toThrow(/fp32 has 3 .* narrow has 2/);
  expect(() => reconstructFp32(new Uint16Array(3), new Int8Array(4), { narrow: 'bf16', masterWeightBits: 24 })).toThrow(
    RangeError,
  );
  expect(() => reconstructFp32(new Uint16Array(3), new Int8Array(4), { narrow: 'bf16', masterWeightBits: 24 })).toThrow(
    /narrow has 3 .* errorBits has 4/,
  );
  expect(() => reconstructFp32(new Uint16Array(3), new Int8Array(3), { narrow: 'bf16', masterWeightBits: 32 })).toThrow(
    /Int16Array/,
  );
});
