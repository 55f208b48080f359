// Random kernels and launches shared by the renderer properties (props/render-js.prop.ts,
// props/render-wasm.prop.ts), and the oracle they are checked against: semantics.ts, element by
// element. Case 1: several outputs of different storages (written in place over fields they also
// read), element and group axis, groupMax at one and two levels, counters, two uniform rows with
// rowOf, a partial last group and a group range. Case 2 (narrow): the storages and launch shapes
// case 1 leaves out.

import fc from 'fast-check';
import type { Storage } from '../compiler/ir/ir.ts';
import type { Kernel } from '../compiler/ir/kernel.ts';
import { kernel } from '../compiler/ir/kernel.ts';
import { interpret } from '../compiler/ir/interpret.ts';
import * as d from '../dsl/ops.ts';
import { exprArbitraries, exprFields, f32Value, i32Value, u32Value } from '../props/expr.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';

export type Rows = Record<string, number>[];

/** The oracle on copies of `fields`: every array after the launch, and the counters. */
export function oracle(k: Kernel, fields: Record<string, FieldArray>, rows: Rows, rowOf: ArrayLike<number> | null, [g0, g1]: [number, number], n: number) {
  const out = Object.fromEntries(Object.entries(fields).map(([f, a]) => [f, a.slice()])) as Record<string, FieldArray>;
  // A windowed field holds only the launched groups' elements (the oracle reads it relative to g0).
  const G = k.groupSize;
  const bound = { ...out, ...Object.fromEntries(k.windowed.map((f) => [f, out[f]!.slice(g0 * G, Math.min(n, g1 * G))])) };
  const counters = interpret(k, { fields: bound, uniforms: rows, rowOf, groups: [g0, g1], length: n });
  return { out, counters };
}

const arb = exprArbitraries(4);
const kernelArb = fc.record({
  fa: arb.f32, fn: arb.f32, ic: arb.i32, uh: arb.u32, gs: arb.f32, count: arb.bool,
  nested: fc.boolean(), groupSize: fc.constantFrom(1, 3, 4, 32),
}).map((r) => {
  // A second groupMax level: the reduction of a value that itself uses a group maximum.
  const fa = r.nested ? d.add(r.fa, d.groupMax(d.abs(d.mul(r.fn, d.groupMax(d.abs(r.fa)))))) : r.fa;
  return kernel({
    name: 'random', groupSize: r.groupSize,
    outputs: [
      { field: 'a', storage: 'f32', axis: 'element', value: fa },
      { field: 'n', storage: 'f32', axis: 'element', value: r.fn },
      { field: 'c', storage: 'i8', axis: 'element', value: r.ic },
      { field: 'h', storage: 'u16', axis: 'element', value: r.uh },
      { field: 's', storage: 'f32', axis: 'group', value: d.add(d.groupMax(d.abs(r.gs)), d.field('s', 'f32', 'group')) },
    ],
    counters: [{ name: 'count', value: r.count }, { name: 'ints', value: d.and(r.uh, 3) }],
  });
});

const valueOf = { f32: f32Value, i8: () => fc.integer({ min: -128, max: 127 }), u16: () => fc.integer({ min: 0, max: 65535 }), i32: i32Value, u32: u32Value } as const;

export const case_ = kernelArb.chain((k) => fc.integer({ min: 1, max: 70 }).chain((n) => {
  const groups = Math.ceil(n / k.groupSize);
  const arrays = Object.fromEntries(exprFields.map((f) => [f.name, fc.array(valueOf[f.storage as keyof typeof valueOf](), { minLength: f.axis === 'group' ? groups : n, maxLength: f.axis === 'group' ? groups : n })]));
  return fc.record({
    k: fc.constant(k), n: fc.constant(n),
    arrays: fc.record({ ...arrays, n: fc.constant(new Array(n).fill(0)) } as Record<string, fc.Arbitrary<number[]>>),
    rows: fc.array(fc.record({ x: f32Value(), y: f32Value() }), { minLength: 2, maxLength: 2 }),
    rowOf: fc.array(fc.integer({ min: 0, max: 1 }), { minLength: groups, maxLength: groups }),
    range: fc.tuple(fc.integer({ min: 0, max: groups }), fc.integer({ min: 0, max: groups })).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as [number, number]),
  });
}));

// The storages and launch shapes the kernel above leaves out: u8, i16 and i32 element stores that
// wrap, integer group-axis fields, a windowed (launch-relative) read-only field, one to three
// uniform rows (one row without rowOf), and arrays longer than `length` whose tail must stay as it was.
export const storageOf: Record<string, readonly [Storage, 'element' | 'group']> = {
  ...Object.fromEntries(exprFields.map((f) => [f.name, [f.storage, f.axis] as const])),
  o8: ['u8', 'element'], o16: ['i16', 'element'], oi: ['i32', 'element'], gq: ['u32', 'group'], gr: ['i8', 'group'],
};
const valuesOf: Record<Storage, () => fc.Arbitrary<number>> = {
  f32: f32Value, i32: i32Value, u32: u32Value, i8: () => fc.integer({ min: -128, max: 127 }), u8: () => fc.integer({ min: 0, max: 255 }),
  i16: () => fc.integer({ min: -32768, max: 32767 }), u16: () => fc.integer({ min: 0, max: 65535 }),
};
const narrowKernel = fc.record({ u: arb.u32, i: arb.i32, i2: arb.i32, f: arb.f32, g: arb.f32, bool: arb.bool, groupSize: fc.constantFrom(1, 2, 3, 5, 8) })
  .map((r) => kernel({
    name: 'narrow', groupSize: r.groupSize, windowed: ['b'],
    outputs: [
      { field: 'o8', storage: 'u8', axis: 'element', value: d.add(r.u, d.field('o8', 'u8')) },
      { field: 'o16', storage: 'i16', axis: 'element', value: d.select(r.bool, r.i, d.field('o16', 'i16')) },
      // b·0 keeps the windowed field b read whatever the random expressions contain.
      { field: 'oi', storage: 'i32', axis: 'element', value: d.add(r.i2, d.i32(d.mul(d.field('b', 'f32'), 0))) },
      { field: 'gq', storage: 'u32', axis: 'group', value: d.add(d.asU32(d.groupMax(r.f)), d.field('gq', 'u32', 'group')) },
      { field: 'gr', storage: 'i8', axis: 'group', value: d.i32(d.groupMax(d.sub(r.g, d.groupMax(r.f)))) },
    ],
    counters: [{ name: 'ints', value: r.i }, { name: 'bools', value: r.bool }],
  }));
export const TAIL = 3;
export const narrowCase = narrowKernel.chain((k) => fc.integer({ min: 1, max: 40 }).chain((n) => {
  const groups = Math.ceil(n / k.groupSize);
  const arrays = Object.fromEntries(Object.entries(storageOf).map(([f, [s, axis]]) => {
    const len = axis === 'group' ? groups + 1 : n + TAIL;
    return [f, fc.array(valuesOf[s](), { minLength: len, maxLength: len })];
  }));
  return fc.record({
    k: fc.constant(k), n: fc.constant(n), arrays: fc.record(arrays),
    rows: fc.array(fc.record({ x: f32Value(), y: f32Value() }), { minLength: 1, maxLength: 3 }),
    rowPick: fc.array(fc.nat(), { minLength: groups, maxLength: groups }),
    range: fc.tuple(fc.integer({ min: 0, max: groups }), fc.integer({ min: 0, max: groups })).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as [number, number]),
  });
}));

