// Reductions on the gpu.js backend: the reduction passes' group sums (compiler/render/gpujs/render.ts)
// store the oracle's bits in every mode, and a step with reductions stores what its oracle stores:
// - cpu, webasm (`hostMemory`): the runtime combines on the host, in group order: the oracle
//   backend (test/oracle.ts);
// - webgpu: arrays stay on the GPU and the reduction passes' launches combine there
//   (gpujs/combine.ts: lane passes, then a rows kernel at the end of a level's last launch), in
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
import { DeviceOrderOracle, gpujsOrder } from '../../../test/device-oracle.ts';
import { combineFixture, fixturePasses, uploadArrays } from '../../../test/combine-fixture.ts';
import { chunkedGrads, chunkedParams, stored } from '../../../test/problems.ts';
import { uniformTable } from '../../../compiler/ir/pipeline.ts';
import { OracleBackend } from '../../../test/oracle.ts';
import type { Backend, Item } from '../backend.ts';
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
  it('blocks, ranges, sum and max (NaN partials), tensor and global, two levels, 300 rows, a level in two launches: the device-order oracle’s bits', async () => {
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
    // Each group's partial is its one element (fixturePasses): the passes' launches combine `data`.
    const plan = { reductions, rows: tensors.length, tensors, cuts: [0], partials: [] };
    const setUp = async (on: Backend) => {
      const xs = await uploadArrays(on, data);
      const programs = await Promise.all(fixturePasses(reductions).map((k) => on.compile(k)));
      return { bindings: Object.fromEntries(xs.map((x, i) => [`x${i}`, x])), combine: on.combiner!(plan), programs };
    };
    const dev = await setUp(b),
      ora = await setUp(oracle);
    // A level in two launches as two chunks would send it, the second starting inside the big
    // tensor's second block: its lanes carry over, and only the second launch combines.
    const mid = tensors[5]!.groups[0] + 20_000;
    const launches = (on: typeof dev, level: number, range: readonly [number, number]): Item[] =>
      [[range[0], mid] as const, [mid, range[1]] as const].map((piece, j) => {
        const program = on.programs[level - 1]!;
        return {
          program,
          launch: {
            bindings: on.bindings,
            uniforms: uniformTable(program.prepared, [{}]),
            rowOf: null,
            groups: piece,
            length: groups,
            reductions: on.combine,
            origin: 0,
            pass: { level, groups: range, last: j === 1 },
          },
        };
      });
    for (const range of [[0, groups] as const, [700, 45_000] as const]) {
      for (const level of [1, 2]) {
        const [calls, launched] = [b.calls, b.launches];
        await (b as Backend).submit!(launches(dev, level, range));
        const here = reductions.filter((r) => r.level === level).length;
        expect(b.calls - calls, `level ${level}: a lane pass per reduction and launch, then rows`).toBe(2 * here + 1);
        expect(b.launches - launched).toBe(2);
        await (oracle as Backend).submit!(launches(ora, level, range));
      }
      const values = (on: Backend, c: typeof dev) => on.read(c.combine.values);
      expect([...(await values(b, dev))]).toEqual([...(await values(oracle, ora))]);
    }
    // Not the host's order (runtime/reductions.ts): the big tensor's partials in group order give other bits.
    const t5 = tensors[5]!.groups;
    const inOrder = data[0]!.subarray(Math.max(700, t5[0]), t5[1]).reduce((a, x) => Math.fround(a + x), 0);
    expect((await (b as Backend).read(dev.combine.values))[5 * reductions.length]).not.toBe(inOrder);
    dev.combine.free();
    b.dispose();
  });

  // A step is a launch per level (its lane passes, then the combine's rows kernel) and the update,
  // as on WebGPU (runtime/backends/webgpu/combine.test.ts). Before the combine moved into the
  // launches it was 4 launches (8 calls) for AdamW + clipGradNorm and 7 (14 calls) for LAMB +
  // clipGradNorm: each level's pass then stored its partials (a group sum and a copy into the
  // partial field per reduction) and two combine kernels (blocks, rows) followed it.
  it.each([
    // Level 1: ‖g‖²'s lane pass, the rows kernel; the update: p, m, v, the non-finite counter.
    { name: 'adamw', def: adamw({ lr: 1e-2 }), launchCount: 2, callCount: 1 + 1 + 4 },
    // Level 1: ‖θ‖² and the clip's ‖g‖², 2 lane passes, the rows kernel; level 2: ‖u‖²'s lane
    // pass, the rows kernel; the update: p, m, v, the non-finite counter.
    { name: 'lamb', def: lamb({ lr: 1e-2 }), launchCount: 3, callCount: 2 + 1 + (1 + 1) + 4 },
  ])(
    '$name + clipGradNorm: $launchCount launches a step, $callCount gpu.js calls, reading back no partial and no result',
    async ({ def, launchCount, callCount }) => {
      const b = await GpujsBackend.create('webgpu');
      try {
        const params = { w: uniformF32(1000, 1, 2), b: uniformF32(40, 2) };
        const opt = await createOptimizer(def as OptimizerDef, params, { ...f32, clipGradNorm: 0.5, backend: b });
        const grads = { w: uniformF32(1000, 10, 0.5), b: uniformF32(40, 20, 0.5) };
        await opt.step(grads);
        const reads: string[] = [];
        const read = b.read.bind(b);
        b.read = (buf, offset, length) => (reads.push(`${buf.storage}[${buf.length}]`), read(buf, offset, length));
        const calls = b.calls,
          launches = b.launches;
        await opt.step(grads);
        expect(b.calls - calls).toBe(callCount);
        expect(b.launches - launches).toBe(launchCount);
        // Read back: each launch's group → row table (u32, one a group: gpu.js builds each kernel's
        // scalars on the host) and the non-finite counter; no partial and no result (both f32).
        expect(reads).toEqual([...Array<string>(launchCount).fill('u32[34]'), 'u32[1]']);
        b.read = read;
        expect(await opt.gradNorm()).toBeGreaterThan(0);
      } finally {
        b.dispose();
      }
    },
  );

  it('LAMB + clipGradNorm in chunks stores the device-order oracle’s bits; each level combines once, after its last chunk', async () => {
    const one = new DeviceOrderOracle(gpujsOrder);
    // Bindings of 4 KiB: chunks of at most 32 groups, so w's one block spans several chunks.
    const many = Object.assign(await GpujsBackend.create('webgpu'), {
      limits: { maxBufferBytes: 1 << 20, maxBindingBytes: 4096 },
    });
    try {
      const [params, grads] = [chunkedParams, chunkedGrads];
      const runs = [];
      for (const backend of [one, many] as Backend[]) {
        const opt = await createOptimizer(lamb() as OptimizerDef, params(), { ...f32, backend, clipGradNorm: 1 });
        const calls = many.calls;
        for (let s = 0; s < 3; s++) await opt.step(grads(s));
        runs.push({
          chunks: opt.chunks,
          calls: many.calls - calls,
          norm: await opt.gradNorm(),
          fields: await stored(opt),
        });
      }
      const C = runs[1]!.chunks;
      expect(runs[0]!.chunks).toBe(1);
      expect(C).toBeGreaterThan(4);
      // Per step and chunk: 2 lane passes (level 1), 1 (level 2), 4 update calls; per level ONE rows kernel.
      expect(runs[1]!.calls).toBe(3 * (7 * C + 2));
      expect(runs[1]!.norm).toBe(runs[0]!.norm);
      for (const f of Object.keys(runs[0]!.fields))
        expect([...runs[1]!.fields[f]!], f).toEqual([...runs[0]!.fields[f]!]);
    } finally {
      many.dispose();
    }
  });
});
