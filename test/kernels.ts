// The one random-kernel generator: fast-check arbitraries for kernels and launches, checked on
// every backend against the oracle (compiler/ir/interpret.ts) by test/conformance-kernels.test.ts.
//
// `wideCase`: several outputs of different storages written in place over fields they also read,
// element and group axis, groupMax at one and two levels, counters, two uniform rows with rowOf,
// a partial last group and a group range.
// `sumCase`: group sums (the partials of a reduction pass, compiler/ir/phases.ts) at one and two
// levels, a group output and an element output reading them, over the wide case's launches.
// `narrowCase`: what the wide case leaves out: u8, i16 and i32 element stores that wrap, integer
// group-axis fields, a windowed (launch-relative) read-only field, one to three uniform rows (one
// row without rowOf), and arrays longer than `length` whose tail must stay as it was.
//
// Options: `exclude` leaves f32 ops out of the expressions (for a backend that only approximates
// them).

import fc from 'fast-check';
import type { Storage } from '../compiler/ir/ir.ts';
import type { FieldArray, Kernel } from '../compiler/ir/kernel.ts';
import { arrayFor, kernel } from '../compiler/ir/kernel.ts';
import type { Uniforms } from '../compiler/ir/pipeline.ts';
import * as d from '../dsl/ops.ts';
import { exprArbitraries, exprFields, f32Value, i32Value, u32Value } from '../props/expr.ts';

/** One launch of one random kernel: every array the kernel touches (and maybe longer than n). */
export interface Case {
  readonly k: Kernel;
  readonly n: number;
  readonly arrays: Readonly<Record<string, FieldArray>>;
  readonly rows: readonly Uniforms[];
  /** Row of each group; null with a single row. */
  readonly rowOf: Uint32Array | null;
  readonly range: readonly [number, number];
}

export interface CaseOptions {
  readonly exclude?: readonly string[];
}

const valuesOf: Record<Storage, () => fc.Arbitrary<number>> = {
  f32: f32Value,
  i32: i32Value,
  u32: u32Value,
  i8: () => fc.integer({ min: -128, max: 127 }),
  u8: () => fc.integer({ min: 0, max: 255 }),
  i16: () => fc.integer({ min: -32768, max: 32767 }),
  u16: () => fc.integer({ min: 0, max: 65535 }),
};
const typed =
  (s: Storage) =>
  (v: number[]): FieldArray =>
    (arrayFor[s] as unknown as { from(v: number[]): FieldArray }).from(v);
const arrayOf = (s: Storage, length: number) =>
  fc.array(valuesOf[s](), { minLength: length, maxLength: length }).map(typed(s));
const rangeOf = (groups: number) =>
  fc
    .tuple(fc.integer({ min: 0, max: groups }), fc.integer({ min: 0, max: groups }))
    .map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const);
const rowsOf = (min: number, max: number) =>
  fc.array(fc.record({ x: f32Value(), y: f32Value() }), { minLength: min, maxLength: max });

export function wideCase(o: CaseOptions = {}): fc.Arbitrary<Case> {
  const arb = exprArbitraries(4, { exclude: o.exclude });
  const kernels = fc
    .record({
      fa: arb.f32,
      fn: arb.f32,
      ic: arb.i32,
      uh: arb.u32,
      gs: arb.f32,
      count: arb.bool,
      nested: fc.boolean(),
      groupSize: fc.constantFrom(1, 3, 4, 32),
    })
    .map((r) => {
      // A second groupMax level: the reduction of a value that itself uses a group maximum.
      const fa = r.nested ? d.add(r.fa, d.groupMax(d.abs(d.mul(r.fn, d.groupMax(d.abs(r.fa)))))) : r.fa;
      return kernel({
        name: 'random',
        groupSize: r.groupSize,
        outputs: [
          { field: 'a', storage: 'f32', axis: 'element', value: fa },
          { field: 'n', storage: 'f32', axis: 'element', value: r.fn },
          { field: 'c', storage: 'i8', axis: 'element', value: r.ic },
          { field: 'h', storage: 'u16', axis: 'element', value: r.uh },
          {
            field: 's',
            storage: 'f32',
            axis: 'group',
            value: d.add(d.groupMax(d.abs(r.gs)), d.field('s', 'f32', 'group')),
          },
        ],
        counters: [
          { name: 'count', value: r.count },
          { name: 'ints', value: d.and(r.uh, 3) },
        ],
      });
    });
  return withLaunch(kernels);
}

/** Group sums in element order: one level, or a second whose argument reads the first. */
export function sumCase(o: CaseOptions = {}): fc.Arbitrary<Case> {
  const arb = exprArbitraries(4, { exclude: o.exclude });
  const kernels = fc
    .record({ x: arb.f32, y: arb.f32, nested: fc.boolean(), groupSize: fc.constantFrom(1, 3, 4, 32) })
    .map((r) => {
      const first = d.groupSum(r.x);
      const sum = r.nested ? d.groupSum(d.mul(r.y, first)) : first;
      return kernel({
        name: 'sums',
        groupSize: r.groupSize,
        outputs: [
          { field: 's', storage: 'f32', axis: 'group', value: d.add(sum, d.field('s', 'f32', 'group')) },
          { field: 'n', storage: 'f32', axis: 'element', value: d.mul(r.y, first) },
        ],
      });
    });
  return withLaunch(kernels);
}

/** The wide case's launches (1–70 elements, two rows, a group range) for kernels over exprFields. */
function withLaunch(kernels: fc.Arbitrary<Kernel>): fc.Arbitrary<Case> {
  return kernels.chain((k) =>
    fc.integer({ min: 1, max: 70 }).chain((n) => {
      const groups = Math.ceil(n / k.groupSize);
      const arrays = Object.fromEntries(
        exprFields.map((f) => [f.name, arrayOf(f.storage, f.axis === 'group' ? groups : n)]),
      );
      return fc.record({
        k: fc.constant(k),
        n: fc.constant(n),
        arrays: fc.record({ ...arrays, n: fc.constant(new Float32Array(n)) }),
        rows: rowsOf(2, 2),
        rowOf: fc
          .array(fc.integer({ min: 0, max: 1 }), { minLength: groups, maxLength: groups })
          .map((r) => Uint32Array.from(r)),
        range: rangeOf(groups),
      });
    }),
  );
}

/** Storage and axis of every array a narrow case holds. */
const narrowFields: Record<string, readonly [Storage, 'element' | 'group']> = {
  ...Object.fromEntries(exprFields.map((f) => [f.name, [f.storage, f.axis] as const])),
  o8: ['u8', 'element'],
  o16: ['i16', 'element'],
  oi: ['i32', 'element'],
  gq: ['u32', 'group'],
  gr: ['i8', 'group'],
};
/** Elements past the launch's length that every array carries: they must come back unchanged. */
export const TAIL = 3;

export function narrowCase(o: CaseOptions = {}): fc.Arbitrary<Case> {
  const arb = exprArbitraries(4, { exclude: o.exclude });
  const kernels = fc
    .record({
      u: arb.u32,
      i: arb.i32,
      i2: arb.i32,
      f: arb.f32,
      g: arb.f32,
      bool: arb.bool,
      groupSize: fc.constantFrom(1, 2, 3, 5, 8),
    })
    .map((r) =>
      kernel({
        name: 'narrow',
        groupSize: r.groupSize,
        windowed: ['b'],
        outputs: [
          { field: 'o8', storage: 'u8', axis: 'element', value: d.add(r.u, d.field('o8', 'u8')) },
          { field: 'o16', storage: 'i16', axis: 'element', value: d.select(r.bool, r.i, d.field('o16', 'i16')) },
          // b·0 keeps the windowed field b read whatever the random expressions contain.
          { field: 'oi', storage: 'i32', axis: 'element', value: d.add(r.i2, d.i32(d.mul(d.field('b', 'f32'), 0))) },
          {
            field: 'gq',
            storage: 'u32',
            axis: 'group',
            value: d.add(d.asU32(d.groupMax(r.f)), d.field('gq', 'u32', 'group')),
          },
          { field: 'gr', storage: 'i8', axis: 'group', value: d.i32(d.groupMax(d.sub(r.g, d.groupMax(r.f)))) },
        ],
        counters: [
          { name: 'ints', value: r.i },
          { name: 'bools', value: r.bool },
        ],
      }),
    );
  return kernels.chain((k) =>
    fc.integer({ min: 1, max: 40 }).chain((n) => {
      const groups = Math.ceil(n / k.groupSize);
      const arrays = Object.fromEntries(
        Object.entries(narrowFields).map(([f, [s, axis]]) => [f, arrayOf(s, axis === 'group' ? groups + 1 : n + TAIL)]),
      );
      return fc
        .record({
          k: fc.constant(k),
          n: fc.constant(n),
          arrays: fc.record(arrays),
          rows: rowsOf(1, 3),
          rowPick: fc.array(fc.nat(), { minLength: groups, maxLength: groups }),
          range: rangeOf(groups),
        })
        .map(({ rowPick, ...c }) => ({
          ...c,
          rowOf: c.rows.length === 1 ? null : Uint32Array.from(rowPick, (r) => r % c.rows.length),
        }));
    }),
  );
}
