// The WebAssembly SIMD renderer (the JS backend's default engine) is bit-identical, element by
// element, to interpreting the same kernel with semantics.ts: the same random kernels and launches
// as the JS renderer's properties (test/kernels.ts), run through JsBackend({ engine: 'wasm' }):
// four-lane passes, the scalar tail, lane-combined group maxima, stashes, counters, windowed fields.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../compiler/render/js/compile.ts';
import type { Kernel } from '../compiler/ir/kernel.ts';
import { fields as fieldsOf } from '../compiler/ir/kernel.ts';
import type { DeviceBuffer } from '../runtime/backends/backend.ts';
import { JsBackend } from '../runtime/backends/js/js.ts';
import { simdSupported } from '../runtime/backends/js/wasm-module.ts';
import { exprFields } from './expr.ts';
import type { Rows } from '../test/kernels.ts';
import { case_, narrowCase, oracle, storageOf } from '../test/kernels.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';
import { arrayFor } from '../compiler/ir/kernel.ts';

const RUNS = Number(process.env.FLASHOPTIM_WASM_RUNS ?? 1500);
const backend = simdSupported ? new JsBackend({ engine: 'wasm' }) : null;

/** One launch on the wasm engine; returns every array (bound or not) after it, and the counters. */
async function runWasm(k: Kernel, arrays: Record<string, FieldArray>, rows: Rows, rowOf: Uint8Array | null, range: [number, number], n: number, windowed?: Record<string, FieldArray>) {
  const b = backend!;
  const program = await b.compile(k);
  const bind: Record<string, DeviceBuffer> = {};
  for (const f of fieldsOf(k)) {
    const a = windowed?.[f.field] ?? arrays[f.field]!;
    bind[f.field] = b.alloc(f.storage, a.length);
    await b.write(bind[f.field]!, a);
  }
  const R = rowOf ? b.alloc('u32', rowOf.length) : null;
  if (R) await b.write(R, Uint32Array.from(rowOf!));
  const counters = await b.run(program, { bindings: bind, uniforms: compile(k).uniformTable(rows), rowOf: R, groups: range, length: n });
  const out = Object.fromEntries(Object.entries(arrays).map(([f, a]) => [f, a.slice()])) as Record<string, FieldArray>;
  for (const [f, buf] of Object.entries(bind)) if (!windowed?.[f]) out[f] = await b.read(buf);
  for (const buf of Object.values(bind)) b.free(buf);
  if (R) b.free(R);
  return { out, counters };
}

const typed = (storage: keyof typeof arrayFor, v: number[]) => (arrayFor[storage] as unknown as { from(v: number[]): FieldArray }).from(v);
const check = (got: Record<string, FieldArray>, want: Record<string, FieldArray>, where: string, source: string) => {
  for (const f of Object.keys(want)) got[f]!.forEach((v, i) => {
    if (!Object.is(v, want[f]![i])) throw new Error(`field ${f}[${i}] (${where}): wasm ${v}, semantics ${want[f]![i]}\n${source}`);
  });
};

describe.runIf(simdSupported)('WebAssembly renderer vs semantics.ts', () => {
  it(`random kernels are bit-identical, element by element (${RUNS} cases)`, async () => {
    await fc.assert(fc.asyncProperty(case_, async ({ k, n, arrays, rows, rowOf, range }) => {
      const storage: Record<string, keyof typeof arrayFor> = Object.fromEntries([...exprFields.map((f) => [f.name, f.storage]), ['n', 'f32']]);
      const fields = Object.fromEntries(Object.entries(arrays).map(([f, v]) => [f, typed(storage[f]!, v as number[])]));
      const R = Uint8Array.from(rowOf);
      const want = oracle(k, fields, rows, R, range, n);
      const got = await runWasm(k, fields, rows, R, range, n);
      check(got.out, want.out, `n ${n}, groupSize ${k.groupSize}, groups ${range}`, (await backend!.compile(k)).source);
      expect(got.counters).toEqual(want.counters);
    }), { numRuns: RUNS });
  }, 600_000);

  it(`narrow storages, windowed fields, lengths: bit-identical and nothing outside the launch changes (${RUNS} cases)`, async () => {
    await fc.assert(fc.asyncProperty(narrowCase, async ({ k, n, arrays, rows, rowPick, range }) => {
      const fields = Object.fromEntries(Object.entries(arrays).map(([f, v]) => [f, typed(storageOf[f]![0], v)]));
      const R = Uint8Array.from(rowPick.map((r) => r % rows.length));
      const want = oracle(k, fields, rows, R, range, n);
      const G = k.groupSize;
      const window = { b: fields.b!.slice(range[0] * G, Math.min(n, range[1] * G)) };
      const got = await runWasm(k, fields, rows, rows.length === 1 ? null : R, range, n, window);
      check(got.out, want.out, `n ${n}, groupSize ${G}, groups ${range}`, (await backend!.compile(k)).source);
      expect(got.counters).toEqual(want.counters);
    }), { numRuns: RUNS });
  }, 600_000);
});
