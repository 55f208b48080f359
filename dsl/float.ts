// Narrow float casts written as DSL bit arithmetic, so every backend renders the same exact rule:
// f32 → bf16 / fp16 with IEEE round-to-nearest-even (subnormals kept, overflow to ±Inf), and back.
// A 16-bit value travels as a u32 holding the bits in its low half (what a u16 field loads as).
//
// NaN convention (docs/codecs.md): a NaN stays a NaN. The bits of any f32 NaN read as 0x7fc00000
// (compiler/ir/semantics.ts), so NaN casts to 0x7FC0 (bf16) / 0x7E00 (fp16). The explicit quiet bit
// (bf16 = (bits >> 16) | 0x40; fp16 = sign | 0x7E00 | (mantissa >> 13)) keeps any NaN from ever
// truncating into ±Inf on a backend that does keep payloads.

import type { Expr, Like } from './ops.ts';
import { add, and, asF32, asU32, eq, f32, gt, i32, lift, lt, min, mul, or, select, shl, shr, sub } from './ops.ts';

const MAG = 0x7fffffff;
const INF32 = 0x7f800000;

/** 2^k for an i32 expression k in [−126, 127], exactly, through the exponent bits (no exp2). */
export function pow2(k: Like): Expr {
  return asF32(shl(add(lift(k, 'i32'), 127), 23));
}

/** f32 → bf16 bits (u32 in [0, 0xFFFF]), round to nearest even; overflow gives ±Inf. */
export function toBf16Bits(x: Expr): Expr {
  const b = asU32(x);
  // Adding 0x7FFF plus the lsb of the kept half rounds to nearest, ties to even; a carry into the
  // exponent is exactly the right result (including the step from the largest finite to Inf).
  const rounded = shr(add(add(b, 0x7fff), and(shr(b, 16), 1)), 16);
  const nan = or(shr(b, 16), 0x40);
  return select(gt(and(b, MAG), INF32), nan, rounded);
}

/** f32 → bf16 bits rounded toward +Inf in magnitude (for a positive group scale: never below s). */
export function toBf16BitsUp(x: Expr): Expr {
  const b = asU32(x);
  const up = shr(add(b, 0xffff), 16);
  return select(gt(and(b, MAG), INF32), or(shr(b, 16), 0x40), up);
}

/** bf16 bits (u32) → f32, exact. */
export function fromBf16Bits(h: Expr): Expr {
  return asF32(shl(and(h, 0xffff), 16));
}

/** f32 → fp16 bits (u32 in [0, 0xFFFF]), round to nearest even, fp16 subnormals, ±Inf at |x| ≥ 65520. */
export function toFp16Bits(x: Expr): Expr {
  const b = asU32(x);
  const a = and(b, MAG);
  const sign = and(shr(b, 16), 0x8000);
  // Normal range: rebias the exponent (−112 · 2^23 wraps to 0xC8000000) and round away the low
  // 13 bits to nearest even. Results past the largest finite clamp to Inf (0x7C00).
  const normal = min(shr(add(add(a, 0xc8000fff), and(shr(a, 13), 1)), 13), 0x7c00);
  // Below 2^−14 the spacing is 2^−24, the ulp of 0.5 in f32: the f32 addition |x| + 0.5 does the
  // RNE rounding, and the low bits of the sum are the subnormal code (0x400 when it rounds up to
  // the smallest normal, which is the right bit pattern too).
  const sub_ = sub(asU32(add(asF32(a), 0.5)), 0x3f000000);
  const nan = or(0x7e00, shr(and(a, 0x7fffff), 13));
  const mag = select(gt(a, INF32), nan, select(lt(a, 0x38800000), sub_, normal));
  return or(sign, mag);
}

/** fp16 bits (u32) → f32, exact (subnormals through an exact integer scaling, no f32 denormal input). */
export function fromFp16Bits(h: Expr): Expr {
  const s = shl(and(h, 0x8000), 16);
  const m = and(h, 0x7fff);
  const e = shr(m, 10);
  const normal = add(shl(m, 13), 0x38000000);
  const special = or(shl(m, 13), INF32);
  const subnormal = asU32(mul(f32(and(m, 0x3ff)), 2 ** -24));
  const mag = select(eq(e, 0), subnormal, select(eq(e, 31), special, normal));
  return asF32(or(s, mag));
}

/** The parameters of a narrow float type. */
export interface Narrow {
  readonly name: 'bf16' | 'fp16';
  readonly mantissa: number;
  readonly bias: number;
}
export const bf16: Narrow = { name: 'bf16', mantissa: 7, bias: 127 };
export const fp16: Narrow = { name: 'fp16', mantissa: 10, bias: 15 };
export const narrowOf = (n: 'bf16' | 'fp16'): Narrow => (n === 'bf16' ? bf16 : fp16);

export const toNarrowBits = (n: 'bf16' | 'fp16', x: Expr): Expr => (n === 'bf16' ? toBf16Bits(x) : toFp16Bits(x));
export const fromNarrowBits = (n: 'bf16' | 'fp16', h: Expr): Expr => (n === 'bf16' ? fromBf16Bits(h) : fromFp16Bits(h));

/**
 * The unbiased exponent E of narrow bits h (i32): 1 − B for zero and subnormals, 2^w − 1 − B for
 * Inf/NaN (spec §1 step 3).
 */
export function narrowExponent(n: Narrow, h: Expr): Expr {
  const f = i32(shr(and(h, 0x7fff), n.mantissa));
  return select(eq(f, 0), 1 - n.bias, sub(f, n.bias));
}
