// Reductions on the gpu.js backend: the reduction passes' group sums (compiler/render/gpujs/render.ts)
// store the oracle's bits in every mode, and a step with reductions stores what its oracle stores:
// - cpu, webasm (`hostMemory`): the runtime combines on the host, in group order: the oracle
//   backend (test/oracle.ts);
// - webgpu: arrays stay on the GPU and gpu.js kernels combine there (gpujs/combine.ts), in
//   WebGPU's order: the device-order oracle with one lane a group (gpu.js adds a group's elements
//   in element order) and gpu.js's blocks (test/device-oracle.ts `gpujsOrder`).

import { describe, expect, it } from 'vitest';
import { kernel } from '../../../compiler/ir/kernel.ts';
import * as d from '../../../dsl/ops.ts';
import { adamw, lamb, lars } from '../../../optim/index.ts';
import type { OptimizerDef } from '../../../optim/index.ts';
import { uniformF32 } from '../../../props/prng.ts';
import { onBackend, onOracle } from '../../../test/harness.ts';
import { testModes } from '../../../test/gpujs-harness.ts';
import { combineFixture, DeviceOrderOracle, gpujsOrder, uploadPartials } from '../../../test/device-oracle.ts';
import { OracleBackend } from '../../../test/oracle.ts';
import type { Backend } from '../backend.ts';
import { createOptimizer } from '../../optimizer.ts';
import type { OptimizerOptions } from '../../options.ts';
import { GpujsBackend } from './gpujs.ts';

const modes = await testModes();

describe.each(modes)('gpu.js %s mode, group sums', (mode) => {
  it('two levels, a group and an element output reading them, a partial launch: bit for bit', async () => {
    const b = await GpujsBackend.create(mode);
    const x = d.field('x', 'f32'),
      y = d.field('y', 'f32');
    const first = d.groupSum(d.mul(x, d.uniform('a')));
    const k = kernel({
      name: 'sums',
      groupSize: 16,
      outputs: [
        { field: 's', storage: 'f32', axis: 'group', value: d.groupSum(d.mul(y, first)) },
        { field: 'e', storage: 'f32', axis: 'element', value: d.mul(y, first) },
      ],
    });
    // Order-sensitive sums (1e8 swallows small terms unless they come first), fractions (an
    // integer accumulator would drop them), a group of −0 (its sum is +0), NaN and +∞.
    const n = 75,
      nG = Math.ceil(n / 16);
    const X = Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 1e8 : i % 3 === 0 ? -1e8 : 0.3 + i / 7));
    X.fill(-0, 16, 32);
    X[50] = NaN;
    X[70] = Infinity;
    const Y = Float32Array.from({ length: n }, (_, i) => 0.1 * (i % 5) - 0.2);
    const arrays = { x: X, y: Y, s: Float32Array.from({ length: nG }, (_, g) => g + 0.5), e: new Float32Array(n) };
    const c = { k, n, arrays, rows: [{ a: 1.3 }], rowOf: null, range: [0, nG - 1] as const };
    const want = onOracle(c),
      got = await onBackend(b, c);
    expect([...got.arrays.s!]).toEqual([...want.arrays.s!]);
    expect([...got.arrays.e!]).toEqual([...want.arrays.e!]);
    expect(Object.is(got.arrays.s![1], 0)).toBe(true); // y·(+0) summed: +0 here, with the −0 group
    expect(b.calls).toBe(4); // two sums, s, e
    b.dispose();
  });
});

// f32 storage keeps the cpu mode's runs short. These check that the step runs (or is refused) and
// stores what the oracle stores; an update is small beside θ, so a sum one ulp off rarely shows
// here: the group sums above and test/conformance-*.test.ts check the sums bit for bit.
const f32 = { paramDtype: 'f32', quantize: false, gradDtype: 'f32' } as const;
const optimizers: [string, OptimizerDef, Partial<OptimizerOptions>][] = [
  ['lamb', lamb({ lr: 1e-2, weightDecay: 0.01 }) as OptimizerDef, f32],
  ['lars', lars({ lr: 1, trustCoeff: 0.01, weightDecay: 0.01 }) as OptimizerDef, f32],
  ['adamw+clipGradNorm', adamw({ lr: 1e-2 }) as OptimizerDef, { ...f32, clipGradNorm: 0.5 }],
];

/** Two steps of `def` on `backend` from the same start: every stored field and the last gradient norm. */
async function steps(backend: Backend, def: OptimizerDef, options: Partial<OptimizerOptions>) {
  const params = { w: uniformF32(1000, 1, 2), b: uniformF32(40, 2) };
  const opt = await createOptimizer(def, params, { ...options, backend });
  for (let t = 0; t < 2; t++) await opt.step({ w: uniformF32(1000, 10 + t, 0.5), b: uniformF32(40, 20 + t, 0.5) });
  const fields = Object.fromEntries(
    await Promise.all(opt.fields.map(async (f) => [f.name, [...(await opt.readField(f.name))]] as const)),
  );
  return { fields, norm: options.clipGradNorm ? await opt.gradNorm() : null };
}

describe.each(modes)('gpu.js %s mode, steps with reductions', (mode) => {
  const host = mode !== 'webgpu';
  it(`hostMemory is ${host}, combiner ${!host}: ${host ? 'its arrays are host Float32Arrays' : 'its arrays stay on the GPU, combined there'}`, async () => {
    const b = await GpujsBackend.create(mode);
    expect(b.hostMemory).toBe(host);
    expect(typeof b.combiner).toBe(host ? 'undefined' : 'function');
    b.dispose();
  });

  it.each(optimizers)(
    `%s stores what ${host ? 'the oracle' : 'the device-order oracle (gpu.js order)'} stores, bit for bit`,
    async (_name, def, options) => {
      const b = await GpujsBackend.create(mode);
      try {
        const want = await steps(host ? new OracleBackend() : new DeviceOrderOracle(gpujsOrder), def, options);
        const got = await steps(b, def, options);
        expect(got).toEqual(want);
      } finally {
        b.dispose();
      }
    },
  );
});

describe.runIf(modes.includes('webgpu'))('gpu.js webgpu mode, the device combine', () => {
  it('blocks, ranges, sum and max (NaN partials), tensor and global, two levels, 300 rows: the device-order oracle’s bits', async () => {
    const b = await GpujsBackend.create('webgpu');
    const oracle = new DeviceOrderOracle(gpujsOrder);
    // Row 5 holds three blocks of at most 16384 groups.
    const { tensors, groups, reductions } = combineFixture(40_000);
    // Sums that depend on the order (1e8 swallows what follows it); NaN partials a max ignores.
    const data = reductions.map((_, i) => {
      const x = uniformF32(groups, 40 + i, 100);
      for (let g = i; g < groups; g += 997) x[g] = i % 2 ? NaN : 1e8;
      return x;
    });
    const plan = { reductions, rows: tensors.length, tensors, cuts: [0] };
    const dev = b.combiner!({ ...plan, partials: await uploadPartials(b, data) });
    const ora = oracle.combiner({ ...plan, partials: await uploadPartials(oracle, data) });
    for (const range of [[0, groups] as const, [700, 45_000] as const]) {
      for (const level of [1, 2]) {
        const calls = b.calls;
        await b.submit!([{ combine: dev, level, groups: range }]);
        expect(b.calls - calls, `level ${level}: blocks, rows`).toBe(2);
        await oracle.submit([{ combine: ora, level, groups: range }]);
      }
      expect([...(await b.read(dev.values))]).toEqual([...(await oracle.read(ora.values))]);
    }
    // Not the host's order (runtime/reductions.ts): the big tensor's partials in group order give other bits.
    const t5 = tensors[5]!.groups;
    const inOrder = data[0]!.subarray(Math.max(700, t5[0]), t5[1]).reduce((a, x) => Math.fround(a + x), 0);
    expect((await b.read(dev.values))[5 * reductions.length]).not.toBe(inOrder);
    dev.free();
    b.dispose();
  });

  it('a LAMB + clipGradNorm step reads back no partial and no result; the combine is 2 kernel calls a level', async () => {
    const b = await GpujsBackend.create('webgpu');
    try {
      const params = { w: uniformF32(1000, 1, 2), b: uniformF32(40, 2) };
      const opt = await createOptimizer(lamb({ lr: 1e-2 }) as OptimizerDef, params, {
        ...f32,
        clipGradNorm: 0.5,
        backend: b,
      });
      const grads = { w: uniformF32(1000, 10, 0.5), b: uniformF32(40, 20, 0.5) };
      await opt.step(grads);
      const reads: string[] = [];
      const read = b.read.bind(b);
      b.read = (buf, offset, length) => (reads.push(`${buf.storage}[${buf.length}]`), read(buf, offset, length));
      const calls = b.calls,
        launches = b.launches;
      await opt.step(grads);
      // Level 1 (‖θ‖² and the clip's ‖g‖²: 2 group sums, 2 partials arrays), its combine (blocks,
      // rows), level 2 (‖u‖²: 1 + 1), its combine, the update (p, m, v, the non-finite counter).
      expect(b.calls - calls).toBe(4 + 2 + 2 + 2 + 4);
      // As WebGPU counts them (docs/compiler.md §6): 2 passes, 2 × 2 combine kernels, the update.
      expect(b.launches - launches).toBe(7);
      // Read back: each launch's group → row table (u32, one a group: gpu.js builds each kernel's
      // scalars on the host) and the non-finite counter; no partial and no result (both f32).
      expect(reads).toEqual(['u32[34]', 'u32[34]', 'u32[34]', 'u32[1]']);
      b.read = read;
      expect(await opt.gradNorm()).toBeGreaterThan(0);
    } finally {
      b.dispose();
    }
  });
});
