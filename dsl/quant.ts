// Companded 8-bit group quantization (spec §2): per group of consecutive elements one scale (the
// group's absmax), per element an 8-bit code of a = x (or √x) divided by the scale, optionally
// through the softsign curve y = 2u/(1+|u|), rounded half toward +∞ (⌊y·Qm + ½⌋, exactly).
//
// Scale storage (spec §0): 'bf16' (default) rounds the absmax UP to bf16, so |u| ≤ 1 still holds,
// and the codes are computed against that stored scale, so decode uses exactly the scale the codes
// were made with; the floor is 2^−126, so no group with a nonzero normal absmax decodes to zeros.
// 'fp16' reproduces the reference bit for bit: floor 1e−12, codes against the f32 absmax, scale
// stored RNE as fp16 (flushing below ~3e−8, Inf at ≥ 65520). 'f32' stores the absmax itself.
//
// The codes are made by multiplying with the reciprocal of the group's scale, computed once per
// group ('bf16' and 'f32'; 'fp16' keeps the reference's division, for bit parity): a GPU then does
// one multiply per element instead of a division (exact mode's correctly rounded ÷ is ~10
// instructions). |a·(1/s)| may exceed 1 by an ulp; the clamp takes it. The scale is capped at
// 2^126 so that 1/s is a normal f32 (a GPU that flushes subnormals computes it as JS does); a
// group whose absmax exceeds 2^126 (≈ 8.5e37) saturates its largest codes there.
//
// Non-finite input (docs/codecs.md): the absmax ignores non-finite elements, so the scale stays
// finite and nothing leaks into other elements or groups; a NaN element (or √ of a negative) stores
// code 0, ±Inf saturates to ±Qm (decoding to ±scale). Negative input to an unsigned codec stores 0.

import type { Codec } from './codec.ts';
import type { Expr } from './ops.ts';
import {
  abs,
  add,
  clamp,
  div,
  f32,
  floor,
  ge,
  groupMax,
  i32,
  isFinite,
  isNan,
  lt,
  max,
  min,
  mul,
  select,
  sqrt as sqrtOf,
  sub,
  u32,
} from './ops.ts';
import { fromBf16Bits, fromFp16Bits, toBf16BitsUp, toFp16Bits } from './float.ts';

export type ScaleStorage = 'bf16' | 'fp16' | 'f32';

export interface QuantOptions {
  /** int8 codes in [−127, 127] (momentum-like) or uint8 in [0, 255] (variance-like). */
  readonly signed: boolean;
  /** Quantize √x instead of x (x ≥ 0): finer resolution for small variances. */
  readonly sqrt?: boolean;
  /** Softsign companding y = 2u/(1+|u|): twice finer near 0, twice coarser near ±1. */
  readonly softsign?: boolean;
  readonly scale?: ScaleStorage;
}

/** The reference's absmax floor (fp16 compatibility) and ours (smallest normal f32). */
export const REFERENCE_SCALE_FLOOR = 1e-12;
export const SCALE_FLOOR = 2 ** -126;
/** The largest scale ('bf16' and 'f32'): its reciprocal 2^−126 is still a normal f32. */
export const SCALE_CAP = 2 ** 126;
const SCALE_CAP_BF16 = 0x7e80;

export const codeMax = (signed: boolean): number => (signed ? 127 : 255);

/** The group scale: what is stored and the f32 value the codes are computed against. */
function groupScale(scale: ScaleStorage, absmax: Expr): { stored: Expr; forCodes: Expr } {
  switch (scale) {
    case 'fp16': {
      const s = max(absmax, REFERENCE_SCALE_FLOOR);
      return { stored: toFp16Bits(s), forCodes: s };
    }
    case 'bf16': {
      // Capped at 2^126 (bf16 0x7e80): 1/scale stays a normal f32, and an absmax near the f32
      // maximum cannot round up to Inf (which would decode as 0·Inf = NaN); above the cap the
      // clamp saturates |u| at 1.
      const stored = min(toBf16BitsUp(max(absmax, SCALE_FLOOR)), SCALE_CAP_BF16);
      return { stored, forCodes: fromBf16Bits(stored) };
    }
    case 'f32': {
      const s = min(max(absmax, SCALE_FLOOR), SCALE_CAP);
      return { stored: s, forCodes: s };
    }
  }
}

/** The f32 value of a stored scale. */
export function scaleValue(scale: ScaleStorage, stored: Expr): Expr {
  return scale === 'fp16' ? fromFp16Bits(stored) : scale === 'bf16' ? fromBf16Bits(stored) : stored;
}

export function quantCodec(opts: QuantOptions): Codec {
  const { signed, sqrt = false, softsign = false, scale = 'bf16' } = opts;
  if (typeof signed !== 'boolean') throw new TypeError(`quantCodec: signed must be a boolean, got ${String(signed)}`);
  if (scale !== 'bf16' && scale !== 'fp16' && scale !== 'f32')
    throw new RangeError(`quantCodec: scale must be 'bf16', 'fp16' or 'f32', got ${String(scale)}`);
  const Qm = codeMax(signed);
  const name = `q${signed ? 'i8' : 'u8'}${sqrt ? '-sqrt' : ''}${softsign ? '-softsign' : ''}-${scale}`;
  return {
    name,
    fields: [
      { name: '', storage: signed ? 'i8' : 'u8', axis: 'element' },
      { name: 'scale', storage: scale === 'f32' ? 'f32' : 'u16', axis: 'group' },
    ],
    encode: (x) => encodeA(sqrt ? sqrtOf(x) : x),
    decode: (stored) => {
      const a = decodeA(stored);
      return sqrt ? mul(a, a) : a;
    },
    // A √ codec stores a = √x: fuse.ts keeps an element's old value as its decoded a (no √ of a²)
    // and takes the update's own √ of the new value, so a step computes one √ per element.
    ...(sqrt ? { preimage: { of: sqrtOf, decode: decodeA, encode: encodeA } } : {}),
  };

  function encodeA(a: Expr): readonly Expr[] {
    const absmax = groupMax(select(isFinite(a), abs(a), 0));
    const s = groupScale(scale, absmax);
    // |a| ≤ absmax ≤ the code scale, so the clamp only acts on ±Inf (and negatives if unsigned),
    // and on a·(1/s) one ulp above 1.
    const scaled = scale === 'fp16' ? div(a, s.forCodes) : mul(a, div(1, s.forCodes));
    const u = clamp(scaled, signed ? -1 : 0, 1);
    const y = softsign ? div(mul(u, 2), add(abs(u), 1)) : u;
    const t = mul(y, Qm);
    // Round half up. The reference's ⌊t + ½⌋ in f32 also sends the f32 just below each k + ½
    // up (t + ½ rounds to k + 1): kept for 'fp16' (bit parity), done exactly otherwise.
    const code = scale === 'fp16' ? floor(add(t, 0.5)) : add(floor(t), select(ge(sub(t, floor(t)), 0.5), 1, 0));
    // A nonzero √v stores at least code 1 (not in 'fp16' mode: bit parity with the reference).
    // A v decoded as 0 while its m is not makes Adam's step m/ε (the spec's §2 warning): in a group
    // whose scale an old large gradient set, a later gradient 510× smaller stored 0, and a batch
    // with g = 0 there (a ReLU off, a blank pixel) then moved the weight by lr·m/ε.
    const kept = sqrt && scale !== 'fp16' ? max(code, select(lt(0, a), 1, 0)) : code;
    const safe = select(isNan(a), 0, kept);
    return [signed ? i32(safe) : u32(safe), s.stored];
  }

  function decodeA([code, stored]: readonly Expr[]): Expr {
    const y = div(f32(code!), Qm);
    const u = softsign ? div(y, sub(2, abs(y))) : y;
    return mul(u, scaleValue(scale, stored!));
  }
}

/** Signed int8 with softsign companding: Adam/Lion/SGD momentum. */
export const momentumCodec = (scale: ScaleStorage = 'bf16'): Codec =>
  quantCodec({ signed: true, softsign: true, scale });
/** Unsigned uint8 of √v, linear: Adam's second moment. */
export const varianceCodec = (scale: ScaleStorage = 'bf16'): Codec => quantCodec({ signed: false, sqrt: true, scale });
/** Plain linear codes, kept for comparisons. */
export const linearCodec = (signed: boolean, scale: ScaleStorage = 'bf16'): Codec => quantCodec({ signed, scale });
