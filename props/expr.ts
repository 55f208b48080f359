// fast-check arbitraries for random well-typed expressions over every op, and the inputs to
// evaluate them on (f32 specials included: ±0, subnormals, ±Inf, NaN). Exported for users who
// write their own rules or renderers and want the same properties.

import fc from 'fast-check';
import type { Expr, Storage } from '../compiler/ir/ir.ts';
import { binaryOps, unaryOps } from '../compiler/ir/ir.ts';
import * as d from '../dsl/ops.ts';

/** f32 values with the specials every renderer gets wrong first. */
// Every value is an f32 (semantics.ts works on values already rounded to their type, as loads from
// Float32Array and the uniform table are): 0.1 enters as fround(0.1), the f32 a kernel would see.
export const f32Value = (): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.float({ noDefaultInfinity: false, noNaN: false }) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        0,
        -0,
        Infinity,
        -Infinity,
        NaN,
        1,
        -1,
        0.5,
        2 ** -149,
        -(2 ** -149),
        2 ** -126,
        3.4028234663852886e38,
        65504,
        Math.fround(0.1),
      ),
    },
    { weight: 2, arbitrary: fc.integer({ min: -300, max: 300 }).map(Math.fround) },
  );
export const i32Value = (): fc.Arbitrary<number> =>
  fc.oneof(fc.integer({ min: -2147483648, max: 2147483647 }), fc.integer({ min: -40, max: 40 }));
export const u32Value = (): fc.Arbitrary<number> =>
  fc.oneof(fc.integer({ min: 0, max: 4294967295 }), fc.integer({ min: 0, max: 40 }));

/** The fields random expressions read: name, storage, axis. */
export const exprFields: readonly { name: string; storage: Storage; axis: 'element' | 'group' }[] = [
  { name: 'a', storage: 'f32', axis: 'element' },
  { name: 'b', storage: 'f32', axis: 'element' },
  { name: 'c', storage: 'i8', axis: 'element' },
  { name: 'h', storage: 'u16', axis: 'element' },
  { name: 'i', storage: 'i32', axis: 'element' },
  { name: 'u', storage: 'u32', axis: 'element' },
  { name: 's', storage: 'f32', axis: 'group' },
];
export const exprUniforms = ['x', 'y'] as const;

const F_UN = unaryOps.filter((o) => !['not', 'isNan', 'isFinite'].includes(o));
const I_UN = ['neg', 'abs', 'sign', 'not'] as const;
const ARITH = ['add', 'sub', 'mul', 'div', 'min', 'max'] as const;
const CMP = ['lt', 'le', 'eq', 'ne'] as const;
const un = (op: string, x: Expr): Expr => (d as unknown as Record<string, (x: Expr) => Expr>)[op]!(x);
const bin = (op: string, a: Expr, b: Expr): Expr =>
  (d as unknown as Record<string, (a: Expr, b: Expr) => Expr>)[op]!(a, b);

/**
 * Random expressions of each type (depth-bounded), built only through the DSL's builders.
 * `exclude` leaves f32 ops out (a backend that only approximates exp2, say, is checked without it).
 */
export function exprArbitraries(maxDepth = 5, opts: { exclude?: readonly string[] } = {}) {
  const out = new Set(opts.exclude ?? []);
  const fUn = F_UN.filter((op) => !out.has(op)),
    fArith = ARITH.filter((op) => !out.has(op));
  return fc.letrec<{ f32: Expr; i32: Expr; u32: Expr; bool: Expr }>((tie) => {
    const f32 = tie('f32'),
      i32 = tie('i32'),
      u32 = tie('u32'),
      bool = tie('bool');
    const o = { depthSize: 'small' as const, maxDepth, withCrossShrink: true };
    return {
      f32: fc.oneof(
        o,
        f32Value().map((v) => d.constant('f32', v)),
        fc.constantFrom(
          d.field('a', 'f32'),
          d.field('b', 'f32'),
          d.field('s', 'f32', 'group'),
          d.uniform('x'),
          d.uniform('y'),
        ),
        fc.tuple(fc.constantFrom(...fUn), f32).map(([op, x]) => un(op, x)),
        fc.tuple(fc.constantFrom(...fArith), f32, f32).map(([op, a, b]) => bin(op, a, b)),
        fc.tuple(bool, f32, f32).map(([c, a, b]) => d.select(c, a, b)),
        fc.oneof(i32, u32, bool).map((x) => d.f32(x)),
        fc.oneof(i32, u32).map((x) => d.asF32(x)),
        f32.map((x) => d.groupMax(d.abs(x))),
      ),
      i32: fc.oneof(
        o,
        i32Value().map((v) => d.constant('i32', v)),
        fc.constantFrom(d.field('c', 'i8'), d.field('i', 'i32')),
        fc.tuple(fc.constantFrom(...I_UN), i32).map(([op, x]) => un(op, x)),
        fc.tuple(fc.constantFrom(...ARITH, 'and', 'or', 'xor'), i32, i32).map(([op, a, b]) => bin(op, a, b)),
        fc.tuple(fc.constantFrom('shl', 'shr'), i32, u32).map(([op, a, b]) => bin(op, a, b)),
        fc.tuple(bool, i32, i32).map(([c, a, b]) => d.select(c, a, b)),
        fc.oneof(f32, u32, bool).map((x) => d.i32(x)),
        fc.oneof(f32, u32).map((x) => d.asI32(x)),
      ),
      u32: fc.oneof(
        o,
        u32Value().map((v) => d.constant('u32', v)),
        fc.constantFrom(d.field('h', 'u16'), d.field('u', 'u32')),
        u32.map((x) => d.not(x)),
        fc
          .tuple(fc.constantFrom(...ARITH, 'and', 'or', 'xor', 'shl', 'shr'), u32, u32)
          .map(([op, a, b]) => bin(op, a, b)),
        fc.tuple(bool, u32, u32).map(([c, a, b]) => d.select(c, a, b)),
        fc.oneof(f32, i32, bool).map((x) => d.u32(x)),
        fc.oneof(f32, i32).map((x) => d.asU32(x)),
      ),
      bool: fc.oneof(
        o,
        fc.boolean().map((v) => d.constant('bool', v ? 1 : 0)),
        fc.tuple(fc.constantFrom(...CMP), f32, f32).map(([op, a, b]) => bin(op, a, b)),
        fc.tuple(fc.constantFrom(...CMP), i32, i32).map(([op, a, b]) => bin(op, a, b)),
        fc.tuple(fc.constantFrom('and', 'or', 'xor', 'eq', 'ne'), bool, bool).map(([op, a, b]) => bin(op, a, b)),
        bool.map((x) => d.not(x)),
        f32.map((x) => d.isNan(x)),
        f32.map((x) => d.isFinite(x)),
        // Conversion to bool is x ≠ 0 (NaN → true, −0 → false).
        fc.oneof(f32, i32, u32).map((x) => d.cast('bool', x)),
      ),
    };
  });
}

/** Every op of the IR appears in the arbitraries above (checked by a test, so a new op is noticed). */
export const coveredOps = new Set<string>([
  ...F_UN,
  ...I_UN,
  ...ARITH,
  ...CMP,
  'and',
  'or',
  'xor',
  'shl',
  'shr',
  'not',
  'isNan',
  'isFinite',
]);
export const allOps = [...unaryOps, ...binaryOps];

/** Values for one element (and its group) of every field, and the uniforms. */
export const envArbitrary = () =>
  fc.record({
    a: f32Value(),
    b: f32Value(),
    s: f32Value(),
    x: f32Value(),
    y: f32Value(),
    c: fc.integer({ min: -128, max: 127 }),
    h: fc.integer({ min: 0, max: 65535 }),
    i: i32Value(),
    u: u32Value(),
  });
