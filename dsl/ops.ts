// Typed scalar-expression builders: the language optimizers and codecs are written in.
//
// Every builder checks its operand types when it is called and throws a TypeError naming the op
// and the types, so an ill-typed update fails where it is written, not inside a renderer. Plain
// numbers lift to constants of the other operand's type (f32 when there is none); booleans lift
// to bool constants.

import * as ir from '../compiler/ir/ir.ts';
import type { Axis, BinaryOp, Expr, NumType, Storage, Type, UnaryOp } from '../compiler/ir/ir.ts';

export type { Expr, Type, NumType, Storage, Axis };
/** Anything a builder accepts: an expression, or a literal to lift. */
export type Like = Expr | number | boolean;

const isExpr = (x: Like): x is Expr => typeof x === 'object' && x !== null && typeof (x as Expr).op === 'string';

/** What a builder got instead of an expression, a number or a boolean (undefined from a typo, a string, …). */
function notLike(x: unknown, op?: string): never {
  const what =
    x === undefined
      ? 'undefined (a misspelled field or state?)'
      : x === null
        ? 'null'
        : typeof x === 'object'
          ? `a ${(x as object).constructor?.name ?? 'object'}`
          : `the ${typeof x} ${JSON.stringify(x)}`;
  throw new TypeError(`${op ? `${op}: ` : ''}expected an expression, a number or a boolean, got ${what}`);
}

function typeName(x: Like): string {
  return isExpr(x) ? x.type : typeof x === 'boolean' ? 'bool literal' : 'number literal';
}

/** Lift a literal; `hint` is the type it should take (from the other operand). */
export function lift(x: Like, hint: Type = 'f32', op?: string): Expr {
  if (isExpr(x)) return x;
  if (typeof x === 'boolean') return ir.constant('bool', x ? 1 : 0);
  if (typeof x !== 'number') notLike(x, op);
  if (hint === 'bool') throw new TypeError(`cannot use the number ${x} where a bool is expected`);
  if (hint !== 'f32' && !Number.isInteger(x))
    throw new TypeError(`the number ${x} is not an integer, but a ${hint} is expected`);
  // A 32-bit pattern (i32 or u32 spelling) is fine; anything wider would wrap silently (2^32 → 0).
  if (hint !== 'f32' && (x < -(2 ** 31) || x >= 2 ** 32))
    throw new RangeError(`the number ${x} does not fit in 32 bits, but a ${hint} is expected`);
  return ir.constant(hint, x);
}

function fail(op: string, ...xs: Like[]): never {
  throw new TypeError(`${op}: operand types (${xs.map(typeName).join(', ')}) are not allowed`);
}

/** Lift two operands to one common type, or throw naming `op`. */
function unify(op: string, a: Like, b: Like): [Expr, Expr] {
  const t = isExpr(a) ? a.type : isExpr(b) ? b.type : typeof a === 'boolean' ? 'bool' : 'f32';
  const x = lift(a, t, op),
    y = lift(b, t, op);
  if (x.type !== y.type) fail(op, a, b);
  return [x, y];
}

function bin(fn: BinaryOp, allowed: readonly Type[], result?: Type) {
  return (a: Like, b: Like): Expr => {
    const [x, y] = unify(fn, a, b);
    if (!allowed.includes(x.type)) fail(fn, a, b);
    return ir.binary(fn, result ?? x.type, x, y);
  };
}

function un(fn: UnaryOp, allowed: readonly Type[], result?: Type) {
  return (a: Like): Expr => {
    const x = lift(a, 'f32', fn);
    if (!allowed.includes(x.type)) fail(fn, a);
    return ir.unary(fn, result ?? x.type, x);
  };
}

const NUM = ['f32', 'i32', 'u32'] as const;
const INT = ['i32', 'u32'] as const;
const LOGIC = ['bool', 'i32', 'u32'] as const;
const F = ['f32'] as const;

export const add = bin('add', NUM);
export const sub = bin('sub', NUM);
export const mul = bin('mul', NUM);
export const div = bin('div', NUM);
export const min = bin('min', NUM);
export const max = bin('max', NUM);
export const lt = bin('lt', NUM, 'bool');
export const le = bin('le', NUM, 'bool');
export const eq = bin('eq', [...NUM, 'bool'], 'bool');
export const ne = bin('ne', [...NUM, 'bool'], 'bool');
export const gt = (a: Like, b: Like): Expr => lt(b, a);
export const ge = (a: Like, b: Like): Expr => le(b, a);
export const and = bin('and', LOGIC);
export const or = bin('or', LOGIC);
export const xor = bin('xor', LOGIC);

export const neg = un('neg', ['f32', 'i32']);
export const abs = un('abs', ['f32', 'i32']);
export const sqrt = un('sqrt', F);
export const rsqrt = un('rsqrt', F);
export const exp2 = un('exp2', F);
export const log2 = un('log2', F);
export const floor = un('floor', F);
export const ceil = un('ceil', F);
export const trunc = un('trunc', F);
/** Round half to even (IEEE default rounding). */
export const roundEven = un('roundEven', F);
/** Round half away from zero. */
export const roundAway = un('roundAway', F);
/** −1, 0 or +1 (±0 stays ±0; NaN stays NaN). */
export const sign = un('sign', ['f32', 'i32']);
export const not = un('not', LOGIC);
export const isNan = un('isNan', F, 'bool');
export const isFinite = un('isFinite', F, 'bool');

/** Shifts: the amount is a u32 (a literal lifts to u32) and is taken modulo 32. */
function shift(fn: 'shl' | 'shr') {
  return (a: Like, b: Like): Expr => {
    const x = lift(a, 'u32', fn),
      y = lift(b, 'u32', fn);
    if (!(INT as readonly Type[]).includes(x.type) || y.type !== 'u32') fail(fn, a, b);
    return ir.binary(fn, x.type, x, y);
  };
}
export const shl = shift('shl');
/** Logical for u32, arithmetic for i32. */
export const shr = shift('shr');

/** `cond ? a : b`, elementwise; both branches are evaluated (there are no side effects). */
export function select(cond: Like, a: Like, b: Like): Expr {
  const c = lift(cond, 'bool', 'select');
  if (c.type !== 'bool') fail('select', cond, a, b);
  const [x, y] = unify('select', a, b);
  return ir.select(x.type, c, x, y);
}
export const where = select;

export const clamp = (x: Like, lo: Like, hi: Like): Expr => min(max(x, lo), hi);
/** a + t·(b − a) */
export const lerp = (a: Like, b: Like, t: Like): Expr => add(a, mul(t, sub(b, a)));
export const square = (x: Like): Expr => mul(x, x);

/** Numeric conversions (f32 → integer truncates toward zero and saturates; NaN → 0). */
export function cast(to: Type, x: Like): Expr {
  const e = lift(x, to);
  return e.type === to ? e : ir.cast(to, e);
}
export const f32 = (x: Like): Expr => cast('f32', x);
export const i32 = (x: Like): Expr => cast('i32', x);
export const u32 = (x: Like): Expr => cast('u32', x);

/** Reinterpret the 32 bits of an f32, i32 or u32 value. */
export function bitcast(to: NumType, x: Like): Expr {
  const e = lift(x, to);
  if (e.type === 'bool') fail('bitcast', x);
  return e.type === to ? e : ir.bitcast(to, e);
}
export const asF32 = (x: Like): Expr => bitcast('f32', x);
export const asU32 = (x: Like): Expr => bitcast('u32', x);
export const asI32 = (x: Like): Expr => bitcast('i32', x);

/** The current element (or group, for `axis: 'group'`) of a stored field. */
export const field = (name: string, storage: Storage, axis: Axis = 'element'): Expr => ir.load(name, storage, axis);
/** A scalar the runtime sets per call without recompiling (learning rate, step, …). */
export const uniform = (name: string): Expr => ir.uniform(name);
/** The maximum of an f32 expression over the current group (NaN elements are ignored). */
export function groupMax(x: Like): Expr {
  const e = lift(x, 'f32', 'groupMax');
  if (e.type !== 'f32') fail('groupMax', x);
  return ir.groupMax(e);
}
/** The sum of an f32 expression over the current group, in element order (reduction passes use it). */
export function groupSum(x: Like): Expr {
  const e = lift(x, 'f32', 'groupSum');
  if (e.type !== 'f32') fail('groupSum', x);
  return ir.groupSum(e);
}
function reduction(fn: ir.ReduceFn, scope: ir.ReduceScope, name: string) {
  return (x: Like): Expr => {
    const e = lift(x, 'f32', name);
    if (e.type !== 'f32') fail(name, x);
    return ir.reduce(fn, scope, e);
  };
}
// Reductions over a tensor or every tensor of a step (compiler/ir/phases.ts splits the step into
// reduction passes and the update). An element whose gradient is NaN/±Inf, or a tensor without a
// gradient this step, contributes nothing (optim/fuse.ts); padding elements contribute x at zero fields.
/** The sum of x over the current tensor's elements (e.g. ‖θ‖² = tensorSum(mul(p, p))). */
export const tensorSum = reduction('sum', 'tensor', 'tensorSum');
/** The sum of x over every element of every tensor stepped (e.g. the squared global gradient norm). */
export const globalSum = reduction('sum', 'global', 'globalSum');
/** The maximum of x over the current tensor's elements (NaN ignored; −∞ when nothing counts). */
export const tensorMax = reduction('max', 'tensor', 'tensorMax');
/** The maximum of x over every element of every tensor stepped. */
export const globalMax = reduction('max', 'global', 'globalMax');
export const constant = (type: Type, value: number): Expr => ir.constant(type, value);
