// The JS-rendered kernel is bit-identical, element by element, to interpreting the same kernel
// with semantics.ts (the cases: test/kernels.ts).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../compiler/render/js/compile.ts';
import { exprFields } from './expr.ts';
import { case_, narrowCase, oracle, storageOf } from '../test/kernels.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';
import { arrayFor } from '../compiler/ir/kernel.ts';

describe('JS renderer vs semantics.ts', () => {
  it('random kernels are bit-identical, element by element', () => {
    fc.assert(fc.property(case_, ({ k, n, arrays, rows, rowOf, range }) => {
      const storage: Record<string, keyof typeof arrayFor> = Object.fromEntries([...exprFields.map((f) => [f.name, f.storage]), ['n', 'f32']]);
      const fields = Object.fromEntries(Object.entries(arrays).map(([f, v]) => [f, (arrayFor[storage[f]!] as unknown as { from(v: number[]): FieldArray }).from(v as number[])])) as Record<string, FieldArray>;
      const R = Uint8Array.from(rowOf);
      const want = oracle(k, fields, rows, R, range, n);
      const c = compile(k);
      const got = Object.fromEntries(Object.entries(fields).map(([f, a]) => [f, a.slice()])) as Record<string, FieldArray>;
      const used = Object.fromEntries(c.fields.map((f) => [f.field, got[f.field]!]));
      const res = c.run({ fields: used, uniforms: rows, rowOf: R, groups: range, length: n });
      for (const f of Object.keys(fields)) [...got[f]!].forEach((v, i) => {
        if (!Object.is(v, want.out[f]![i])) throw new Error(`field ${f}[${i}]: js ${v}, semantics ${want.out[f]![i]}\n${c.source}`);
      });
      expect([res.counters['count'], res.counters['ints']]).toEqual(want.counters);
    }), { numRuns: 10_000 });
  });
});

describe('JS renderer vs semantics.ts: narrow and integer storages, windowed fields, length', () => {
  it('random kernels are bit-identical, element by element, and leave everything outside the launch alone', () => {
    fc.assert(fc.property(narrowCase, ({ k, n, arrays, rows, rowPick, range }) => {
      const fields = Object.fromEntries(Object.entries(arrays).map(([f, v]) => [f, (arrayFor[storageOf[f]![0]] as unknown as { from(v: number[]): FieldArray }).from(v)])) as Record<string, FieldArray>;
      const R = Uint8Array.from(rowPick.map((r) => r % rows.length));
      const want = oracle(k, fields, rows, R, range, n);
      const c = compile(k);
      const got = Object.fromEntries(Object.entries(fields).map(([f, a]) => [f, a.slice()])) as Record<string, FieldArray>;
      const G = k.groupSize;
      // The windowed field holds only the launched groups' elements.
      const used = Object.fromEntries(c.fields.map((f) => [f.field, f.field === 'b' ? got.b!.slice(range[0] * G, Math.min(n, range[1] * G)) : got[f.field]!]));
      const res = rows.length === 1
        ? c.run({ fields: used, uniforms: rows[0]!, groups: range, length: n })
        : c.run({ fields: used, uniforms: rows, rowOf: R, groups: range, length: n });
      for (const f of Object.keys(fields)) got[f]!.forEach((v, i) => {
        if (!Object.is(v, want.out[f]![i])) throw new Error(`field ${f}[${i}] (n ${n}, groups ${range}): js ${v}, semantics ${want.out[f]![i]}\n${c.source}`);
      });
      expect([res.counters['ints'], res.counters['bools']]).toEqual(want.counters);
    }), { numRuns: 10_000 });
  });
});
