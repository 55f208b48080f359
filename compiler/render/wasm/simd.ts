// WebAssembly SIMD meanings of the IR ops, as folded WAT s-expressions over v128 values. Every value
// is a v128 of four lanes: f32 as f32x4, i32/u32 as i32x4, bool as a lane mask (all ones or zero).
// Each entry reproduces compiler/ir/semantics.ts bit for bit; where WebAssembly's own instruction
// differs (min/max with NaN, round-half-away, NaN bits on bitcast, rsqrt's f64 evaluation), the
// entry composes exact instructions instead. Operands are always `local.get`s or constants, so
// repeating one in an expression costs nothing.

import type { BinaryOp, Type, UnaryOp } from '../../ir/ir.ts';

type U = (x: string, t: Type) => string;
type B = (a: string, b: string, t: Type) => string;

const hex = (u: number) => '0x' + (u >>> 0).toString(16);
export const splatI = (u: number) => `(v128.const i32x4 ${hex(u)} ${hex(u)} ${hex(u)} ${hex(u)})`;
const bits = new Uint32Array(1),
  float = new Float32Array(bits.buffer);
/** An f32 splat by its bit pattern: −0 and NaN survive exactly. */
export const splatF = (v: number) => {
  float[0] = v;
  return splatI(v !== v ? 0x7fc00000 : bits[0]!);
};

export const ONES = splatI(0xffffffff),
  ZERO = splatI(0);
const sel = (a: string, b: string, mask: string) => `(v128.bitselect ${a} ${b} ${mask})`;
const isNan = (x: string) => `(f32x4.ne ${x} ${x})`;
// Per lane through scalar code: ops with no SIMD instruction (integer ÷, per-lane shifts, exp2).
const lanes = (f: (lane: (v: string) => string) => string, shape: 'i32x4' | 'f32x4') => {
  let acc = `(${shape}.splat ${f((v) => `(${shape}.extract_lane 0 ${v})`)})`;
  for (let j = 1; j < 4; j++)
    acc = `(${shape}.replace_lane ${j} ${acc} ${f((v) => `(${shape}.extract_lane ${j} ${v})`)})`;
  return acc;
};
const viaJs = (fn: string) => (x: string) =>
  lanes((l) => `(f32.demote_f64 (call $${fn} (f64.promote_f32 ${l(x)})))`, 'f32x4');
// 1/√x in f64 and then one rounding, as semantics.ts evaluates it (two f32 roundings differ).
const rsqrt = (x: string) => {
  const half = (v: string) =>
    `(f32x4.demote_f64x2_zero (f64x2.div (v128.const f64x2 1 1) (f64x2.sqrt (f64x2.promote_low_f32x4 ${v}))))`;
  return `(i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${half(x)} ${half(`(i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 ${x} ${x})`)})`;
};
// Half away from zero, exactly: trunc, then a step of ±1 where the dropped fraction is ≥ ½ (x − t
// is exact in f32; t ± 1 is exact below 2^24, and above it x is already an integer).
const roundAway = (x: string) => {
  const t = `(f32x4.trunc ${x})`;
  const step = `(v128.or (v128.and ${x} ${splatI(0x80000000)}) ${splatF(1)})`;
  return sel(`(f32x4.add ${t} ${step})`, t, `(f32x4.ge (f32x4.abs (f32x4.sub ${x} ${t})) ${splatF(0.5)})`);
};

const int = (t: Type) => t !== 'f32';
export const unary: { [K in UnaryOp]: U } = {
  neg: (x, t) => (t === 'f32' ? `(f32x4.neg ${x})` : `(i32x4.neg ${x})`),
  abs: (x, t) => (t === 'f32' ? `(f32x4.abs ${x})` : t === 'i32' ? `(i32x4.abs ${x})` : x),
  sqrt: (x) => `(f32x4.sqrt ${x})`,
  rsqrt,
  exp2: viaJs('exp2'),
  log2: viaJs('log2'),
  floor: (x, t) => (int(t) ? x : `(f32x4.floor ${x})`),
  ceil: (x, t) => (int(t) ? x : `(f32x4.ceil ${x})`),
  trunc: (x, t) => (int(t) ? x : `(f32x4.trunc ${x})`),
  roundEven: (x, t) => (int(t) ? x : `(f32x4.nearest ${x})`),
  roundAway: (x, t) => (int(t) ? x : roundAway(x)),
  sign: (x, t) =>
    t === 'f32'
      ? sel(splatF(1), sel(splatF(-1), x, `(f32x4.lt ${x} ${ZERO})`), `(f32x4.gt ${x} ${ZERO})`)
      : t === 'i32'
        ? sel(splatI(1), sel(splatI(-1), x, `(i32x4.lt_s ${x} ${ZERO})`), `(i32x4.gt_s ${x} ${ZERO})`)
        : sel(splatI(1), x, `(i32x4.ne ${x} ${ZERO})`),
  not: (x) => `(v128.not ${x})`,
  isNan: (x, t) => (t === 'f32' ? isNan(x) : ZERO),
  isFinite: (x, t) => (t === 'f32' ? `(f32x4.eq (f32x4.sub ${x} ${x}) ${ZERO})` : ONES),
};

const cmp =
  (f: string, s: string, u: string): B =>
  (a, b, t) =>
    `(${t === 'f32' ? `f32x4.${f}` : t === 'i32' ? `i32x4.${s}` : `i32x4.${u}`} ${a} ${b})`;
const idiv = (a: string, b: string, t: Type) =>
  lanes((l) => `(call $idiv_${t === 'i32' ? 's' : 'u'} ${l(a)} ${l(b)})`, 'i32x4');
export const binary: { [K in BinaryOp]: B } = {
  add: (a, b, t) => `(${t === 'f32' ? 'f32x4' : 'i32x4'}.add ${a} ${b})`,
  sub: (a, b, t) => `(${t === 'f32' ? 'f32x4' : 'i32x4'}.sub ${a} ${b})`,
  mul: (a, b, t) => `(${t === 'f32' ? 'f32x4' : 'i32x4'}.mul ${a} ${b})`,
  div: (a, b, t) => (t === 'f32' ? `(f32x4.div ${a} ${b})` : idiv(a, b, t)),
  // minNum/maxNum with the first operand winning ties: pmin(a, b) is `b < a ? b : a` exactly,
  // pmax(a, b) is `a < b ? b : a`; only a NaN `a` needs a select.
  min: (a, b, t) =>
    t === 'f32' ? sel(b, `(f32x4.pmin ${a} ${b})`, isNan(a)) : `(i32x4.${t === 'i32' ? 'min_s' : 'min_u'} ${a} ${b})`,
  max: (a, b, t) =>
    t === 'f32' ? sel(b, `(f32x4.pmax ${a} ${b})`, isNan(a)) : `(i32x4.${t === 'i32' ? 'max_s' : 'max_u'} ${a} ${b})`,
  // Masks compare unsigned: false (0) < true (all ones).
  lt: cmp('lt', 'lt_s', 'lt_u'),
  le: cmp('le', 'le_s', 'le_u'),
  eq: (a, b, t) => `(${t === 'f32' ? 'f32x4' : 'i32x4'}.eq ${a} ${b})`,
  ne: (a, b, t) => `(${t === 'f32' ? 'f32x4' : 'i32x4'}.ne ${a} ${b})`,
  and: (a, b) => `(v128.and ${a} ${b})`,
  or: (a, b) => `(v128.or ${a} ${b})`,
  xor: (a, b) => `(v128.xor ${a} ${b})`,
  shl: (a, b) => lanes((l) => `(i32.shl ${l(a)} ${l(b)})`, 'i32x4'),
  shr: (a, b, t) => lanes((l) => `(i32.${t === 'i32' ? 'shr_s' : 'shr_u'} ${l(a)} ${l(b)})`, 'i32x4'),
};

/** A shift by an amount equal in every lane (a constant or a group-level value): one instruction. */
export const uniformShift = (fn: 'shl' | 'shr', a: string, amount: string, t: Type) =>
  `(i32x4.${fn === 'shl' ? 'shl' : t === 'i32' ? 'shr_s' : 'shr_u'} ${a} ${amount})`;

export function cast(x: string, from: Type, to: Type): string {
  if (from === to) return x;
  if (to === 'bool') return from === 'f32' ? `(f32x4.ne ${x} ${ZERO})` : `(i32x4.ne ${x} ${ZERO})`;
  if (from === 'bool') return `(v128.and ${x} ${to === 'f32' ? splatF(1) : splatI(1)})`;
  // trunc_sat is the IR's conversion exactly: toward zero, saturating, NaN → 0.
  if (from === 'f32') return to === 'i32' ? `(i32x4.trunc_sat_f32x4_s ${x})` : `(i32x4.trunc_sat_f32x4_u ${x})`;
  if (to === 'f32') return from === 'i32' ? `(f32x4.convert_i32x4_s ${x})` : `(f32x4.convert_i32x4_u ${x})`;
  return x; // i32 ↔ u32 keep the bits
}

/** Reinterpretation; the bits of any NaN read as the canonical 0x7fc00000 (semantics.ts). */
export const bitcast = (x: string, from: Type): string => (from === 'f32' ? sel(splatI(0x7fc00000), x, isNan(x)) : x);

/** A constant of any type, in every lane. */
export function constant(v: number, t: Type): string {
  if (t === 'f32') return splatF(v);
  if (t === 'bool') return v ? ONES : ZERO;
  return splatI(v);
}

/** Module-level helpers the op tables call. */
export const HELPERS = `
  (func $idiv_s (param $a i32) (param $b i32) (result i32)
    (if (result i32) (i32.or (i32.eqz (local.get $b)) (i32.and (i32.eq (local.get $a) (i32.const 0x80000000)) (i32.eq (local.get $b) (i32.const -1))))
      (then (local.get $a)) (else (i32.div_s (local.get $a) (local.get $b)))))
  (func $idiv_u (param $a i32) (param $b i32) (result i32)
    (if (result i32) (i32.eqz (local.get $b)) (then (local.get $a)) (else (i32.div_u (local.get $a) (local.get $b)))))
  ;; The group maximum from four lane maxima: the larger value, and on a tie (only ±0 can tie
  ;; without being bit-identical) the one first in element order, as a sequential pass finds it.
  (func $gmax (param $m v128) (param $ix v128) (result v128) (local $v f32) (local $i i32) (local $w f32) (local $j i32)
    (local.set $v (f32x4.extract_lane 0 (local.get $m))) (local.set $i (i32x4.extract_lane 0 (local.get $ix)))
    ${[1, 2, 3]
      .map(
        (
          j,
        ) => `(local.set $w (f32x4.extract_lane ${j} (local.get $m))) (local.set $j (i32x4.extract_lane ${j} (local.get $ix)))
    (if (i32.or (f32.ne (local.get $v) (local.get $v)) (i32.or (f32.gt (local.get $w) (local.get $v)) (i32.and (f32.eq (local.get $w) (local.get $v)) (i32.lt_u (local.get $j) (local.get $i)))))
      (then (local.set $v (local.get $w)) (local.set $i (local.get $j))))`,
      )
      .join('\n    ')}
    (f32x4.splat (local.get $v)))
`;
