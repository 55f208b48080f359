// Random kernels through the gpu.js backend against the JS backend (the reference). The kernels
// mix every op the IR has except the three the gpu.js modes compute approximately (exp2, log2,
// rsqrt: see docs/gpujs.md), over f32, i32, u32 and bool, with narrow loads and stores, a group
// axis (groupMax, group outputs), counters, and partial launches. cpu and webasm must agree bit for
// bit (NaN = NaN). webgpu (lavapipe, see testModes) flushes subnormals and ignores the sign of
// zero (fast-math), so a difference there that starts from a subnormal or a −0 can spread through
// integer ops; it is held to its own measured bound and the count of identical codes is printed.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { both, randomKernel, testModes } from './gpujs-harness.ts';
import type { GpujsMode } from '../runtime/backends/gpujs/device.ts';
import { GpujsBackend } from '../runtime/backends/gpujs/gpujs.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';

const modes: GpujsMode[] = await testModes();
// lavapipe compiles each pass (about 0.15 s a kernel on 2 cores), so webgpu runs fewer by default.
const runsFor = (mode: GpujsMode) => Number(process.env.GPUJS_RUNS ?? (mode === 'webgpu' ? 20 : 60));
/** The least fraction of identical stored values a mode must reach over all random kernels. */
const identicalAtLeast: Record<string, Record<string, number>> = {
  cpu: { awkward: 1, ordinary: 1 }, webasm: { awkward: 1, ordinary: 1 }, webgpu: { awkward: 0.99, ordinary: 0.99 }, // measured 99.75–99.92% (docs/gpujs.md)
};

const same = (a: number, b: number, mode: GpujsMode): boolean =>
  Object.is(a, b) || (a !== a && b !== b) || (mode === 'webgpu' && a === b);

const inputs = [['awkward', true], ['ordinary', false]] as const;

describe.each(modes)('gpu.js %s mode against the JS backend on random kernels', (mode) => {
  it.each(inputs)('random kernels, %s inputs', async (label, awkward) => {
    const RUNS = runsFor(mode);
    // webgpu's bound is statistical (fast-math differences), so CI runs it on a fixed seed.
    const seed = process.env.GPUJS_SEED ? Number(process.env.GPUJS_SEED) : mode === 'webgpu' ? 42 : undefined;
    const backend = await GpujsBackend.create(mode);
    let total = 0, identical = 0;
    let firstError: string | undefined;
    const worst: string[] = [];
    try {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (seed) => {
      const { k, data, uniforms, n, groups } = randomKernel(seed, awkward);
      const r = await both(backend, k, data, uniforms, n, groups).catch((e: Error) => { firstError ??= `${mode} seed ${seed}: ${e.stack}`; throw e; });
      let bad = 0;
      for (const [field, got] of Object.entries(r.gpu) as [string, FieldArray][]) {
        const want = r.js[field]!;
        for (let i = 0; i < want.length; i++) {
          total++;
          if (same(want[i]!, got[i]!, mode)) identical++;
          else if (bad++ === 0 && worst.length < 5) worst.push(`seed ${seed} ${field}[${i}]: ${want[i]} (JS) vs ${got[i]}`);
        }
      }
      r.counts.forEach((c, i) => {
        total++;
        if (c === r.jsCounts[i]) identical++;
        else if (bad++ === 0 && worst.length < 5) worst.push(`seed ${seed} counter ${i}: ${r.jsCounts[i]} (JS) vs ${c}`);
      });
      if (identicalAtLeast[mode]![label] === 1) expect(bad, `${mode} seed ${seed}: ${bad} stored values differ: ${worst.join('; ')}`).toBe(0);
    }), { numRuns: RUNS, ...(seed === undefined ? {} : { seed }) });
    } finally {
      if (firstError) console.log(`first error: ${firstError}`);
      if (worst.length) console.log(`first differences: ${worst.join('; ')}`);
    }
    console.log(`gpujs ${mode}, ${label} inputs: ${identical} of ${total} stored values and counters identical to the JS backend (${(100 * identical / total).toFixed(3)}%) over ${RUNS} random kernels${worst.length ? '; ' + worst.join('; ') : ''}`);
    expect(identical / total).toBeGreaterThanOrEqual(identicalAtLeast[mode]![label]!);
    backend.dispose();
  });
});
