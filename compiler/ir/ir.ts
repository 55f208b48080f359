// The one IR. Everything upstream (dsl/, codecs, optimizers) only builds `Expr`; everything
// downstream (passes, renderers, the semantic oracle) only reads it.
//
// Nodes are hash-consed: the smart constructors below return the one existing node for a given
// (op, type, payload, children), so structural equality is `===`, memo tables are `Map<Expr, …>`
// and common-subexpression elimination needs no separate pass over values.

/** Scalar types of values inside a kernel. `bool` only comes from comparisons and logic. */
export type Type = 'f32' | 'i32' | 'u32' | 'bool';
export type NumType = 'f32' | 'i32' | 'u32';

/** How a field is stored in memory. Loads widen it to a kernel `Type`; stores narrow it. */
export type Storage = 'f32' | 'i32' | 'u32' | 'u16' | 'i16' | 'u8' | 'i8';

/** `element`: one value per element; `group`: one value per group of `groupSize` elements. */
export type Axis = 'element' | 'group';

export const unaryOps = [
  'neg',
  'abs',
  'sqrt',
  'rsqrt',
  'exp2',
  'log2',
  'floor',
  'ceil',
  'trunc',
  'roundEven',
  'roundAway',
  'sign',
  'not',
  'isNan',
  'isFinite',
] as const;
export type UnaryOp = (typeof unaryOps)[number];

export const binaryOps = [
  'add',
  'sub',
  'mul',
  'div',
  'min',
  'max',
  'lt',
  'le',
  'eq',
  'ne',
  'and',
  'or',
  'xor',
  'shl',
  'shr',
] as const;
export type BinaryOp = (typeof binaryOps)[number];

interface Node {
  readonly id: number;
  readonly type: Type;
}
/** A literal. `value` is already rounded to its type (f32 through Math.fround). */
export interface Const extends Node {
  readonly op: 'const';
  readonly value: number;
}
/** The current element (or the current group, for a group-axis field) of a field. */
export interface Load extends Node {
  readonly op: 'load';
  readonly field: string;
  readonly storage: Storage;
  readonly axis: Axis;
}
/** A scalar set per call (and per parameter-group row): learning rate, bias corrections, … */
export interface Uniform extends Node {
  readonly op: 'uniform';
  readonly name: string;
}
export interface Unary extends Node {
  readonly op: 'unary';
  readonly fn: UnaryOp;
  readonly x: Expr;
}
export interface Binary extends Node {
  readonly op: 'binary';
  readonly fn: BinaryOp;
  readonly a: Expr;
  readonly b: Expr;
}
export interface Select extends Node {
  readonly op: 'select';
  readonly cond: Expr;
  readonly a: Expr;
  readonly b: Expr;
}
/** Numeric conversion (f32 → int truncates and saturates, NaN → 0; i32 ↔ u32 keeps the bits). */
export interface Cast extends Node {
  readonly op: 'cast';
  readonly x: Expr;
}
/** Reinterpretation of the 32 bits between f32, i32 and u32. */
export interface Bitcast extends Node {
  readonly op: 'bitcast';
  readonly x: Expr;
}
/** The maximum of `x` over the elements of the current group (what a group scale is made from). */
export interface GroupMax extends Node {
  readonly op: 'groupMax';
  readonly x: Expr;
}

/**
 * The sum of `x` over the elements of the current group, added in element order in f32 from +0
 * (a fixed order, so every CPU engine gets the same bits). Only the reduction passes that
 * compiler/ir/phases.ts makes use it: their per-group partial sums.
 */
export interface GroupSum extends Node {
  readonly op: 'groupSum';
  readonly x: Expr;
}
export type ReduceFn = 'sum' | 'max';
/** `tensor`: over the elements of the current tensor (a uniform row); `global`: over every tensor of the step. */
export type ReduceScope = 'tensor' | 'global';
/**
 * A reduction of `x` over the current tensor or over every tensor: one scalar per row. Kernels
 * may hold it, but no renderer sees it: compiler/ir/phases.ts splits such a kernel into
 * reduction passes and an update pass that reads each result as a uniform.
 */
export interface Reduce extends Node {
  readonly op: 'reduce';
  readonly fn: ReduceFn;
  readonly scope: ReduceScope;
  readonly x: Expr;
}

export type Expr = Const | Load | Uniform | Unary | Binary | Select | Cast | Bitcast | GroupMax | GroupSum | Reduce;
export type Op = Expr['op'];

const table = new Map<string, Expr>();
let nextId = 0;

function intern<E extends Expr>(key: string, make: (id: number) => E): E {
  const hit = table.get(key);
  if (hit) return hit as E;
  const e = make(nextId++);
  Object.freeze(e);
  table.set(key, e);
  return e;
}

const f32Bits = new Uint32Array(1);
const f32View = new Float32Array(f32Bits.buffer);

/** Round a JS number to a value of `type` (the representation every backend agrees on). */
export function toType(type: Type, v: number): number {
  switch (type) {
    case 'f32':
      return Math.fround(v);
    case 'i32':
      return v | 0;
    case 'u32':
      return v >>> 0;
    case 'bool':
      return v ? 1 : 0;
  }
}

/** Constants are keyed by their f32 bit pattern so −0, +0 and NaN never collide. */
export function constant(type: Type, value: number): Const {
  const v = toType(type, value);
  let key: string;
  if (type === 'f32') {
    f32View[0] = v;
    key = `c:f32:${Number.isNaN(v) ? 'nan' : f32Bits[0]}`;
  } else key = `c:${type}:${v}`;
  return intern(key, (id) => ({ op: 'const', id, type, value: Number.isNaN(v) ? NaN : v }));
}

export function loadType(storage: Storage): NumType {
  if (storage === 'f32') return 'f32';
  return storage === 'i32' || storage === 'i16' || storage === 'i8' ? 'i32' : 'u32';
}

export function load(field: string, storage: Storage, axis: Axis = 'element'): Load {
  return intern(`l:${field}:${storage}:${axis}`, (id) => ({
    op: 'load',
    id,
    type: loadType(storage),
    field,
    storage,
    axis,
  }));
}

export function uniform(name: string): Uniform {
  return intern(`u:${name}`, (id) => ({ op: 'uniform', id, type: 'f32', name }));
}

export function unary(fn: UnaryOp, type: Type, x: Expr): Unary {
  return intern(`1:${fn}:${type}:${x.id}`, (id) => ({ op: 'unary', id, type, fn, x }));
}

export function binary(fn: BinaryOp, type: Type, a: Expr, b: Expr): Binary {
  return intern(`2:${fn}:${type}:${a.id}:${b.id}`, (id) => ({ op: 'binary', id, type, fn, a, b }));
}

export function select(type: Type, cond: Expr, a: Expr, b: Expr): Select {
  return intern(`s:${type}:${cond.id}:${a.id}:${b.id}`, (id) => ({ op: 'select', id, type, cond, a, b }));
}

export function cast(type: Type, x: Expr): Cast {
  // 'v:' (conversion), not 'c:': constants own 'c:', and cast(i32, node 7) must not be constant(i32, 7).
  return intern(`v:${type}:${x.id}`, (id) => ({ op: 'cast', id, type, x }));
}

export function bitcast(type: NumType, x: Expr): Bitcast {
  return intern(`b:${type}:${x.id}`, (id) => ({ op: 'bitcast', id, type, x }));
}

export function groupMax(x: Expr): GroupMax {
  return intern(`g:${x.id}`, (id) => ({ op: 'groupMax', id, type: 'f32', x }));
}

export function groupSum(x: Expr): GroupSum {
  return intern(`gs:${x.id}`, (id) => ({ op: 'groupSum', id, type: 'f32', x }));
}

export function reduce(fn: ReduceFn, scope: ReduceScope, x: Expr): Reduce {
  return intern(`r:${fn}:${scope}:${x.id}`, (id) => ({ op: 'reduce', id, type: 'f32', fn, scope, x }));
}

/** A reduction over the current group (groupMax, groupSum): renderers run one pass per level of them. */
export const isGroupReduction = (e: Expr): e is GroupMax | GroupSum => e.op === 'groupMax' || e.op === 'groupSum';

/** The children of a node, in a fixed order. */
export function children(e: Expr): Expr[] {
  switch (e.op) {
    case 'const':
    case 'load':
    case 'uniform':
      return [];
    case 'unary':
    case 'cast':
    case 'bitcast':
    case 'groupMax':
    case 'groupSum':
    case 'reduce':
      return [e.x];
    case 'binary':
      return [e.a, e.b];
    case 'select':
      return [e.cond, e.a, e.b];
  }
}

/** The same node with new children (through the smart constructors, so it is interned too). */
export function withChildren(e: Expr, c: Expr[]): Expr {
  const at = (i: number): Expr => c[i] as Expr;
  switch (e.op) {
    case 'const':
    case 'load':
    case 'uniform':
      return e;
    case 'unary':
      return unary(e.fn, e.type, at(0));
    case 'cast':
      return cast(e.type, at(0));
    case 'bitcast':
      return bitcast(e.type as NumType, at(0));
    case 'groupMax':
      return groupMax(at(0));
    case 'groupSum':
      return groupSum(at(0));
    case 'reduce':
      return reduce(e.fn, e.scope, at(0));
    case 'binary':
      return binary(e.fn, e.type, at(0), at(1));
    case 'select':
      return select(e.type, at(0), at(1), at(2));
  }
}

/**
 * Nodes reachable from `roots`, children before parents, each once, in the order a recursive
 * left-to-right post-order walk visits them (but without recursion: any depth works). `descend(e)`
 * false stops at `e`: it is listed, its children are not (unless reached another way).
 */
export function topo(roots: readonly Expr[], descend: (e: Expr) => boolean = () => true): Expr[] {
  const seen = new Set<Expr>();
  const out: Expr[] = [];
  const stack: [Expr, boolean][] = roots.map((r) => [r, false] as [Expr, boolean]).reverse();
  while (stack.length) {
    const [e, done] = stack.pop()!;
    if (done) {
      out.push(e);
      continue;
    }
    if (seen.has(e)) continue;
    seen.add(e);
    stack.push([e, true]);
    if (!descend(e)) continue;
    const c = children(e);
    for (let i = c.length - 1; i >= 0; i--) if (!seen.has(c[i]!)) stack.push([c[i]!, false]);
  }
  return out;
}

/** A structural key, independent of interning order: equal for equal DAGs across processes. */
export function structuralKey(roots: readonly Expr[]): string {
  const num = new Map<Expr, number>();
  const parts: string[] = [];
  for (const e of topo(roots)) {
    num.set(e, num.size);
    const kids = children(e)
      .map((k) => num.get(k))
      .join(',');
    switch (e.op) {
      case 'const':
        f32View[0] = e.value;
        parts.push(`k${e.type}${e.type === 'f32' ? f32Bits[0] : e.value}`);
        break;
      case 'load':
        parts.push(`l${e.field}/${e.storage}/${e.axis}`);
        break;
      case 'uniform':
        parts.push(`u${e.name}`);
        break;
      case 'unary':
      case 'binary':
        parts.push(`${e.fn}:${e.type}(${kids})`);
        break;
      case 'reduce':
        parts.push(`reduce:${e.fn}:${e.scope}(${kids})`);
        break;
      default:
        parts.push(`${e.op}:${e.type}(${kids})`);
    }
  }
  return parts.join(';') + '|' + roots.map((r) => num.get(r)).join(',');
}
