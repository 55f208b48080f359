// One IR node → gpu.js source, by the op tables below (mapped over the op unions, so an op this
// renderer forgets is a type error). f32 and bool values are one f32 each (bool as 0/1); i32/u32
// values are Pairs of exact 16-bit halves (ints.ts); conversions between them live in bits.ts.

import type { BinaryOp, Expr, Type, UnaryOp } from '../../ir/ir.ts';
import type { Emit, Pair } from './emit.ts';
import * as bits from './bits.ts';
import * as int from './ints.ts';

export type Value = string | Pair;
const MAX_F32 = 3.4028234663852886e38;

export class GpujsRenderError extends Error {}

const isPair = (v: Value): v is Pair => typeof v !== 'string';
export const asF = (v: Value): string => {
  if (isPair(v)) throw new GpujsRenderError('gpujs: expected a scalar');
  return v;
};
export const asP = (v: Value): Pair => {
  if (!isPair(v)) throw new GpujsRenderError('gpujs: expected an integer pair');
  return v;
};

type U = (e: Emit, x: Value, t: Type) => Value;
type B = (e: Emit, a: Value, b: Value, t: Type, bConst: number | undefined) => Value;

/** Round to integer in f32 without an f32 `x + 0.5` (which rounds 0.49999997 + 0.5 up to 1). */
function roundWith(e: Emit, x: string, pick: (fl: string, d: string) => string): string {
  const a = e.let(`Math.abs(${x})`);
  const fl = e.let(`Math.floor(${a})`);
  const d = e.let(`${a} - ${fl}`); // exact: a and ⌊a⌋ are within a factor of 2, or ⌊a⌋ = 0
  const r = e.let(pick(fl, d));
  // |x| ≥ 2^23 is already an integer (and ±∞); NaN and ±0 pass through with their sign.
  return e.let(`(${a} >= 8388608 || ${e.nan(x)} || ${x} == 0) ? ${x} : (${x} < 0 ? -${r} : ${r})`);
}

export const unary: { [K in UnaryOp]: U } = {
  neg: (e, x, t) => (t === 'f32' ? e.let(`-${asF(x)}`) : int.neg(e, asP(x))),
  abs: (e, x, t) => {
    if (t === 'f32') return e.let(`Math.abs(${asF(x)})`);
    const p = asP(x);
    return int.choose(e, e.let(`${p.h} >= 32768 ? 1 : 0`), int.neg(e, p), p);
  },
  sqrt: (e, x) => e.f(`Math.sqrt(${asF(x)})`),
  rsqrt: (e, x) => e.f(`1 / Math.sqrt(${asF(x)})`),
  exp2: (e, x) => e.f(`Math.pow(2, ${asF(x)})`),
  log2: (e, x) => e.f(`Math.log2(${asF(x)})`),
  floor: (e, x) => e.let(`Math.floor(${asF(x)})`),
  ceil: (e, x) => e.let(`Math.ceil(${asF(x)})`),
  trunc: (e, x) => e.let(`${asF(x)} < 0 ? Math.ceil(${asF(x)}) : Math.floor(${asF(x)})`),
  roundEven: (e, x) =>
    roundWith(e, asF(x), (fl, d) => `${d} > 0.5 ? ${fl} + 1 : (${d} < 0.5 ? ${fl} : ${fl} + ${e.mod(fl, 1)})`),
  roundAway: (e, x) => roundWith(e, asF(x), (fl, d) => `${d} >= 0.5 ? ${fl} + 1 : ${fl}`),
  sign: (e, x, t) => {
    if (t === 'f32') {
      const v = asF(x);
      return e.let(`${v} > 0 ? 1 : (${v} < 0 ? -1 : ${v})`);
    }
    const p = asP(x);
    const negative = e.let(`${p.h} >= 32768 ? 1 : 0`),
      zero = int.equal(e, p, { h: '0', l: '0' });
    return { h: e.let(`${negative} * 65535`), l: e.let(`${negative} > 0.5 ? 65535 : 1 - ${zero}`) };
  },
  not: (e, x, t) => (t === 'bool' ? e.let(`1 - ${asF(x)}`) : int.not(e, asP(x))),
  isNan: (e, x) => e.let(`${e.nan(asF(x))} ? 1 : 0`),
  isFinite: (e, x) => e.let(`Math.abs(${asF(x)}) <= ${e.lit(MAX_F32)} ? 1 : 0`),
};

const fArith =
  (op: string): B =>
  (e, a, b, t, c) =>
    t === 'f32' ? e.f(`${asF(a)} ${op} ${asF(b)}`) : intArith(op)(e, a, b, t, c);
const intArith =
  (op: string): B =>
  (e, a, b) => {
    const x = asP(a),
      y = asP(b);
    return op === '+' ? int.add(e, x, y) : op === '-' ? int.sub(e, x, y) : int.mul(e, x, y);
  };
/** IEEE minNum/maxNum as semantics.ts has them: a NaN operand is ignored, ties keep the first. */
const minMax =
  (lt: boolean): B =>
  (e, a, b, t) => {
    if (t === 'f32' || t === 'bool') {
      const x = asF(a),
        y = asF(b);
      return e.let(`${e.nan(x)} ? ${y} : (${y} ${lt ? '<' : '>'} ${x} ? ${y} : ${x})`);
    }
    const x = asP(a),
      y = asP(b);
    const yFirst = lt ? int.less(e, y, x, t === 'i32', false) : int.less(e, x, y, t === 'i32', false);
    return int.choose(e, yFirst, y, x);
  };
const compare =
  (op: '<' | '<='): B =>
  (e, a, b, t) =>
    t === 'f32' || t === 'bool'
      ? e.let(`${asF(a)} ${op} ${asF(b)} ? 1 : 0`)
      : int.less(e, asP(a), asP(b), t === 'i32', op === '<=');
const equality =
  (eq: boolean): B =>
  (e, a, b, t) => {
    const r = t === 'f32' || t === 'bool' ? e.let(`${asF(a)} == ${asF(b)} ? 1 : 0`) : int.equal(e, asP(a), asP(b));
    return eq ? r : e.let(`1 - ${r}`);
  };
const logic =
  (op: int.Bitwise, boolOp: (x: string, y: string) => string): B =>
  (e, a, b, t, c) =>
    t === 'bool' ? e.let(boolOp(asF(a), asF(b))) : int.bitwise(e, op, asP(a), asP(b), c);

/** Binary ops; `t` is the operand type (the result is bool for comparisons). */
export const binary: { [K in BinaryOp]: B } = {
  add: fArith('+'),
  sub: fArith('-'),
  mul: fArith('*'),
  div: (e, a, b, t) => (t === 'f32' ? e.f(`${asF(a)} / ${asF(b)}`) : int.divide(e, asP(a), asP(b), t === 'i32')),
  min: minMax(true),
  max: minMax(false),
  lt: compare('<'),
  le: compare('<='),
  eq: equality(true),
  ne: equality(false),
  and: logic('and', (x, y) => `${x} * ${y}`),
  or: logic('or', (x, y) => `Math.max(${x}, ${y})`),
  xor: logic('xor', (x, y) => `Math.abs(${x} - ${y})`),
  shl: (e, a, b, _t, c) => int.shift(e, 'shl', asP(a), asP(b), false, c),
  shr: (e, a, b, t, c) => int.shift(e, 'shr', asP(a), asP(b), t === 'i32', c),
};

export function cast(e: Emit, x: Value, from: Type, to: Type): Value {
  if (from === to) return x;
  if (to === 'bool') {
    if (isPair(x)) return e.let(`(${x.h} != 0 || ${x.l} != 0) ? 1 : 0`);
    return e.let(`${x} != 0 ? 1 : 0`);
  }
  if (from === 'bool') return to === 'f32' ? x : { h: '0', l: asF(x) };
  if (from === 'f32') return bits.toInt(e, asF(x), to === 'i32');
  if (to === 'f32') return bits.toFloat(e, asP(x), from === 'i32');
  return x; // i32 ↔ u32 keeps the bits
}

export function bitcast(e: Emit, x: Value, from: Type, to: Type): Value {
  if (from === to || (from !== 'f32' && to !== 'f32')) return x;
  return to === 'f32' ? bits.floatOf(e, asP(x)) : bits.bitsOf(e, asF(x));
}

/** The integer constant of a node, if it is one (lets masks and shifts specialise). */
export const constBits = (x: Expr): number | undefined =>
  x.op === 'const' && x.type !== 'f32' && x.type !== 'bool' ? x.value >>> 0 : undefined;
