// The WGSL renderer: op tables (mapped over the op unions, so a new op is a type error here) and
// literals. The kernel template, the thread layout and the packing of 8/16-bit fields into u32
// words live in render.ts.
//
// f32 semantics follow compiler/ir/semantics.ts wherever WGSL lets us say it exactly:
// - NaN tests are bit tests (a GPU compiler may fold `x != x` away), min/max ignore a NaN operand
//   and let the first operand win ties, sign keeps ±0 and NaN, roundAway is exact (no |x| + ½).
// - f32 → integer conversions saturate to the full range and map NaN to 0 (WGSL's own clamp stops
//   at the largest f32 below 2^31 / 2^32).
// What the GPU decides (docs/webgpu.md): f32 division and inverseSqrt are within 2.5 ULP, sqrt
// within the driver's bound (correctly rounded on lavapipe, not promised), exp2/log2 approximate,
// and drivers may flush f32 subnormals.

import type { BinaryOp, Type, UnaryOp } from '../../ir/ir.ts';

export const wgslType: Record<Type, string> = { f32: 'f32', i32: 'i32', u32: 'u32', bool: 'bool' };

const f32Bits = new Uint32Array(1);
const f32View = new Float32Array(f32Bits.buffer);

/** A literal of `t`, exact: f32 values that print and parse back unchanged, else their bits. */
export function wgslLiteral(v: number, t: Type): string {
  switch (t) {
    case 'bool':
      return v ? 'true' : 'false';
    case 'u32':
      return `${v >>> 0}u`;
    case 'i32':
      return v === -2147483648 ? 'bitcast<i32>(0x80000000u)' : v < 0 ? `(${v}i)` : `${v}i`;
    case 'f32': {
      f32View[0] = v;
      const bits = f32Bits[0]!;
      const mag = bits & 0x7fffffff;
      // Zero, normals: decimal; −0, subnormals, Inf, NaN: through their bits.
      if (bits === 0) return '0.0f';
      if (mag >= 0x00800000 && mag < 0x7f800000) return v < 0 ? `(${v}f)` : `${v}f`;
      // Inf, NaN and −0 through f32_bits, a value the driver cannot see (below).
      return mag >= 0x7f800000 || bits === 0x80000000
        ? `f32_bits(0x${bits.toString(16)}u)`
        : `bitcast<f32>(0x${bits.toString(16)}u)`;
    }
  }
}

type U = (x: string, t: Type) => string;
type B = (a: string, b: string, t: Type) => string;
const lit = wgslLiteral;
export const isNanF = (x: string) => `((bitcast<u32>(${x}) & 0x7fffffffu) > 0x7f800000u)`;

export const wgslUnary: { [K in UnaryOp]: U } = {
  neg: (x) => `(-${x})`,
  abs: (x) => `abs(${x})`,
  sqrt: (x) => `sqrt(${x})`,
  rsqrt: (x) => `inverseSqrt(${x})`,
  exp2: (x) => `exp2(${x})`,
  log2: (x) => `log2(${x})`,
  floor: (x) => `floor(${x})`,
  ceil: (x) => `ceil(${x})`,
  trunc: (x) => `trunc(${x})`,
  roundEven: (x) => `round(${x})`,
  roundAway: (x) => `round_away(${x})`,
  sign: (x, t) => (t === 'f32' ? `sign_f32(${x})` : `select(select(${x}, -1i, ${x} < 0i), 1i, ${x} > 0i)`),
  not: (x, t) => (t === 'bool' ? `(!${x})` : `(~${x})`),
  isNan: (x) => isNanF(x),
  isFinite: (x) => `((bitcast<u32>(${x}) & 0x7f800000u) != 0x7f800000u)`,
};

const op =
  (o: string): B =>
  (a, b) =>
    `(${a} ${o} ${b})`;
// WGSL lets an implementation assume no NaN reaches a comparison (lavapipe does), so f32
// comparisons test NaN operands by their bits, as IEEE orders them: unordered is false, ≠ is true.
const ordered =
  (o: string): B =>
  (a, b, t) =>
    t === 'f32' ? `ord_${o}(${a}, ${b})` : `(${a} ${({ lt: '<', le: '<=', eq: '==' } as const)[o as 'lt']} ${b})`;
export const wgslBinary: { [K in BinaryOp]: B } = {
  add: op('+'),
  sub: op('-'),
  mul: op('*'),
  // Integer division by zero and i32 MIN / −1 give the dividend in WGSL, as in semantics.ts.
  // Through a function: a literal 0 divisor is a WGSL shader-creation error, a runtime one is not.
  div: (a, b, t) => (t === 'f32' ? `(${a} / ${b})` : `div_${t}(${a}, ${b})`),
  min: (a, b, t) => (t === 'f32' ? `fmin_nan(${a}, ${b})` : `min(${a}, ${b})`),
  max: (a, b, t) => (t === 'f32' ? `fmax_nan(${a}, ${b})` : `max(${a}, ${b})`),
  lt: ordered('lt'),
  le: ordered('le'),
  eq: ordered('eq'),
  ne: (a, b, t) => (t === 'f32' ? `(!ord_eq(${a}, ${b}))` : `(${a} != ${b})`),
  and: op('&'),
  or: op('|'),
  xor: (a, b, t) => (t === 'bool' ? `(${a} != ${b})` : `(${a} ^ ${b})`),
  // WGSL takes a u32 shift amount and wants it below 32: mask it as semantics.ts does.
  shl: (a, b) => `(${a} << (${b} & 31u))`,
  shr: (a, b) => `(${a} >> (${b} & 31u))`,
};

/** Numeric conversion between kernel types, with semantics.ts's saturation and NaN → 0. */
export function wgslCast(x: string, from: Type, to: Type): string {
  if (from === to) return x;
  // f32: a bit test, true for NaN and false for ±0 as IEEE's x ≠ 0 is (a plain != let lavapipe,
  // which assumes no NaN, give false for NaN).
  if (to === 'bool') return from === 'f32' ? `((bitcast<u32>(${x}) & 0x7fffffffu) != 0u)` : `(${x} != ${lit(0, from)})`;
  if (from === 'bool') return `select(${lit(0, to)}, ${lit(1, to)}, ${x})`;
  if (from === 'f32') return to === 'i32' ? `f32_to_i32(${x})` : `f32_to_u32(${x})`;
  if (to === 'f32') return `f32(${x})`;
  return `bitcast<${to}>(${x})`;
}

/** Helper functions every kernel may call (unused ones cost nothing once compiled). */
export const WGSL_PRELUDE = `
// Inf and NaN may not appear in WGSL constant expressions, and WGSL lets a driver assume no NaN,
// Inf or signed zero appears at all: as constants lavapipe folded 0·x to 0, x/0 to 0 and stored
// −0 as +0. So these values come from their bits xor P.never, a uniform that is 0 at run time.
fn f32_bits(b: u32) -> f32 { return bitcast<f32>(b ^ P.never); }
fn is_nan(x: f32) -> bool { return ${isNanF('x')}; }
// IEEE minNum/maxNum as semantics.ts: a NaN first operand yields the second; ties keep the first.
fn ord_lt(a: f32, b: f32) -> bool { return a < b && !is_nan(a) && !is_nan(b); }
fn ord_le(a: f32, b: f32) -> bool { return a <= b && !is_nan(a) && !is_nan(b); }
fn ord_eq(a: f32, b: f32) -> bool { return a == b && !is_nan(a) && !is_nan(b); }
fn fmin_nan(a: f32, b: f32) -> f32 { return select(select(a, b, ord_lt(b, a)), b, is_nan(a)); }
fn fmax_nan(a: f32, b: f32) -> f32 { return select(select(a, b, ord_lt(a, b)), b, is_nan(a)); }
// Round half away from zero without |x| + ½ (which rounds 0.49999997 up in f32): x − trunc(x) is exact.
fn round_away(x: f32) -> f32 { let t = trunc(x); return select(t, t + select(1.0f, -1.0f, x < 0.0f), abs(x - t) >= 0.5f); }
fn f32_to_i32(x: f32) -> i32 { return select(select(i32(x), 2147483647i, x >= 2147483648.0f), 0i, is_nan(x)); }
fn f32_to_u32(x: f32) -> u32 { return select(select(u32(x), 4294967295u, x >= 4294967296.0f), 0u, is_nan(x)); }
// The fallbacks of exact.ts's ÷ and √, where their fast forms' residuals may be inexact:
// of the driver's result and its two neighbours, the one with the smallest exact residual (an
// fma residual is exact this close), ties to the even one. Subnormal, zero and non-finite results
// keep the driver's value.
fn finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }
fn normal(x: f32) -> bool { let e = bitcast<u32>(x) & 0x7f800000u; return e != 0x7f800000u && e != 0u; }
fn nearest3(q: f32, r0: f32, rUp: f32, rDn: f32) -> f32 {
  let b = bitcast<u32>(q);
  var best = q; var r = r0;
  if (rUp < r || (rUp == r && (b & 1u) == 1u)) { best = bitcast<f32>(b + 1u); r = rUp; }
  if (rDn < r || (rDn == r && (b & 1u) == 1u && best == q)) { best = bitcast<f32>(b - 1u); }
  return best;
}
fn div_exact(a: f32, b: f32) -> f32 {
  let q = a / b;
  if (!(normal(q) && finite(a) && finite(b))) { return q; }
  let u = bitcast<u32>(q);
  let up = bitcast<f32>(u + 1u); let dn = bitcast<f32>(u - 1u);
  return nearest3(q, abs(fma(-q, b, a)), abs(fma(-up, b, a)), abs(fma(-dn, b, a)));
}
fn sqrt_exact(x: f32) -> f32 {
  let s = sqrt(x);
  if (!(normal(s) && finite(x))) { return s; }
  let u = bitcast<u32>(s);
  let up = bitcast<f32>(u + 1u); let dn = bitcast<f32>(u - 1u);
  return nearest3(s, abs(fma(-s, s, x)), abs(fma(-up, up, x)), abs(fma(-dn, dn, x)));
}
fn div_i32(a: i32, b: i32) -> i32 { return a / b; }
fn div_u32(a: u32, b: u32) -> u32 { return a / b; }
// sign keeps ±0 and NaN (WGSL's sign may not).
fn sign_f32(x: f32) -> f32 { return select(select(x, -1.0f, ord_lt(x, 0.0f)), 1.0f, ord_lt(0.0f, x)); }
`;
