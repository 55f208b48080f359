// The one semantic oracle: what every op means, in f32 (through Math.fround) and 32-bit integers.
// Constant folding, the JS renderer's tests and the property tests all use these tables, so a
// disagreement between a backend and this file is a backend bug (or a documented tolerance in
// props/bounds.ts), never a matter of opinion.
//
// Values are JS numbers already rounded to their type: f32 by Math.fround, i32 by `| 0`, u32 by
// `>>> 0`, bool as 0 or 1.

import type { BinaryOp, Expr, NumType, Type, UnaryOp } from './ir.ts';
import { isGroupReduction, toType, topo } from './ir.ts';

const bits = new Uint32Array(1);
const float = new Float32Array(bits.buffer);
const int = new Int32Array(bits.buffer);

const f = Math.fround;

/** Round half to even, keeping the sign of zero (WGSL `round`). */
export function roundEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Round half away from zero, keeping the sign of zero. */
export function roundAway(x: number): number {
  const r = Math.floor(Math.abs(x) + 0.5);
  return x < 0 || Object.is(x, -0) ? -r : r;
}

/** IEEE minNum/maxNum: a NaN operand is ignored; on ties (±0) the first operand wins. */
export function fmin(a: number, b: number): number {
  return a !== a ? b : b < a ? b : a;
}
export function fmax(a: number, b: number): number {
  return a !== a ? b : b > a ? b : a;
}

type UnaryFn = (x: number, t: Type) => number;
type BinaryFn = (a: number, b: number, t: Type) => number;

// Mapped over the op unions: a new op without a meaning here is a type error.
export const unarySemantics: { [K in UnaryOp]: UnaryFn } = {
  neg: (x, t) => toType(t, -x),
  abs: (x, t) => toType(t, Math.abs(x)),
  sqrt: (x) => f(Math.sqrt(x)),
  rsqrt: (x) => f(1 / Math.sqrt(x)),
  exp2: (x) => f(2 ** x),
  log2: (x) => f(Math.log2(x)),
  floor: (x) => Math.floor(x),
  ceil: (x) => Math.ceil(x),
  trunc: (x) => Math.trunc(x),
  roundEven: (x) => roundEven(x),
  roundAway: (x) => roundAway(x),
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : x),
  not: (x, t) => (t === 'bool' ? (x ? 0 : 1) : toType(t, ~x)),
  isNan: (x) => (x !== x ? 1 : 0),
  isFinite: (x) => (Number.isFinite(x) ? 1 : 0),
};

function intDiv(a: number, b: number, t: Type): number {
  // WGSL: division by zero, and i32 MIN / −1, give the dividend.
  if (b === 0 || (t === 'i32' && a === -2147483648 && b === -1)) return a;
  return toType(t, Math.trunc(a / b));
}

export const binarySemantics: { [K in BinaryOp]: BinaryFn } = {
  add: (a, b, t) => toType(t, a + b),
  sub: (a, b, t) => toType(t, a - b),
  mul: (a, b, t) => (t === 'f32' ? f(a * b) : toType(t, Math.imul(a, b))),
  div: (a, b, t) => (t === 'f32' ? f(a / b) : intDiv(a, b, t)),
  min: (a, b, t) => (t === 'f32' ? fmin(a, b) : Math.min(a, b)),
  max: (a, b, t) => (t === 'f32' ? fmax(a, b) : Math.max(a, b)),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
  and: (a, b, t) => (t === 'bool' ? a & b : toType(t, a & b)),
  or: (a, b, t) => (t === 'bool' ? a | b : toType(t, a | b)),
  xor: (a, b, t) => (t === 'bool' ? a ^ b : toType(t, a ^ b)),
  // Shift amounts are taken modulo 32, as WGSL does for non-constant shifts.
  shl: (a, b, t) => toType(t, a << (b & 31)),
  shr: (a, b, t) => (t === 'i32' ? a >> (b & 31) : a >>> (b & 31)),
};

/** Numeric conversion. f32 → integer truncates toward zero, saturates, and maps NaN to 0. */
export function convert(from: Type, to: Type, x: number): number {
  if (from === to) return x;
  if (to === 'bool') return x !== 0 ? 1 : 0;
  if (from === 'f32' && to !== 'f32') {
    if (x !== x) return 0;
    const t = Math.trunc(x);
    // `| 0` / `>>> 0`: trunc(−0.5) is −0, which is no 32-bit integer (WGSL and gpu.js give +0).
    return to === 'i32'
      ? Math.max(-2147483648, Math.min(2147483647, t)) | 0
      : Math.max(0, Math.min(4294967295, t)) >>> 0;
  }
  return toType(to, x);
}

/**
 * Reinterpret 32 bits. NaN payloads are not part of the semantics (JS engines, GPUs and constant
 * folding each produce different ones), so the bits of any f32 NaN read as 0x7fc00000, the
 * canonical quiet NaN.
 */
export function reinterpret(from: Type, to: NumType, x: number): number {
  if (from === to) return x;
  if (from === 'f32' && x !== x) return to === 'f32' ? x : 0x7fc00000;
  if (from === 'f32') float[0] = x;
  else if (from === 'i32') int[0] = x;
  else bits[0] = x;
  return to === 'f32' ? float[0]! : to === 'i32' ? int[0]! : bits[0]!;
}

/** The value of one node given its children's values (not for loads, uniforms or groupMax). */
export function apply(e: Expr, c: readonly number[]): number {
  const x = c[0]!;
  switch (e.op) {
    case 'const':
      return e.value;
    case 'unary':
      return unarySemantics[e.fn](x, e.type);
    case 'binary':
      return binarySemantics[e.fn](x, c[1]!, e.a.type);
    case 'select':
      return x ? c[1]! : c[2]!;
    case 'cast':
      return convert(e.x.type, e.type, x);
    case 'bitcast':
      return reinterpret(e.x.type, e.type as NumType, x);
    case 'load':
    case 'uniform':
    case 'groupMax':
    case 'groupSum':
    case 'reduce':
      throw new Error(`semantics.apply: ${e.op} has no value without a kernel context`);
  }
}

/** The leaves an evaluation needs: loads and uniforms by name, groupMax by node. */
export interface Env {
  load(field: string, axis: 'element' | 'group'): number;
  uniform(name: string): number;
  groupMax?(e: Expr): number;
  /** The value of a groupSum (summed in its group context), like groupMax. */
  groupSum?(e: Expr): number;
}

/** Evaluate a DAG with the oracle, memoising shared nodes. */
export function evaluate(root: Expr, env: Env, memo: Map<Expr, number> = new Map()): number {
  // Children first, without recursion (expressions may be arbitrarily deep); a groupMax's argument
  // is the environment's business.
  for (const e of topo([root], (x) => !isGroupReduction(x) && x.op !== 'reduce' && !memo.has(x))) {
    if (memo.has(e)) continue;
    const at = (c: Expr) => memo.get(c)!;
    let v: number;
    switch (e.op) {
      case 'load':
        v = env.load(e.field, e.axis);
        break;
      case 'uniform':
        v = env.uniform(e.name);
        break;
      case 'groupMax':
        if (!env.groupMax) throw new Error('semantics.evaluate: groupMax needs a group context');
        v = env.groupMax(e);
        break;
      case 'groupSum':
        if (!env.groupSum) throw new Error('semantics.evaluate: groupSum needs a group context');
        v = env.groupSum(e);
        break;
      case 'reduce':
        throw new Error('semantics.evaluate: a reduce has no value before compiler/ir/phases.ts splits its kernel');
      case 'unary':
      case 'cast':
      case 'bitcast':
        v = apply(e, [at(e.x)]);
        break;
      case 'binary':
        v = apply(e, [at(e.a), at(e.b)]);
        break;
      case 'select':
        v = at(e.cond) ? at(e.a) : at(e.b);
        break;
      case 'const':
        v = e.value;
        break;
    }
    memo.set(e, v);
  }
  return memo.get(root)!;
}
