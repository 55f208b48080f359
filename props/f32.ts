// Arbitraries for f32 data: values drawn by bit pattern (so subnormals, ±0 and every binade are as
// likely as 1.0), finite-only variants, and heavy-tailed groups (Student-t with a random overall
// scale) like real optimizer states. User-facing: import these into your own property tests.

import fc from 'fast-check';
import { prng } from './prng.ts';

export { prng };

const word = new Uint32Array(1);
const float = new Float32Array(word.buffer);

/** The f32 with these 32 bits. */
export function f32FromBits(bits: number): number {
  word[0] = bits >>> 0;
  return float[0]!;
}
/** The 32 bits of an f32 (NaN payloads kept as stored). */
export function bitsOfF32(x: number): number {
  float[0] = x;
  return word[0]!;
}

/** Any f32, uniform over bit patterns: NaNs, ±Inf, ±0, subnormals and every binade. */
export const anyF32 = (): fc.Arbitrary<number> =>
  fc.oneof(
    fc.integer({ min: 0, max: 0xffffffff }).map(f32FromBits),
    fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 2 ** -149, -(2 ** -149)),
  );

/** Finite f32 (including ±0 and subnormals), uniform over bit patterns. */
export const finiteF32 = (): fc.Arbitrary<number> =>
  fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 0xffffffff }).map(f32FromBits).filter(Number.isFinite), weight: 9 },
    { arbitrary: fc.constantFrom(0, -0, 2 ** -149, -(2 ** -126), 3.4028234663852886e38, 1, -1), weight: 1 },
  );

/** Finite f32 with |x| in [2^lo, 2^hi): uniform in exponent and mantissa, random sign. */
export const f32InBinades = (lo: number, hi: number): fc.Arbitrary<number> =>
  fc
    .tuple(fc.boolean(), fc.integer({ min: lo, max: hi - 1 }), fc.integer({ min: 0, max: 0x7fffff }))
    .map(([neg, e, m]) => Math.fround((neg ? -1 : 1) * (1 + m / 2 ** 23) * 2 ** e));

/** A standard normal sample (Box–Muller). */
export function normal(rand: () => number): number {
  const u = 1 - rand(),
    v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** A Student-t sample with ν degrees of freedom (ν integer: a normal over √(χ²_ν / ν)). */
export function studentT(rand: () => number, nu: number): number {
  let chi = 0;
  for (let i = 0; i < nu; i++) chi += normal(rand) ** 2;
  return normal(rand) / Math.sqrt(chi / nu);
}

/** n Student-t(ν) values times 10^logScale, as f32. */
export function studentTArray(seed: number, n: number, nu = 3, logScale = 0): Float32Array {
  const rand = prng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = studentT(rand, nu) * 10 ** logScale;
  return out;
}

/**
 * Heavy-tailed data in groups: each group is Student-t(ν = 3) with its own lognormal scale
 * (σ = 1 in ln), over an overall scale 10^e with e in [minLog10, maxLog10].
 */
export const heavyTailed = (
  opts: { length?: fc.IntegerConstraints; minLog10?: number; maxLog10?: number; groupSize?: number } = {},
): fc.Arbitrary<Float32Array> =>
  fc
    .tuple(
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      fc.integer({ min: 1, max: 300, ...opts.length }),
      fc.double({ min: opts.minLog10 ?? -8, max: opts.maxLog10 ?? 3, noNaN: true }),
    )
    .map(([seed, n, e]) => {
      const rand = prng(seed),
        G = opts.groupSize ?? 32;
      const out = new Float32Array(n);
      let s = 1;
      for (let i = 0; i < n; i++) {
        if (i % G === 0) s = Math.exp(normal(rand)) * 10 ** e;
        out[i] = studentT(rand, 3) * s;
      }
      return out;
    });

/** Like heavyTailed, but nonnegative (variance-like states: squares of heavy-tailed gradients). */
export const heavyTailedNonneg = (opts: Parameters<typeof heavyTailed>[0] = {}): fc.Arbitrary<Float32Array> =>
  heavyTailed(opts).map((x) => x.map((v) => Math.fround(v * v)));
