// A user-defined storage format: fp8 e4m3 (1 sign, 4 exponent bits with bias 7, 3 mantissa bits,
// largest finite 448, no Inf) with one bf16 scale per group of 32, in 1 + 2/32 bytes per value.
// Encode divides by scale = absmax/448 (rounded up to bf16, so every value fits) and rounds to
// the nearest e4m3 (ties to even); decode multiplies back. Written only with the DSL builders, so
// the compiler fuses it into any optimizer kernel like the built-in codecs.
//
// Run: npx tsx examples/custom-codec.ts

import { defineCodec } from '../dsl/define.ts';
import type { Expr } from '../dsl/ops.ts';
import {
  abs,
  add,
  and,
  asF32,
  asU32,
  constant,
  div,
  eq,
  f32,
  groupMax,
  isFinite,
  lt,
  max,
  min,
  mul,
  or,
  select,
  shl,
  shr,
  sub,
} from '../dsl/ops.ts';
import { fromBf16Bits, toBf16BitsUp } from '../dsl/float.ts';

const E4M3_MAX = 448;

/** f32 → e4m3 bits (u32 in [0, 0xFF]), round to nearest even, saturating at ±448; NaN → 0x7F. */
export function toE4m3Bits(x: Expr): Expr {
  const b = asU32(x);
  const a = and(b, 0x7fffffff);
  const sign = and(shr(b, 24), 0x80);
  // Normal (|x| ≥ 2^−6): round away 20 mantissa bits to nearest even, rebias 127 → 7, saturate.
  const normal = min(sub(shr(add(add(a, 0x7ffff), and(shr(a, 20), 1)), 20), 120 << 3), 0x7e);
  // Subnormal (spacing 2^−9 = the ulp of 2^14 in f32): the f32 addition does the rounding.
  const subnormal = sub(asU32(add(asF32(a), 16384)), 0x46800000);
  const mag = select(lt(a, 0x3c800000), subnormal, normal);
  return or(sign, select(isFinite(x), mag, select(eq(a, 0x7f800000), constant('u32', 0x7e), 0x7f)));
}

/** e4m3 bits → f32, exact. */
export function fromE4m3Bits(c: Expr): Expr {
  const m = and(c, 0x7f);
  const normal = asF32(add(shl(m, 20), 120 << 23));
  const subnormal = mul(f32(and(m, 7)), 2 ** -9);
  const mag = select(lt(m, 8), subnormal, select(eq(m, 0x7f), NaN, normal));
  return select(eq(and(c, 0x80), 0), mag, mul(mag, -1));
}

export const fp8e4m3Codec = defineCodec({
  name: 'fp8e4m3-bf16scale',
  fields: [
    { name: '', storage: 'u8', axis: 'element' },
    { name: 'scale', storage: 'u16', axis: 'group' },
  ],
  encode: (x) => {
    const absmax = groupMax(select(isFinite(x), abs(x), 0));
    const stored = toBf16BitsUp(max(div(absmax, E4M3_MAX), 2 ** -126));
    return [toE4m3Bits(div(x, fromBf16Bits(stored))), stored];
  },
  decode: ([code, scale]) => mul(fromE4m3Bits(code!), fromBf16Bits(scale!)),
});

// A tiny demonstration when run directly.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { runCodec } = await import('../props/checkers.ts');
  const r = runCodec(fp8e4m3Codec, 32);
  const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * (i < 32 ? 1 : 1e-20));
  const y = r.roundTrip(x);
  let worst = 0;
  x.forEach((v, i) => {
    if (v !== 0) worst = Math.max(worst, Math.abs(y[i]! - v) / Math.abs(v));
  });
  console.log(
    `${fp8e4m3Codec.name}: ${x.length} values, max relative error ${worst.toExponential(2)} (e4m3: 2^-4 = 6.25e-2 in its normal range)`,
  );
}
