// Master-weight splitting (spec §1): a parameter is stored as its narrow RNE cast n (bf16 or fp16)
// plus a small integer correction q that quantizes the cast error e = θ − n in units of half a
// narrow ULP of n. The scale 2^L comes from n's exponent bits (not θ's), so decode recomputes it
// from what is stored. Everything is bit arithmetic and exact power-of-two scaling: no exp2/log2.

import type { Codec } from './codec.ts';
import type { Expr } from './ops.ts';
import {
  add,
  and,
  asF32,
  clamp,
  div,
  f32,
  i32,
  isNan,
  le,
  lt,
  max,
  min,
  mul,
  neg,
  or,
  select,
  shl,
  sub,
} from './ops.ts';
import type { Narrow } from './float.ts';
import { fromNarrowBits, narrowExponent, narrowOf, pow2, toNarrowBits } from './float.ts';

export interface MasterOptions {
  readonly narrow: 'bf16' | 'fp16';
  /** Total master bits: 24 → int8 correction, 32 → int16, null → the narrow value alone. */
  readonly bits: 24 | 32 | null;
}

/** Largest correction magnitude Q for a master width (127 for int8, 32767 for int16). */
export const correctionMax = (bits: 24 | 32): number => (bits === 24 ? 127 : 32767);

/** L = E − M − 1: 2^L is half a narrow ULP of the narrow value with bits `h` (i32). */
export function halfUlpExponent(n: Narrow, h: Expr): Expr {
  return sub(narrowExponent(n, h), n.mantissa + 1);
}

/**
 * e / 2^L, exactly. fp16: one power of two (L never leaves f32 range). bf16 (−L reaches 134): with
 * F = h's exponent bits in place, e · 2^(127 − F′) · 2^8, F′ = F clamped to [1, 253] so the first
 * factor is a normal f32; F = 0 has F = 1's L, and F ≥ 254 takes 2^7 for its 2^8 (L = 119; ±Inf's
 * e is ∓Inf or NaN, which any positive scale keeps). Each product is exact: e is a multiple of
 * θ's f32 ulp and at most 2^L. Nine integer and float operations where two exponent-built powers of
 * two took about twenty (the GPU kernels' integer work, docs/bench-gpu.md).
 */
function halfUlps(n: Narrow, e: Expr, h: Expr): Expr {
  if (n.name === 'fp16') return mul(e, pow2(neg(halfUlpExponent(n, h))));
  const F = and(h, 0x7f80);
  const first = asF32(shl(sub(0x7f00, min(max(F, 0x80), 0x7e80)), 16));
  return mul(mul(e, first), select(lt(F, 0x7f00), 256, 128));
}

/** The correction q (i32 in [−Q, Q]) for θ against its stored narrow bits h (spec §1 steps 2–7). */
export function correctionOf(n: Narrow, Q: number, theta: Expr, h: Expr): Expr {
  const e = sub(theta, fromNarrowBits(n.name, h)); // exact (Sterbenz); e = θ when h is zero
  const r = halfUlps(n, e, h);
  // The clamp only acts when h is ±Inf (e = ∓Inf). fmin/fmax would map a NaN r to −1, so NaN
  // (θ NaN, or θ = ±Inf where e = Inf − Inf) stores 0 explicitly.
  const rc = clamp(r, -1, 1);
  // Round half away from zero in f32, as the reference computes it: ⌊|r|·Q + ½⌋ with the sign of r,
  // which is trunc(r·Q ± ½) (RN is odd: RN(−x) = −RN(x)), the cast's own truncation: six operations
  // an element where the sign, the |·|, the floor and the product by the sign took ten.
  const q = add(mul(rc, Q), select(lt(rc, 0), -0.5, 0.5));
  return i32(select(isNan(r), 0, q));
}

/**
 * θ̂ = n + fl32(q/Q)·2^L, rounded once (spec §1, decode). −0 with q = 0 decodes to +0.
 *
 * For bf16 values below 2^−118 the correction c = fl32(q/Q)·2^L is an f32 subnormal, so computing
 * c first and then n + c rounds twice. The reference's Triton kernel fuses that last multiply-add
 * into an FMA (one rounding); measured over all 2^23 mantissas, two roundings break invariants #3,
 * #4 and #7 at exponents −125…−119 (8192 exceptions where 32 are allowed). So for a bf16 exponent
 * field F in [2, 254] the sum is formed on n's binade moved to [1, 2) (n's sign and mantissa under
 * exponent field 127), where c is frac·2^−8 and normal, and scaled back by 2^(F − 127) exactly: one
 * rounding, and every value is normal (θ̂ ≥ 2^−125·(1 − 2^−8)). F ≤ 1 (the result lies on the f32
 * subnormal grid, where the plain formula rounds once) takes n + (frac·2^−8)·2^−126, its c rounded
 * once; F = 255 (±Inf, NaN) adds a finite c·2^127 and keeps them.
 */
export function correctedValue(n: Narrow, Q: number, h: Expr, q: Expr): Expr {
  const value = fromNarrowBits(n.name, h),
    frac = div(f32(q), Q);
  if (n.name === 'fp16') return add(value, mul(frac, pow2(halfUlpExponent(n, h)))); // c is always an f32 normal
  const F = and(h, 0x7f80);
  // 2^(F − 127) with F clamped to [1, 254]: a normal power of two, so the range analysis needs no
  // run-time check on it, and one table (c, a function of the code alone) serves both forms.
  const binade = asF32(shl(min(max(F, 0x80), 0x7f00), 16));
  const c = mul(frac, 2 ** -8);
  const unit = asF32(shl(or(and(h, 0x807f), 0x3f80), 16));
  const inBinade = mul(add(unit, c), binade);
  const edge = add(value, mul(c, binade));
  return select(and(le(0x100, F), le(F, 0x7f00)), inBinade, edge);
}

export function masterCodec(opts: MasterOptions): Codec {
  const n = narrowOf(opts.narrow);
  if (opts.narrow !== 'bf16' && opts.narrow !== 'fp16')
    throw new RangeError(`masterCodec: narrow must be 'bf16' or 'fp16', got ${String(opts.narrow)}`);
  if (opts.bits !== 24 && opts.bits !== 32 && opts.bits !== null)
    throw new RangeError(`masterCodec: bits must be 24, 32 or null, got ${String(opts.bits)}`);
  if (opts.bits === null) {
    return {
      name: opts.narrow,
      fields: [{ name: '', storage: 'u16', axis: 'element' }],
      decode: ([h]) => fromNarrowBits(n.name, h!),
      encode: (v) => [toNarrowBits(n.name, v)],
    };
  }
  const Q = correctionMax(opts.bits);
  return {
    name: `${opts.narrow}+ecc${opts.bits === 24 ? 8 : 16}`,
    fields: [
      { name: '', storage: 'u16', axis: 'element' },
      { name: 'ecc', storage: opts.bits === 24 ? 'i8' : 'i16', axis: 'element' },
    ],
    decode: ([h, q]) => correctedValue(n, Q, h!, q!),
    encode: (v) => {
      const h = toNarrowBits(n.name, v);
      return [h, correctionOf(n, Q, v, h)];
    },
  };
}

/** Plain f32 storage: one f32 field, decode and encode are the identity. */
export const f32Codec: Codec = {
  name: 'f32',
  fields: [{ name: '', storage: 'f32', axis: 'element' }],
  decode: ([x]) => x!,
  encode: (v) => [v],
};
